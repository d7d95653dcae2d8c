"""The models' enums, field converters and parsing helpers (see :mod:`oms.models`)."""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, TypeVar

import attrs

from oms._decimal import fmt, to_decimal
from oms.errors import ResponseShapeError, ValidationError

DecimalInput = str | int | Decimal
TimeInput = float | int | Decimal | str


# --- enums --------------------------------------------------------------------------------


class Side(str, enum.Enum):
    BUY = "buy"
    SELL = "sell"


class OrderType(str, enum.Enum):
    """AddOrder's ``ordertype`` values."""

    MARKET = "market"
    LIMIT = "limit"
    ICEBERG = "iceberg"
    STOP_LOSS = "stop-loss"
    TAKE_PROFIT = "take-profit"
    STOP_LOSS_LIMIT = "stop-loss-limit"
    TAKE_PROFIT_LIMIT = "take-profit-limit"
    TRAILING_STOP = "trailing-stop"
    TRAILING_STOP_LIMIT = "trailing-stop-limit"
    SETTLE_POSITION = "settle-position"


class OrderStatus(str, enum.Enum):
    """An order's REST status; a partial fill is ``open`` with ``0 < vol_exec < vol``."""

    PENDING = "pending"
    OPEN = "open"
    CLOSED = "closed"
    CANCELED = "canceled"
    EXPIRED = "expired"


class TimeInForce(str, enum.Enum):
    GTC = "GTC"
    IOC = "IOC"
    GTD = "GTD"
    FOK = "FOK"


class Trigger(str, enum.Enum):
    """The price a stop/take-profit order watches (Kraken's default is ``last``)."""

    LAST = "last"
    INDEX = "index"


class StpType(str, enum.Enum):
    """Self-trade prevention."""

    CANCEL_NEWEST = "cancel-newest"
    CANCEL_OLDEST = "cancel-oldest"
    CANCEL_BOTH = "cancel-both"


class OFlag(str, enum.Enum):
    """Order flags (``oflags``)."""

    POST = "post"
    FCIB = "fcib"
    FCIQ = "fciq"
    NOMPP = "nompp"
    VIQC = "viqc"


class SystemState(str, enum.Enum):
    ONLINE = "online"
    MAINTENANCE = "maintenance"
    CANCEL_ONLY = "cancel_only"
    POST_ONLY = "post_only"


def _squash(text: str) -> str:
    # "On hold", "onhold" and "on-hold" all occur for the same state.
    return re.sub(r"[\s_-]", "", text).lower()


class FundingStatus(str, enum.Enum):
    """A deposit/withdrawal status (IFEX-derived). ``UNKNOWN`` marks a value not known here.

    The raw text is always kept beside it (:attr:`FundingTransaction.status_raw`), so
    ``Settled`` and ``Success`` are never collapsed and a future value is never lost.
    """

    INITIAL = "Initial"
    PENDING = "Pending"
    EARLY_CONFIRMED = "EarlyConfirmed"
    SETTLED = "Settled"
    SUCCESS = "Success"
    FAILURE = "Failure"
    PARTIAL = "Partial"
    ON_HOLD = "On hold"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, raw: str) -> FundingStatus:
        """The member for Kraken's text (spelling variants accepted); ``UNKNOWN`` otherwise."""
        return _FUNDING_STATUS.get(_squash(raw), cls.UNKNOWN)


_FUNDING_STATUS = {_squash(m.value): m for m in FundingStatus if m is not FundingStatus.UNKNOWN}


class StatusProp(str, enum.Enum):
    """A funding ``status-prop`` qualifier. ``UNKNOWN`` marks a value not known here."""

    CANCEL_PENDING = "cancel-pending"
    CANCELED = "canceled"
    CANCEL_DENIED = "cancel-denied"
    RETURN = "return"
    ONHOLD = "onhold"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, raw: str) -> StatusProp:
        """The member for Kraken's text (``on-hold`` = ``onhold``); ``UNKNOWN`` otherwise."""
        return _STATUS_PROP.get(_squash(raw), cls.UNKNOWN)


_STATUS_PROP = {_squash(m.value): m for m in StatusProp if m is not StatusProp.UNKNOWN}


# --- field converters (direct construction) ------------------------------------------------


def _money(value: DecimalInput) -> Decimal:
    # Direct construction also takes values computed here (a VWAP has 28 digits): the bound
    # on decimal places is for what is sent to Kraken, and answers are parsed with _dec.
    return to_decimal(value, max_places=None)


def _opt_money(value: DecimalInput | None) -> Decimal | None:
    return None if value is None else _money(value)


def _amount(value: DecimalInput) -> Decimal:
    return to_decimal(value, field="price")


def _time(value: TimeInput) -> float:
    if isinstance(value, bool):
        raise ValidationError("a time must be a number, not bool", rule="type")
    if isinstance(value, (int, float)):
        return value
    return float(to_decimal(value, field="time"))


def _opt_time(value: TimeInput | None) -> float | None:
    return None if value is None else _time(value)


# --- relative prices -----------------------------------------------------------------------

# ASCII digits only; the amount's length is bounded by to_decimal.
_RELATIVE = re.compile(r"([+#-])([0-9]*\.?[0-9]*)(%?)")


@attrs.frozen
class RelativePrice:
    """A price relative to the market: ``+5``, ``-1.5%``, ``#2`` (Kraken picks the sign for ``#``).

    Trailing stops must use this form (``+`` on ``price``); any price may.
    """

    prefix: str = attrs.field(validator=attrs.validators.in_(("+", "-", "#")))
    amount: Decimal = attrs.field(converter=_amount)
    percent: bool = False

    @amount.validator
    def _non_negative(self, attribute: attrs.Attribute[Decimal], value: Decimal) -> None:
        if value < 0:
            raise ValidationError(
                "a relative price's amount cannot be negative (the sign is the prefix)",
                field="price",
                rule="positive",
            )

    @classmethod
    def parse(cls, text: str) -> RelativePrice:
        match = _RELATIVE.fullmatch(text.strip())
        if match is None or not match.group(2).strip("."):
            raise ValidationError(
                f"not a relative price (+n, -n or #n, optionally with %): {text!r}",
                field="price",
                rule="relative-price",
            )
        prefix, amount, percent = match.groups()
        return cls(prefix, to_decimal(amount, field="price"), percent=bool(percent))

    def __str__(self) -> str:
        return f"{self.prefix}{fmt(self.amount)}{'%' if self.percent else ''}"


Price = Decimal | RelativePrice


def parse_price(value: object, *, field: str = "price") -> Price:
    """A Decimal, or a :class:`RelativePrice` for text like ``+5`` or ``#1.5%``.

    Raises :class:`~oms.errors.ValidationError` (rule ``type``) for floats and junk.
    """
    if isinstance(value, RelativePrice):
        return value
    if isinstance(value, str) and value.strip()[:1] in ("+", "-", "#"):
        try:
            return RelativePrice.parse(value)
        except ValidationError as exc:
            raise ValidationError(str(exc), field=field, rule=exc.rule) from None
    return to_decimal(value, field=field)


# --- parsing helpers (API answers) ----------------------------------------------------------

_E = TypeVar("_E", bound=enum.Enum)


def _obj(value: object, label: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ResponseShapeError(f"{label}: expected an object, got {type(value).__name__}")
    return value


def _list(value: object, label: str) -> list[Any]:
    if not isinstance(value, list):
        raise ResponseShapeError(f"{label}: expected an array, got {type(value).__name__}")
    return value


def _req(data: Mapping[str, Any], key: str, label: str) -> Any:
    try:
        return data[key]
    except KeyError:
        raise ResponseShapeError(f"{label}: missing {key!r}") from None


def _dec(value: object, label: str) -> Decimal:
    try:
        return to_decimal(value, field=label)
    except ValidationError as exc:
        raise ResponseShapeError(f"{label}: {exc}") from None


def _opt_dec(value: object, label: str) -> Decimal | None:
    return None if value is None else _dec(value, label)


def _ratio(value: object, label: str) -> Decimal:
    # Fee tiers and collateral values are JSON numbers in Kraken's answers. They are rates,
    # not amounts, and the shortest repr of the float is the literal Kraken sent.
    if isinstance(value, float):
        return Decimal(repr(value))
    return _dec(value, label)


def _secs(value: object, label: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        raise ResponseShapeError(f"{label}: expected a unix time, got {value!r}")
    try:
        return _time(value)
    except ValidationError:
        raise ResponseShapeError(f"{label}: expected a unix time, got {value!r}") from None


def _int(value: object, label: str) -> int:
    """An int from a JSON int or a digit string; never from a float (it may have lost digits)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,20}", value.strip()):
        return int(value)
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    raise ResponseShapeError(f"{label}: expected an integer, got {value!r}")


def _opt_int(value: object, label: str) -> int | None:
    return None if value is None else _int(value, label)


def _str(value: object, label: str) -> str:
    if not isinstance(value, str):
        raise ResponseShapeError(f"{label}: expected a string, got {value!r}")
    return value


def _opt_str(value: object, label: str) -> str | None:
    return None if value is None else _str(value, label)


def _bool(value: object, label: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ResponseShapeError(f"{label}: expected a boolean, got {value!r}")


def _enum(cls: type[_E], value: object, label: str) -> _E:
    try:
        return cls(value)
    except ValueError:
        raise ResponseShapeError(f"{label}: unknown value {value!r}") from None


def _csv(value: object, label: str) -> tuple[str, ...]:
    text = _str(value if value is not None else "", label)
    return tuple(part for part in text.split(",") if part)


def _api_price(value: object, label: str) -> Price:
    try:
        return parse_price(value, field=label)
    except ValidationError as exc:
        raise ResponseShapeError(f"{label}: {exc}") from None


def _rfc3339(value: object, label: str) -> datetime:
    text = _str(value, label)
    try:
        # fromisoformat learned "Z" only in 3.11.
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ResponseShapeError(f"{label}: not an RFC3339 time: {text!r}") from None
    if parsed.tzinfo is None:
        raise ResponseShapeError(f"{label}: RFC3339 time without offset: {text!r}")
    return parsed.astimezone(timezone.utc)


def _single_pair(result: Mapping[str, Any], label: str) -> tuple[str, Any]:
    keys = [k for k in result if k != "last"]
    if len(keys) != 1:
        raise ResponseShapeError(f"{label}: expected one pair key, got {keys}")
    return keys[0], result[keys[0]]


_A = TypeVar("_A")


def checked(cls: type[_A], **values: Any) -> _A:
    """An instance of the attrs class ``cls`` from values already of the fields' types and
    already checked, without running its converters and validators again; fields not given
    take their defaults.

    For the order cache reading back rows it wrote itself from checked objects: at thousands
    of orders the converters' re-checks were most of the cost of a query.
    """
    made = object.__new__(cls)
    for name, default in _defaults(cls):  # type: ignore[arg-type]  # classes are hashable
        object.__setattr__(made, name, values.get(name, default))
    return made


@functools.cache
def _defaults(cls: type) -> tuple[tuple[str, Any], ...]:
    return tuple((f.name, f.default) for f in attrs.fields(cls))


def _zero_none(value: float | None) -> float | None:
    return value if value else None

"""Identifiers, deadlines and per-field converters of an order request (see :mod:`oms.orders`).

Each converter is named for its field, so a refusal names the field it is about.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TypeVar

import attrs

from oms._decimal import fmt, to_decimal
from oms.errors import ValidationError
from oms.models import (
    DecimalInput,
    OFlag,
    OrderType,
    Price,
    RelativePrice,
    Side,
    StpType,
    TimeInForce,
    Trigger,
    parse_price,
)

USERREF_MIN = 1
USERREF_MAX = 2**31 - 1
#: Kraken accepts a ``deadline`` between now + 2 s and now + 60 s.
DEADLINE_MIN = timedelta(seconds=2)
DEADLINE_MAX = timedelta(seconds=60)
#: AddOrderBatch takes 2 to 15 orders, all for one pair.
BATCH_MIN = 2
BATCH_MAX = 15
#: A relative ``expiretm`` must be at least this many seconds ahead.
_EXPIRETM_MIN_RELATIVE = 5

PriceInput = DecimalInput | RelativePrice
_E = TypeVar("_E", bound=enum.Enum)

# Types whose `price` is a limit or trigger price; market and settle-position take none.
_PRICED = frozenset(OrderType) - {OrderType.MARKET, OrderType.SETTLE_POSITION}
_LIMIT2 = frozenset(
    {OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT, OrderType.TRAILING_STOP_LIMIT}
)
_TRAILING = frozenset({OrderType.TRAILING_STOP, OrderType.TRAILING_STOP_LIMIT})
_TRIGGERED = _PRICED - {OrderType.LIMIT, OrderType.ICEBERG}
_CLOSE_TYPES = _PRICED

_UUID_LONG = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_UUID_SHORT = re.compile(r"[0-9a-fA-F]{32}")
# Printable ASCII without the space: the spec says "free format ascii text", no source
# shows a space, and a space is what form encoding turns into '+'. The sandbox refuses it as
# well, so a cl_ord_id that passes here is one every source agrees on.
_FREE_TEXT = re.compile(r"[\x21-\x7e]{1,18}")
# [0-9], not \d: \d also matches Arabic-Indic, fullwidth and other Unicode digits, which
# int() would then quietly read as numbers. 11 digits cover any unix time Kraken takes.
_TIME_SPEC = re.compile(r"\+?[0-9]{1,11}")
_LEVERAGE = re.compile(r"([0-9]{1,3})(?::1)?")
# The spec's enum has one value (`tokenized_asset`, for xStocks); AccountTransfer also lists
# `currency`. A lower-case word is accepted so a new class needs no release.
_ASSET_CLASS = re.compile(r"[a-z_]{1,32}")
#: Order types whose price is a limit price: the only ones Kraken takes ``timeinforce=FOK``
#: for (krakenfx/kraken-api-sdk rust/docs/guides/placing-orders.md: "FOK is valid only on
#: limit-priced types").
FOK_TYPES = frozenset(
    {
        OrderType.LIMIT,
        OrderType.ICEBERG,
        OrderType.STOP_LOSS_LIMIT,
        OrderType.TAKE_PROFIT_LIMIT,
        OrderType.TRAILING_STOP_LIMIT,
    }
)


# --- identifiers and deadline -----------------------------------------------------------------


def check_userref(value: object) -> int:
    """Return ``value`` if it is a usable userref, else raise ``ValidationError``.

    Kraken types userref as a signed 32-bit integer and accepts negative values. ``oms``
    deliberately accepts only 1..2,147,483,647, the range Kraken's own support article
    gives: 0 reads back as "no userref" (so it cannot tag anything), and keeping to positive
    values lets a userref always be told apart from an order's txid when cancelling.
    ``bool`` (an ``int`` subclass), floats and numeric strings are refused: a userref that
    changed type on the way is a bug to report, not to repair.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            f"userref must be an int, not {type(value).__name__} ({value!r})",
            field="userref",
            rule="type",
        )
    if not USERREF_MIN <= value <= USERREF_MAX:
        raise ValidationError(
            f"userref {value} is outside {USERREF_MIN}..{USERREF_MAX}",
            field="userref",
            rule="userref-range",
        )
    return value


def check_cl_ord_id(value: object) -> str:
    """Return ``value`` if it is a valid ``cl_ord_id``, else raise ``ValidationError``.

    Kraken accepts a long UUID (36 characters with dashes), a short UUID (32 hex digits) or
    free printable ASCII text of at most 18 characters (no spaces).
    """
    if not isinstance(value, str):
        raise ValidationError(
            f"cl_ord_id must be a str, not {type(value).__name__}", field="cl_ord_id", rule="type"
        )
    if not any(p.fullmatch(value) for p in (_UUID_LONG, _UUID_SHORT, _FREE_TEXT)):
        raise ValidationError(
            f"cl_ord_id {value!r} is neither a UUID (36 chars with dashes, or 32 hex digits) "
            "nor printable ASCII text of 1 to 18 characters without spaces",
            field="cl_ord_id",
            rule="cl_ord_id-format",
        )
    return value


def _utc(value: datetime, field: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            f"{field} must be a timezone-aware datetime (naive times are ambiguous)",
            field=field,
            rule="timezone",
        )
    return value.astimezone(timezone.utc)


def check_deadline(deadline: datetime, now: float | datetime) -> datetime:
    """Return ``deadline`` in UTC if it lies within now + 2 s .. now + 60 s (Kraken's range)."""
    when = _utc(deadline, "deadline")
    start = (
        _utc(now, "now") if isinstance(now, datetime) else datetime.fromtimestamp(now, timezone.utc)
    )
    if not start + DEADLINE_MIN <= when <= start + DEADLINE_MAX:
        offset = (when - start).total_seconds()
        raise ValidationError(
            f"deadline is {offset:+.3f} s from now; Kraken allows "
            f"+{DEADLINE_MIN.total_seconds():g} s to +{DEADLINE_MAX.total_seconds():g} s",
            field="deadline",
            rule="deadline-range",
        )
    return when


def format_deadline(deadline: datetime) -> str:
    """RFC3339 in UTC with milliseconds and ``Z``: ``2024-05-01T12:00:05.250Z``."""
    when = _utc(deadline, "deadline")
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


# --- converters (named per field so errors name the field) -----------------------------------


def _decimal_arg(value: object, field: str) -> Decimal:
    return to_decimal(value, field=field)


def _price_arg(value: object, field: str) -> Price | None:
    return None if value is None else parse_price(value, field=field)


def _enum_arg(cls: type[_E], value: object, field: str) -> _E:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in cls)
        raise ValidationError(
            f"{field} {value!r} is not one of: {allowed}", field=field, rule="enum"
        ) from None


def _side(value: Side | str) -> Side:
    return _enum_arg(Side, value, "side")


def _ordertype(value: OrderType | str) -> OrderType:
    return _enum_arg(OrderType, value, "ordertype")


def _close_ordertype(value: OrderType | str | None) -> OrderType | None:
    return None if value is None else _enum_arg(OrderType, value, "close_ordertype")


def _timeinforce(value: TimeInForce | str | None) -> TimeInForce | None:
    return None if value is None else _enum_arg(TimeInForce, value, "timeinforce")


def _trigger(value: Trigger | str | None) -> Trigger | None:
    return None if value is None else _enum_arg(Trigger, value, "trigger")


def _stptype(value: StpType | str | None) -> StpType | None:
    return None if value is None else _enum_arg(StpType, value, "stptype")


def _volume(value: DecimalInput) -> Decimal:
    return _decimal_arg(value, "volume")


def _displayvol(value: DecimalInput | None) -> Decimal | None:
    return None if value is None else _decimal_arg(value, "displayvol")


def _price(value: PriceInput | None) -> Price | None:
    return _price_arg(value, "price")


def _price2(value: PriceInput | None) -> Price | None:
    return _price_arg(value, "price2")


def _close_price(value: PriceInput | None) -> Price | None:
    return _price_arg(value, "close_price")


def _close_price2(value: PriceInput | None) -> Price | None:
    return _price_arg(value, "close_price2")


def _userref(value: int | None) -> int | None:
    return None if value is None else check_userref(value)


def _cl_ord_id(value: str | None) -> str | None:
    return None if value is None else check_cl_ord_id(value)


def _oflags(value: str | Iterable[OFlag | str]) -> tuple[OFlag, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    flags: list[OFlag] = []
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        flag = _enum_arg(OFlag, item.strip() if isinstance(item, str) else item, "oflags")
        if flag not in flags:
            flags.append(flag)
    return tuple(flags)


def _time_spec(value: int | str | None, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValidationError(
            f"{field} must be an int (unix time) or a str ('+<seconds>'), "
            f"not {type(value).__name__}",
            field=field,
            rule="type",
        )
    # An int is bounded before str(): str() of a huge int is slow (and refused past 4300
    # digits); a str must already be ASCII digits, without spaces or separators.
    if isinstance(value, int) and not 0 <= value < 10**11:
        raise ValidationError(
            f"{field} {value!r} is neither 0, a unix time, nor '+<seconds>'",
            field=field,
            rule="format",
        )
    text = str(value)
    if not _TIME_SPEC.fullmatch(text):
        raise ValidationError(
            f"{field} {value!r} is neither 0, a unix time, nor '+<seconds>'",
            field=field,
            rule="format",
        )
    # "0" is Kraken's default ("now" / "no expiry"); None says the same without sending it.
    return None if int(text) == 0 and not text.startswith("+") else text


def _starttm(value: int | str | None) -> str | None:
    return _time_spec(value, "starttm")


def _expiretm(value: int | str | None) -> str | None:
    return _time_spec(value, "expiretm")


def _leverage(value: int | str | None) -> int | None:
    if value is None or value == "none":
        return None
    match = _LEVERAGE.fullmatch(value) if isinstance(value, str) else None
    number = int(match.group(1)) if match else value
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ValidationError(
            f"leverage must be a positive int (e.g. 2 or '2:1'), not {value!r}",
            field="leverage",
            rule="type",
        )
    return number


def check_asset_class(value: object) -> str:
    """Return ``value`` if it looks like one of Kraken's asset classes (``tokenized_asset``)."""
    if not isinstance(value, str) or not _ASSET_CLASS.fullmatch(value):
        raise ValidationError(
            f"asset_class must be a Kraken asset class such as 'tokenized_asset', not {value!r}",
            field="asset_class",
            rule="format",
        )
    return value


def _asset_class(value: str | None) -> str | None:
    return None if value is None else check_asset_class(value)


def _deadline(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValidationError("deadline must be a datetime", field="deadline", rule="type")
    return _utc(value, "deadline")


def _is_bool(instance: object, attribute: attrs.Attribute[bool], value: object) -> None:
    if not isinstance(value, bool):
        raise ValidationError(
            f"{attribute.name} must be True or False, not {value!r}",
            field=attribute.name,
            rule="type",
        )


def _pair_name(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9./_-]+", value):
        raise ValidationError(
            f"pair must be a pair name such as 'XBTUSD', not {value!r}", field="pair", rule="format"
        )


def _plain(value: Decimal) -> str:
    """``fmt`` without fractional trailing zeros, so what is checked is what is sent."""
    if value == 0:
        return "0"
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite: to_decimal refuses NaN and infinity
    while exponent < 0 and digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    return fmt(Decimal((sign, digits, exponent)))


def _price_text(value: Price) -> str:
    return str(value) if isinstance(value, RelativePrice) else _plain(value)

"""Order requests, checked completely before anything is sent.

:class:`OrderRequest` is a frozen description of one AddOrder call. Constructing it checks
everything that can be known without the exchange (types, ranges, which parameters go with
which order type, flags); :func:`check_against_pair` adds the pair's precision rules from
AssetPairs; :meth:`OrderRequest.to_params` checks the ``deadline`` against the clock and
encodes. Every refusal is an :class:`oms.errors.ValidationError` whose ``field`` names the
argument and whose ``rule`` names the rule it breaks.
"""

from __future__ import annotations

import enum
import re
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, localcontext
from typing import TypeVar

import attrs

from oms._decimal import fmt, to_decimal
from oms.errors import ValidationError
from oms.models import (
    AssetPair,
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

__all__ = [
    "BATCH_MAX",
    "BATCH_MIN",
    "DEADLINE_MAX",
    "DEADLINE_MIN",
    "FOK_TYPES",
    "USERREF_MAX",
    "USERREF_MIN",
    "OrderRequest",
    "batch_params",
    "check_against_pair",
    "check_asset_class",
    "check_cl_ord_id",
    "check_deadline",
    "check_userref",
    "format_deadline",
    "quantize_price",
    "quantize_volume",
]

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


# --- the request ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class OrderRequest:
    """One AddOrder call, validated on construction.

    Strings, ints and Decimals are accepted for amounts (never floats); ``price`` and
    ``price2`` may be relative (``"+5"``, ``"-1.5%"``, ``"#2"``, or a :class:`RelativePrice`).
    ``userref`` and ``cl_ord_id`` are mutually exclusive (Kraken's rule). The ``deadline`` is
    checked against the clock when the request is encoded (:meth:`to_params`), since only
    then is "now" known.
    """

    pair: str = attrs.field(validator=_pair_name)
    side: Side = attrs.field(converter=_side)
    ordertype: OrderType = attrs.field(converter=_ordertype)
    volume: Decimal = attrs.field(converter=_volume)
    price: Price | None = attrs.field(default=None, converter=_price)
    price2: Price | None = attrs.field(default=None, converter=_price2)
    trigger: Trigger | None = attrs.field(default=None, converter=_trigger)
    leverage: int | None = attrs.field(default=None, converter=_leverage)
    reduce_only: bool = attrs.field(default=False, validator=_is_bool)
    stptype: StpType | None = attrs.field(default=None, converter=_stptype)
    oflags: tuple[OFlag, ...] = attrs.field(default=(), converter=_oflags)
    timeinforce: TimeInForce | None = attrs.field(default=None, converter=_timeinforce)
    starttm: str | None = attrs.field(default=None, converter=_starttm)
    expiretm: str | None = attrs.field(default=None, converter=_expiretm)
    displayvol: Decimal | None = attrs.field(default=None, converter=_displayvol)
    userref: int | None = attrs.field(default=None, converter=_userref)
    cl_ord_id: str | None = attrs.field(default=None, converter=_cl_ord_id)
    close_ordertype: OrderType | None = attrs.field(default=None, converter=_close_ordertype)
    close_price: Price | None = attrs.field(default=None, converter=_close_price)
    close_price2: Price | None = attrs.field(default=None, converter=_close_price2)
    deadline: datetime | None = attrs.field(default=None, converter=_deadline)
    validate: bool = attrs.field(default=False, validator=_is_bool)
    #: Required by Kraken for non-crypto pairs: ``"tokenized_asset"`` for xStocks.
    asset_class: str | None = attrs.field(default=None, converter=_asset_class)

    def __attrs_post_init__(self) -> None:
        if self.userref is not None and self.cl_ord_id is not None:
            raise ValidationError(
                "userref and cl_ord_id cannot both be set on one order (Kraken's rule): use "
                "userref to tag a group, cl_ord_id to name one order",
                field="cl_ord_id",
                rule="exclusive",
            )
        if self.cl_ord_id is not None and self.close_ordertype is not None:
            # krakenfx/kraken-api-sdk rust/docs/guides/placing-orders.md, "Conditional close":
            # "the exchange rejects both together".
            raise ValidationError(
                "cl_ord_id cannot be combined with a conditional close (close_ordertype): "
                "Kraken rejects the pair; tag the order with a userref instead",
                field="cl_ord_id",
                rule="cl_ord_id-with-close",
            )
        self._check_volumes()
        _check_prices(self.ordertype, self.price, self.price2, "price", "price2")
        self._check_close()
        self._check_flags()
        self._check_times()
        if self.trigger is not None and not (
            self.ordertype in _TRIGGERED or self.close_ordertype in _TRIGGERED
        ):
            raise _not_applicable("trigger", f"{self.ordertype.value} orders have no trigger")

    def _check_volumes(self) -> None:
        # Kraken lets a margin position be closed with volume 0 ("fill the requisite quantity").
        zero_ok = self.ordertype is OrderType.SETTLE_POSITION or self.leverage is not None
        if self.volume < 0 or (self.volume == 0 and not zero_ok):
            raise ValidationError(
                f"volume must be positive, got {fmt(self.volume)}", field="volume", rule="positive"
            )
        if self.ordertype is OrderType.ICEBERG and self.displayvol is None:
            raise ValidationError(
                "an iceberg order needs displayvol (its visible part)",
                field="displayvol",
                rule="required",
            )
        if self.displayvol is None:
            return
        if self.ordertype is not OrderType.ICEBERG:
            raise _not_applicable("displayvol", "only iceberg orders have a displayvol")
        if not 0 < self.displayvol <= self.volume:
            raise ValidationError(
                f"displayvol must be positive and at most volume ({fmt(self.volume)})",
                field="displayvol",
                rule="positive",
            )
        if _exact_mul(self.displayvol, Decimal(15)) < self.volume:
            raise ValidationError(
                f"displayvol must be at least 1/15 of volume ({fmt(self.volume)})",
                field="displayvol",
                rule="displayvol-min",
            )

    def _check_close(self) -> None:
        if self.close_ordertype is None:
            if self.close_price is not None or self.close_price2 is not None:
                raise ValidationError(
                    "close_price/close_price2 need close_ordertype",
                    field="close_ordertype",
                    rule="required",
                )
            return
        if self.close_ordertype not in _CLOSE_TYPES:
            raise ValidationError(
                f"close_ordertype cannot be {self.close_ordertype.value}",
                field="close_ordertype",
                rule="enum",
            )
        _check_prices(
            self.close_ordertype, self.close_price, self.close_price2, "close_price", "close_price2"
        )

    def _check_flags(self) -> None:
        flags = set(self.oflags)
        if OFlag.POST in flags and self.ordertype is not OrderType.LIMIT:
            raise ValidationError(
                "oflags 'post' (post-only) is only for limit orders",
                field="oflags",
                rule="post-limit-only",
            )
        if {OFlag.FCIB, OFlag.FCIQ} <= flags:
            raise ValidationError(
                "oflags 'fcib' and 'fciq' are mutually exclusive", field="oflags", rule="exclusive"
            )
        if OFlag.VIQC in flags and not (
            self.side is Side.BUY and self.ordertype is OrderType.MARKET and self.leverage is None
        ):
            raise ValidationError(
                "oflags 'viqc' (volume in quote currency) is only for non-margin buy market orders",
                field="oflags",
                rule="viqc-buy-market-only",
            )

    def _check_times(self) -> None:
        if self.timeinforce is TimeInForce.FOK and self.ordertype not in FOK_TYPES:
            raise ValidationError(
                f"timeinforce FOK is only for limit-priced order types (limit, iceberg, "
                f"stop-loss-limit, take-profit-limit, trailing-stop-limit), not "
                f"{self.ordertype.value}",
                field="timeinforce",
                rule="fok-limit-only",
            )
        if self.timeinforce is TimeInForce.GTD and self.expiretm is None:
            raise ValidationError(
                "timeinforce GTD needs expiretm", field="expiretm", rule="required"
            )
        expire = self.expiretm
        if expire is not None and expire.startswith("+") and int(expire) < _EXPIRETM_MIN_RELATIVE:
            raise ValidationError(
                f"a relative expiretm must be at least +{_EXPIRETM_MIN_RELATIVE} seconds",
                field="expiretm",
                rule="range",
            )
        start = self.starttm
        if (
            expire is not None
            and start is not None
            and not expire.startswith("+")
            and not start.startswith("+")
            and int(expire) <= int(start)
        ):
            raise ValidationError("expiretm must be after starttm", field="expiretm", rule="range")

    # --- encoding ---------------------------------------------------------------------------

    def _common(self, *, json: bool) -> dict[str, object]:
        out: dict[str, object] = {
            "type": self.side.value,
            "ordertype": self.ordertype.value,
            "volume": _plain(self.volume),
        }
        if self.price is not None:
            out["price"] = _price_text(self.price)
        if self.price2 is not None:
            out["price2"] = _price_text(self.price2)
        if self.trigger is not None:
            out["trigger"] = self.trigger.value
        if self.leverage is not None:
            out["leverage"] = str(self.leverage)
        if self.reduce_only:
            out["reduce_only"] = True if json else "true"
        if self.stptype is not None:
            out["stptype"] = self.stptype.value
        if self.oflags:
            out["oflags"] = ",".join(f.value for f in self.oflags)
        if self.timeinforce is not None:
            out["timeinforce"] = self.timeinforce.value
        if self.starttm is not None:
            out["starttm"] = self.starttm
        if self.expiretm is not None:
            out["expiretm"] = self.expiretm
        if self.displayvol is not None:
            out["displayvol"] = _plain(self.displayvol)
        if self.userref is not None:
            out["userref"] = self.userref
        if self.cl_ord_id is not None:
            out["cl_ord_id"] = self.cl_ord_id
        if self.close_ordertype is not None:
            close: dict[str, object] = {"ordertype": self.close_ordertype.value}
            if self.close_price is not None:
                close["price"] = _price_text(self.close_price)
            if self.close_price2 is not None:
                close["price2"] = _price_text(self.close_price2)
            out["close"] = close
        return out

    def to_params(self, *, now: float | datetime | None = None) -> dict[str, object]:
        """AddOrder's parameters, in a stable order, ready for :func:`oms.auth.encode_form`.

        Decimals are plain strings without exponent or fractional trailing zeros; booleans
        are ``"true"``; the conditional close is a nested ``close`` dict (the form encoder
        writes ``close[ordertype]``); ``deadline`` is RFC3339 UTC with milliseconds, checked
        against ``now`` (default: the system clock); ``validate`` appears only when true.
        """
        params: dict[str, object] = {"pair": self.pair, **self._common(json=False)}
        if self.asset_class is not None:
            params["asset_class"] = self.asset_class
        if self.deadline is not None:
            check_deadline(self.deadline, time.time() if now is None else now)
            params["deadline"] = format_deadline(self.deadline)
        if self.validate:
            params["validate"] = "true"
        return params

    def to_batch_item(self) -> dict[str, object]:
        """This order as one element of AddOrderBatch's JSON ``orders`` array.

        ``pair``, ``asset_class``, ``deadline`` and ``validate`` belong to the batch (see
        :func:`batch_params`).
        """
        return self._common(json=True)

    def check_pair(self, pair: AssetPair) -> None:
        """Raise ``ValidationError`` if this order breaks ``pair``'s precision rules."""
        check_against_pair(self, pair)


def _not_applicable(field: str, why: str) -> ValidationError:
    return ValidationError(f"{field} is not applicable: {why}", field=field, rule="not-applicable")


def _check_prices(
    ordertype: OrderType, price: Price | None, price2: Price | None, f1: str, f2: str
) -> None:
    if ordertype in _PRICED and price is None:
        raise ValidationError(f"{ordertype.value} orders need {f1}", field=f1, rule="required")
    if ordertype not in _PRICED and price is not None:
        raise _not_applicable(f1, f"{ordertype.value} orders take no price")
    if ordertype in _LIMIT2 and price2 is None:
        raise ValidationError(
            f"{ordertype.value} orders need {f2} (the limit price)", field=f2, rule="required"
        )
    if ordertype not in _LIMIT2 and price2 is not None:
        raise _not_applicable(f2, f"{ordertype.value} orders take no second price")
    for field, value in ((f1, price), (f2, price2)):
        if isinstance(value, Decimal) and value <= 0:
            raise ValidationError(
                f"{field} must be positive, got {fmt(value)} (write '-{fmt(-value)}' as a string "
                "for a relative price)",
                field=field,
                rule="positive",
            )
    if ordertype in _TRAILING and not (isinstance(price, RelativePrice) and price.prefix == "+"):
        raise ValidationError(
            f"{ordertype.value} orders need a relative {f1} with '+' (e.g. '+50' or '+1.5%'); "
            "Kraken infers the direction from the side",
            field=f1,
            rule="relative-price",
        )
    if ordertype is OrderType.TRAILING_STOP_LIMIT and not (
        isinstance(price2, RelativePrice) and price2.prefix in ("+", "-")
    ):
        raise ValidationError(
            f"trailing-stop-limit orders need {f2} as an offset from the trigger with '+' or '-' "
            "(e.g. '+0' or '-0.5%')",
            field=f2,
            rule="relative-price",
        )


# --- pair rules ---------------------------------------------------------------------------------


def _digits_exponent(value: Decimal) -> tuple[int, int]:
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    number = int("".join(map(str, digits)))
    return (-number if sign else number), exponent


def _places(value: Decimal) -> int:
    """Decimals that carry information (``1.2500`` has 2), computed without a context."""
    number, exponent = _digits_exponent(value)
    if number == 0:
        return 0
    while exponent < 0 and number % 10 == 0:
        number, exponent = number // 10, exponent + 1
    return max(0, -exponent)


def _is_multiple(value: Decimal, step: Decimal) -> bool:
    # Integer arithmetic: Decimal's % would need a context precision large enough.
    v, ve = _digits_exponent(value)
    s, se = _digits_exponent(step)
    e = min(ve, se)
    # int(): mypy types 10**n as Any since a negative n would give a float; n >= 0 here.
    return (v * int(10 ** (ve - e))) % (s * int(10 ** (se - e))) == 0


def _exact_mul(a: Decimal, b: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = len(a.as_tuple().digits) + len(b.as_tuple().digits) + 2
        return a * b


def _round_to_step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    v, ve = _digits_exponent(value)
    s, se = _digits_exponent(step)
    with localcontext() as ctx:
        # Enough digits that the one rounding below is the only one.
        ctx.prec = len(str(abs(v))) + len(str(abs(s))) + abs(ve - se) + 10
        steps = (value / step).to_integral_value(rounding=rounding)
        return (steps * step).quantize(step)


def _check_places(value: Decimal, field: str, allowed: int, rule: str, pair: AssetPair) -> None:
    places = _places(value)
    if places > allowed:
        raise ValidationError(
            f"{field} {fmt(value)} has {places} decimals; {pair.altname} allows {allowed} ({rule})",
            field=field,
            rule=rule,
        )


def check_against_pair(req: OrderRequest, pair: AssetPair) -> None:
    """Raise ``ValidationError`` naming the first of ``pair``'s rules that ``req`` breaks.

    Checked: the pair's trading status (``cancel_only``, ``post_only``, ``limit_only``,
    ``reduce_only``); each absolute price against ``pair_decimals`` and ``tick_size``; the
    volume against ``lot_decimals`` and ``ordermin`` (for ``viqc`` the volume is in the quote
    currency: ``cost_decimals`` and ``costmin``); and price x volume against ``costmin`` when
    the execution price is known (limit, iceberg, and the limit of stop/take-profit-limit).
    The caller passes the AssetPairs entry for ``req.pair``; keep it fresh.
    """
    _check_status(req, pair)
    prices = {
        "price": req.price,
        "price2": req.price2,
        "close_price": req.close_price,
        "close_price2": req.close_price2,
    }
    for field, value in prices.items():
        if not isinstance(value, Decimal):
            continue
        _check_places(value, field, pair.pair_decimals, "pair_decimals", pair)
        if (
            pair.tick_size is not None
            and pair.tick_size > 0
            and not _is_multiple(value, pair.tick_size)
        ):
            raise ValidationError(
                f"{field} {fmt(value)} is not a multiple of {pair.altname}'s tick_size "
                f"{fmt(pair.tick_size)}",
                field=field,
                rule="tick_size",
            )
    if OFlag.VIQC in req.oflags:
        if pair.cost_decimals is not None:
            _check_places(req.volume, "volume", pair.cost_decimals, "cost_decimals", pair)
        _check_costmin(req.volume, pair)
        return
    _check_places(req.volume, "volume", pair.lot_decimals, "lot_decimals", pair)
    if req.displayvol is not None:
        _check_places(req.displayvol, "displayvol", pair.lot_decimals, "lot_decimals", pair)
    if req.volume == 0:
        return  # closing a margin position: Kraken fills the requisite quantity
    if pair.ordermin is not None and req.volume < pair.ordermin:
        raise ValidationError(
            f"volume {fmt(req.volume)} is below {pair.altname}'s ordermin {fmt(pair.ordermin)}",
            field="volume",
            rule="ordermin",
        )
    limit = _execution_price(req)
    if limit is not None:
        _check_costmin(_exact_mul(limit, req.volume), pair)


def _execution_price(req: OrderRequest) -> Decimal | None:
    if req.ordertype in (OrderType.LIMIT, OrderType.ICEBERG) and isinstance(req.price, Decimal):
        return req.price
    if req.ordertype in (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT) and isinstance(
        req.price2, Decimal
    ):
        return req.price2
    return None


def _check_costmin(cost: Decimal, pair: AssetPair) -> None:
    if pair.costmin is not None and cost < pair.costmin:
        raise ValidationError(
            f"order cost {fmt(cost)} is below {pair.altname}'s costmin {fmt(pair.costmin)} "
            f"{pair.quote}",
            field="volume",
            rule="costmin",
        )


def _check_status(req: OrderRequest, pair: AssetPair) -> None:
    status = pair.status
    problem = None
    if status == "cancel_only":
        problem = "accepts no new orders"
    elif status == "post_only" and not (
        req.ordertype is OrderType.LIMIT and OFlag.POST in req.oflags
    ):
        problem = "accepts only post-only limit orders"
    elif status == "limit_only" and req.ordertype is not OrderType.LIMIT:
        problem = "accepts only limit orders"
    elif status == "reduce_only" and not req.reduce_only:
        problem = "accepts only reduce-only orders"
    if problem is not None:
        raise ValidationError(
            f"{pair.altname} is {status}: it {problem}", field="pair", rule="pair-status"
        )


def quantize_price(pair: AssetPair, price: Decimal, *, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """``price`` rounded to the pair's tick (``tick_size``, else ``pair_decimals``)."""
    step = pair.tick_size if pair.tick_size else Decimal(1).scaleb(-pair.pair_decimals)
    return _round_to_step(price, step, rounding)


def quantize_volume(pair: AssetPair, volume: Decimal, *, rounding: str = ROUND_DOWN) -> Decimal:
    """``volume`` rounded to ``lot_decimals``; down by default, so it never exceeds a balance."""
    return _round_to_step(volume, Decimal(1).scaleb(-pair.lot_decimals), rounding)


# --- batches ------------------------------------------------------------------------------------


def batch_params(
    orders: Sequence[OrderRequest],
    *,
    deadline: datetime | None = None,
    validate: bool = False,
    now: float | datetime | None = None,
) -> dict[str, object]:
    """AddOrderBatch's JSON body (without ``nonce``): 2 to 15 orders for one pair.

    ``deadline`` and ``validate`` apply to the whole batch, so the orders must not carry
    their own.
    """
    if not BATCH_MIN <= len(orders) <= BATCH_MAX:
        raise ValidationError(
            f"AddOrderBatch takes {BATCH_MIN} to {BATCH_MAX} orders, got {len(orders)}",
            field="orders",
            rule="batch-size",
        )
    pair = orders[0].pair
    if any(o.pair.upper() != pair.upper() for o in orders):
        raise ValidationError(
            "all orders of a batch must be for one pair", field="pair", rule="batch-pair"
        )
    if any(o.deadline is not None or o.validate for o in orders):
        raise ValidationError(
            "deadline and validate apply to the whole batch: pass them to batch_params",
            field="deadline",
            rule="batch-level",
        )
    ids = [o.cl_ord_id for o in orders if o.cl_ord_id is not None]
    if len(ids) != len(set(ids)):
        raise ValidationError(
            "cl_ord_id values must be unique within a batch", field="cl_ord_id", rule="duplicate"
        )
    classes = {o.asset_class for o in orders}
    if len(classes) > 1:
        raise ValidationError(
            "all orders of a batch must have one asset_class (they are for one pair)",
            field="asset_class",
            rule="batch-pair",
        )
    body: dict[str, object] = {"pair": pair, "orders": [o.to_batch_item() for o in orders]}
    (asset_class,) = classes
    if asset_class is not None:
        # Beside `pair`, which it qualifies.
        body["asset_class"] = asset_class
    if deadline is not None:
        check_deadline(deadline, time.time() if now is None else now)
        body["deadline"] = format_deadline(deadline)
    if validate:
        body["validate"] = True
    return body

"""Typed, frozen views of Kraken's answers, parsed from JSON without losing a digit.

Every model has a ``from_api`` named constructor taking the ``result`` member of Kraken's
envelope (already JSON-decoded, with ``parse_float=Decimal`` or without). Money is
:class:`~decimal.Decimal`, parsed from Kraken's strings and never through ``float``; times are
UTC unix seconds (``float``, or ``int`` where Kraken sends whole seconds). A value that does not
have the documented shape raises :class:`~oms.errors.ResponseShapeError`, except where Kraken is
known to add values over time (funding statuses, order types in old orders): those are kept as
raw strings beside an "unknown" marker, so nothing is flattened and nothing crashes.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, TypeVar

import attrs

from oms._decimal import fmt, to_decimal
from oms.errors import ResponseShapeError, ValidationError

__all__ = [
    "AddOrderResult",
    "AmendResult",
    "Asset",
    "AssetPair",
    "Balance",
    "BatchOrderItem",
    "BatchOrderResult",
    "BookLevel",
    "CancelResult",
    "DeadMansSwitch",
    "DepositMethod",
    "FeeTier",
    "FundingPage",
    "FundingStatus",
    "FundingTransaction",
    "OFlag",
    "OHLCBar",
    "OHLCPage",
    "Order",
    "OrderBook",
    "OrderDescr",
    "OrderStatus",
    "OrderType",
    "OrdersPage",
    "Price",
    "PublicTrade",
    "RelativePrice",
    "ServerTime",
    "Side",
    "StatusProp",
    "StpType",
    "SystemState",
    "SystemStatus",
    "Ticker",
    "TimeInForce",
    "TradesPage",
    "Trigger",
    "WithdrawInfo",
    "parse_price",
]

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


# --- orders ---------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class OrderDescr:
    """An order's ``descr``. ``ordertype`` is ``None`` for types this library does not know
    (e.g. legacy types in old closed orders); ``ordertype_raw`` always keeps Kraken's text."""

    pair: str
    side: Side = attrs.field(converter=Side)
    ordertype: OrderType | None
    ordertype_raw: str
    price: Price
    price2: Price
    leverage: str
    order: str
    close: str | None = None

    @classmethod
    def from_api(cls, data: object) -> OrderDescr:
        d = _obj(data, "descr")
        raw_type = _str(_req(d, "ordertype", "descr"), "descr.ordertype")
        try:
            ordertype: OrderType | None = OrderType(raw_type)
        except ValueError:
            ordertype = None
        return cls(
            pair=_str(_req(d, "pair", "descr"), "descr.pair"),
            side=_enum(Side, _req(d, "type", "descr"), "descr.type"),
            ordertype=ordertype,
            ordertype_raw=raw_type,
            price=_api_price(d.get("price", "0"), "descr.price"),
            price2=_api_price(d.get("price2", "0"), "descr.price2"),
            leverage=_str(d.get("leverage", "none"), "descr.leverage"),
            order=_str(d.get("order", ""), "descr.order"),
            close=_opt_str(d.get("close"), "descr.close") or None,
        )


@attrs.frozen(kw_only=True)
class Order:
    """One order-info object (OpenOrders / ClosedOrders / QueryOrders), keyed by ``txid``.

    ``userref`` is ``None`` when Kraken reports ``0`` or ``null`` (both mean "unset");
    ``starttm``/``expiretm`` are ``None`` for Kraken's ``0`` ("now" / "no expiry").
    """

    txid: str
    status: OrderStatus = attrs.field(converter=OrderStatus)
    descr: OrderDescr
    vol: Decimal = attrs.field(converter=_money)
    vol_exec: Decimal = attrs.field(converter=_money)
    cost: Decimal = attrs.field(converter=_money)
    fee: Decimal = attrs.field(converter=_money)
    #: Average fill price; zero while nothing is filled.
    price: Decimal = attrs.field(converter=_money)
    opentm: float = attrs.field(converter=_time)
    stopprice: Decimal | None = attrs.field(default=None, converter=_opt_money)
    limitprice: Decimal | None = attrs.field(default=None, converter=_opt_money)
    refid: str | None = None
    userref: int | None = None
    cl_ord_id: str | None = None
    starttm: float | None = attrs.field(default=None, converter=_opt_time)
    expiretm: float | None = attrs.field(default=None, converter=_opt_time)
    closetm: float | None = attrs.field(default=None, converter=_opt_time)
    reason: str | None = None
    trigger: Trigger | None = None
    margin: bool | None = None
    misc: tuple[str, ...] = ()
    oflags: tuple[str, ...] = ()
    sender_sub_id: str | None = None
    trades: tuple[str, ...] | None = None

    @classmethod
    def from_api(cls, txid: str, data: object) -> Order:
        d = _obj(data, f"order {txid}")
        lbl = f"order {txid}"

        def req(key: str) -> Any:
            return _req(d, key, lbl)

        userref = _opt_int(d.get("userref"), f"{lbl}.userref")
        trades = d.get("trades")
        trigger = d.get("trigger")
        margin = d.get("margin")
        return cls(
            txid=txid,
            status=_enum(OrderStatus, req("status"), f"{lbl}.status"),
            descr=OrderDescr.from_api(req("descr")),
            vol=_dec(req("vol"), f"{lbl}.vol"),
            vol_exec=_dec(req("vol_exec"), f"{lbl}.vol_exec"),
            cost=_dec(req("cost"), f"{lbl}.cost"),
            fee=_dec(req("fee"), f"{lbl}.fee"),
            price=_dec(req("price"), f"{lbl}.price"),
            opentm=_secs(req("opentm"), f"{lbl}.opentm"),
            stopprice=_opt_dec(d.get("stopprice"), f"{lbl}.stopprice"),
            limitprice=_opt_dec(d.get("limitprice"), f"{lbl}.limitprice"),
            refid=_opt_str(d.get("refid"), f"{lbl}.refid"),
            userref=userref or None,
            cl_ord_id=_opt_str(d.get("cl_ord_id"), f"{lbl}.cl_ord_id") or None,
            starttm=_zero_none(_secs(d.get("starttm", 0), f"{lbl}.starttm")),
            expiretm=_zero_none(_secs(d.get("expiretm", 0), f"{lbl}.expiretm")),
            closetm=_zero_none(_secs(d.get("closetm") or 0, f"{lbl}.closetm")),
            reason=_opt_str(d.get("reason"), f"{lbl}.reason"),
            trigger=None if trigger is None else _enum(Trigger, trigger, f"{lbl}.trigger"),
            margin=None if margin is None else _bool(margin, f"{lbl}.margin"),
            misc=_csv(d.get("misc"), f"{lbl}.misc"),
            oflags=_csv(d.get("oflags"), f"{lbl}.oflags"),
            sender_sub_id=_opt_str(d.get("sender_sub_id"), f"{lbl}.sender_sub_id"),
            trades=None
            if trades is None
            else tuple(_str(t, f"{lbl}.trades") for t in _list(trades, f"{lbl}.trades")),
        )

    @property
    def side(self) -> Side:
        return self.descr.side

    @property
    def pair(self) -> str:
        """The pair's altname, as Kraken writes it in ``descr``."""
        return self.descr.pair

    @property
    def remaining(self) -> Decimal:
        return self.vol - self.vol_exec

    @property
    def is_open(self) -> bool:
        """Still able to trade (``pending`` or ``open``, including partially filled)."""
        return self.status in (OrderStatus.PENDING, OrderStatus.OPEN)

    @property
    def is_partially_filled(self) -> bool:
        return 0 < self.vol_exec < self.vol


@attrs.frozen
class OrdersPage:
    """OpenOrders (``{"open": …}``), ClosedOrders (``{"closed": …, "count": n}``) or
    QueryOrders (``{txid: …}``) as a tuple of :class:`Order`, in Kraken's order.

    ``count`` is ClosedOrders' total of matching orders (``None`` elsewhere or when Kraken
    was asked ``without_count``).
    """

    orders: tuple[Order, ...]
    count: int | None = None

    @classmethod
    def from_api(cls, result: object) -> OrdersPage:
        r = _obj(result, "orders")
        if "open" in r or "closed" in r:
            key = "open" if "open" in r else "closed"
            body = _obj(r[key], key)
            count = _opt_int(r.get("count"), "count")
        else:
            body, count = r, None
        return cls(tuple(Order.from_api(txid, data) for txid, data in body.items()), count)

    def __iter__(self) -> Iterator[Order]:
        return iter(self.orders)

    def __len__(self) -> int:
        return len(self.orders)

    def by_txid(self) -> dict[str, Order]:
        return {o.txid: o for o in self.orders}


@attrs.frozen(kw_only=True)
class AddOrderResult:
    """AddOrder's answer. ``validated`` answers never carry a txid; live ones always do."""

    descr_order: str
    descr_close: str | None = None
    txids: tuple[str, ...] = ()
    validated: bool = False

    @classmethod
    def from_api(cls, result: object, *, validate: bool) -> AddOrderResult:
        """Parse, checking the answer matches the request: a validate-only request that came
        back with a txid (an order was placed!) or a live one without a txid raises
        :class:`~oms.errors.ResponseShapeError`."""
        r = _obj(result, "AddOrder")
        descr = _obj(_req(r, "descr", "AddOrder"), "AddOrder.descr")
        txid = r.get("txid")
        if validate:
            if txid:
                raise ResponseShapeError(
                    f"AddOrder with validate=true answered with txid {txid!r}: an order may "
                    "have been placed"
                )
            txids: tuple[str, ...] = ()
        else:
            items = txid if isinstance(txid, list) else None
            if not items or not all(isinstance(t, str) and t for t in items):
                raise ResponseShapeError(
                    f"AddOrder answered without a txid list (txid={txid!r}); "
                    "whether the order exists is unknown"
                )
            txids = tuple(items)
        return cls(
            descr_order=_str(_req(descr, "order", "AddOrder.descr"), "AddOrder.descr.order"),
            descr_close=_opt_str(descr.get("close"), "AddOrder.descr.close") or None,
            txids=txids,
            validated=validate,
        )

    @property
    def txid(self) -> str | None:
        return self.txids[0] if self.txids else None


@attrs.frozen(kw_only=True)
class BatchOrderItem:
    """One entry of AddOrderBatch's ``orders`` (txid is a plain string there)."""

    txid: str | None = None
    descr_order: str | None = None
    descr_close: str | None = None
    error: str | None = None


@attrs.frozen(kw_only=True)
class BatchOrderResult:
    """AddOrderBatch's answer, items in request order."""

    items: tuple[BatchOrderItem, ...]
    validated: bool = False

    @classmethod
    def from_api(
        cls, result: object, *, validate: bool, expected: int | None = None
    ) -> BatchOrderResult:
        """Parse; every live item must carry a txid or an error, no validate item a txid,
        and there must be ``expected`` items when given."""
        r = _obj(result, "AddOrderBatch")
        items = []
        for i, raw in enumerate(_list(_req(r, "orders", "AddOrderBatch"), "orders")):
            lbl = f"AddOrderBatch.orders[{i}]"
            o = _obj(raw, lbl)
            descr = _obj(o.get("descr") or {}, f"{lbl}.descr")
            error = o.get("error")
            item = BatchOrderItem(
                txid=_opt_str(o.get("txid"), f"{lbl}.txid") or None,
                descr_order=_opt_str(descr.get("order"), f"{lbl}.descr.order"),
                descr_close=_opt_str(descr.get("close"), f"{lbl}.descr.close") or None,
                # Kraken has been seen sending the error as a string and as a list.
                error=", ".join(error) if isinstance(error, list) else _opt_str(error, lbl) or None,
            )
            if validate and item.txid is not None:
                raise ResponseShapeError(f"{lbl}: validate-only batch answered with a txid")
            if not validate and item.txid is None and item.error is None:
                raise ResponseShapeError(f"{lbl}: neither txid nor error")
            items.append(item)
        if expected is not None and len(items) != expected:
            raise ResponseShapeError(f"AddOrderBatch: {len(items)} results for {expected} orders")
        return cls(items=tuple(items), validated=validate)

    @property
    def txids(self) -> tuple[str | None, ...]:
        return tuple(item.txid for item in self.items)


@attrs.frozen
class CancelResult:
    """CancelOrder / CancelAll / CancelOrderBatch: how many orders were cancelled.

    A userref cancels every open order carrying it, so ``count`` may exceed 1.
    """

    count: int
    pending: bool = False

    @classmethod
    def from_api(cls, result: object) -> CancelResult:
        r = _obj(result, "cancel")
        count = _int(_req(r, "count", "cancel"), "cancel.count")
        if count < 0:
            raise ResponseShapeError(f"cancel.count is negative: {count}")
        pending = r.get("pending")
        return cls(count, False if pending is None else _bool(pending, "cancel.pending"))


@attrs.frozen
class AmendResult:
    """AmendOrder answers only an amend id, not the order's new state."""

    amend_id: str

    @classmethod
    def from_api(cls, result: object) -> AmendResult:
        r = _obj(result, "AmendOrder")
        return cls(_str(_req(r, "amend_id", "AmendOrder"), "AmendOrder.amend_id"))


@attrs.frozen
class DeadMansSwitch:
    """CancelAllOrdersAfter's answer; ``trigger_time`` is ``None`` when the timer is off."""

    current_time: datetime
    trigger_time: datetime | None

    @classmethod
    def from_api(cls, result: object) -> DeadMansSwitch:
        r = _obj(result, "CancelAllOrdersAfter")
        trigger = r.get("triggerTime")
        return cls(
            _rfc3339(_req(r, "currentTime", "CancelAllOrdersAfter"), "currentTime"),
            None if trigger in (None, "", "0", 0) else _rfc3339(trigger, "triggerTime"),
        )


# --- public ---------------------------------------------------------------------------------


@attrs.frozen
class ServerTime:
    unixtime: int
    rfc1123: str

    @classmethod
    def from_api(cls, result: object) -> ServerTime:
        r = _obj(result, "Time")
        return cls(
            _int(_req(r, "unixtime", "Time"), "Time.unixtime"),
            _str(_req(r, "rfc1123", "Time"), "Time.rfc1123"),
        )


@attrs.frozen
class SystemStatus:
    status: SystemState
    timestamp: datetime

    @classmethod
    def from_api(cls, result: object) -> SystemStatus:
        r = _obj(result, "SystemStatus")
        return cls(
            _enum(SystemState, _req(r, "status", "SystemStatus"), "SystemStatus.status"),
            _rfc3339(_req(r, "timestamp", "SystemStatus"), "SystemStatus.timestamp"),
        )


@attrs.frozen(kw_only=True)
class Asset:
    """One entry of Assets. ``status`` is kept as Kraken's text (e.g. ``enabled``)."""

    asset_id: str
    altname: str
    aclass: str
    decimals: int
    display_decimals: int
    collateral_value: Decimal | None = None
    status: str | None = None

    @classmethod
    def from_api(cls, asset_id: str, data: object) -> Asset:
        d = _obj(data, f"asset {asset_id}")
        lbl = f"asset {asset_id}"
        collateral = d.get("collateral_value")
        return cls(
            asset_id=asset_id,
            altname=_str(_req(d, "altname", lbl), f"{lbl}.altname"),
            aclass=_str(d.get("aclass", "currency"), f"{lbl}.aclass"),
            decimals=_int(_req(d, "decimals", lbl), f"{lbl}.decimals"),
            display_decimals=_int(d.get("display_decimals", 0), f"{lbl}.display_decimals"),
            collateral_value=None
            if collateral is None
            else _ratio(collateral, f"{lbl}.collateral_value"),
            status=_opt_str(d.get("status"), f"{lbl}.status"),
        )

    @classmethod
    def map_from_api(cls, result: object) -> dict[str, Asset]:
        return {k: cls.from_api(k, v) for k, v in _obj(result, "Assets").items()}


@attrs.frozen
class FeeTier:
    """From 30-day ``volume`` up, the fee is ``percent`` % of the cost."""

    volume: Decimal
    percent: Decimal


def _fee_tiers(value: object, label: str) -> tuple[FeeTier, ...]:
    tiers = []
    for row in _list(value if value is not None else [], label):
        volume, percent = _list(row, label)[:2]
        tiers.append(FeeTier(_ratio(volume, label), _ratio(percent, label)))
    return tuple(tiers)


@attrs.frozen(kw_only=True)
class AssetPair:
    """One entry of AssetPairs with its precision rules.

    ``pair_decimals`` limits price decimals, ``lot_decimals`` volume decimals,
    ``cost_decimals`` cost decimals; ``tick_size`` (price step), ``ordermin`` (minimum
    volume, base) and ``costmin`` (minimum price x volume, quote) are ``None`` when Kraken
    does not publish them. :func:`oms.orders.check_against_pair` applies them to a request.
    """

    pair_id: str
    altname: str
    wsname: str | None = None
    aclass_base: str = "currency"
    base: str
    aclass_quote: str = "currency"
    quote: str
    pair_decimals: int
    lot_decimals: int
    cost_decimals: int | None = None
    lot_multiplier: int = 1
    ordermin: Decimal | None = attrs.field(default=None, converter=_opt_money)
    costmin: Decimal | None = attrs.field(default=None, converter=_opt_money)
    tick_size: Decimal | None = attrs.field(default=None, converter=_opt_money)
    status: str | None = None
    fees: tuple[FeeTier, ...] = ()
    fees_maker: tuple[FeeTier, ...] = ()
    fee_volume_currency: str | None = None
    leverage_buy: tuple[int, ...] = ()
    leverage_sell: tuple[int, ...] = ()
    margin_call: int | None = None
    margin_stop: int | None = None
    long_position_limit: int | None = None
    short_position_limit: int | None = None

    @classmethod
    def from_api(cls, pair_id: str, data: object) -> AssetPair:
        d = _obj(data, f"pair {pair_id}")
        lbl = f"pair {pair_id}"

        def ints(key: str) -> tuple[int, ...]:
            return tuple(_int(v, f"{lbl}.{key}") for v in _list(d.get(key, []), f"{lbl}.{key}"))

        return cls(
            pair_id=pair_id,
            altname=_str(_req(d, "altname", lbl), f"{lbl}.altname"),
            wsname=_opt_str(d.get("wsname"), f"{lbl}.wsname"),
            aclass_base=_str(d.get("aclass_base", "currency"), f"{lbl}.aclass_base"),
            base=_str(_req(d, "base", lbl), f"{lbl}.base"),
            aclass_quote=_str(d.get("aclass_quote", "currency"), f"{lbl}.aclass_quote"),
            quote=_str(_req(d, "quote", lbl), f"{lbl}.quote"),
            pair_decimals=_int(_req(d, "pair_decimals", lbl), f"{lbl}.pair_decimals"),
            lot_decimals=_int(_req(d, "lot_decimals", lbl), f"{lbl}.lot_decimals"),
            cost_decimals=_opt_int(d.get("cost_decimals"), f"{lbl}.cost_decimals"),
            lot_multiplier=_int(d.get("lot_multiplier", 1), f"{lbl}.lot_multiplier"),
            ordermin=_opt_dec(d.get("ordermin"), f"{lbl}.ordermin"),
            costmin=_opt_dec(d.get("costmin"), f"{lbl}.costmin"),
            tick_size=_opt_dec(d.get("tick_size"), f"{lbl}.tick_size"),
            status=_opt_str(d.get("status"), f"{lbl}.status"),
            fees=_fee_tiers(d.get("fees"), f"{lbl}.fees"),
            fees_maker=_fee_tiers(d.get("fees_maker"), f"{lbl}.fees_maker"),
            fee_volume_currency=_opt_str(d.get("fee_volume_currency"), f"{lbl}.fvc"),
            leverage_buy=ints("leverage_buy"),
            leverage_sell=ints("leverage_sell"),
            margin_call=_opt_int(d.get("margin_call"), f"{lbl}.margin_call"),
            margin_stop=_opt_int(d.get("margin_stop"), f"{lbl}.margin_stop"),
            long_position_limit=_opt_int(d.get("long_position_limit"), f"{lbl}.long_limit"),
            short_position_limit=_opt_int(d.get("short_position_limit"), f"{lbl}.short_limit"),
        )

    @classmethod
    def map_from_api(cls, result: object) -> dict[str, AssetPair]:
        """AssetPairs' whole result, keyed by pair id."""
        return {k: cls.from_api(k, v) for k, v in _obj(result, "AssetPairs").items()}

    def matches(self, name: str) -> bool:
        """Whether ``name`` is this pair's id, altname or wsname (case-insensitive)."""
        wanted = name.strip().upper()
        return wanted in {n.upper() for n in (self.pair_id, self.altname, self.wsname) if n}


@attrs.frozen(kw_only=True)
class Ticker:
    """One pair of Ticker. ``*_today`` counts from 00:00 UTC; ``*_24h`` is rolling."""

    pair: str
    ask: Decimal
    ask_volume: Decimal
    bid: Decimal
    bid_volume: Decimal
    last: Decimal
    last_volume: Decimal
    volume_today: Decimal
    volume_24h: Decimal
    vwap_today: Decimal
    vwap_24h: Decimal
    trades_today: int
    trades_24h: int
    low_today: Decimal
    low_24h: Decimal
    high_today: Decimal
    high_24h: Decimal
    open: Decimal

    @classmethod
    def from_api(cls, pair: str, data: object) -> Ticker:
        d = _obj(data, f"ticker {pair}")
        lbl = f"ticker {pair}"

        def arr(key: str) -> list[Any]:
            return _list(_req(d, key, lbl), f"{lbl}.{key}")

        def dec(key: str, i: int) -> Decimal:
            return _dec(arr(key)[i], f"{lbl}.{key}[{i}]")

        return cls(
            pair=pair,
            ask=dec("a", 0),
            ask_volume=dec("a", 2),
            bid=dec("b", 0),
            bid_volume=dec("b", 2),
            last=dec("c", 0),
            last_volume=dec("c", 1),
            volume_today=dec("v", 0),
            volume_24h=dec("v", 1),
            vwap_today=dec("p", 0),
            vwap_24h=dec("p", 1),
            trades_today=_int(arr("t")[0], f"{lbl}.t[0]"),
            trades_24h=_int(arr("t")[1], f"{lbl}.t[1]"),
            low_today=dec("l", 0),
            low_24h=dec("l", 1),
            high_today=dec("h", 0),
            high_24h=dec("h", 1),
            open=_dec(_req(d, "o", lbl), f"{lbl}.o"),
        )

    @classmethod
    def map_from_api(cls, result: object) -> dict[str, Ticker]:
        return {k: cls.from_api(k, v) for k, v in _obj(result, "Ticker").items()}


@attrs.frozen
class BookLevel:
    price: Decimal = attrs.field(converter=_money)
    volume: Decimal = attrs.field(converter=_money)
    timestamp: float = attrs.field(converter=_time)


@attrs.frozen
class OrderBook:
    """Depth for one pair: asks ascending, bids descending, as Kraken sends them."""

    pair: str
    asks: tuple[BookLevel, ...]
    bids: tuple[BookLevel, ...]

    @classmethod
    def from_api(cls, result: object) -> OrderBook:
        pair, body = _single_pair(_obj(result, "Depth"), "Depth")
        b = _obj(body, f"Depth {pair}")

        def levels(side: str) -> tuple[BookLevel, ...]:
            out = []
            for row in _list(_req(b, side, f"Depth {pair}"), f"Depth {pair}.{side}"):
                cells = _list(row, f"Depth {pair}.{side}")
                lbl = f"Depth {pair}.{side}"
                out.append(
                    BookLevel(_dec(cells[0], lbl), _dec(cells[1], lbl), _secs(cells[2], lbl))
                )
            return tuple(out)

        return cls(pair, levels("asks"), levels("bids"))


_TRADE_SIDES = {"b": Side.BUY, "s": Side.SELL}
_TRADE_TYPES = {"m": OrderType.MARKET, "l": OrderType.LIMIT}
_TRADE_SIDE_CODES = {v: k for k, v in _TRADE_SIDES.items()}
_TRADE_TYPE_CODES = {v: k for k, v in _TRADE_TYPES.items()}


def _opt_side(value: Side | str | None) -> Side | None:
    return None if value is None else Side(value)


def _opt_ordertype(value: OrderType | str | None) -> OrderType | None:
    return None if value is None else OrderType(value)


@attrs.frozen(kw_only=True)
class PublicTrade:
    """One row of the public Trades tape. ``time`` is only for display and bucketing;
    paging uses :attr:`TradesPage.last`, which is exact.

    ``side``/``ordertype`` are ``None`` for a value this library does not know (Kraken's
    tape has ``b``/``s`` and ``m``/``l`` today); ``side_raw``/``ordertype_raw`` keep Kraken's
    text either way, so one odd row never fails a whole page.
    """

    price: Decimal = attrs.field(converter=_money)
    volume: Decimal = attrs.field(converter=_money)
    time: float = attrs.field(converter=_time)
    side: Side | None = attrs.field(converter=_opt_side)
    ordertype: OrderType | None = attrs.field(converter=_opt_ordertype)
    misc: str = ""
    trade_id: int | None = None
    side_raw: str = attrs.field()
    ordertype_raw: str = attrs.field()

    @side_raw.default
    def _side_raw(self) -> str:
        return "" if self.side is None else _TRADE_SIDE_CODES[self.side]

    @ordertype_raw.default
    def _ordertype_raw(self) -> str:
        if self.ordertype is None:
            return ""
        return _TRADE_TYPE_CODES.get(self.ordertype, self.ordertype.value)

    @classmethod
    def from_row(cls, row: object, *, label: str = "trade") -> PublicTrade:
        cells = _list(row, label)
        if len(cells) < 6:
            raise ResponseShapeError(f"{label}: expected at least 6 cells, got {len(cells)}")
        side_raw = _str(cells[3], f"{label}.side")
        type_raw = _str(cells[4], f"{label}.ordertype")
        return cls(
            price=_dec(cells[0], f"{label}.price"),
            volume=_dec(cells[1], f"{label}.volume"),
            time=_secs(cells[2], f"{label}.time"),
            side=_TRADE_SIDES.get(side_raw),
            ordertype=_TRADE_TYPES.get(type_raw),
            misc=_str(cells[5], f"{label}.misc"),
            trade_id=_int(cells[6], f"{label}.trade_id") if len(cells) > 6 else None,
            side_raw=side_raw,
            ordertype_raw=type_raw,
        )


@attrs.frozen
class TradesPage:
    """A page of public trades. ``last`` is the nanosecond cursor for the next ``since``,
    parsed from Kraken's string exactly (a float would round away the last digits), or
    ``None`` when Kraken sends an empty ``last``: the end of pagination."""

    pair: str
    trades: tuple[PublicTrade, ...]
    last: int | None

    @classmethod
    def from_api(cls, result: object) -> TradesPage:
        r = _obj(result, "Trades")
        pair, rows = _single_pair(r, "Trades")
        raw_last = _req(r, "last", "Trades")
        # Kraken's official SDK documents an empty "last" as end-of-pagination
        # (krakenfx/kraken-api-sdk rust/docs/guides/wire-quirks.md, "`last` cursors"); the
        # OpenAPI spec's example shows a digit string. Both are accepted.
        # _int refuses floats: a float cursor would already have lost its last digits.
        last = None if raw_last == "" else _int(raw_last, "Trades.last")
        trades = tuple(
            PublicTrade.from_row(row, label=f"Trades[{i}]")
            for i, row in enumerate(_list(rows, "Trades"))
        )
        return cls(pair, trades, last)


@attrs.frozen(kw_only=True)
class OHLCBar:
    """One OHLC row; ``time`` is the bar's start (unix seconds)."""

    time: int
    open: Decimal = attrs.field(converter=_money)
    high: Decimal = attrs.field(converter=_money)
    low: Decimal = attrs.field(converter=_money)
    close: Decimal = attrs.field(converter=_money)
    vwap: Decimal = attrs.field(converter=_money)
    volume: Decimal = attrs.field(converter=_money)
    count: int

    @classmethod
    def from_row(cls, row: object, *, label: str = "ohlc") -> OHLCBar:
        c = _list(row, label)
        if len(c) < 8:
            raise ResponseShapeError(f"{label}: expected 8 cells, got {len(c)}")
        return cls(
            time=_int(c[0], f"{label}.time"),
            open=_dec(c[1], f"{label}.open"),
            high=_dec(c[2], f"{label}.high"),
            low=_dec(c[3], f"{label}.low"),
            close=_dec(c[4], f"{label}.close"),
            vwap=_dec(c[5], f"{label}.vwap"),
            volume=_dec(c[6], f"{label}.volume"),
            count=_int(c[7], f"{label}.count"),
        )


@attrs.frozen
class OHLCPage:
    """At most 720 most-recent bars; the last one is the current, uncommitted bar."""

    pair: str
    bars: tuple[OHLCBar, ...]
    last: int

    @classmethod
    def from_api(cls, result: object) -> OHLCPage:
        r = _obj(result, "OHLC")
        pair, rows = _single_pair(r, "OHLC")
        bars = tuple(
            OHLCBar.from_row(row, label=f"OHLC[{i}]") for i, row in enumerate(_list(rows, "OHLC"))
        )
        return cls(pair, bars, _int(_req(r, "last", "OHLC"), "OHLC.last"))


# --- funding and balances -------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class FundingTransaction:
    """One DepositStatus / WithdrawStatus entry.

    ``status``/``status_prop`` are enums, ``UNKNOWN`` for values this library does not know;
    ``status_raw``/``status_prop_raw`` keep Kraken's exact text either way.
    """

    method: str
    aclass: str
    asset: str
    refid: str
    txid: str | None
    info: str | None
    amount: Decimal = attrs.field(converter=_money)
    fee: Decimal | None = attrs.field(default=None, converter=_opt_money)
    time: float = attrs.field(converter=_time)
    status: FundingStatus
    status_raw: str
    status_prop: StatusProp | None = None
    status_prop_raw: str | None = None
    network: str | None = None
    key: str | None = None
    originators: tuple[str, ...] | None = None

    @classmethod
    def from_api(cls, data: object) -> FundingTransaction:
        d = _obj(data, "funding")
        refid = _str(_req(d, "refid", "funding"), "funding.refid")
        lbl = f"funding {refid}"
        status_raw = _str(_req(d, "status", lbl), f"{lbl}.status")
        prop_raw = _opt_str(d.get("status-prop", d.get("status_prop")), f"{lbl}.status-prop")
        originators = d.get("originators")
        return cls(
            method=_str(_req(d, "method", lbl), f"{lbl}.method"),
            aclass=_str(d.get("aclass", "currency"), f"{lbl}.aclass"),
            asset=_str(_req(d, "asset", lbl), f"{lbl}.asset"),
            refid=refid,
            txid=_opt_str(d.get("txid"), f"{lbl}.txid") or None,
            info=_opt_str(d.get("info"), f"{lbl}.info"),
            amount=_dec(_req(d, "amount", lbl), f"{lbl}.amount"),
            fee=_opt_dec(d.get("fee"), f"{lbl}.fee"),
            time=_secs(_req(d, "time", lbl), f"{lbl}.time"),
            status=FundingStatus.parse(status_raw),
            status_raw=status_raw,
            status_prop=None if prop_raw is None else StatusProp.parse(prop_raw),
            status_prop_raw=prop_raw,
            network=_opt_str(d.get("network"), f"{lbl}.network"),
            key=_opt_str(d.get("key"), f"{lbl}.key"),
            originators=None
            if originators is None
            else tuple(_str(o, f"{lbl}.originators") for o in _list(originators, lbl)),
        )

    @property
    def is_final(self) -> bool:
        """Success or Failure: Kraken will not change this entry's status again."""
        return self.status in (FundingStatus.SUCCESS, FundingStatus.FAILURE)


# The paged DepositStatus key is only known from the docs' schema tree; accept the variants.
_FUNDING_LIST_KEYS = ("withdrawals", "deposit", "deposits")


@attrs.frozen
class FundingPage:
    """DepositStatus / WithdrawStatus: a bare array (unpaged), or an object with the list
    and ``next_cursor`` (paged). ``next_cursor`` is ``None`` on the last page."""

    items: tuple[FundingTransaction, ...]
    next_cursor: str | None = None

    @classmethod
    def from_api(cls, result: object) -> FundingPage:
        if isinstance(result, list):
            return cls(tuple(FundingTransaction.from_api(x) for x in result))
        r = _obj(result, "funding status")
        keys = [k for k in _FUNDING_LIST_KEYS if k in r]
        if len(keys) != 1:
            raise ResponseShapeError(f"funding status: expected one of {_FUNDING_LIST_KEYS}")
        cursor = r.get("next_cursor")
        return cls(
            tuple(FundingTransaction.from_api(x) for x in _list(r[keys[0]], keys[0])),
            # Kraken ends paging with a missing, null, empty or false cursor.
            cursor if isinstance(cursor, str) and cursor else None,
        )


@attrs.frozen(kw_only=True)
class DepositMethod:
    """``limit`` is ``None`` when Kraken says ``false`` (no limit)."""

    method: str
    limit: Decimal | None = attrs.field(default=None, converter=_opt_money)
    fee: Decimal | None = attrs.field(default=None, converter=_opt_money)
    address_setup_fee: Decimal | None = attrs.field(default=None, converter=_opt_money)
    gen_address: bool | None = None
    minimum: Decimal | None = attrs.field(default=None, converter=_opt_money)

    @classmethod
    def from_api(cls, data: object) -> DepositMethod:
        d = _obj(data, "deposit method")
        lbl = "deposit method"
        limit = d.get("limit")
        gen = d.get("gen-address")
        return cls(
            method=_str(_req(d, "method", lbl), f"{lbl}.method"),
            limit=None if limit is False else _opt_dec(limit, f"{lbl}.limit"),
            fee=_opt_dec(d.get("fee"), f"{lbl}.fee"),
            address_setup_fee=_opt_dec(d.get("address-setup-fee"), f"{lbl}.address-setup-fee"),
            gen_address=None if gen is None else _bool(gen, f"{lbl}.gen-address"),
            minimum=_opt_dec(d.get("minimum"), f"{lbl}.minimum"),
        )


@attrs.frozen(kw_only=True)
class WithdrawInfo:
    """``amount`` is what arrives (after ``fee``)."""

    method: str
    limit: Decimal = attrs.field(converter=_money)
    amount: Decimal = attrs.field(converter=_money)
    fee: Decimal = attrs.field(converter=_money)

    @classmethod
    def from_api(cls, result: object) -> WithdrawInfo:
        r = _obj(result, "WithdrawInfo")
        return cls(
            method=_str(_req(r, "method", "WithdrawInfo"), "WithdrawInfo.method"),
            limit=_dec(_req(r, "limit", "WithdrawInfo"), "WithdrawInfo.limit"),
            amount=_dec(_req(r, "amount", "WithdrawInfo"), "WithdrawInfo.amount"),
            fee=_dec(_req(r, "fee", "WithdrawInfo"), "WithdrawInfo.fee"),
        )


def _balances(value: Mapping[str, DecimalInput]) -> tuple[tuple[str, Decimal], ...]:
    return tuple(sorted((asset, to_decimal(v, field=asset)) for asset, v in value.items()))


@attrs.frozen
class Balance(Mapping[str, Decimal]):
    """Balance's answer: asset id → amount, read like a dict (``balance["ZUSD"]``)."""

    amounts: tuple[tuple[str, Decimal], ...] = attrs.field(converter=_balances)

    @classmethod
    def from_api(cls, result: object) -> Balance:
        r = _obj(result, "Balance")
        return cls({k: _dec(v, f"Balance.{k}") for k, v in r.items()})

    def __getitem__(self, asset: str) -> Decimal:
        for key, amount in self.amounts:
            if key == asset:
                return amount
        raise KeyError(asset)

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self.amounts)

    def __len__(self) -> int:
        return len(self.amounts)

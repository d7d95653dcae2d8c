"""Orders and the answers of the trading endpoints (see :mod:`oms.models`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from oms.errors import ResponseShapeError
from oms.models._fields import (
    OrderStatus,
    OrderType,
    Price,
    Side,
    Trigger,
    _api_price,
    _bool,
    _csv,
    _dec,
    _enum,
    _int,
    _list,
    _money,
    _obj,
    _opt_dec,
    _opt_int,
    _opt_money,
    _opt_str,
    _opt_time,
    _req,
    _rfc3339,
    _secs,
    _str,
    _time,
    _zero_none,
)

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


@attrs.frozen
class WebSocketToken:
    """GetWebSocketsToken's answer: the token that authenticates a WebSocket v2 subscription,
    and for how many seconds it can be used to make one (a subscription, once made, stays).

    The token is a credential: its repr and str show only that it is there."""

    token: str = attrs.field(repr=False)
    expires: int

    @classmethod
    def from_api(cls, result: object) -> WebSocketToken:
        r = _obj(result, "GetWebSocketsToken")
        token = _str(_req(r, "token", "GetWebSocketsToken"), "GetWebSocketsToken.token")
        if not token:
            raise ResponseShapeError("GetWebSocketsToken.token: empty")
        expires = _int(_req(r, "expires", "GetWebSocketsToken"), "GetWebSocketsToken.expires")
        return cls(token, expires)

    def __str__(self) -> str:
        return f"WebSocketToken(<{len(self.token)} characters>, expires={self.expires})"

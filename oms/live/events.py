"""What Kraken's WebSocket v2 ``executions`` channel says about one order, and how that moves
the cached order.

An :class:`ExecutionEvent` is one entry of an executions message, parsed without losing a
digit (the stream decodes JSON numbers as :class:`~decimal.Decimal`). Entries are sparse: an
update carries only what changed, so every field but ``txid`` and ``exec_type`` may be
``None``. :func:`merge` applies one to the cached :class:`~oms.models.Order` with the rules that
keep the cache equal to what REST would say, whatever order the stream and REST answers
arrive in:

- an event never moves an order backwards: not its status (pending, then open, then closed,
  canceled or expired), not its executed volume. ``cum_qty`` is cumulative, so a fill that a
  REST answer already counted is recognised and not counted twice;
- a trade's fee (``fees``, in the quote currency) adds to the order's fee only when the trade
  moves ``cum_qty`` on from exactly what is cached (:func:`counts_on`); otherwise the order
  is read through REST;
- what the entry leaves out stays as cached.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from oms.errors import ResponseShapeError
from oms.models import Order, OrderStatus
from oms.models._fields import _opt_str, _rfc3339

__all__ = ["REST_STATUS", "ExecutionEvent", "counts_on", "merge", "order_from_event"]

#: The REST status an order has while in each WebSocket ``order_status``.
REST_STATUS: Mapping[str, OrderStatus] = {
    "pending_new": OrderStatus.PENDING,
    "new": OrderStatus.OPEN,
    "partially_filled": OrderStatus.OPEN,
    "filled": OrderStatus.CLOSED,
    "canceled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
}

_RANK = {
    OrderStatus.PENDING: 0,
    OrderStatus.OPEN: 1,
    OrderStatus.CLOSED: 2,
    OrderStatus.CANCELED: 2,
    OrderStatus.EXPIRED: 2,
}

# The REST order types whose descr.price is the trigger, and descr.price2 the limit.
_TRIGGERED = {"stop-loss", "take-profit", "trailing-stop"}
_TRIGGERED_LIMIT = {"stop-loss-limit", "take-profit-limit", "trailing-stop-limit"}


def _dec(entry: Mapping[str, Any], key: str) -> Decimal | None:
    """Any finite JSON number, every digit kept (``oms.models``' parser bounds the digits
    of what may go to Kraken; an average price computed by Kraken may carry more)."""
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise ResponseShapeError(f"executions.{key}: expected a number, got {value!r}")
    try:
        number = Decimal(value)
    except ArithmeticError:
        raise ResponseShapeError(f"executions.{key}: not a number: {value!r}") from None
    if not number.is_finite():
        raise ResponseShapeError(f"executions.{key}: not a finite number: {value!r}")
    return number


def _text(entry: Mapping[str, Any], key: str) -> str | None:
    return _opt_str(entry.get(key), f"executions.{key}")


def _int(entry: Mapping[str, Any], key: str) -> int | None:
    """A JSON integer only: v2 sends userrefs and trade ids as numbers, never as text."""
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ResponseShapeError(f"executions.{key}: expected an integer, got {value!r}")
    return value


def _fees(entry: Mapping[str, Any]) -> tuple[tuple[str, Decimal], ...]:
    value = entry.get("fees")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ResponseShapeError(f"executions.fees: expected an array, got {value!r}")
    fees = []
    for item in value:
        if not isinstance(item, Mapping):
            raise ResponseShapeError(f"executions.fees: expected objects, got {item!r}")
        asset, qty = _text(item, "asset"), _dec(item, "qty")
        if asset is None or qty is None:
            raise ResponseShapeError(f"executions.fees: an entry without asset or qty: {item!r}")
        fees.append((asset, qty))
    return tuple(fees)


@attrs.frozen(kw_only=True)
class ExecutionEvent:
    """One entry of an ``executions`` message (see the module doc; Kraken's field names in
    the comments). ``snapshot`` says it came in a subscription's snapshot, ``sequence`` is the
    message's. ``status`` is the REST status the order now has, if the entry says."""

    txid: str  # order_id
    exec_type: str
    order_status: str | None = None
    userref: int | None = None  # order_userref
    cl_ord_id: str | None = None
    symbol: str | None = None
    side: str | None = None
    order_type: str | None = None
    order_qty: Decimal | None = None
    limit_price: Decimal | None = None
    trigger_price: Decimal | None = None  # triggers.price
    cum_qty: Decimal | None = None
    cum_cost: Decimal | None = None
    avg_price: Decimal | None = None
    last_qty: Decimal | None = None
    last_price: Decimal | None = None
    cost: Decimal | None = None
    fees: tuple[tuple[str, Decimal], ...] = ()
    fee_usd_equiv: Decimal | None = None
    exec_id: str | None = None
    trade_id: int | None = None
    liquidity_ind: str | None = None
    timestamp: float | None = None
    reason: str | None = None
    amended: bool | None = None
    post_only: bool | None = None
    fee_ccy_pref: str | None = None
    time_in_force: str | None = None
    snapshot: bool = False
    sequence: int | None = None

    @classmethod
    def from_api(
        cls, entry: object, *, snapshot: bool = False, sequence: int | None = None
    ) -> ExecutionEvent:
        if not isinstance(entry, Mapping):
            raise ResponseShapeError(f"executions: expected an object, got {entry!r}")
        txid, exec_type = _text(entry, "order_id"), _text(entry, "exec_type")
        if not txid or not exec_type:
            raise ResponseShapeError("executions: an entry without order_id or exec_type")
        triggers = entry.get("triggers")
        stamp = _text(entry, "timestamp")
        flags = {k: entry.get(k) for k in ("amended", "post_only")}
        for key, value in flags.items():
            if value is not None and not isinstance(value, bool):
                raise ResponseShapeError(f"executions.{key}: expected a boolean, got {value!r}")
        return cls(
            txid=txid,
            exec_type=exec_type,
            order_status=_text(entry, "order_status"),
            userref=_int(entry, "order_userref"),
            cl_ord_id=_text(entry, "cl_ord_id"),
            symbol=_text(entry, "symbol"),
            side=_text(entry, "side"),
            order_type=_text(entry, "order_type"),
            order_qty=_dec(entry, "order_qty"),
            limit_price=_dec(entry, "limit_price"),
            trigger_price=_dec(triggers, "price") if isinstance(triggers, Mapping) else None,
            cum_qty=_dec(entry, "cum_qty"),
            cum_cost=_dec(entry, "cum_cost"),
            avg_price=_dec(entry, "avg_price"),
            last_qty=_dec(entry, "last_qty"),
            last_price=_dec(entry, "last_price"),
            cost=_dec(entry, "cost"),
            fees=_fees(entry),
            fee_usd_equiv=_dec(entry, "fee_usd_equiv"),
            exec_id=_text(entry, "exec_id"),
            trade_id=_int(entry, "trade_id"),
            liquidity_ind=_text(entry, "liquidity_ind"),
            timestamp=None if stamp is None else _rfc3339(stamp, "timestamp").timestamp(),
            reason=_text(entry, "reason"),
            amended=flags["amended"],
            post_only=flags["post_only"],
            fee_ccy_pref=_text(entry, "fee_ccy_pref"),
            time_in_force=_text(entry, "time_in_force"),
            snapshot=snapshot,
            sequence=sequence,
        )

    @property
    def status(self) -> OrderStatus | None:
        return None if self.order_status is None else REST_STATUS.get(self.order_status)

    @property
    def fee(self) -> Decimal:
        """This trade's fee (Kraken: "expressed in the quote currency only")."""
        return sum((qty for _, qty in self.fees), Decimal(0))


def order_from_event(event: ExecutionEvent, pair: str) -> Order | None:
    """The order as REST would show it, built from an entry that describes it whole (a
    snapshot entry or ``pending_new``); ``None`` if the entry leaves out what an order needs
    (the caller asks REST instead). ``pair`` is the REST name of ``event.symbol``."""
    needed = (event.side, event.order_type, event.order_qty, event.timestamp, event.status)
    if any(value is None for value in needed):
        return None
    assert event.order_type is not None
    assert event.status is not None
    price, price2 = _descr_prices(event)
    flags = []
    if event.post_only:
        flags.append("post")
    if event.fee_ccy_pref in ("fcib", "fciq"):
        flags.append(event.fee_ccy_pref)
    closed = _RANK[event.status] == 2
    return Order.from_api(
        event.txid,
        {
            "userref": event.userref,
            "cl_ord_id": event.cl_ord_id,
            "status": event.status.value,
            "opentm": event.timestamp,
            "closetm": event.timestamp if closed else None,
            "descr": {
                "pair": pair,
                "type": event.side,
                "ordertype": event.order_type,
                "price": str(price),
                "price2": str(price2),
                "order": "",
            },
            "vol": str(event.order_qty),
            "vol_exec": str(event.cum_qty or 0),
            "cost": str(event.cum_cost or 0),
            "fee": str(event.fee),
            "price": str(event.avg_price or 0),
            "stopprice": "0",
            "limitprice": "0",
            "oflags": ",".join(flags),
            "reason": event.reason,
        },
    )


def _descr_prices(event: ExecutionEvent) -> tuple[Decimal, Decimal]:
    limit = event.limit_price or Decimal(0)
    trigger = event.trigger_price or Decimal(0)
    if event.order_type in _TRIGGERED:
        return trigger, Decimal(0)
    if event.order_type in _TRIGGERED_LIMIT:
        return trigger, limit
    return limit, Decimal(0)


def counts_on(cached: Order, event: ExecutionEvent) -> bool:
    """Whether a trade's fee can be added to ``cached``'s: the trade moves the order on from
    exactly the executed volume cached (``cum_qty - last_qty``). Otherwise the cached fee
    stands for other fills than the ones before this trade, and only REST can say the
    order's fee (the caller asks it)."""
    if event.exec_type != "trade" or event.cum_qty is None or event.cum_qty <= cached.vol_exec:
        return True  # not a trade, or nothing new: merge adds no fee
    return event.last_qty is not None and event.cum_qty - event.last_qty == cached.vol_exec


def merge(cached: Order, event: ExecutionEvent) -> Order:
    """``cached`` moved on by ``event`` (see the module doc for the rules)."""
    changes: dict[str, Any] = {}
    forward = event.cum_qty is not None and event.cum_qty > cached.vol_exec
    if forward:
        changes["vol_exec"] = event.cum_qty
        if event.cum_cost is not None:
            changes["cost"] = event.cum_cost
        if event.avg_price is not None:
            changes["price"] = event.avg_price
        if event.exec_type == "trade" and event.fees:
            changes["fee"] = cached.fee + event.fee
    status = event.status
    if status is not None and _RANK[status] > _RANK[cached.status]:
        changes["status"] = status
        if _RANK[status] == 2:
            changes["closetm"] = event.timestamp if event.timestamp is not None else None
            if event.reason is not None:
                changes["reason"] = event.reason
    if cached.status is OrderStatus.OPEN or cached.status is OrderStatus.PENDING:
        changes.update(_amended(cached, event))
    return attrs.evolve(cached, **changes) if changes else cached


def _amended(cached: Order, event: ExecutionEvent) -> dict[str, Any]:
    """What an amend (or an engine's restatement) changed of an open order."""
    if event.exec_type not in ("amended", "restated"):
        return {}
    changes: dict[str, Any] = {}
    if event.order_qty is not None and event.order_qty != cached.vol:
        changes["vol"] = event.order_qty
    if event.limit_price is not None and cached.descr.ordertype_raw == "limit":
        changes["descr"] = attrs.evolve(cached.descr, price=event.limit_price)
    return changes

"""Kraken WebSocket v2 ``executions`` and ``balances`` entries, built from the engine's state.

Every number is taken from what REST shows for the same order or fill (the order-info object
of QueryOrders, the trade-info object of TradesHistory), so a client comparing the two sees
the same quantities, prices, costs and fees. Field names and values follow Kraken's v2
documentation; ``exec_id`` of a trade is the REST trade id (TradesHistory's key) and
``trade_id`` its per-pair integer id.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from oms.sandbox.book import PairLike, SandboxOrder, average_price
from oms.sandbox.wsformat import rfc3339, v2_symbol

__all__ = [
    "amended_entry",
    "balance_snapshot_entry",
    "ledger_entry",
    "order_entry",
    "order_status",
    "snapshot_order_entry",
    "status_entry",
    "terminal_entry",
    "trade_entry",
]

Entry = dict[str, Any]

_TERMINAL = {"closed": "filled", "canceled": "canceled", "expired": "expired"}


def order_status(order: SandboxOrder) -> str:
    """The v2 ``order_status`` of an order in REST status ``pending/open/closed/...``."""
    if order.status == "pending":
        return "pending_new"
    if order.status == "open":
        return "partially_filled" if order.vol_exec else "new"
    return _TERMINAL.get(order.status, order.status)


def _ids(order: SandboxOrder) -> Entry:
    out: Entry = {"order_id": order.txid, "order_userref": order.userref or 0}
    if order.cl_ord_id is not None:
        out["cl_ord_id"] = order.cl_ord_id
    return out


def _totals(info: Mapping[str, Any]) -> Entry:
    """``cum_qty``, ``cum_cost``, ``avg_price`` and ``fee_usd_equiv`` as REST shows them."""
    return {
        "cum_qty": Decimal(info["vol_exec"]),
        "cum_cost": Decimal(info["cost"]),
        "avg_price": Decimal(info["price"]),
        "fee_usd_equiv": Decimal(info["fee"]),
    }


def _details(order: SandboxOrder, pair: PairLike, info: Mapping[str, Any]) -> Entry:
    """What the order is: symbol, side, type, quantity, prices, flags and times."""
    out: Entry = {
        "symbol": v2_symbol(getattr(pair, "wsname", f"{pair.base}/{pair.quote}")),
        "side": order.side,
        "order_type": order.ordertype,
        "order_qty": Decimal(info["vol"]),
        "time_in_force": order.timeinforce,
    }
    descr = info["descr"]
    if order.ordertype in ("limit", "iceberg"):
        out["limit_price_type"] = "static"
        out["limit_price"] = Decimal(descr["price"])
    elif order.ordertype.endswith("-limit"):
        out["limit_price_type"] = "static"
        out["limit_price"] = Decimal(descr["price2"])
    if order.ordertype.startswith(("stop-loss", "take-profit")):
        out["triggers"] = {
            "reference": order.trigger,
            "price": Decimal(descr["price"]),
            "price_type": "static",
            "status": "triggered" if order.triggered else "untriggered",
        }
    if order.displayvol is not None:
        out["display_qty"] = order.displayvol
    if order.post_only:
        out["post_only"] = True
    out["fee_ccy_pref"] = "fcib" if order.fee_in_base else "fciq"
    if order.starttm:
        out["effective_time"] = rfc3339(order.starttm)
    if order.expiretm:
        out["expire_time"] = rfc3339(order.expiretm)
    return out


def order_entry(order: SandboxOrder, pair: PairLike, now: float) -> Entry:
    """``pending_new``: the order as it was accepted, with everything it says."""
    info = order.info(pair)
    out = _ids(order)
    out.update(exec_type="pending_new", order_status="pending_new")
    out.update(_details(order, pair, info))
    out.update(cum_qty=Decimal(0), cum_cost=Decimal(0), fee_usd_equiv=Decimal(0))
    out["timestamp"] = rfc3339(order.opentm if order.opentm else now)
    return out


def status_entry(order: SandboxOrder, exec_type: str, status: str, now: float) -> Entry:
    """A sparse event (``new``): ids, exec_type, order_status and time."""
    out = _ids(order)
    out.update(exec_type=exec_type, order_status=status, timestamp=rfc3339(now))
    return out


def amended_entry(order: SandboxOrder, pair: PairLike, now: float) -> Entry:
    """``amended``: the order's quantity and prices after a user amend."""
    info = order.info(pair)
    details = _details(order, pair, info)
    out = _ids(order)
    out.update(exec_type="amended", order_status=order_status(order), amended=True)
    for key in ("order_qty", "limit_price", "display_qty", "triggers"):
        if key in details:
            out[key] = details[key]
    out.update(_totals(info))
    out.update(reason="User requested", timestamp=rfc3339(now))
    return out


def terminal_entry(order: SandboxOrder, pair: PairLike) -> Entry:
    """``filled``, ``canceled`` or ``expired``, with the order's final totals."""
    info = order.info(pair)
    status = order_status(order)
    out = _ids(order)
    out.update(exec_type=status, order_status=status)
    out.update(_totals(info))
    if order.reason:
        out["reason"] = order.reason
        if status == "canceled":
            out["cancel_reason"] = order.reason  # deprecated, but Kraken still sends it
    out["timestamp"] = rfc3339(order.closetm if order.closetm is not None else order.opentm)
    return out


def snapshot_order_entry(order: SandboxOrder, pair: PairLike) -> Entry:
    """An open order in a snapshot: everything it says, its totals, ``amended``."""
    info = order.info(pair)
    status = order_status(order)
    out = _ids(order)
    out.update(exec_type="pending_new" if status == "pending_new" else "new")
    out["order_status"] = status
    out.update(_details(order, pair, info))
    out.update(_totals(info))
    out["amended"] = "amended" in order.misc
    out["timestamp"] = rfc3339(order.touched)
    return out


def trade_entry(
    tid: str,
    row: Mapping[str, Any],
    order: SandboxOrder | None,
    pair: PairLike,
    cum: tuple[Decimal, Decimal, Decimal] | None,
    status: str,
    fee_asset: str,
) -> Entry:
    """``trade``: one fill as TradesHistory shows it (``exec_id`` is its trade id).

    ``cum`` is the order's (quantity, cost, notional) right after this fill, for
    ``cum_qty``/``cum_cost``/``avg_price``; None leaves them out (an order no longer kept).
    """
    fee = Decimal(str(row["fee"]))
    out: Entry = {"order_id": str(row["ordertxid"])}
    if order is not None:
        out["order_userref"] = order.userref or 0
        if order.cl_ord_id is not None:
            out["cl_ord_id"] = order.cl_ord_id
    out.update(
        exec_id=tid,
        exec_type="trade",
        trade_id=row.get("trade_id"),
        symbol=v2_symbol(getattr(pair, "wsname", f"{pair.base}/{pair.quote}")),
        side=row["type"],
        last_qty=Decimal(str(row["vol"])),
        last_price=Decimal(str(row["price"])),
        liquidity_ind="m" if row.get("maker") else "t",
        cost=Decimal(str(row["cost"])),
        order_type=row["ordertype"],
        timestamp=rfc3339(float(row["time"])),
        order_status=status,
    )
    if cum is not None:
        qty, cost, notional = cum
        side = str(row["type"])
        avg = average_price(notional, qty, side, pair.cost_decimals) if qty else Decimal(0)
        out.update(cum_qty=qty, cum_cost=cost, avg_price=avg)
    out.update(fee_usd_equiv=fee, fees=[{"asset": fee_asset, "qty": fee}])
    return out


def balance_snapshot_entry(name: str, balance: Decimal) -> Entry:
    """One asset in a ``balances`` snapshot: total and its one spot wallet."""
    return {
        "asset": name,
        "asset_class": "currency",
        "balance": balance,
        "wallets": [{"type": "spot", "id": "main", "balance": balance}],
    }


def ledger_entry(
    *,
    ledger_id: str,
    ref_id: str,
    now: float,
    kind: str,
    name: str,
    amount: Decimal,
    balance: Decimal,
) -> Entry:
    """One ``balances`` update: a ledger transaction on one asset (fee inside ``amount``)."""
    return {
        "ledger_id": ledger_id,
        "ref_id": ref_id,
        "timestamp": rfc3339(now),
        "type": kind,
        "asset": name,
        "asset_class": "currency",
        "category": kind,
        "wallet_type": "spot",
        "wallet_id": "main",
        "amount": amount,
        "fee": Decimal(0),
        "balance": balance,
    }

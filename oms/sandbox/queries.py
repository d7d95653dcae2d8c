"""The order and trade queries: OpenOrders, ClosedOrders, QueryOrders, TradesHistory,
QueryTrades."""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from oms.sandbox.accounts import Account
from oms.sandbox.book import SandboxOrder
from oms.sandbox.protocol import ApiError, Params, invalid
from oms.sandbox.trading import Trading

__all__ = ["closed_orders", "open_orders", "query_orders", "query_trades", "trades_history"]

_PAGE = 50


def userref_filter(p: Params) -> int | None:
    return p.integer("userref", low=-(2**31), high=2**31 - 1)


def open_orders(trading: Trading, acct: Account, p: Params) -> Any:
    """OpenOrders: ``{"open": {txid: info}}``, filtered by ``userref`` or ``cl_ord_id``."""
    userref = userref_filter(p)
    cl_ord_id = p.text("cl_ord_id")
    trades = p.flag("trades")
    if userref is not None:
        group = acct.open_by_userref.get(userref, {})
        orders: Iterable[SandboxOrder] = [acct.open[t] for t in group]
    elif cl_ord_id is not None:
        txid = acct.open_by_cl_ord_id.get(cl_ord_id)
        orders = [acct.open[txid]] if txid is not None else []
    else:
        orders = acct.open.values()
    if userref is not None and cl_ord_id is not None:
        orders = [o for o in orders if o.cl_ord_id == cl_ord_id]
    return {"open": {o.txid: trading.info(o, trades=trades) for o in orders}}


def _bound(acct: Account, p: Params, name: str) -> float | None:
    raw = p.raw(name)
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise invalid(name)
    if isinstance(raw, (int, Decimal)):
        return float(raw)
    text = str(raw).strip()
    if re.fullmatch(r"[0-9]{1,11}(\.[0-9]{1,9})?", text):
        return float(text)
    order = acct.orders.get(text)
    if order is None:
        raise invalid(name)
    # Kraken uses the order's opentm when a txid bounds the range.
    return order.opentm


def closed_orders(trading: Trading, acct: Account, p: Params) -> Any:
    """ClosedOrders: 50 a page, most recently closed first, with the total ``count``."""
    userref = userref_filter(p)
    cl_ord_id = p.text("cl_ord_id")
    trades = p.flag("trades")
    closetime = p.text("closetime") or "both"
    if closetime not in ("open", "close", "both"):
        raise invalid("closetime")
    start = _bound(acct, p, "start")
    end = _bound(acct, p, "end")
    ofs = p.integer("ofs", default=0, low=0)
    assert ofs is not None
    without_count = p.flag("without_count")

    def in_range(t: float | None) -> bool:
        return t is not None and (start is None or t > start) and (end is None or t <= end)

    matched: list[SandboxOrder] = []
    for order in reversed(acct.closed.values()):
        if userref is not None and order.userref != userref:
            continue
        if cl_ord_id is not None and order.cl_ord_id != cl_ord_id:
            continue
        if start is not None or end is not None:
            if closetime == "open":
                ok = in_range(order.opentm)
            elif closetime == "close":
                ok = in_range(order.closetm)
            else:
                ok = in_range(order.opentm) or in_range(order.closetm)
            if not ok:
                continue
        matched.append(order)
    page = matched[ofs : ofs + _PAGE]
    result: dict[str, Any] = {"closed": {o.txid: trading.info(o, trades=trades) for o in page}}
    if not without_count:
        result["count"] = len(matched)
    return result


def query_orders(trading: Trading, acct: Account, p: Params) -> Any:
    """QueryOrders: up to 50 txids, open or closed."""
    txids = p.text_list("txid")
    if not txids or len(txids) > _PAGE:
        raise invalid("txid")
    userref = userref_filter(p)
    trades = p.flag("trades")
    out: dict[str, Any] = {}
    for txid in txids:
        order = acct.orders.get(txid)
        if order is None:
            raise ApiError("EOrder:Invalid order")
        if userref is not None and order.userref != userref:
            continue
        out[txid] = trading.info(order, trades=trades)
    return out


def trades_history(acct: Account, p: Params) -> Any:
    """TradesHistory: the account's fills, 50 a page, newest first."""
    start = _trade_bound(acct, p, "start")
    end = _trade_bound(acct, p, "end")
    ofs = p.integer("ofs", default=0, low=0)
    assert ofs is not None
    matched = [
        (tid, info)
        for tid, info in reversed(acct.fills.items())
        if (start is None or float(info["time"]) > start)  # type: ignore[arg-type]
        and (end is None or float(info["time"]) <= end)  # type: ignore[arg-type]
    ]
    result: dict[str, Any] = {"trades": dict(matched[ofs : ofs + _PAGE])}
    if not p.flag("without_count"):
        result["count"] = len(matched)
    return result


def _trade_bound(acct: Account, p: Params, name: str) -> float | None:
    raw = p.text(name)
    if raw is None:
        return None
    if re.fullmatch(r"[0-9]{1,11}(\.[0-9]{1,9})?", raw):
        return float(raw)
    info = acct.fills.get(raw)
    if info is None:
        raise invalid(name)
    return float(info["time"])  # type: ignore[arg-type]


def query_trades(acct: Account, p: Params) -> Any:
    """QueryTrades: up to 20 trade ids."""
    txids = p.text_list("txid")
    if not txids or len(txids) > 20:
        raise invalid("txid")
    out: dict[str, Any] = {}
    for tid in txids:
        info = acct.fills.get(tid)
        if info is None:
            raise invalid("txid")
        out[tid] = info
    return out

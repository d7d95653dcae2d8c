"""Tracking: the backup id and sync."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from support import exchange_orders, limit, manager

from oms.manager import (
    OrderManager,
)
from oms.sandbox import Sandbox

# --- backup id, sync --------------------------------------------------------------------------


def test_an_order_is_found_by_userref_when_its_txid_is_unknown(sb: Sandbox, tmp_path: Path) -> None:
    placed = manager(sb, tmp_path / "a.db").place(limit(sb))
    fresh = manager(sb, tmp_path / "b.db")  # knows nothing about it
    (found,) = fresh.find_by_userref(placed.userref)
    assert found.txid == placed.txid
    assert fresh.cache.by_userref(placed.userref) == [found]


def test_sync_is_incremental_and_makes_the_cache_equal_the_exchange(
    sb: Sandbox, mgr: OrderManager
) -> None:
    last = sb.market.last_price("XBTUSD")
    resting = [mgr.place(limit(sb)).txid for _ in range(3)]
    filled = mgr.place(limit(sb, price=(last * Decimal("1.2")).quantize(Decimal("0.1")))).txid
    first = mgr.sync()
    assert first.open == 3
    assert {t: o for t, o in exchange_orders(sb).items()} == {o.txid: o for o in mgr.cache.orders()}
    assert resting
    assert filled
    sb.clock.advance(120)
    mgr.sync()  # may fetch again what closed within the slack before the first sync began
    sb.clock.advance(120)
    quiet = mgr.sync()
    # Only orders closed since the last sync come back from ClosedOrders.
    assert quiet.closed == 0
    assert quiet.open == 3
    mgr.cancel(resting[0])
    sb.clock.advance(120)
    after_cancel = mgr.sync()
    assert after_cancel.closed == 1
    assert exchange_orders(sb) == {o.txid: o for o in mgr.cache.orders()}

"""Cancelling: group cancels, checked order by order."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from support import START, exchange_orders, far_price, fields_of, limit, manager

from oms.errors import (
    ValidationError,
)
from oms.manager import (
    OrderManager,
    Placement,
)
from oms.models import CancelResult, OrderStatus
from oms.orders import OrderRequest
from oms.sandbox import ManualClock, Sandbox

# --- groups -----------------------------------------------------------------------------------


def test_a_group_is_cancelled_in_one_request_and_checked(sb: Sandbox, mgr: OrderManager) -> None:
    group = mgr.new_group("ladder")
    base = far_price(sb)
    txids = [mgr.place(limit(sb, price=base - i), group=group).txid for i in range(4)]
    other = mgr.place(limit(sb))
    mgr.sync()
    before = dict(mgr.requests)
    result = mgr.cancel_group(group)
    assert mgr.requests["CancelOrder"] - before.get("CancelOrder", 0) == 1
    assert result.ok
    assert result.count == 4
    assert result.expected == 4
    assert result.leftovers == ()
    assert set(result.cancelled) == set(txids)
    for txid in txids:
        cached = mgr.cache.order(txid)
        assert cached is not None
        assert cached.status is OrderStatus.CANCELED
    assert exchange_orders(sb)[other.txid].status is OrderStatus.OPEN
    mgr.sync()
    assert {o.txid: o.status for o in mgr.cache.orders(group=group)} == {
        t: OrderStatus.CANCELED for t in txids
    }


def test_a_group_cancel_leaves_a_stranger_sharing_the_userref_open(
    sb: Sandbox, mgr: OrderManager
) -> None:
    group = mgr.new_group("g")
    mine = mgr.place(limit(sb), group=group)
    # An order with the same userref placed behind the manager's back (another program).
    stranger = sb.client().add_order(OrderRequest(**fields_of(limit(sb)), userref=group.userref))
    result = mgr.cancel_group(group)
    assert result.ok, result
    assert result.by_txid == (mine.txid,)  # cancelled by txid, not by userref
    assert (result.count, result.expected) == (1, 1)
    assert result.cancelled == (mine.txid,)
    assert result.outsiders == stranger.txids
    assert result.outsiders_cancelled == ()
    assert result.confirmed_empty  # no member left open
    on_exchange = exchange_orders(sb)
    assert on_exchange[str(mine.txid)].status is OrderStatus.CANCELED
    assert on_exchange[stranger.txids[0]].status is OrderStatus.OPEN
    for txid in (mine.txid, *stranger.txids):  # the stranger is now known to the cache too
        assert mgr.cache.order(str(txid)) == on_exchange[str(txid)]


def test_a_group_cancel_without_strangers_is_one_cancel_by_userref(
    sb: Sandbox, mgr: OrderManager
) -> None:
    group = mgr.new_group("g")
    placed = [mgr.place(limit(sb), group=group) for _ in range(3)]
    before = dict(mgr.requests)
    result = mgr.cancel_group(group)
    assert result.ok
    assert result.by_txid == ()
    assert mgr.requests.get("CancelOrder", 0) - before.get("CancelOrder", 0) == 1
    assert "CancelOrderBatch" not in mgr.requests
    assert set(result.cancelled) == {p.txid for p in placed}


def test_a_stranger_placed_during_a_group_cancel_is_reported_cancelled(
    sb: Sandbox, mgr: OrderManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counts can agree by accident: a member that filled and an outsider that was cancelled
    instead add up to the expected count. The sets do not."""
    group = mgr.new_group("pair")
    last = sb.market.last_price("XBTUSD")
    filled = mgr.place(limit(sb, price=(last * 2).quantize(Decimal("0.1"))), group=group)
    resting = mgr.place(limit(sb), group=group)
    sb.clock.advance(5)
    assert exchange_orders(sb)[str(filled.txid)].status is OrderStatus.CLOSED
    real_cancel = mgr.client.cancel_order
    outsider: list[str] = []

    def cancel(**kw: Any) -> CancelResult:
        # Another program places with the userref between the check and the cancel.
        request = OrderRequest(
            **fields_of(limit(sb, price=far_price(sb) - 100)), userref=group.userref
        )
        outsider.extend(sb.client().add_order(request).txids)
        return real_cancel(**kw)

    monkeypatch.setattr(mgr.client, "cancel_order", cancel)
    result = mgr.cancel_group(group)
    assert (result.count, result.expected) == (2, 2)  # the counts agree...
    assert not result.ok  # ...but an outsider was cancelled in the filled member's place
    assert result.closed == (filled.txid,)
    assert result.cancelled == (resting.txid,)
    assert result.outsiders_cancelled == tuple(outsider)
    on_exchange = exchange_orders(sb)
    for txid in (filled.txid, resting.txid, *outsider):
        assert mgr.cache.order(str(txid)) == on_exchange[str(txid)]  # never "canceled" by guess


def test_a_group_cancel_with_a_member_that_filled_checks_out(
    sb: Sandbox, mgr: OrderManager
) -> None:
    group = mgr.new_group("pair")
    last = sb.market.last_price("XBTUSD")
    filled = mgr.place(limit(sb, price=(last * 2).quantize(Decimal("0.1"))), group=group)
    resting = mgr.place(limit(sb), group=group)
    sb.clock.advance(5)
    result = mgr.cancel_group(group)
    assert result.ok
    assert (result.count, result.cancelled, result.closed) == (1, (resting.txid,), (filled.txid,))
    cached = mgr.cache.order(str(filled.txid))
    assert cached is not None
    assert cached.status is OrderStatus.CLOSED


def partly_filled(sb: Sandbox, m: OrderManager, **place: Any) -> Placement:
    """A resting order that has traded part of its volume (seed 4's market, found by probing)."""
    sb.clock.advance(60)
    last = sb.market.last_price("XBTUSD")
    price = (last * Decimal("0.9997")).quantize(Decimal("0.1"))
    placed = m.place(limit(sb, volume="1.2", price=price), **place)
    for _ in range(40):
        sb.clock.advance(15)
        now = exchange_orders(sb)[str(placed.txid)]
        if now.vol_exec > 0:
            break
    assert now.status is OrderStatus.OPEN
    assert 0 < now.vol_exec < now.vol
    return placed


@pytest.mark.parametrize("how", ["group", "txid"])
def test_a_cancel_keeps_what_a_partly_filled_order_executed(tmp_path: Path, how: str) -> None:
    sb = Sandbox.in_process(seed=4, clock=ManualClock(START))
    m = manager(sb, tmp_path / "p.db")
    if how == "group":
        placed = partly_filled(sb, m, group=m.new_group("g"))
        assert m.cancel_group(placed.userref).ok
    else:
        placed = partly_filled(sb, m)
        assert m.cancel(str(placed.txid)).count == 1
    final = exchange_orders(sb)[str(placed.txid)]
    assert final.status is OrderStatus.CANCELED
    assert final.vol_exec > 0
    assert m.cache.order(str(placed.txid)) == final  # vol_exec, cost, fee as Kraken has them


@pytest.mark.parametrize("batch", [False, True])
def test_a_lost_cancel_answer_is_judged_by_the_confirmation(
    sb: Sandbox, mgr: OrderManager, batch: bool
) -> None:
    group = mgr.new_group("g")
    member = mgr.place(limit(sb), group=group)
    method = "CancelOrderBatch" if batch else "CancelOrder"
    sb.faults.add(method=method, kind="drop_after_commit", count=1)
    # The client repeats the cancel; the repeat finds nothing left to cancel.
    result = mgr.cancel_groups([group]) if batch else mgr.cancel_group(group)
    assert result.count == 0
    assert not result.count_known
    assert result.cancelled == (member.txid,)
    assert result.ok
    cached = mgr.cache.order(str(member.txid))
    assert cached is not None
    assert cached.status is OrderStatus.CANCELED


@pytest.mark.parametrize("txid", ["1", "42", " 7 ", "-3", "+5"])
def test_cancel_by_txid_refuses_what_kraken_would_read_as_a_userref(
    sb: Sandbox, mgr: OrderManager, txid: str
) -> None:
    group = mgr.new_group("g")
    placed = [mgr.place(limit(sb), group=group) for _ in range(2)]
    with pytest.raises(ValidationError) as info:
        mgr.cancel(txid)
    assert "cancel_group" in str(info.value)
    assert {exchange_orders(sb)[str(p.txid)].status for p in placed} == {OrderStatus.OPEN}


def test_an_empty_group_in_a_batch_cancel(sb: Sandbox, mgr: OrderManager) -> None:
    full, empty = mgr.new_group("full"), mgr.new_group("empty")
    member = mgr.place(limit(sb), group=full)
    result = mgr.cancel_groups([full, empty])
    assert result.ok
    assert (result.count, result.cancelled) == (1, (member.txid,))

"""Userrefs: allocation, groups, and hand-chosen ones."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from support import exchange_orders, fields_of, limit, manager

from oms.errors import (
    InvalidOrder,
    UnknownOrder,
    ValidationError,
)
from oms.manager import (
    OrderManager,
)
from oms.models import OrderStatus
from oms.orders import OrderRequest
from oms.sandbox import Sandbox
from oms.userref import RandomAllocator

# --- userrefs ---------------------------------------------------------------------------------


def test_allocated_userrefs_skip_a_hand_chosen_group(sb: Sandbox, mgr: OrderManager) -> None:
    ladder = mgr.new_group("ladder", userref=2)
    member = mgr.place(limit(sb), group=ladder)
    unique = [mgr.place(limit(sb)) for _ in range(2)]
    assert ladder.userref not in {p.userref for p in unique}
    result = mgr.cancel_group(ladder)
    assert result.ok
    assert result.cancelled == (member.txid,)
    for p in unique:  # unrelated orders are untouched
        assert exchange_orders(sb)[str(p.txid)].status is OrderStatus.OPEN


def test_a_new_group_never_takes_a_userref_an_order_carries(sb: Sandbox, mgr: OrderManager) -> None:
    hand = mgr.place(OrderRequest(**fields_of(limit(sb)), userref=1))
    group = mgr.new_group("g")  # the counter would hand out 1
    assert group.userref != hand.userref
    with pytest.raises(ValidationError) as info:
        mgr.new_group("mine", userref=hand.userref)
    assert info.value.rule == "userref-in-use"


def test_two_managers_choosing_one_userref_get_a_typed_error(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = manager(sb, tmp_path / "g.db"), manager(sb, tmp_path / "g.db")
    # The second looks before the first writes (two processes at once): any check made
    # outside the insert's transaction sees the userref free.
    monkeypatch.setattr(second.cache, "group", lambda userref: None)
    first.new_group("a", userref=77)
    with pytest.raises(ValidationError) as info:
        second.new_group("b", userref=77)
    assert info.value.rule == "userref-in-use"
    assert [g.label for g in first.groups()] == ["a"]


class _Scripted(random.Random):
    """Draws the given values first (to force a collision), then as seeded."""

    first: list[int]

    def randint(self, a: int, b: int) -> int:
        return self.first.pop(0) if self.first else super().randint(a, b)


def _scripted(first: list[int]) -> _Scripted:
    # Built in two steps: on Python 3.10 random.Random.__new__ seeds itself with the
    # constructor's arguments, so they must be a valid seed.
    rng = _Scripted(0)
    rng.first = list(first)
    return rng


def test_a_random_allocator_never_hands_the_manager_a_userref_in_use(
    sb: Sandbox, tmp_path: Path
) -> None:
    m = manager(sb, tmp_path / "r.db", allocator=RandomAllocator(rng=_scripted([5, 9])))
    m.new_group("hand-chosen", userref=5)  # the allocator never handed 5 out itself
    placed = m.place(limit(sb))  # draws 5 first
    assert placed.userref == 9


def test_several_groups_in_one_batch(sb: Sandbox, mgr: OrderManager) -> None:
    groups = [mgr.new_group(f"g{i}") for i in range(3)]
    for g in groups:
        mgr.place(limit(sb), group=g)
        mgr.place(limit(sb), group=g)
    keep = mgr.new_group("keep")
    kept = mgr.place(limit(sb), group=keep)
    before = mgr.requests.get("CancelOrderBatch", 0)
    result = mgr.cancel_groups(groups)
    assert mgr.requests["CancelOrderBatch"] - before == 1
    assert result.ok
    assert result.count == 6
    assert result.userrefs == tuple(g.userref for g in groups)
    assert exchange_orders(sb)[kept.txid].status is OrderStatus.OPEN


def test_groups_persist_across_managers(sb: Sandbox, tmp_path: Path) -> None:
    first = manager(sb, tmp_path / "g.db")
    g = first.new_group("persisted")
    first.close()
    again = manager(sb, tmp_path / "g.db")
    assert again.group(g.userref) == g
    assert again.groups(label="persisted") == [g]
    with pytest.raises(ValidationError):
        again.new_group("dupe", userref=g.userref)
    again.close()


def test_cancel_one_order_by_txid(sb: Sandbox, mgr: OrderManager) -> None:
    placed = mgr.place(limit(sb))
    assert placed.txid is not None
    assert mgr.cancel(placed.txid).count == 1
    cached = mgr.cache.order(placed.txid)
    assert cached is not None
    assert cached.status is OrderStatus.CANCELED


@pytest.mark.parametrize("code", ["EOrder:Invalid order", "EOrder:Unknown order"])
def test_cancelling_an_order_already_gone_reads_it_back(
    sb: Sandbox, mgr: OrderManager, code: str
) -> None:
    # Kraken answers a cancel of a closed order with either string (the official SDK
    # documents "Invalid order"); both mean gone: the cache learns the order's real state.
    placed = mgr.place(limit(sb))
    assert placed.txid is not None
    sb.client().cancel_order(txid=placed.txid)  # behind the manager's back
    sb.faults.add(method="CancelOrder", kind="error", error=code)
    with pytest.raises(UnknownOrder):
        mgr.cancel(placed.txid)
    cached = mgr.cache.order(placed.txid)
    assert cached is not None
    assert cached.status is OrderStatus.CANCELED


def test_the_sandbox_answers_invalid_order_for_a_closed_order(
    sb: Sandbox, mgr: OrderManager
) -> None:
    placed = mgr.place(limit(sb))
    assert placed.txid is not None
    mgr.cancel(placed.txid)
    with pytest.raises(InvalidOrder):
        sb.client().cancel_order(txid=placed.txid)
    with pytest.raises(UnknownOrder) as info:
        sb.client().cancel_order(txid="OAAAAA-BBBBB-CCCCCC")
    assert not isinstance(info.value, InvalidOrder)


@pytest.mark.parametrize("code", ["EOrder:Invalid order", "EOrder:Unknown order"])
def test_a_group_cancel_answered_gone_checks_out(sb: Sandbox, mgr: OrderManager, code: str) -> None:
    group = mgr.new_group("gone")
    member = mgr.place(limit(sb), group=group)
    assert member.txid is not None
    sb.client().cancel_order(txid=member.txid)
    sb.faults.add(method="CancelOrder", kind="error", error=code)
    result = mgr.cancel_group(group)
    assert result.ok, result
    assert result.count == 0


def test_dead_mans_switch_arms_and_disarms(sb: Sandbox, mgr: OrderManager) -> None:
    armed = mgr.arm_dead_mans_switch(60)
    assert armed.trigger_time is not None
    assert (armed.trigger_time - armed.current_time).total_seconds() == pytest.approx(60, abs=1)
    assert mgr.disarm_dead_mans_switch().trigger_time is None
    with pytest.raises(ValidationError):
        mgr.arm_dead_mans_switch(0)

"""Promises of the order manager that a "deleted line" review found unguarded: each test
here fails when the one line that keeps its promise is removed or inverted.

- a group cancel leaves a stranger open even when the group has an undecided placement, and
  even once the stranger is known to the cache;
- an unknown intent taken over from a dead manager is resolved before this manager's next
  placement;
- a placement whose intent another manager resolved meanwhile is never sent again;
- an order Kraken placed for an intent that another manager answered with a different order
  is still tracked;
- a lookup keeps every order it sees, and an order it adopts is a member of its group;
- an intent records Kraken's own time as the earliest its order can have opened;
- a sync never reports this database's own orders as foreign;
- a closed manager closes neither a client nor a cache it was given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
import requests
from support import (
    OPENED,
    Crash,
    assert_every_order_tracked,
    crashing_manager,
    exchange_orders,
    fields_of,
    limit,
    manager,
    with_userref,
)

from oms.cache import OrderCache
from oms.errors import OutcomeUnknownError
from oms.intents import IntentState
from oms.manager import OrderManager, OrderNotPlaced
from oms.models import AddOrderResult, OrderStatus, ServerTime
from oms.orders import OrderRequest
from oms.sandbox import IN_PROCESS_URL, ManualClock, Sandbox
from oms.transport import Transport

UNRESOLVED = [IntentState.PENDING, IntentState.UNKNOWN]
# One lookup that fails: the manager asks 3 times (lookup_attempts), the client tries each
# OpenOrders 4 times.
FAILED_LOOKUP = 3 * 4


def manual(sb: Sandbox) -> ManualClock:
    clock = sb.clock
    assert isinstance(clock, ManualClock)
    return clock


def stranger_order(sb: Sandbox, userref: int, *, volume: str = "0.001") -> str:
    """Another program's order carrying ``userref`` (placed behind the manager's back)."""
    request = OrderRequest(**fields_of(limit(sb, volume=volume)), userref=userref)
    (txid,) = sb.client().add_order(request).txids
    return txid


# --- group cancels never cancel a stranger -----------------------------------------------------


def test_an_undecided_placement_never_makes_a_stranger_the_groups(
    sb: Sandbox, mgr: OrderManager
) -> None:
    group = mgr.new_group("g")
    member = mgr.place(limit(sb), group=group)
    sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
    sb.faults.add(method="OpenOrders", kind="html", status=502, when="before", count=FAILED_LOOKUP)
    with pytest.raises(OutcomeUnknownError) as info:
        mgr.place(limit(sb), group=group)
    undecided = mgr.cache.intent(str(info.value.intent_id))
    assert undecided is not None
    assert undecided.state is IntentState.UNKNOWN
    (undecided_txid,) = {o.txid for o in with_userref(sb, group.userref)} - {member.txid}
    # Another program's order with the group's userref, which the undecided intent could not
    # have made (another volume).
    stranger = stranger_order(sb, group.userref, volume="0.002")
    # The cancel's own recovery still cannot look the intent up: it stays undecided.
    lookup = sb.faults.add(
        method="OpenOrders", kind="html", status=502, when="before", count=FAILED_LOOKUP
    )
    result = mgr.cancel_group(group)
    assert lookup.fired == FAILED_LOOKUP
    still = mgr.cache.intent(undecided.id)
    assert still is not None
    assert still.state is IntentState.UNKNOWN
    assert set(result.cancelled) == {member.txid, undecided_txid}
    assert result.outsiders == (stranger,)
    assert result.outsiders_cancelled == ()
    assert result.ok, result
    on_exchange = exchange_orders(sb)
    assert on_exchange[stranger].status is OrderStatus.OPEN
    assert on_exchange[undecided_txid].status is OrderStatus.CANCELED


def test_a_stranger_the_cache_knows_is_still_left_open(sb: Sandbox, mgr: OrderManager) -> None:
    group = mgr.new_group("g")
    first = mgr.place(limit(sb), group=group)
    stranger = stranger_order(sb, group.userref)
    assert mgr.cancel_group(group).cancelled == (first.txid,)
    assert mgr.cache.order(stranger) is not None  # the first cancel cached it, still open
    second = mgr.place(limit(sb), group=group)
    result = mgr.cancel_group(group)
    assert result.ok, result
    assert result.expected == 1
    assert result.by_txid == (second.txid,)
    assert result.cancelled == (second.txid,)
    assert result.outsiders == (stranger,)
    assert exchange_orders(sb)[stranger].status is OrderStatus.OPEN


# --- recovery -----------------------------------------------------------------------------------


def test_an_unknown_intent_taken_over_from_a_dead_manager_is_resolved_before_placing(
    sb: Sandbox, tmp_path: Path
) -> None:
    db = tmp_path / "dead.db"
    doomed = crashing_manager(sb, db)
    doomed.place(limit(sb))
    sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
    with pytest.raises(Crash):
        doomed.place(limit(sb))
    doomed.ownership.release()  # what the OS does when the process dies
    (left,) = doomed.cache.intents(states=UNRESOLVED)
    survivor = manager(sb, db)
    # Kraken's clock cannot be read: nothing can be proven, the survivor takes it over.
    sb.faults.add(method="Time", kind="drop_before_commit", count=8)
    with pytest.raises(OutcomeUnknownError):
        survivor.place(limit(sb))
    taken = survivor.cache.intent(left.id)
    assert taken is not None
    assert (taken.state, taken.owner) == (IntentState.UNKNOWN, survivor.ownership.token)
    sb.faults.clear()
    placed = survivor.place(limit(sb))  # recovers the taken-over intent first
    resolved = survivor.cache.intent(left.id)
    assert resolved is not None
    assert resolved.state is IntentState.PLACED
    assert survivor.cache.intents(states=UNRESOLVED) == []
    assert len(with_userref(sb, left.userref)) == 1
    assert len(with_userref(sb, placed.userref)) == 1
    assert_every_order_tracked(sb, survivor)


# --- never sent again, never lost ------------------------------------------------------------


def test_an_intent_resolved_elsewhere_during_the_backoff_is_not_sent_again(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "backoff.db"
    owner, other = manager(sb, db), manager(sb, db)
    warm = owner.place(limit(sb))
    clock = manual(sb)
    # A rate limit: nothing was done, so the owner may send again after backing off...
    sb.faults.add(method="AddOrder", kind="rate_limit", count=1)

    def sleep(seconds: float) -> None:
        # ...but meanwhile another manager (misjudging the owner dead) resolved the intent.
        for intent in owner.cache.intents(states=[IntentState.PENDING]):
            assert other.recovery.resolve_as(intent, IntentState.ABSENT)
        clock.advance(seconds)

    monkeypatch.setattr(owner.time, "sleep", sleep)
    with pytest.raises(OrderNotPlaced) as info:
        owner.place(limit(sb))
    assert owner.requests["AddOrder"] == 2  # the warm-up and the rate-limited attempt
    assert list(exchange_orders(sb)) == [warm.txid]
    intent = owner.cache.intent(str(info.value.intent_id))
    assert intent is not None
    assert (intent.state, intent.attempts) == (IntentState.ABSENT, 1)


def test_an_order_placed_for_an_intent_answered_otherwise_is_still_tracked(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "twin.db"
    owner, other = manager(sb, db), manager(sb, db)
    group = owner.new_group("g")
    owner.place(limit(sb), group=group)
    request = limit(sb)
    twins: list[str] = []
    real_add = owner.client.add_order

    def add(req: OrderRequest, **kw: Any) -> AddOrderResult:
        if not twins:
            (intent,) = owner.cache.intents(states=[IntentState.PENDING])
            # An identical order with the group's userref, which another manager's lookup
            # takes for this intent's while the request is still on its way.
            twins.append(stranger_order(sb, group.userref))
            found = other.lookup.find(intent, wait=False)
            assert found is not None
            assert found.txid == twins[0]
        return real_add(req, **kw)

    monkeypatch.setattr(owner.client, "add_order", add)
    placed = owner.place(request, group=group)
    assert placed.txid not in (None, twins[0])
    intent = owner.cache.intent(placed.intent_id)
    assert intent is not None
    assert (intent.state, intent.txid) == (IntentState.PLACED, twins[0])
    assert owner.cache.order(str(placed.txid)) is not None  # Kraken's answer, never dropped
    assert_every_order_tracked(sb, owner)


# --- what a lookup keeps ----------------------------------------------------------------------


def test_a_lookup_caches_every_order_it_sees(sb: Sandbox, mgr: OrderManager) -> None:
    group = mgr.new_group("g")
    mgr.place(limit(sb), group=group)
    stranger = stranger_order(sb, group.userref, volume="0.002")
    sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
    placed = mgr.place(limit(sb), group=group)
    assert placed.reconciled
    assert mgr.cache.order(stranger) == exchange_orders(sb)[stranger]


def test_an_order_found_by_lookup_is_a_member_of_its_group(sb: Sandbox, mgr: OrderManager) -> None:
    group = mgr.new_group("g")
    first = mgr.place(limit(sb), group=group)
    sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
    second = mgr.place(limit(sb), group=group)
    assert second.reconciled
    members = {o.txid for o in mgr.cache.members(group.userref)}
    assert members == {first.txid, second.txid}
    assert mgr.cache.placed_here([str(second.txid)]) == {second.txid}
    result = mgr.cancel_group(group)
    assert result.ok, result
    assert result.expected == 2
    assert set(result.cancelled) == members


def test_an_intent_records_krakens_time_as_its_earliest_open_time(
    sb: Sandbox, mgr: OrderManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers: list[float] = []
    real_time = mgr.client.time

    def time() -> ServerTime:
        answer = real_time()
        answers.append(float(answer.unixtime))
        return answer

    monkeypatch.setattr(mgr.client, "time", time)
    placed = mgr.place(limit(sb))
    intent = mgr.cache.intent(placed.intent_id)
    assert intent is not None
    assert answers
    # Kraken's last Time answer before the send, never an estimate from a local clock.
    assert intent.not_before == answers[-1]
    order = exchange_orders(sb)[str(placed.txid)]
    assert intent.not_before <= order.opentm


def test_a_sync_never_reports_this_databases_own_orders_as_foreign(
    sb: Sandbox, mgr: OrderManager
) -> None:
    group = mgr.new_group("g")
    placed = [mgr.place(limit(sb)), mgr.place(limit(sb), group=group)]
    result = mgr.sync()
    assert result.open == 2
    assert result.foreign == ()
    assert mgr.cache.placed_here(str(p.txid) for p in placed) == {p.txid for p in placed}


# --- closing --------------------------------------------------------------------------------


class _ClosingAdapter(requests.adapters.BaseAdapter):
    """The sandbox's in-process adapter, unusable once closed (as a closed pool would be)."""

    def __init__(self, inner: requests.adapters.BaseAdapter) -> None:
        super().__init__()
        self.inner = inner
        self.closed = False

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        if self.closed:
            raise requests.ConnectionError("the transport was closed")
        return self.inner.send(request, *args, **kwargs)

    def close(self) -> None:
        self.closed = True


def test_a_closed_manager_never_closes_a_client_it_was_given(sb: Sandbox, tmp_path: Path) -> None:
    assert sb.adapter is not None
    adapter = _ClosingAdapter(sb.adapter)
    transport = Transport()
    transport.mount(IN_PROCESS_URL, adapter)
    client = sb.client(transport=transport)
    clock = manual(sb)
    m = OrderManager(client, tmp_path / "c.db", clock=clock.time, sleep=clock.advance)
    OPENED.append(m)
    placed = m.place(limit(sb))
    m.close()
    assert not adapter.closed
    assert placed.txid is not None
    assert client.cancel_order(txid=placed.txid).count == 1
    client.close()
    assert adapter.closed  # the adapter does see a real close


def test_a_closed_manager_leaves_a_cache_it_was_given_open(sb: Sandbox, tmp_path: Path) -> None:
    with OrderCache(tmp_path / "given.db") as cache:
        m = manager(sb, cache)
        placed = m.place(limit(sb))
        m.close()
        # The caller's cache is still theirs to use, and holds what the manager wrote.
        assert cache.intent(placed.intent_id) is not None
        order = cache.order(str(placed.txid))
        assert order is not None
        cache.upsert_orders([attrs.evolve(order, status=OrderStatus.OPEN)], synced_at=1.0)
        assert [o.txid for o in cache.open_orders()] == [placed.txid]

"""Placing: plain placements, ambiguous outcomes, dry runs, failures around the send."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import textwrap
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
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

from oms.cache import Intent, IntentState, OrderCache
from oms.errors import (
    ConnectError,
    ConnectionLost,
    InsufficientFunds,
    OutcomeUnknownError,
    ValidationError,
)
from oms.manager import (
    DryRunPlacedOrder,
    OrderManager,
    OrderNotPlaced,
    Placement,
    PlacementNotRecorded,
)
from oms.models import AddOrderResult, OrderStatus, ServerTime
from oms.orders import OrderRequest
from oms.sandbox import ManualClock, Sandbox
from oms.userref import RandomAllocator

# --- plain placement --------------------------------------------------------------------------


def test_a_placement_is_recorded_then_synced(sb: Sandbox, mgr: OrderManager) -> None:
    placed = mgr.place(limit(sb))
    assert placed.placed
    assert placed.txid is not None
    assert placed.attempts == 1
    assert not placed.reconciled
    intent = mgr.cache.intent(placed.intent_id)
    assert intent is not None
    assert intent.state is IntentState.PLACED
    assert intent.txid == placed.txid
    cached = mgr.cache.order(placed.txid)
    assert cached is not None
    assert cached.userref == placed.userref
    assert cached.status is OrderStatus.PENDING  # as sent, until the next sync
    mgr.sync()
    assert mgr.cache.order(placed.txid) == exchange_orders(sb)[placed.txid]


def test_unique_id_style_gives_every_order_its_own_userref(sb: Sandbox, mgr: OrderManager) -> None:
    refs = [mgr.place(limit(sb)).userref for _ in range(3)]
    assert len(set(refs)) == 3
    for ref in refs:
        assert len(with_userref(sb, ref)) == 1


def test_a_userref_chosen_by_hand_is_used(sb: Sandbox, mgr: OrderManager) -> None:
    placed = mgr.place(OrderRequest(**{**fields_of(limit(sb)), "userref": 424242}))
    assert placed.userref == 424242
    assert [o.txid for o in with_userref(sb, 424242)] == [placed.txid]


def test_random_allocator_can_be_plugged_in(sb: Sandbox, tmp_path: Path) -> None:

    cache = OrderCache(tmp_path / "r.db")
    m = manager(
        sb, cache, allocator=RandomAllocator(rng=random.Random(5), in_use=cache.userref_in_use)
    )
    placed = m.place(limit(sb))
    assert 1 <= placed.userref <= 2**31 - 1
    m.close()
    cache.close()


def test_validate_places_nothing_and_records_nothing_as_placed(
    sb: Sandbox, mgr: OrderManager
) -> None:
    result = mgr.place(limit(sb), validate=True)
    assert result.validated
    assert result.txid is None
    assert exchange_orders(sb) == {}
    assert mgr.cache.count() == 0
    intent = mgr.cache.intent(result.intent_id)
    assert intent is not None
    assert intent.state is IntentState.VALIDATED


def test_a_definite_rejection_is_raised_and_recorded(sb: Sandbox, mgr: OrderManager) -> None:
    with pytest.raises(InsufficientFunds):
        mgr.place(limit(sb, volume="1000"))
    (intent,) = mgr.cache.intents()
    assert intent.state is IntentState.REJECTED
    assert exchange_orders(sb) == {}


def test_a_price_off_the_tick_is_refused_before_any_intent(sb: Sandbox, mgr: OrderManager) -> None:
    with pytest.raises(ValidationError) as info:
        mgr.place(limit(sb, price=Decimal("30000.05")))
    assert info.value.rule in ("pair_decimals", "tick_size")
    assert mgr.cache.intents() == []


def test_cl_ord_id_is_refused(sb: Sandbox, mgr: OrderManager) -> None:
    req = OrderRequest(**fields_of(limit(sb)), cl_ord_id="my-order-1")
    with pytest.raises(ValidationError):
        mgr.place(req)


# --- ambiguous outcomes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "sends", "committed"),
    [
        ({"kind": "drop_after_commit"}, 1, True),
        ({"kind": "html", "status": 502}, 1, True),  # Cloudflare 502 after the origin acted
        ({"kind": "html", "status": 520}, 1, True),
        ({"kind": "delay", "delay": 30.0}, 1, True),  # answer later than the read timeout
        ({"kind": "drop_before_commit"}, 2, False),
        ({"kind": "html", "status": 502, "when": "before"}, 2, False),
        ({"kind": "unavailable"}, 2, False),
        ({"kind": "busy"}, 2, False),
        ({"kind": "error", "error": "EService:Deadline elapsed"}, 2, False),
        ({"kind": "error", "error": "EGeneral:Internal error"}, 2, False),
        ({"kind": "delay", "delay": 30.0, "when": "before"}, 2, False),  # arrives past deadline
    ],
)
def test_an_ambiguous_outcome_is_reconciled_never_duplicated(
    sb: Sandbox, mgr: OrderManager, fault: dict[str, Any], sends: int, committed: bool
) -> None:
    mgr.place(limit(sb))  # warm: pair info cached, recovery done
    sb.faults.add(method="AddOrder", count=1, **fault)
    before = sb.clock.time()
    placed = mgr.place(limit(sb))
    assert placed.placed
    assert placed.attempts == sends
    assert placed.reconciled is committed
    (order,) = with_userref(sb, placed.userref)
    assert order.txid == placed.txid
    # It waited for the deadline (server time) before looking: the request could no longer act.
    assert sb.clock.time() > before + mgr.deadline


def test_an_order_that_filled_meanwhile_is_found_in_closed_orders(
    sb: Sandbox, mgr: OrderManager
) -> None:
    last = sb.market.last_price("XBTUSD")
    sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
    # A market-crossing limit buy fills at once: only ClosedOrders can find it.
    placed = mgr.place(limit(sb, price=(last * Decimal("1.2")).quantize(Decimal("0.1"))))
    assert placed.reconciled
    (order,) = with_userref(sb, placed.userref)
    assert order.status is OrderStatus.CLOSED
    assert order.txid == placed.txid


def test_gives_up_after_bounded_attempts_when_provably_absent(sb: Sandbox, tmp_path: Path) -> None:
    m = manager(sb, tmp_path / "o.db", max_attempts=2)
    sb.faults.add(method="AddOrder", kind="drop_before_commit", count=2)
    with pytest.raises(OrderNotPlaced) as info:
        m.place(limit(sb))
    assert info.value.outcome_known
    intent = m.cache.intent(info.value.intent_id)
    assert intent is not None
    assert intent.state is IntentState.ABSENT
    assert intent.attempts == 2
    assert exchange_orders(sb) == {}


def test_an_undecidable_outcome_raises_and_is_resolved_later(
    sb: Sandbox, mgr: OrderManager
) -> None:
    mgr.place(limit(sb))
    sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
    # Every lookup fails: the manager asks 3 times, the client tries each 4 times.
    sb.faults.add(method="OpenOrders", kind="html", status=502, when="before", count=2 * 12)
    with pytest.raises(OutcomeUnknownError) as info:
        mgr.place(limit(sb))
    intent_id = info.value.intent_id
    assert intent_id is not None
    intent = mgr.cache.intent(intent_id)
    assert intent is not None
    assert intent.state is IntentState.UNKNOWN
    assert intent.userref == info.value.userref
    assert intent.params["pair"] == "XBTUSD"
    # While the exchange still cannot be asked, nothing new is placed.
    with pytest.raises(OutcomeUnknownError):
        mgr.place(limit(sb))
    assert sb.faults.rules == []  # both placements used up their lookups
    later = mgr.place(limit(sb))
    assert later.placed
    resolved = mgr.cache.intent(intent_id)
    assert resolved is not None
    assert resolved.state is IntentState.PLACED
    assert len(with_userref(sb, resolved.userref)) == 1


def test_group_lookup_never_adopts_an_order_already_claimed(sb: Sandbox, mgr: OrderManager) -> None:
    group = mgr.new_group("twins")
    req = limit(sb)
    first = mgr.place(req, group=group)
    sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
    second = mgr.place(req, group=group)  # identical order, same userref
    assert second.reconciled
    assert second.txid != first.txid
    assert {o.txid for o in with_userref(sb, group.userref)} == {first.txid, second.txid}


# --- dry runs ---------------------------------------------------------------------------------


def exchange_ignores_validate(monkeypatch: pytest.MonkeyPatch, m: OrderManager) -> None:
    """The exchange (or a proxy that drops the flag) places validate=true requests for real;
    the client's own check of the answer then raises ResponseShapeError."""
    client = m.client

    def add_order(
        request: OrderRequest, *, now: float | None = None, retry: object = None
    ) -> AddOrderResult:
        params = attrs.evolve(request, validate=False).to_params(now=now)
        return AddOrderResult.from_api(client.call("AddOrder", **params), validate=True)

    monkeypatch.setattr(client, "add_order", add_order)


def test_a_dry_run_answered_with_a_txid_is_reconciled_never_resent(
    sb: Sandbox, mgr: OrderManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    exchange_ignores_validate(monkeypatch, mgr)
    with pytest.raises(DryRunPlacedOrder) as info:
        mgr.place(limit(sb), validate=True)
    error = info.value
    (order,) = exchange_orders(sb).values()  # one real order, never a second
    assert error.txid == order.txid
    assert error.userref == order.userref
    assert mgr.requests["AddOrder"] == 1
    intent = mgr.cache.intent(error.intent_id)
    assert intent is not None
    assert intent.state is IntentState.PLACED
    assert intent.txid == order.txid
    assert mgr.cache.order(order.txid) is not None  # tracked


@pytest.mark.parametrize("lookup_fails", [False, True])
def test_an_ambiguous_dry_run_is_looked_up_before_it_is_sent_again(
    sb: Sandbox, mgr: OrderManager, lookup_fails: bool
) -> None:
    mgr.place(limit(sb))  # warm
    sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
    if lookup_fails:
        sb.faults.add(method="OpenOrders", kind="html", status=502, when="before", count=12)
    before = sb.clock.time()
    if lookup_fails:
        with pytest.raises(OutcomeUnknownError) as info:
            mgr.place(limit(sb), validate=True)
        intent = mgr.cache.intent(str(info.value.intent_id))
        assert intent is not None
        assert intent.state is IntentState.UNKNOWN
        return
    result = mgr.place(limit(sb), validate=True)
    assert result.validated
    assert result.attempts == 2
    assert sb.clock.time() > before + mgr.deadline  # waited for the deadline, then looked


def test_recovery_looks_up_a_dry_run_instead_of_declaring_it_absent(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "dry.db"
    doomed = crashing_manager(sb, db)
    doomed.place(limit(sb))
    exchange_ignores_validate(monkeypatch, doomed)
    sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
    with pytest.raises(Crash):
        doomed.place(limit(sb), validate=True)
    doomed.ownership.release()
    (left,) = doomed.cache.intents(states=[IntentState.PENDING, IntentState.UNKNOWN])
    assert left.validate
    survivor = manager(sb, db)
    report = survivor.recover()
    assert report.placed == (left.id,)
    resolved = survivor.cache.intent(left.id)
    assert resolved is not None
    assert resolved.txid is not None
    assert survivor.cache.order(resolved.txid) is not None


# --- failures around the send -----------------------------------------------------------------


def default_clock_manager(sb: Sandbox, db: Path, **kw: Any) -> OrderManager:
    """A manager that reads the server's time from Time, as in production (sleep still moves
    the sandbox clock)."""
    clock = sb.clock
    assert isinstance(clock, ManualClock)
    made = OrderManager(sb.client(), db, sleep=clock.advance, **kw)
    OPENED.append(made)
    return made


def test_time_failing_while_waiting_for_the_deadline_leaves_the_intent_unknown(
    sb: Sandbox, tmp_path: Path
) -> None:
    m = default_clock_manager(sb, tmp_path / "t.db")
    m.place(limit(sb))  # warm: calibrated, recovered
    sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
    sb.faults.add(method="Time", kind="drop_before_commit", count=20)
    with pytest.raises(OutcomeUnknownError) as info:
        m.place(limit(sb))
    assert not info.value.outcome_known
    intent = m.cache.intent(str(info.value.intent_id))
    assert intent is not None
    assert intent.state is IntentState.UNKNOWN
    assert intent.userref == info.value.userref
    sb.faults.clear()
    m.place(limit(sb))  # resolves the unknown intent first
    resolved = m.cache.intent(intent.id)
    assert resolved is not None
    assert resolved.state is IntentState.PLACED
    assert m.cache.intents(states=[IntentState.PENDING, IntentState.UNKNOWN]) == []
    assert_every_order_tracked(sb, m)
    assert len(with_userref(sb, intent.userref)) == 1


def test_a_connect_error_after_an_ambiguous_send_is_not_reported_as_safe(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = default_clock_manager(sb, tmp_path / "c.db")
    m.place(limit(sb))
    sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
    real_add = m.client.add_order

    def down() -> ServerTime:
        raise ConnectError("GET /0/public/Time: could not connect (network down)")

    def add(request: OrderRequest, **kw: Any) -> AddOrderResult:
        try:
            return real_add(request, **kw)
        finally:
            monkeypatch.setattr(m.client, "time", down)  # the network fails right after

    monkeypatch.setattr(m.client, "add_order", add)
    with pytest.raises(OutcomeUnknownError) as info:
        m.place(limit(sb))
    assert "ConnectError" in str(info.value)  # the lookup's failure, named
    assert (info.value.outcome_known, info.value.retry_safe) == (False, False)
    assert info.value.intent_id is not None
    monkeypatch.undo()
    m.place(limit(sb))
    assert_every_order_tracked(sb, m)
    assert m.cache.intents(states=[IntentState.PENDING, IntentState.UNKNOWN]) == []


def test_a_server_clock_that_never_passes_the_deadline_names_the_intent(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = sb.clock
    assert isinstance(clock, ManualClock)
    m = OrderManager(sb.client(), tmp_path / "s.db", clock=clock.time, sleep=lambda s: None)
    OPENED.append(m)
    m.place(limit(sb))
    frozen = m.client.time()
    # Kraken's Time stuck before the deadline: absence can never be proven, so the wait
    # gives up (bounded) and the intent stays unknown, named.
    monkeypatch.setattr(m.client, "time", lambda: frozen)
    sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
    with pytest.raises(OutcomeUnknownError) as info:
        m.place(limit(sb))
    intent = m.cache.intent(str(info.value.intent_id))
    assert intent is not None
    assert intent.state is IntentState.UNKNOWN


def test_recovery_survives_a_time_failure(sb: Sandbox, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    doomed = crashing_manager(sb, db)
    doomed.place(limit(sb))
    sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
    with pytest.raises(Crash):
        doomed.place(limit(sb))
    doomed.ownership.release()
    (left,) = doomed.cache.intents(states=[IntentState.PENDING, IntentState.UNKNOWN])
    survivor = default_clock_manager(sb, db)
    sb.faults.add(method="Time", kind="drop_before_commit", count=8)
    report = survivor.recover()
    assert report.unknown == (left.id,)
    sb.faults.clear()
    assert survivor.recover().placed == (left.id,)
    assert_every_order_tracked(sb, survivor)


def hold_write_lock(db: Path) -> sqlite3.Connection:
    """Another process holding the database's write lock (a long transaction)."""
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


def release(other: sqlite3.Connection) -> None:
    other.execute("ROLLBACK")
    # Closed explicitly: Python 3.13 reports connections left to the garbage collector.
    other.close()


@pytest.mark.parametrize("released", [True, False])
def test_a_cache_failure_after_a_successful_send_never_loses_the_order(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, released: bool
) -> None:
    db = tmp_path / "busy.db"
    cache = OrderCache(db, busy_timeout=0.02)
    clock = sb.clock
    assert isinstance(clock, ManualClock)
    holder: list[sqlite3.Connection] = []

    def sleep(seconds: float) -> None:
        if released and holder:  # the other writer finishes while the manager backs off
            release(holder.pop())
        clock.advance(seconds)

    m = OrderManager(sb.client(), cache, clock=clock.time, sleep=sleep)
    OPENED.append(m)
    m.place(limit(sb))
    real_add = m.client.add_order

    def add(request: OrderRequest, **kw: Any) -> AddOrderResult:
        result = real_add(request, **kw)
        holder.append(hold_write_lock(db))  # the lock is taken as the answer arrives
        return result

    monkeypatch.setattr(m.client, "add_order", add)
    if released:
        placed = m.place(limit(sb))
        assert placed.placed
        assert m.cache.order(str(placed.txid)) is not None
    else:
        with pytest.raises(PlacementNotRecorded) as info:
            m.place(limit(sb))
        (order,) = with_userref(sb, int(str(info.value.userref)))
        assert info.value.txid == order.txid
        release(holder.pop())
        monkeypatch.undo()
        m.place(limit(sb))  # recovery first: adopts the order the cache could not record
    assert_every_order_tracked(sb, m)
    assert m.cache.intents(states=[IntentState.PENDING, IntentState.UNKNOWN]) == []
    m.close()
    cache.close()


def test_keyboard_interrupt_after_the_send_propagates_and_the_order_stays_tracked(
    sb: Sandbox, mgr: OrderManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    mgr.place(limit(sb))
    real_adopt = mgr.cache.adopt
    calls: list[str] = []

    def adopt(*args: Any, **kw: Any) -> bool:
        calls.append("adopt")
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real_adopt(*args, **kw)

    monkeypatch.setattr(mgr.cache, "adopt", adopt)
    with pytest.raises(KeyboardInterrupt):
        mgr.place(limit(sb))
    monkeypatch.undo()
    mgr.place(limit(sb))
    assert_every_order_tracked(sb, mgr)
    assert mgr.cache.intents(states=[IntentState.PENDING, IntentState.UNKNOWN]) == []


def test_an_injected_clock_ahead_of_krakens_never_proves_absence_too_early(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = sb.clock
    assert isinstance(clock, ManualClock)
    m = OrderManager(
        sb.client(), tmp_path / "ahead.db", clock=lambda: clock.time() + 20, sleep=clock.advance
    )
    OPENED.append(m)
    m.place(limit(sb))
    real_add, real_open = m.client.add_order, m.client.open_orders
    held: list[OrderRequest] = []

    def add(request: OrderRequest, **kw: Any) -> AddOrderResult:
        if not held and m.requests["AddOrder"] == 2:  # this one is still on its way
            held.append(request)
            raise ConnectionLost("POST /0/private/AddOrder: connection dropped")
        return real_add(request, **kw)

    def open_orders(**kw: Any) -> Any:
        seen = real_open(**kw)
        request = held[0] if held else None
        # It reaches Kraken right after the lookup, still before its deadline (Kraken's time).
        deadline = request.deadline if request is not None else None
        if request is not None and deadline is not None and clock.time() < deadline.timestamp() - 2:
            held.clear()
            real_add(request, **kw)
        return seen

    monkeypatch.setattr(m.client, "add_order", add)
    monkeypatch.setattr(m.client, "open_orders", open_orders)
    placed = m.place(limit(sb))
    assert len(with_userref(sb, placed.userref)) == 1  # never placed twice
    assert_every_order_tracked(sb, m)


def test_a_recovery_never_overrules_an_attempt_it_did_not_see(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recoverer that misjudged the owner dead read attempt 1; the owner has moved on to
    attempt 2, which is placed: the stale "absent" must not win, the order must be cached."""
    db = tmp_path / "cas.db"
    owner, recoverer = manager(sb, db), manager(sb, db)
    owner.place(limit(sb))
    sb.faults.add(method="AddOrder", kind="drop_before_commit", count=1)  # attempt 1: nothing
    stale: list[Intent] = []
    real_add = owner.client.add_order

    def add(request: OrderRequest, **kw: Any) -> AddOrderResult:
        if not stale:
            # Attempt 1: what the recoverer reads before the owner moves on.
            stale.extend(owner.cache.intents(states=[IntentState.PENDING]))
        else:
            # Attempt 2 is on its way: the recoverer's stale verdict lands now.
            recoverer.recovery.resolve_as(stale[0], IntentState.ABSENT)
        return real_add(request, **kw)

    monkeypatch.setattr(owner.client, "add_order", add)
    placed = owner.place(limit(sb))
    intent = owner.cache.intent(placed.intent_id)
    assert intent is not None
    assert (intent.state, intent.txid) == (IntentState.PLACED, placed.txid)
    assert owner.cache.order(str(placed.txid)) is not None


def test_a_placed_answer_wins_over_an_absent_verdict_reached_meanwhile(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "late.db"
    owner, recoverer = manager(sb, db), manager(sb, db)
    owner.place(limit(sb))
    real_add = owner.client.add_order

    def add(request: OrderRequest, **kw: Any) -> AddOrderResult:
        (intent,) = owner.cache.intents(states=[IntentState.PENDING])
        recoverer.recovery.resolve_as(intent, IntentState.ABSENT)  # wrong, but it happened
        return real_add(request, **kw)

    monkeypatch.setattr(owner.client, "add_order", add)
    placed = owner.place(limit(sb))
    intent = owner.cache.intent(placed.intent_id)
    assert intent is not None
    assert (intent.state, intent.txid) == (IntentState.PLACED, placed.txid)
    assert_every_order_tracked(sb, owner)


def test_an_absent_verdict_before_the_next_attempt_stops_it(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "stop.db"
    owner, recoverer = manager(sb, db), manager(sb, db)
    owner.place(limit(sb))
    sb.faults.add(method="AddOrder", kind="drop_before_commit", count=1)
    real_closed = owner.client.iter_closed_orders

    def closed_orders(**kw: Any) -> Any:
        # The lookup after attempt 1 ends here; before the owner moves on to attempt 2, a
        # recoverer judges the intent absent.
        yield from real_closed(**kw)
        for intent in owner.cache.intents(states=[IntentState.PENDING]):
            recoverer.recovery.resolve_as(intent, IntentState.ABSENT)

    monkeypatch.setattr(owner.client, "iter_closed_orders", closed_orders)
    with pytest.raises(OrderNotPlaced):
        owner.place(limit(sb))
    assert owner.requests["AddOrder"] == 2  # the warm-up and attempt 1; no attempt 2
    assert len(exchange_orders(sb)) == 1


_OWNER_CHILD = textwrap.dedent(
    """
    import sys
    from oms.manager import OrderManager
    from oms.sandbox import ManualClock, Sandbox
    sb = Sandbox.in_process(seed=3, clock=ManualClock(1.7e9))  # the parent's exchange
    m = OrderManager(sb.client(), sys.argv[1], clock=sb.clock.time, sleep=sb.clock.advance)
    print(m.ownership.token, flush=True)
    sys.stdin.read()  # alive until the parent closes our stdin
    """
)


def test_a_live_manager_is_seen_alive_through_any_path_to_its_database(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "x.db"
    (tmp_path / "current.db").symlink_to(real)
    child = subprocess.Popen(
        [sys.executable, "-c", _OWNER_CHILD, str(real)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        token = child.stdout.readline().strip()
        monkeypatch.chdir(tmp_path)
        for alias in (tmp_path / "current.db", Path("x.db"), tmp_path / "." / "x.db"):
            other = manager(sb, alias)
            assert other.ownership.alive(token), alias
            other.close()
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
        assert child.stdout is not None
        child.stdout.close()
    assert not manager(sb, tmp_path / "current.db").ownership.alive(token)


def test_close_waits_for_a_placement_in_flight(sb: Sandbox, tmp_path: Path) -> None:
    clock = sb.clock
    assert isinstance(clock, ManualClock)
    waiting, go = threading.Event(), threading.Event()

    def sleep(seconds: float) -> None:
        waiting.set()
        go.wait(10)
        clock.advance(seconds)

    db = tmp_path / "close.db"
    busy = OrderManager(sb.client(), db, clock=clock.time, sleep=clock.advance)
    OPENED.append(busy)
    busy.place(limit(sb))
    busy.time.sleep = sleep
    sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
    results: list[object] = []
    placing = threading.Thread(target=lambda: results.append(busy.place(limit(sb))))
    placing.start()
    assert waiting.wait(10)  # in flight: waiting for its deadline
    closing = threading.Thread(target=busy.close)
    closing.start()
    closing.join(0.2)
    assert closing.is_alive()  # close() waits for the placement
    assert manager(sb, db).recover().resolved == 0  # still owned, so left alone
    go.set()
    placing.join(10)
    closing.join(10)
    assert not closing.is_alive()
    (placed,) = results
    assert isinstance(placed, Placement)
    assert placed.placed
    with pytest.raises(ValidationError):
        busy.place(limit(sb))

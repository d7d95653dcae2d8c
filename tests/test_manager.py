"""Whatever the network does, each placement ends as exactly one exchange order or provably none."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

from oms.cache import Intent, IntentState, OrderCache
from oms.errors import (
    ConnectError,
    ConnectionLost,
    InsufficientFunds,
    InvalidOrder,
    OmsError,
    OutcomeUnknownError,
    UnknownOrder,
    ValidationError,
)
from oms.manager import (
    DryRunPlacedOrder,
    OrderManager,
    OrderNotPlaced,
    Placement,
    PlacementNotRecorded,
)
from oms.models import AddOrderResult, CancelResult, Order, OrderStatus, ServerTime
from oms.orders import OrderRequest
from oms.sandbox import ManualClock, Sandbox
from oms.userref import RandomAllocator

START = 1_700_000_000.0


_OPENED: list[OrderManager] = []


@pytest.fixture(autouse=True)
def _nonce_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OMS_DATA_DIR", str(tmp_path / "data"))
    yield
    while _OPENED:  # close every manager a test made (their SQLite connections with them)
        _OPENED.pop().close()


@pytest.fixture
def sb() -> Sandbox:
    return Sandbox.in_process(seed=3, clock=ManualClock(START))


def manager(sb: Sandbox, db: Path | OrderCache, **kw: Any) -> OrderManager:
    clock = sb.clock
    assert isinstance(clock, ManualClock)
    made = OrderManager(sb.client(), db, clock=clock.time, sleep=clock.advance, **kw)
    _OPENED.append(made)
    return made


@pytest.fixture
def mgr(sb: Sandbox, tmp_path: Path) -> Iterator[OrderManager]:
    m = manager(sb, tmp_path / "oms.db")
    yield m
    m.close()


def far_price(sb: Sandbox, side: str = "buy", pair: str = "XBTUSD") -> Decimal:
    """A limit price that will not fill during a test: half (or double) the market."""
    last = sb.market.last_price(pair)
    factor = Decimal("0.5") if side == "buy" else Decimal("2")
    return (last * factor).quantize(Decimal("0.1"))


def limit(
    sb: Sandbox, *, side: str = "buy", volume: str = "0.001", price: Decimal | None = None
) -> OrderRequest:
    return OrderRequest(
        pair="XBTUSD",
        side=side,
        ordertype="limit",
        volume=volume,
        price=price if price is not None else far_price(sb, side),
    )


def exchange_orders(sb: Sandbox) -> dict[str, Order]:
    """Every order the exchange has for the account, asked through a fault-free path that
    leaves the key's REST counter alone (its own client would not share the manager's
    pacing, and history calls cost 4)."""
    saved = sb.faults.rules
    sb.faults.clear()
    config = sb.exchange.config
    sb.exchange.config = attrs.evolve(config, rest_rate_limit=False)
    try:
        client = sb.client()
        found = {o.txid: o for o in client.open_orders()}
        found.update({o.txid: o for o in client.iter_closed_orders()})
    finally:
        sb.exchange.config = config
        for rule in saved:
            sb.faults.add(
                kind=rule.kind, method=rule.method, count=rule.remaining,
                probability=rule.probability, when=rule.when,
                status=rule.status if rule.kind.value == "html" else None,
                delay=rule.delay or None, error=rule.error, skip=rule.skip,
            )  # fmt: skip
    return found


def with_userref(sb: Sandbox, userref: int) -> list[Order]:
    return [o for o in exchange_orders(sb).values() if o.userref == userref]


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
    placed = mgr.place(OrderRequest(**{**_fields(limit(sb)), "userref": 424242}))
    assert placed.userref == 424242
    assert [o.txid for o in with_userref(sb, 424242)] == [placed.txid]


def _fields(req: OrderRequest) -> dict[str, Any]:
    return {
        "pair": req.pair,
        "side": req.side,
        "ordertype": req.ordertype,
        "volume": req.volume,
        "price": req.price,
    }


def test_random_allocator_can_be_plugged_in(sb: Sandbox, tmp_path: Path) -> None:
    import random

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
    req = OrderRequest(**_fields(limit(sb)), cl_ord_id="my-order-1")
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
    _OPENED.append(made)
    return made


def assert_every_order_tracked(sb: Sandbox, m: OrderManager) -> None:
    cached = m.cache.txids()
    for order in exchange_orders(sb).values():
        assert order.txid in cached, order


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
    _OPENED.append(m)
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
    _OPENED.append(m)
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
    _OPENED.append(m)
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
    _OPENED.append(busy)
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
    stranger = sb.client().add_order(OrderRequest(**_fields(limit(sb)), userref=group.userref))
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
            **_fields(limit(sb, price=far_price(sb) - 100)), userref=group.userref
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
    hand = mgr.place(OrderRequest(**_fields(limit(sb)), userref=1))
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


# --- recovery ---------------------------------------------------------------------------------


class Crash(BaseException):
    """Stands for the process dying: nothing after it runs (BaseException skips cleanup code)."""


def crashing_manager(sb: Sandbox, db: Path) -> OrderManager:
    clock = sb.clock
    assert isinstance(clock, ManualClock)

    def die(seconds: float) -> None:
        raise Crash

    made = OrderManager(sb.client(), db, clock=clock.time, sleep=die)
    _OPENED.append(made)
    return made


@pytest.mark.parametrize(
    ("kind", "placed"), [("drop_after_commit", True), ("drop_before_commit", False)]
)
def test_a_restart_resolves_what_a_crash_left_before_placing(
    sb: Sandbox, tmp_path: Path, kind: str, placed: bool
) -> None:
    db = tmp_path / "crash.db"
    doomed = crashing_manager(sb, db)
    doomed.place(limit(sb))  # recovery and pair lookup done: the next send is the crash
    sb.faults.add(method="AddOrder", kind=kind, count=1)
    with pytest.raises(Crash):
        doomed.place(limit(sb))  # dies while waiting for the deadline
    doomed.ownership.release()  # what the OS does when the process dies
    # A real crash leaves it pending; an exception that unwinds marks it unknown first.
    (pending,) = doomed.cache.intents(states=[IntentState.PENDING, IntentState.UNKNOWN])

    survivor = manager(sb, db)
    report = survivor.recover()
    assert (report.placed, report.absent) == (
        ((pending.id,), ()) if placed else ((), (pending.id,))
    )
    resolved = survivor.cache.intent(pending.id)
    assert resolved is not None
    assert len(with_userref(sb, pending.userref)) == (1 if placed else 0)  # never re-sent
    if placed:
        assert resolved.txid is not None
        assert survivor.cache.order(resolved.txid) is not None


def test_recovery_runs_by_itself_before_the_first_placement(sb: Sandbox, tmp_path: Path) -> None:
    db = tmp_path / "auto.db"
    doomed = crashing_manager(sb, db)
    doomed.place(limit(sb))
    sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
    with pytest.raises(Crash):
        doomed.place(limit(sb))
    doomed.ownership.release()
    survivor = manager(sb, db)
    survivor.place(limit(sb))
    assert survivor.cache.intents(states=[IntentState.PENDING, IntentState.UNKNOWN]) == []
    assert all(len(with_userref(sb, i.userref)) == 1 for i in survivor.cache.intents())


def test_intents_of_a_live_manager_are_left_alone(sb: Sandbox, tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    busy = crashing_manager(sb, db)
    busy.place(limit(sb))
    sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
    with pytest.raises(Crash):
        busy.place(limit(sb))  # its intent is still pending; the manager is still alive
    other = manager(sb, db)
    assert other.recover().resolved == 0
    assert len(busy.cache.intents(states=[IntentState.PENDING, IntentState.UNKNOWN])) == 1


_CHILD = textwrap.dedent(
    """
    import sys
    from decimal import Decimal
    from oms.auth import Credentials
    from oms.client import KrakenClient
    from oms.manager import OrderManager
    from oms.orders import OrderRequest

    base_url, key, secret, db, price = sys.argv[1:6]
    client = KrakenClient(Credentials(key, secret), base_url=base_url, timeout=(3.05, 120))
    manager = OrderManager(client, db, deadline=5)
    print("placing", flush=True)
    manager.place(OrderRequest(pair="XBTUSD", side="buy", ordertype="limit",
                               volume="0.001", price=Decimal(price)))
    print("not killed?!", flush=True)
    """
)


def test_kill_9_mid_placement_then_restart(tmp_path: Path) -> None:
    """A real process, killed with SIGKILL while AddOrder's answer is delayed."""
    clock = ManualClock(time.time())  # near real time: the child's client checks deadlines
    with Sandbox.serve(seed=4, clock=clock) as sb:
        db = tmp_path / "kill.db"
        price = str(far_price(sb))
        sb.faults.add(method="AddOrder", kind="delay", delay=600.0)  # commits, answers late
        # The child holds its nonce lock while it waits for the answer (the lock covers the
        # whole request); this process keeps its own nonce file, later (so larger) nanoseconds.
        env = {**os.environ, "OMS_DATA_DIR": str(tmp_path / "child-data")}
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, sb.base_url, sb.key, sb.secret, str(db), price],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "placing"
            client = sb.client()
            waited = 0.0
            while not client.open_orders().orders and waited < 30:  # until the order exists
                time.sleep(0.05)
                waited += 0.05
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            assert child.stdout is not None
            child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        sb.faults.clear()

        survivor = OrderManager(sb.client(), db, clock=clock.time, sleep=clock.advance)
        (pending,) = survivor.cache.intents(states=[IntentState.PENDING])
        after = survivor.place(limit(sb))  # recovery first, then this placement
        resolved = survivor.cache.intent(pending.id)
        assert resolved is not None
        assert resolved.state is IntentState.PLACED
        on_exchange = client.open_orders().orders
        assert sorted(o.userref or 0 for o in on_exchange) == sorted(
            [pending.userref, after.userref]
        )
        survivor.close()


def test_a_lookup_never_adopts_a_placement_in_flight_in_the_same_group(tmp_path: Path) -> None:
    """Two identical orders of one group from two threads; A's AddOrder is lost before the
    exchange commits it. B is answered while A looks its order up: A must not adopt B's order
    (two callers told "placed" for one order, and B's intent stuck), so they take turns."""
    exchange = Sandbox.in_process(seed=3, clock=ManualClock(1_700_000_000.0))
    clock = exchange.clock
    assert isinstance(clock, ManualClock)
    m = OrderManager(exchange.client(), tmp_path / "race.db", clock=clock.time, sleep=clock.advance)
    _OPENED.append(m)
    group = m.new_group("g")
    price = (exchange.market.last_price("XBTUSD") * Decimal("0.5")).quantize(Decimal("0.1"))
    m.recover()
    exchange.faults.add(method="AddOrder", kind="drop_before_commit", count=1)
    a_fetching, b_sent, a_looked = threading.Event(), threading.Event(), threading.Event()
    real_fetch, real_record, real_lookup = m.lookup.by_userref, m.recorder.placed, m.lookup.find

    def fetch(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name == "A":
            a_fetching.set()
            b_sent.wait(1)  # without turns B is answered now; with them it is not sent yet
        return real_fetch(*args, **kwargs)

    def record(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name == "B":
            b_sent.set()
            a_looked.wait(5)
        return real_record(*args, **kwargs)

    def lookup(*args: Any, **kwargs: Any) -> Any:
        try:
            return real_lookup(*args, **kwargs)
        finally:
            if threading.current_thread().name == "A":
                a_looked.set()

    m.lookup.by_userref = fetch  # type: ignore[method-assign]
    m.recorder.placed = record  # type: ignore[method-assign]
    m.lookup.find = lookup  # type: ignore[method-assign]
    results: dict[str, object] = {}

    def run(name: str) -> None:
        request = OrderRequest(
            pair="XBTUSD", side="buy", ordertype="limit", volume="0.001", price=price
        )
        try:
            results[name] = m.place(request, group=group)
        except OmsError as exc:
            results[name] = exc

    a = threading.Thread(target=run, args=("A",), name="A")
    a.start()
    assert a_fetching.wait(10)
    b = threading.Thread(target=run, args=("B",), name="B")
    b.start()
    a.join(20)
    b.join(20)
    placed = [r for r in results.values() if isinstance(r, Placement)]
    assert len(placed) == 2, results
    on_exchange = {o.txid for o in with_userref(exchange, group.userref)}
    assert {p.txid for p in placed} == on_exchange
    assert len(on_exchange) == 2
    assert_every_order_tracked(exchange, m)

"""Whatever the network does, each placement ends as exactly one exchange order or provably none."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from oms.cache import IntentState, OrderCache
from oms.errors import InsufficientFunds, OutcomeUnknownError, ValidationError
from oms.manager import OrderManager, OrderNotPlaced
from oms.models import Order, OrderStatus
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
    """Every order the exchange has for the account, asked through a fault-free path."""
    saved = sb.faults.rules
    sb.faults.clear()
    try:
        client = sb.client()
        found = {o.txid: o for o in client.open_orders()}
        found.update({o.txid: o for o in client.iter_closed_orders()})
    finally:
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


def test_a_group_cancel_mismatch_is_reported(sb: Sandbox, mgr: OrderManager) -> None:
    group = mgr.new_group("g")
    mine = mgr.place(limit(sb), group=group)
    # An order with the same userref placed behind the manager's back (another program).
    stranger = sb.client().add_order(OrderRequest(**_fields(limit(sb)), userref=group.userref))
    result = mgr.cancel_group(group)
    assert result.count == 2
    assert result.expected == 1
    assert not result.ok
    assert result.confirmed_empty
    assert mgr.cache.order(mine.txid) is not None
    refreshed = mgr.cache.order(mine.txid)
    assert refreshed is not None
    assert refreshed.status is OrderStatus.CANCELED
    assert stranger.txid is not None


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
    doomed._owner.release()  # what the OS does when the process dies
    (pending,) = doomed.cache.intents(states=[IntentState.PENDING])

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
    doomed._owner.release()
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
    assert len(busy.cache.intents(states=[IntentState.PENDING])) == 1


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

"""Recovery after a crash, across processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from support import (
    OPENED,
    Crash,
    assert_every_order_tracked,
    crashing_manager,
    far_price,
    limit,
    manager,
    with_userref,
)

from oms.cache import IntentState
from oms.errors import (
    OmsError,
)
from oms.manager import (
    OrderManager,
    Placement,
)
from oms.orders import OrderRequest
from oms.sandbox import ManualClock, Sandbox

# --- recovery ---------------------------------------------------------------------------------


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
    OPENED.append(m)
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

"""Under random faults, crashes, restarts and steps of the manager's clock (both ways, up to
60 s, at any point) no order is ever on the exchange twice or untracked, no placement is
reported failed that reached the exchange, and after a sync the cache equals the exchange."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from support import Crash

from oms.auth import key_fingerprint
from oms.cache import IntentState, OrderCache
from oms.errors import OutcomeUnknownError, ServerTimeUnavailable, ValidationError
from oms.manager import OrderManager, OrderNotPlaced
from oms.models import Order
from oms.nonce import NonceSource
from oms.orders import OrderRequest
from oms.sandbox import ManualClock, Sandbox, SandboxConfig

pytestmark = pytest.mark.slow

# Faults on AddOrder: the ambiguous ones (the order may exist) and the plain ones.
ADD_FAULTS: list[dict[str, Any] | None] = [
    None,
    {"kind": "drop_after_commit"},
    {"kind": "drop_before_commit"},
    {"kind": "html", "status": 502},
    {"kind": "html", "status": 520, "when": "before"},
    {"kind": "delay", "delay": 30.0},
    {"kind": "delay", "delay": 30.0, "when": "before"},
    {"kind": "unavailable"},
    {"kind": "busy"},
    {"kind": "error", "error": "EService:Deadline elapsed"},
    {"kind": "error", "error": "EGeneral:Internal error"},
]


class ManagerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="oms-stateful-"))
        self.clock = ManualClock(1_700_000_000.0)
        # Limits off: the property is about faults and crashes, and pacing would only slow it.
        config = SandboxConfig(seed=5).without_limits()
        self.sb = Sandbox.in_process(seed=5, clock=self.clock, config=config)
        self.nonces = NonceSource(key_fingerprint(self.sb.key), directory=self.folder)
        # The observer must not move time (its client's pacing would advance the clock).
        self.observer = self.sb.client(nonce_source=self.nonces, sleep=lambda seconds: None)
        self.db = self.folder / "oms.db"
        self.crash_next_wait = False
        # Another process's write transaction, ended by the manager's next back-off if set.
        self.writer: sqlite3.Connection | None = None
        self.release_on_sleep = False
        # The manager's clock is the exchange's plus this skew (an NTP step, a resumed VM).
        self.skew = 0.0
        self.manager = self._new_manager()
        self.synced = False
        self.hand_chosen = 0

    def _new_manager(self) -> OrderManager:
        def sleep(seconds: float) -> None:
            if self.crash_next_wait:
                self.crash_next_wait = False
                raise Crash
            if self.release_on_sleep:
                self._release_writer()
            self.clock.advance(seconds)

        client = self.sb.client(nonce_source=self.nonces)
        # A short busy timeout, so a locked database fails fast instead of waiting 30 s.
        self.cache = OrderCache(self.db, busy_timeout=0.02)
        return OrderManager(
            client,
            self.cache,
            clock=lambda: self.clock.time() + self.skew,
            # Real time is the exchange's manual clock (every wait moves it); the skew is
            # what steps. With time.monotonic here, time passing looked like a step, and a
            # real step back could cancel it out unseen.
            monotonic=self.clock.time,
            sleep=sleep,
            deadline=10,
        )

    def _close_manager(self) -> None:
        self.manager.close()
        self.cache.close()

    def _release_writer(self) -> None:
        if self.writer is not None:
            self.writer.execute("ROLLBACK")
            self.writer.close()
            self.writer = None

    def teardown(self) -> None:
        self._release_writer()
        self._close_manager()
        shutil.rmtree(self.folder, ignore_errors=True)

    def exchange(self) -> dict[str, Order]:
        found = {o.txid: o for o in self.observer.open_orders()}
        found.update({o.txid: o for o in self.observer.iter_closed_orders()})
        return found

    # --- rules ---------------------------------------------------------------------------

    @initialize()
    def warm_up(self) -> None:
        self.manager.pair("XBTUSD")

    @rule(step=st.integers(min_value=-60, max_value=60))
    def clock_steps(self, step: int) -> None:
        """The manager's clock steps (between calls); it stays within 60 s of Kraken's."""
        self.skew = max(-60.0, min(60.0, self.skew + step))

    @rule(
        fault=st.sampled_from(ADD_FAULTS),
        offset=st.integers(min_value=-30, max_value=5),
        side=st.sampled_from(["buy", "sell"]),
        lookup_fails=st.booleans(),
        time_fails=st.booleans(),
        dry_run=st.sampled_from([False, False, False, True]),
        step_mid=st.sampled_from([None, None, -60, -8, 8, 60]),
    )
    def place(
        self,
        fault: dict[str, Any] | None,
        offset: int,
        side: str,
        lookup_fails: bool,
        time_fails: bool,
        dry_run: bool,
        step_mid: int | None,
    ) -> None:
        last = self.sb.market.last_price("XBTUSD")
        factor = 1 + Decimal(offset if side == "buy" else -offset) / 1000
        price = (last * factor).quantize(Decimal("0.1"))
        request = OrderRequest(
            pair="XBTUSD", side=side, ordertype="limit", volume="0.0002", price=price
        )
        if fault is not None:
            self.sb.faults.add(method="AddOrder", count=1, **fault)
            if lookup_fails:
                self.sb.faults.add(
                    method="OpenOrders", kind="html", status=502, when="before", count=12
                )
            if time_fails:  # Kraken's clock cannot be read to confirm the deadline passed
                self.sb.faults.add(method="Time", kind="drop_before_commit", count=8)
        client = self.manager.client
        real_add = client.add_order

        def add(req: OrderRequest, **kw: Any) -> Any:
            if step_mid is not None:  # the clock steps between the intent and the send
                self.skew = max(-60.0, min(60.0, self.skew + step_mid))
            return real_add(req, **kw)

        client.add_order = add  # type: ignore[method-assign]
        try:
            self.manager.place(request, validate=dry_run)
        except OrderNotPlaced as exc:
            not_placed = exc.userref
        except (OutcomeUnknownError, ServerTimeUnavailable):
            not_placed = None
        else:
            not_placed = None
        finally:
            del client.add_order
            self.sb.faults.clear()
        if not_placed is not None:
            # "Not placed" must be true: nothing on the exchange carries its userref.
            assert [o for o in self.exchange().values() if o.userref == not_placed] == []
        self.synced = False

    @rule(fault=st.sampled_from(["drop_after_commit", "drop_before_commit"]))
    def crash_mid_placement(self, fault: str) -> None:
        last = self.sb.market.last_price("XBTUSD")
        request = OrderRequest(
            pair="XBTUSD", side="buy", ordertype="limit", volume="0.0002",
            price=(last * Decimal("0.9")).quantize(Decimal("0.1")),
        )  # fmt: skip
        try:
            self.manager.place(request)  # settle any recovery first
        except (OrderNotPlaced, OutcomeUnknownError, ServerTimeUnavailable):
            return
        self.sb.faults.add(method="AddOrder", kind=fault, count=1)
        self.crash_next_wait = True
        with pytest.raises(Crash):
            self.manager.place(request)
        self.sb.faults.clear()
        self.restart()

    @rule(release_during_backoff=st.booleans())
    def database_locked_after_send(self, release_during_backoff: bool) -> None:
        """Another process holds the write lock as AddOrder's answer arrives: the order must
        be recorded once it can be, or left to recovery, never lost."""
        last = self.sb.market.last_price("XBTUSD")
        request = OrderRequest(
            pair="XBTUSD", side="buy", ordertype="limit", volume="0.0002",
            price=(last * Decimal("0.95")).quantize(Decimal("0.1")),
        )  # fmt: skip
        client = self.manager.client
        real_add = client.add_order

        def add(req: OrderRequest, **kw: Any) -> Any:
            result = real_add(req, **kw)
            self.writer = sqlite3.connect(self.db, isolation_level=None)
            self.writer.execute("BEGIN IMMEDIATE")
            return result

        client.add_order = add  # type: ignore[method-assign]
        self.release_on_sleep = release_during_backoff
        try:
            self.manager.place(request)
        except (OrderNotPlaced, OutcomeUnknownError, ServerTimeUnavailable):
            pass
        finally:
            del client.add_order
            self.release_on_sleep = False
            self._release_writer()
        self.synced = False

    @rule(userref=st.integers(min_value=1, max_value=40), group=st.booleans())
    def hand_chosen_userref(self, userref: int, group: bool) -> None:
        """A userref chosen by hand (a group's, or one order's): the allocator must never hand
        it out afterwards (never_twice would see two orders carrying it)."""
        if self.manager.cache.userref_in_use(userref):
            if group:
                with pytest.raises(ValidationError):
                    self.manager.new_group(f"hand-{userref}", userref=userref)
            return
        last = self.sb.market.last_price("XBTUSD")
        request = OrderRequest(
            pair="XBTUSD", side="buy", ordertype="limit", volume="0.0002",
            price=(last * Decimal("0.9")).quantize(Decimal("0.1")),
        )  # fmt: skip
        try:
            if group:
                self.manager.place(
                    request, group=self.manager.new_group(f"hand-{userref}", userref=userref)
                )
            else:
                self.manager.place(attrs.evolve(request, userref=userref))
        except (OrderNotPlaced, OutcomeUnknownError, ServerTimeUnavailable):
            return
        self.hand_chosen += 1
        self.synced = False

    @rule()
    def restart(self) -> None:
        # What the OS does to a dead process: its ownership lock goes, its memory is gone.
        self._close_manager()
        self.manager = self._new_manager()
        self.synced = False

    @rule(seconds=st.floats(min_value=1, max_value=900))
    def market_moves(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.synced = False

    @rule(data=st.data(), answer_lost=st.booleans())
    def cancel_one(self, data: st.DataObject, answer_lost: bool) -> None:
        open_orders = self.manager.cache.open_orders()
        if not open_orders:
            return
        order = data.draw(st.sampled_from(open_orders))
        assert order.userref is not None
        if answer_lost:  # the client repeats the cancel, which finds nothing left
            self.sb.faults.add(method="CancelOrder", kind="drop_after_commit", count=1)
        try:
            result = self.manager.cancel_group(order.userref)
        finally:
            self.sb.faults.clear()
        # Every userref is one order's, so the cancel can only have hit that order.
        assert result.ok, result
        assert (*result.cancelled, *result.closed) == (order.txid,)
        assert self.manager.cache.order(order.txid) == self.exchange()[order.txid]
        self.synced = False

    @rule()
    def sync(self) -> None:
        try:
            self.manager.recover()
        except OutcomeUnknownError:
            return
        self.manager.sync()
        self.synced = True

    # --- invariants ----------------------------------------------------------------------

    @invariant()
    def never_twice(self) -> None:
        refs = [o.userref for o in self.exchange().values()]
        assert all(ref is not None for ref in refs)
        assert len(refs) == len(set(refs)), "an order is on the exchange twice"

    @invariant()
    def never_untracked(self) -> None:
        cache = self.manager.cache
        cached = cache.txids()
        unresolved = {
            i.userref for i in cache.intents(states=[IntentState.PENDING, IntentState.UNKNOWN])
        }
        for order in self.exchange().values():
            # In the cache, or the subject of an intent recovery will resolve.
            assert order.txid in cached or order.userref in unresolved, order

    @precondition(lambda self: self.synced)
    @invariant()
    def synced_cache_equals_exchange(self) -> None:
        assert {o.txid: o for o in self.manager.cache.orders()} == self.exchange()


ManagerMachine.TestCase.settings = settings(
    max_examples=12,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestManagerMachine = ManagerMachine.TestCase

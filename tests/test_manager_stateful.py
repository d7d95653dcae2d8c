"""Under random faults, crashes and restarts no order is ever on the exchange twice or untracked,
and after a sync the cache equals the exchange."""

from __future__ import annotations

import shutil
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

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

from oms.auth import key_fingerprint
from oms.cache import IntentState
from oms.errors import OutcomeUnknownError
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


class Crash(BaseException):
    """The process dies while the manager waits for a deadline."""


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
        self.manager = self._new_manager()
        self.synced = False

    def _new_manager(self) -> OrderManager:
        def sleep(seconds: float) -> None:
            if self.crash_next_wait:
                self.crash_next_wait = False
                raise Crash
            self.clock.advance(seconds)

        client = self.sb.client(nonce_source=self.nonces)
        return OrderManager(client, self.db, clock=self.clock.time, sleep=sleep, deadline=10)

    def teardown(self) -> None:
        self.manager.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def exchange(self) -> dict[str, Order]:
        found = {o.txid: o for o in self.observer.open_orders()}
        found.update({o.txid: o for o in self.observer.iter_closed_orders()})
        return found

    # --- rules ---------------------------------------------------------------------------

    @initialize()
    def warm_up(self) -> None:
        self.manager.pair("XBTUSD")

    @rule(
        fault=st.sampled_from(ADD_FAULTS),
        offset=st.integers(min_value=-30, max_value=5),
        side=st.sampled_from(["buy", "sell"]),
        lookup_fails=st.booleans(),
    )
    def place(
        self, fault: dict[str, Any] | None, offset: int, side: str, lookup_fails: bool
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
        try:
            self.manager.place(request)
        except (OrderNotPlaced, OutcomeUnknownError):
            pass
        finally:
            self.sb.faults.clear()
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
        except (OrderNotPlaced, OutcomeUnknownError):
            return
        self.sb.faults.add(method="AddOrder", kind=fault, count=1)
        self.crash_next_wait = True
        with pytest.raises(Crash):
            self.manager.place(request)
        self.sb.faults.clear()
        self.restart()

    @rule()
    def restart(self) -> None:
        # What the OS does to a dead process: its ownership lock goes, its memory is gone.
        self.manager.close()
        self.manager = self._new_manager()
        self.synced = False

    @rule(seconds=st.floats(min_value=1, max_value=900))
    def market_moves(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.synced = False

    @rule(data=st.data())
    def cancel_one(self, data: st.DataObject) -> None:
        open_orders = self.manager.cache.open_orders()
        if not open_orders:
            return
        order = data.draw(st.sampled_from(open_orders))
        assert order.userref is not None
        self.manager.cancel_group(order.userref)
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

"""A Hypothesis state machine over real WebSocket and HTTP connections on 127.0.0.1: placements,
fills, cancels, dropped connections and lost messages interleaved, and after every step the
order cache equals what the exchange says over REST."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from tempfile import mkdtemp

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from live_support import FAR, assert_cache_matches_exchange, settle

from oms.manager import OrderManager
from oms.orders import OrderRequest
from oms.ratelimit import RateLimiter
from oms.sandbox import Sandbox, SandboxConfig

UNLIMITED = SandboxConfig(rest_rate_limit=False, trading_rate_limit=False)
PRIVATE = ("OpenOrders", "QueryOrders", "GetWebSocketsToken", "Balance", "CancelOrder")
LIVE = {"silence": 2.5, "backoff": (0.01, 0.05)}


class Following(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sb = Sandbox.serve(seed=31, config=UNLIMITED)
        free = RateLimiter(history_cost=0, costs=dict.fromkeys(PRIVATE, 0))
        self.manager = OrderManager.on_sandbox(
            self.sb,
            Path(mkdtemp()) / "orders.db",
            live_options=LIVE,
            client_options={"rate_limiter": free},
        )
        self.group = self.manager.new_group("machine")
        self.manager.follow(wait=30)
        self.resting: list[str] = []
        self.txids: list[str] = []

    def teardown(self) -> None:
        self.manager.close()
        self.sb.close()

    def _price(self) -> Decimal:
        return Decimal(self.sb.client().ticker("XBTUSD")["XXBTZUSD"].last)

    def _place(self, request: OrderRequest) -> str:
        placed = self.manager.place(request, group=self.group)
        assert placed.txid is not None
        self.txids.append(placed.txid)
        return placed.txid

    @rule(offset=st.integers(1, 50))
    def place_resting(self, offset: int) -> None:
        price = self._price() - FAR - offset
        request = OrderRequest(
            pair="XBTUSD", side="buy", ordertype="limit", volume="0.01", price=price
        )
        self.resting.append(self._place(request))

    @rule(side=st.sampled_from(["buy", "sell"]), volume=st.sampled_from(["0.01", "0.02"]))
    def fill(self, side: str, volume: str) -> None:
        self._place(OrderRequest(pair="XBTUSD", side=side, ordertype="market", volume=volume))

    @precondition(lambda self: bool(self.resting))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        txid = data.draw(st.sampled_from(self.resting))
        self.resting.remove(txid)
        if data.draw(st.booleans(), label="elsewhere"):
            with self.sb.client() as elsewhere:  # only the stream tells the cache
                elsewhere.cancel_order(txid=txid)
        else:
            self.manager.cancel(txid)

    @rule()
    def drop_connection(self) -> None:
        self.sb.ws.drop()

    @precondition(lambda self: bool(self.resting))
    @rule()
    def lose_a_cancel(self) -> None:
        """An order is cancelled elsewhere (another program, Kraken's website) and the
        message saying so is never sent (its sequence number used up): nothing later repeats
        what it said. The next message shows the gap."""
        txid = self.resting.pop()
        self.sb.ws.skip(1, channel="executions")
        with self.sb.client() as elsewhere:
            elsewhere.cancel_order(txid=txid)
        self.place_resting(99)

    @invariant()
    def the_cache_equals_the_exchange(self) -> None:
        assert settle(lambda: bool(self.manager.stream_status and self.manager.stream_status.live))
        assert_cache_matches_exchange(self.manager, self.txids)


Following.TestCase.settings = settings(
    max_examples=8,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.slow
class TestFollowing(Following.TestCase):  # type: ignore[misc,valid-type]
    pass

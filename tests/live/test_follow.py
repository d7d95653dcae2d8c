"""OrderManager.follow() against the sandbox's WebSocket v2 server over real connections on
127.0.0.1: the cache follows every event, strategies receive them, lost answers resolve at
once, and dropped connections, silences and sequence gaps lose nothing."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from live_support import FAR, assert_cache_matches_exchange, settle

from oms.live.follower import OrderUpdate
from oms.manager import OrderManager
from oms.models import WebSocketToken
from oms.orders import OrderRequest
from oms.ratelimit import RateLimiter
from oms.sandbox import ManualClock, Sandbox, SandboxConfig

T0 = 1_800_000_000.0
# Heartbeats come every second: 2.5 s without one is a silent connection.
LIVE = {"silence": 2.5, "backoff": (0.01, 0.1)}


def limit(side: str, price: Decimal, volume: str = "0.01") -> OrderRequest:
    return OrderRequest(pair="XBTUSD", side=side, ordertype="limit", volume=volume, price=price)


# Every (re)subscription is reconciled through REST: a test that drops the connection five
# times in a second would otherwise wait for the REST counter to decay (that pacing is the
# rate limiter's business, tested elsewhere).
UNLIMITED = SandboxConfig(rest_rate_limit=False, trading_rate_limit=False)
PRIVATE = ("OpenOrders", "QueryOrders", "GetWebSocketsToken", "Balance", "CancelOrder")


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox.serve(seed=21, config=UNLIMITED) as served:
        yield served


@pytest.fixture
def manager(sb: Sandbox, tmp_path: Path) -> Iterator[OrderManager]:
    # The client's own pacing off too (its costs 0), for the same reason.
    free = RateLimiter(history_cost=0, costs=dict.fromkeys(PRIVATE, 0))
    with OrderManager.on_sandbox(
        sb, tmp_path / "orders.db", live_options=LIVE, client_options={"rate_limiter": free}
    ) as m:
        yield m


def last_price(sb: Sandbox) -> Decimal:
    return Decimal(sb.client().ticker("XBTUSD")["XXBTZUSD"].last)


def market(side: str, volume: str = "0.01") -> OrderRequest:
    """An order that fills at once (as taker): a trade, then filled."""
    return OrderRequest(pair="XBTUSD", side=side, ordertype="market", volume=volume)


def test_every_event_reaches_the_cache_first_then_the_strategy(
    sb: Sandbox, manager: OrderManager
) -> None:
    received: list[OrderUpdate] = []
    cached_when_received: list[object] = []

    def on_update(update: OrderUpdate) -> None:
        # The cache already holds what the update says.
        cached = manager.cache.order(update.txid)
        cached_when_received.append(cached and (cached.status, cached.vol_exec))
        received.append(update)

    manager.follow(on_update)
    status = manager.stream_status
    assert status is not None
    assert status.live
    resting = manager.place(limit("buy", last_price(sb) - FAR))
    taken = manager.place(market("buy", "0.02"))
    assert resting.txid is not None
    assert taken.txid is not None
    assert settle(lambda: any(u.event.order_status == "filled" for u in received))
    manager.cancel(resting.txid)
    assert settle(lambda: any(u.event.order_status == "canceled" for u in received))
    assert_cache_matches_exchange(manager, [resting.txid, taken.txid])
    order = manager.cache.order(taken.txid)
    assert order is not None
    assert order.status.value == "closed"
    assert order.vol_exec == Decimal("0.02")
    assert order.fee > 0
    assert [(u.order.status, u.order.vol_exec) for u in received if u.order] == (
        cached_when_received
    )
    kinds = [u.event.exec_type for u in received if u.txid == taken.txid]
    assert kinds[0] in ("pending_new", "new")
    assert kinds[-2:] == ["trade", "filled"]


def test_a_subscription_gets_its_groups_orders_and_an_iterator_gets_everything(
    sb: Sandbox, manager: OrderManager
) -> None:
    ours, theirs = manager.new_group("ours"), manager.new_group("theirs")
    mine: list[OrderUpdate] = []
    manager.follow(mine.append, group=ours)
    everything = manager.follow()
    far = last_price(sb) - FAR
    a = manager.place(limit("buy", far), group=ours)
    b = manager.place(limit("buy", far), group=theirs)
    manager.cancel_group(ours)
    seen: list[OrderUpdate] = []
    while not {a.txid, b.txid} <= {u.txid for u in seen} or not any(
        u.event.exec_type == "canceled" for u in seen
    ):
        update = everything.get(timeout=30)
        assert update is not None, "the iterator got nothing"
        seen.append(update)
    assert settle(lambda: any(u.event.exec_type == "canceled" for u in mine))
    assert {u.txid for u in mine} == {a.txid}
    assert all(u.userref == ours.userref for u in mine)
    everything.close()
    assert_cache_matches_exchange(manager, [a.txid, b.txid])


def test_a_closed_subscription_ends_its_iterator(manager: OrderManager) -> None:
    subscription = manager.follow()
    done = threading.Event()

    def drain() -> None:
        for _ in subscription:
            pass
        done.set()

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    subscription.close()
    assert done.wait(10)


def test_a_lost_addorder_answer_is_resolved_by_the_stream_without_a_rest_lookup(
    tmp_path: Path,
) -> None:
    """The answer is lost after the order was made: the executions event resolves the
    placement at once. The REST listing (OpenOrders/ClosedOrders), which would first wait out
    the deadline, is never needed."""
    with (
        Sandbox.serve(seed=22, clock=ManualClock(T0)) as sb,
        OrderManager.on_sandbox(sb, tmp_path / "a.db", live_options=LIVE) as manager,
    ):
        manager.follow()
        sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
        before = dict(manager.requests)
        placed = manager.place(limit("buy", last_price(sb) - FAR))
        sent = {k: manager.requests[k] - before.get(k, 0) for k in manager.requests}
        assert placed.txid is not None
        assert placed.attempts == 1
        assert sent.get("AddOrder") == 1
        assert not sent.get("ClosedOrders")
        assert_cache_matches_exchange(manager, [placed.txid])


def test_without_the_stream_the_same_loss_takes_the_rest_lookup(tmp_path: Path) -> None:
    """The control of the test above: the same fault, no stream."""
    with (
        Sandbox.serve(seed=22, clock=ManualClock(T0)) as sb,
        OrderManager.on_sandbox(sb, tmp_path / "b.db") as manager,
    ):
        sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
        before = dict(manager.requests)
        placed = manager.place(limit("buy", last_price(sb) - FAR))
        sent = {k: manager.requests[k] - before.get(k, 0) for k in manager.requests}
        assert placed.txid is not None
        assert sent.get("ClosedOrders")


def test_dropped_connections_lose_nothing(sb: Sandbox, manager: OrderManager) -> None:
    manager.follow()
    listed = manager.requests.get("OpenOrders", 0)
    txids = []
    for n in range(5):
        resting = manager.place(limit("buy", last_price(sb) - FAR - n))
        sb.ws.drop()
        taken = manager.place(market("buy" if n % 2 else "sell"))  # while the stream is down
        assert resting.txid is not None
        assert taken.txid is not None
        txids += [resting.txid, taken.txid]
        if n % 2:
            manager.cancel(resting.txid)
        assert settle(lambda: bool(manager.stream_status and manager.stream_status.live))
    status = manager.stream_status
    assert status is not None
    assert status.reconnects >= 1
    assert status.resyncs >= 2
    # Each new subscription's snapshot listed the open orders: REST did not list them again.
    assert manager.requests.get("OpenOrders", 0) == listed
    assert_cache_matches_exchange(manager, txids)


def test_a_sequence_gap_is_seen_and_reconciled(sb: Sandbox, manager: OrderManager) -> None:
    received: list[OrderUpdate] = []
    manager.follow(received.append)
    resting = manager.place(limit("buy", last_price(sb) - FAR))
    assert resting.txid is not None
    assert settle(lambda: any(u.txid == resting.txid for u in received))
    sb.ws.skip(1, channel="executions")
    with sb.client() as elsewhere:  # cancelled by another program: its event is never sent
        elsewhere.cancel_order(txid=resting.txid)
    manager.place(limit("buy", last_price(sb) - FAR))  # the next event shows the gap
    assert settle(lambda: bool(manager.stream_status and manager.stream_status.gaps == 1))
    # The REST reconciliation (it follows the gap) learns what the lost message said.
    assert settle(lambda: bool(manager.stream_status and manager.stream_status.resyncs >= 2))
    assert not any(u.event.exec_type == "canceled" for u in received)
    order = manager.cache.order(resting.txid)
    assert order is not None
    assert order.status.value == "canceled"
    assert_cache_matches_exchange(manager, [resting.txid])


def test_a_silent_connection_is_replaced(sb: Sandbox, manager: OrderManager) -> None:
    manager.follow()
    status = manager.stream_status
    assert status is not None
    connections = status.connections
    sb.ws.withhold(4.0)  # no heartbeat either, longer than the 2.5 s of silence allowed
    assert settle(
        lambda: bool(
            manager.stream_status
            and manager.stream_status.connections > connections
            and manager.stream_status.live
        )
    )
    assert "no message" in str(manager.stream_status and manager.stream_status.last_error)


def test_the_token_never_reaches_a_log_even_at_debug(
    sb: Sandbox, manager: OrderManager, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    issued: list[str] = []
    real = manager.client.websockets_token

    def spy() -> WebSocketToken:
        token = real()
        issued.append(token.token)
        return token

    manager.client.websockets_token = spy  # type: ignore[method-assign]
    manager.follow()
    manager.place(market("buy"))
    sb.ws.drop()  # a reconnection subscribes again
    assert settle(lambda: bool(manager.stream_status and manager.stream_status.connections > 1))
    assert manager.stream_status is not None
    assert settle(lambda: bool(manager.stream_status and manager.stream_status.live))
    assert issued
    assert caplog.records  # DEBUG records were captured: the check below can fail
    for token in issued:
        assert not [r for r in caplog.records if token in r.getMessage()]


def test_a_callback_can_place_an_order_even_when_its_answer_is_lost(tmp_path: Path) -> None:
    """Inside a callback (the stream's thread) the stream cannot show the order it waits for:
    the placement takes the REST way instead of waiting for itself."""
    with (
        Sandbox.serve(seed=23, clock=ManualClock(T0)) as sb,
        OrderManager.on_sandbox(sb, tmp_path / "c.db", live_options=LIVE) as manager,
    ):
        placed: list[str | None] = []
        far = last_price(sb) - FAR

        def on_update(update: OrderUpdate) -> None:
            if update.event.exec_type == "canceled" and not placed:
                sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
                placed.append(manager.place(limit("buy", far)).txid)

        waited: list[str] = []
        real_wait = manager.lookup.sightings.wait_for

        def spy(wanted: Any, timeout: float) -> Any:
            waited.append(threading.current_thread().name)
            return real_wait(wanted, timeout)

        manager.lookup.sightings.wait_for = spy  # type: ignore[method-assign]
        manager.follow(on_update)
        first = manager.place(limit("buy", far))
        assert first.txid is not None
        manager.cancel(first.txid)
        assert settle(lambda: bool(placed))
        assert placed[0] is not None
        assert_cache_matches_exchange(manager, [first.txid, placed[0]])
        # The lost answer was looked up, but never by waiting on the stream from its own
        # thread.
        assert not [name for name in waited if name.startswith("oms-live:")]
        assert manager.requests.get("ClosedOrders", 0) >= 1


def test_a_cancel_reads_the_order_back_from_the_stream_not_rest(
    sb: Sandbox, manager: OrderManager
) -> None:
    far = last_price(sb) - FAR
    before = manager.place(limit("buy", far))
    assert before.txid is not None
    manager.cancel(before.txid)  # no stream yet: read back through REST
    assert manager.requests.get("QueryOrders", 0) == 1
    manager.follow()
    placed = manager.place(limit("buy", far))
    assert placed.txid is not None
    queried = manager.requests.get("QueryOrders", 0)
    manager.cancel(placed.txid)
    assert manager.requests.get("QueryOrders", 0) == queried  # the stream said it
    order = manager.cache.order(placed.txid)
    assert order is not None
    assert order.status.value == "canceled"
    assert_cache_matches_exchange(manager, [before.txid, placed.txid])

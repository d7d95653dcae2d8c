"""OrderManager.follow() against the sandbox's WebSocket v2 server over real connections on
127.0.0.1: the cache follows every event, strategies receive them, lost answers resolve at
once, and dropped connections, silences and sequence gaps lose nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from live_support import FAR, assert_cache_matches_exchange, settle

from oms.live.follower import OrderUpdate
from oms.manager import OrderManager
from oms.orders import OrderRequest
from oms.sandbox import ManualClock, Sandbox

T0 = 1_800_000_000.0
LIVE = {"silence": 1.0, "backoff": (0.01, 0.1)}


def limit(side: str, price: Decimal, volume: str = "0.01") -> OrderRequest:
    return OrderRequest(pair="XBTUSD", side=side, ordertype="limit", volume=volume, price=price)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox.serve(seed=21) as served:
        yield served


@pytest.fixture
def manager(sb: Sandbox, tmp_path: Path) -> Iterator[OrderManager]:
    with OrderManager.on_sandbox(sb, tmp_path / "orders.db", live_options=LIVE) as m:
        yield m


def last_price(sb: Sandbox) -> Decimal:
    return Decimal(sb.client().ticker("XBTUSD")["XXBTZUSD"].last)


def fill(sb: Sandbox, price: Decimal, volume: str) -> None:
    """A market trade through ``price``: resting orders there fill (as the tick matches)."""
    sb.market.trade("XXBTZUSD", str(price), volume, at=sb.clock.time())
    sb.exchange.advance()


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
    price = last_price(sb) - 1000
    placed = manager.place(limit("buy", price, "0.02"))
    assert placed.txid is not None
    fill(sb, price - 1, "0.005")  # a partial fill
    assert settle(lambda: any(u.event.exec_type == "trade" for u in received))
    assert_cache_matches_exchange(manager, [placed.txid])
    fill(sb, price - 1, "1")  # the rest
    assert settle(lambda: any(u.event.order_status == "filled" for u in received))
    assert_cache_matches_exchange(manager, [placed.txid])
    order = manager.cache.order(placed.txid)
    assert order is not None
    assert order.status.value == "closed"
    assert order.vol_exec == Decimal("0.02")
    assert [(u.order.status, u.order.vol_exec) for u in received if u.order] == (
        cached_when_received
    )
    kinds = [u.event.exec_type for u in received if u.txid == placed.txid]
    assert kinds[0] in ("pending_new", "new")
    assert "trade" in kinds


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
    with Sandbox.serve(seed=22, clock=ManualClock(T0)) as sb:
        with OrderManager.on_sandbox(sb, tmp_path / "a.db", live_options=LIVE) as manager:
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
    with Sandbox.serve(seed=22, clock=ManualClock(T0)) as sb:
        with OrderManager.on_sandbox(sb, tmp_path / "b.db") as manager:
            sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
            before = dict(manager.requests)
            placed = manager.place(limit("buy", last_price(sb) - FAR))
            sent = {k: manager.requests[k] - before.get(k, 0) for k in manager.requests}
            assert placed.txid is not None
            assert sent.get("ClosedOrders")


def test_dropped_connections_lose_nothing(sb: Sandbox, manager: OrderManager) -> None:
    manager.follow()
    price = last_price(sb) - 500
    txids = []
    for n in range(5):
        placed = manager.place(limit("buy", price - n, "0.01"))
        assert placed.txid is not None
        txids.append(placed.txid)
        sb.ws.drop()
        fill(sb, price - n - 1, "0.004")  # while the stream is down, maybe
        assert settle(lambda: bool(manager.stream_status and manager.stream_status.live))
    status = manager.stream_status
    assert status is not None
    assert status.reconnects >= 1
    assert status.resyncs >= 2
    assert_cache_matches_exchange(manager, txids)


def test_a_sequence_gap_is_seen_and_reconciled(sb: Sandbox, manager: OrderManager) -> None:
    manager.follow()
    price = last_price(sb) - 500
    placed = manager.place(limit("buy", price, "0.01"))
    assert placed.txid is not None
    sb.ws.skip(1, channel="executions")
    fill(sb, price - 1, "0.004")  # its trade event is never sent
    manager.place(limit("buy", last_price(sb) - FAR))  # the next event shows the gap
    assert settle(lambda: bool(manager.stream_status and manager.stream_status.gaps == 1))
    assert_cache_matches_exchange(manager, [placed.txid])
    order = manager.cache.order(placed.txid)
    assert order is not None
    assert order.vol_exec == Decimal("0.004")


def test_a_silent_connection_is_replaced(sb: Sandbox, manager: OrderManager) -> None:
    manager.follow()
    status = manager.stream_status
    assert status is not None
    connections = status.connections
    sb.ws.withhold(3.0)  # no heartbeat either, longer than the 1 s of silence allowed
    assert settle(
        lambda: bool(
            manager.stream_status
            and manager.stream_status.connections > connections
            and manager.stream_status.live
        )
    )
    assert "no message" in str(manager.stream_status and manager.stream_status.last_error)

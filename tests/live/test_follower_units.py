"""The follower's rules, with a real SQLite cache and the stream's messages given directly:
what it trusts an entry with, what it asks REST for, and what a waiting placement sees."""

from __future__ import annotations

import json
import logging
import logging.config
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from oms.cache import OrderCache
from oms.live.events import ExecutionEvent, counts_on, order_from_event
from oms.live.follower import Follower, OrderUpdate
from oms.live.sightings import Sightings
from oms.models import Order, OrderStatus

T0 = "2026-12-07T10:00:00.000000Z"
TXID = "OABCDE-FGHIJ-KLMNOP"
PENDING = {
    "order_id": TXID,
    "order_userref": 7,
    "symbol": "BTC/USD",
    "order_qty": 0.5,
    "exec_type": "pending_new",
    "side": "buy",
    "order_type": "limit",
    "limit_price": 30000.1,
    "order_status": "pending_new",
    "timestamp": T0,
}


def message(kind: str, *entries: dict[str, Any], sequence: int = 2) -> dict[str, Any]:
    text = json.dumps({"channel": "executions", "type": kind, "data": list(entries)})
    decoded: dict[str, Any] = json.loads(text, parse_float=Decimal)
    decoded["sequence"] = sequence
    return decoded


def trade(cum: str, last: str, fee: str, n: int) -> dict[str, Any]:
    return {
        "order_id": TXID,
        "exec_type": "trade",
        "exec_id": f"T{n}",
        "trade_id": n,
        "order_status": "partially_filled",
        "cum_qty": cum,
        "cum_cost": str(Decimal(cum) * 30000),
        "avg_price": "30000",
        "last_qty": last,
        "last_price": "30000",
        "fees": [{"asset": "USD", "qty": fee}],
        "timestamp": T0,
    }


class Rig:
    """A follower on a real cache; REST is a dict of orders, reconciliations are counted."""

    def __init__(self, path: Path) -> None:
        self.cache = OrderCache(path)
        self.rest: dict[str, Order] = {}
        self.queried: list[list[str]] = []
        self.reconciled = 0
        self.reconciled_with: list[list[str] | None] = []
        self.sightings = Sightings()
        self.follower = Follower(
            cache=self.cache,
            url="ws://127.0.0.1:1/v2",
            token=lambda: "unused",
            now=lambda: 1.0,
            reconcile=self._reconcile,
            query=self._query,
            rest_pair=lambda s: {"BTC/USD": "XBTUSD"}.get(s),
            sightings=self.sightings,
        )
        self.sightings.attach(lambda: True)
        self.updates: list[OrderUpdate] = []
        self.follower.subscribe(self.updates.append)

    def _reconcile(self, open_orders: Sequence[Order] | None) -> None:
        self.reconciled += 1
        self.reconciled_with.append(
            None if open_orders is None else sorted(o.txid for o in open_orders)
        )

    def _query(self, txids: Sequence[str]) -> Iterable[Order]:
        self.queried.append(list(txids))
        return [self.rest[t] for t in txids if t in self.rest]

    def feed(self, msg: dict[str, Any]) -> None:
        self.follower._on_message(msg)

    def sighted(self) -> Order | None:
        return self.sightings.wait_for(lambda o: True, timeout=0)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path / "c.db")
    yield r
    r.cache.close()


def test_a_fill_that_does_not_follow_on_from_the_cached_volume_is_read_from_rest(
    rig: Rig,
) -> None:
    """Fill 2 was lost (or the cache holds an older REST answer): fill 3's fee cannot be
    added to a fee that stands for other fills, so REST says the order."""
    rig.feed(message("update", PENDING))
    rig.feed(message("update", trade("0.1", "0.1", "1", 1), sequence=3))
    order = rig.cache.order(TXID)
    assert order is not None
    assert (order.vol_exec, order.fee) == (Decimal("0.1"), Decimal("1"))
    truth = order_from_event(
        ExecutionEvent.from_api(message("update", PENDING)["data"][0]), "XBTUSD"
    )
    assert truth is not None
    rig.rest[TXID] = Order.from_api(
        TXID,
        {
            "userref": 7,
            "status": "open",
            "opentm": truth.opentm,
            "descr": {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "30000.1"},
            "vol": "0.5",
            "vol_exec": "0.3",
            "cost": "9000",
            "fee": "3",
            "price": "30000",
        },
    )
    rig.feed(message("update", trade("0.3", "0.1", "1", 3), sequence=5))
    assert rig.queried == [[TXID]]
    order = rig.cache.order(TXID)
    assert order is not None
    assert (order.vol_exec, order.fee) == (Decimal("0.3"), Decimal("3"))
    assert rig.updates[-1].order == order


def test_counts_on_needs_the_trade_to_start_where_the_cache_stands() -> None:
    event = ExecutionEvent.from_api(message("update", PENDING)["data"][0])
    order = order_from_event(event, "XBTUSD")
    assert order is not None
    on = ExecutionEvent.from_api(message("update", trade("0.1", "0.1", "1", 1))["data"][0])
    skipped = ExecutionEvent.from_api(message("update", trade("0.2", "0.1", "1", 2))["data"][0])
    assert counts_on(order, on)
    assert not counts_on(order, skipped)


def test_an_order_of_an_unknown_pair_is_read_from_rest_never_guessed(rig: Rig) -> None:
    rig.feed(message("update", {**PENDING, "symbol": "NEW/USD"}))
    assert rig.queried == [[TXID]]
    assert rig.cache.order(TXID) is None  # REST did not know it either: nothing invented


def test_a_malformed_entry_costs_one_reconciliation_and_not_its_neighbours(rig: Rig) -> None:
    bad = {**PENDING, "order_id": "OTHER", "order_qty": "lots"}
    rig.feed(message("update", PENDING, bad))
    assert rig.reconciled == 1
    order = rig.cache.order(TXID)
    assert order is not None
    assert order.status is OrderStatus.PENDING
    assert [u.txid for u in rig.updates] == [TXID]


def test_a_snapshot_entry_is_cached_but_never_offered_to_a_waiting_placement(rig: Rig) -> None:
    """A snapshot entry's time is when the order last changed, not when it opened: a lost
    placement must not take an older identical order for its own."""
    rig.feed(message("snapshot", {**PENDING, "exec_type": "new", "order_status": "new"}))
    assert rig.cache.order(TXID) is not None
    assert rig.sighted() is None
    rig.feed(message("update", {**PENDING, "order_id": "ONEW", "exec_type": "pending_new"}))
    seen = rig.sighted()
    assert seen is not None
    assert seen.txid == "ONEW"


def test_the_frame_log_stays_silent_at_debug_whatever_the_logging_config() -> None:
    oms_logger = logging.getLogger("oms")
    saved = (list(oms_logger.handlers), oms_logger.level, oms_logger.propagate)
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "loggers": {"oms": {"level": "DEBUG"}, "oms.live.websocket": {"level": "DEBUG"}},
        }
    )
    try:
        wire = logging.getLogger("oms.live.websocket")
        assert wire.isEnabledFor(logging.DEBUG)  # the configuration did reset the level
        record = wire.makeRecord(wire.name, logging.DEBUG, __file__, 1, "> TEXT", (), None)
        assert not wire.filter(record)
        info = wire.makeRecord(wire.name, logging.INFO, __file__, 1, "connection open", (), None)
        assert wire.filter(info)
    finally:
        # What the configuration changed, as it was (the library's NullHandler included).
        oms_logger.handlers[:] = saved[0]
        oms_logger.setLevel(saved[1])
        oms_logger.propagate = saved[2]
        logging.getLogger("oms.live.websocket").setLevel(logging.INFO)


def test_the_reconciliation_after_a_snapshot_takes_its_open_orders_from_it(rig: Rig) -> None:
    """The snapshot lists every open order: REST need not list them again, only say what
    closed meanwhile. A gap's reconciliation lists them (no snapshot stands for them)."""
    rig.feed(message("snapshot", {**PENDING, "exec_type": "new", "order_status": "new"}))
    rig.follower._on_resync("subscribed")
    rig.follower._on_resync("sequence gap")
    assert rig.reconciled_with == [[TXID], None]


def test_a_snapshot_not_understood_whole_leaves_rest_to_list_the_open_orders(rig: Rig) -> None:
    rig.feed(message("snapshot", {**PENDING, "symbol": "NEW/USD"}))  # REST does not know it
    rig.follower._on_resync("subscribed")
    assert rig.reconciled_with[-1] is None

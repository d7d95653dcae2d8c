"""Promises of the order cache that a "deleted line" review pinned: a later answer for a
cached order reads back equal, whichever statement writes it (a full upsert, or the update of
the moving columns of an order whose open time is already the exchange's); a closed order is
never reopened; an order seen again is no longer marked missing; the exchange's open time
replaces the estimate a placement wrote."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import orders

from oms.cache import CLOSED_STATUSES, OrderCache
from oms.models import Order, OrderStatus

TXID = "OPROMS-AAAAA-BBBBBB"
OPENED = 1_700_000_000.25


def resting(**changes: Any) -> Order:
    """An open limit order as OpenOrders shows it."""
    order = Order.from_api(
        TXID,
        {
            "userref": 7,
            "status": "open",
            "opentm": OPENED,
            "descr": {
                "pair": "XBTUSD",
                "type": "buy",
                "ordertype": "limit",
                "price": "25000.1",
                "price2": "0",
                "leverage": "none",
                "order": "buy 0.01000000 XBTUSD @ limit 25000.1",
                "close": "",
            },
            "vol": "0.01000000",
            "vol_exec": "0.00000000",
            "cost": "0.00000",
            "fee": "0.00000",
            "price": "0.00000",
            "oflags": "fciq",
        },
    )
    return attrs.evolve(order, **changes)


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[OrderCache]:
    with OrderCache(tmp_path / "cache.db") as c:
        yield c


@pytest.mark.parametrize("moved", [False, True])
def test_an_order_seen_again_is_no_longer_missing(cache: OrderCache, moved: bool) -> None:
    first = resting()
    cache.upsert_orders([first], synced_at=1.0)
    assert cache.mark_missing({TXID: "QueryOrders answered EOrder:Unknown order"}, at=2.0) == 1
    assert [o.txid for o, _, _ in cache.missing_orders()] == [TXID]
    assert cache.open_orders() == []
    # The same answer again, or one where it traded meanwhile: the order exists after all.
    again = attrs.evolve(first, vol_exec=first.vol / 2) if moved else first
    assert cache.upsert_orders([again], synced_at=3.0) == 1
    assert cache.missing_orders() == []
    assert cache.open_orders() == [again]
    assert cache.order(TXID) == again


def test_the_exchanges_open_time_replaces_the_placements_estimate(cache: OrderCache) -> None:
    # The row a placement writes: status pending, the intent's estimate of the open time,
    # not yet read back from the exchange.
    sent = resting(status=OrderStatus.PENDING, opentm=OPENED - 0.75)
    cache.upsert_orders([sent], synced_at=None)
    assert cache.unsynced([TXID]) == {TXID}
    seen = resting()
    cache.upsert_orders([seen], synced_at=2.0)
    assert cache.order(TXID) == seen
    assert cache.unsynced([TXID]) == set()
    assert [o.txid for o in cache.orders(since=OPENED)] == [TXID]


def test_a_confirmed_order_gets_every_moving_column_of_a_later_answer(cache: OrderCache) -> None:
    cache.upsert_orders([resting()], synced_at=1.0)
    filled = resting(
        status=OrderStatus.CLOSED,
        vol_exec=resting().vol,
        cost=Decimal("250.001"),
        fee=Decimal("0.65000"),
        price=resting().descr.price,
        closetm=OPENED + 60,
        reason=None,
        misc=("partial",),
    )
    cache.upsert_orders([filled], synced_at=2.0)
    assert cache.order(TXID) == filled
    assert cache.closed_orders() == [filled]
    # An older "open" answer arriving late never reopens it.
    cache.upsert_orders([resting()], synced_at=3.0)
    assert cache.order(TXID) == filled


CLOSED = frozenset(CLOSED_STATUSES)


@settings(max_examples=60, deadline=None)
@given(first=orders(), data=st.data())
def test_a_run_of_answers_reads_back_as_the_latest_that_may_apply(
    tmp_path_factory: pytest.TempPathFactory, first: Order, data: st.DataObject
) -> None:
    """Answers for one order arrive one after the other (each may move any column: fills,
    amends, its close; its open time is the cached one or not): after each, the cache holds
    the latest, except that an order never goes back in its life (closed never reopens,
    open is never pending again, nor less filled)."""
    with OrderCache(tmp_path_factory.mktemp("answers") / "cache.db") as cache:
        _answer_in_turn(cache, first, data)


def _rank(order: Order) -> int:
    return 2 if order.status in CLOSED else int(order.status is OrderStatus.OPEN)


def _answer_in_turn(cache: OrderCache, first: Order, data: st.DataObject) -> None:
    cache.upsert_orders([first], synced_at=1.0)
    expected = first
    for step in range(data.draw(st.integers(1, 4), label="answers")):
        drawn = data.draw(orders(), label=f"answer {step}")
        confirmed = data.draw(st.booleans(), label=f"same open time {step}")
        answer = attrs.evolve(
            drawn,
            txid=first.txid,
            userref=first.userref,
            descr=attrs.evolve(drawn.descr, side=first.descr.side, pair=first.descr.pair),
            opentm=expected.opentm if confirmed else drawn.opentm,
        )
        cache.upsert_orders([answer], synced_at=2.0 + step)
        if (_rank(answer), answer.vol_exec) >= (_rank(expected), expected.vol_exec):
            expected = answer
        assert cache.order(first.txid) == expected

"""Executions entries parsed exactly, and merged into the cached order by rules that keep it
equal to REST's view whatever order stream events and REST answers arrive in."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms.errors import ResponseShapeError
from oms.live.events import ExecutionEvent, merge, order_from_event
from oms.models import Order, OrderStatus

T0 = "2026-12-07T10:00:00.000000Z"

PENDING = {
    "order_id": "OABCDE-FGHIJ-KLMNOP",
    "order_userref": 7,
    "symbol": "BTC/USD",
    "order_qty": 0.5,
    "cum_cost": 0.0,
    "time_in_force": "GTC",
    "exec_type": "pending_new",
    "side": "buy",
    "order_type": "limit",
    "limit_price": 30000.1,
    "order_status": "pending_new",
    "fee_usd_equiv": 0.0,
    "fee_ccy_pref": "fciq",
    "timestamp": T0,
}


def parsed(entry: dict[str, Any]) -> ExecutionEvent:
    """As the stream parses it: JSON numbers as Decimal, never through float."""
    return ExecutionEvent.from_api(json.loads(json.dumps(entry), parse_float=Decimal))


def placed() -> Order:
    order = order_from_event(parsed(PENDING), "XBTUSD")
    assert order is not None
    return order


def test_a_pending_new_entry_describes_the_order_as_rest_would() -> None:
    order = placed()
    assert order.txid == "OABCDE-FGHIJ-KLMNOP"
    assert order.status is OrderStatus.PENDING
    assert (order.pair, order.side.value, order.descr.ordertype_raw) == ("XBTUSD", "buy", "limit")
    assert order.vol == Decimal("0.5")
    assert order.descr.price == Decimal("30000.1")
    assert order.userref == 7
    assert order.vol_exec == 0
    assert "fciq" in order.oflags


def test_a_sparse_update_cannot_describe_an_unknown_order() -> None:
    sparse = parsed({"order_id": "OX", "exec_type": "new", "order_status": "new", "timestamp": T0})
    assert order_from_event(sparse, "XBTUSD") is None


def test_numbers_keep_every_digit() -> None:
    text = json.dumps(PENDING).replace("30000.1", "30000.123456789012345678")
    event = ExecutionEvent.from_api(json.loads(text, parse_float=Decimal))
    assert event.limit_price == Decimal("30000.123456789012345678")


@pytest.mark.parametrize(
    "change",
    [
        {"order_id": None},
        {"exec_type": None},
        {"order_qty": True},
        {"order_qty": "NaN"},
        {"order_qty": [1]},
        {"order_userref": "7"},
        {"timestamp": "yesterday"},
        {"fees": [{"asset": "USD"}]},
        {"fees": {"asset": "USD", "qty": 1}},
        {"amended": "yes"},
    ],
)
def test_a_malformed_entry_is_a_shape_error(change: dict[str, Any]) -> None:
    entry = {k: v for k, v in {**PENDING, **change}.items() if v is not None}
    with pytest.raises(ResponseShapeError):
        parsed(entry)


# --- merging: fills never counted twice, nothing moves backwards -------------------------


@attrs.frozen
class Fill:
    qty: Decimal
    price: Decimal
    fee: Decimal


fills = st.lists(
    st.builds(
        Fill,
        qty=st.decimals("0.001", "0.1", places=3),
        price=st.decimals("29000", "31000", places=1),
        fee=st.decimals("0", "1", places=4),
    ),
    min_size=1,
    max_size=6,
)


def trade_events(trades: list[Fill]) -> list[ExecutionEvent]:
    events, cum_qty, cum_cost = [], Decimal(0), Decimal(0)
    for n, fill in enumerate(trades, 1):
        cum_qty += fill.qty
        cum_cost += fill.qty * fill.price
        events.append(
            parsed(
                {
                    "order_id": PENDING["order_id"],
                    "order_userref": 7,
                    "exec_type": "trade",
                    "exec_id": f"T{n}",
                    "trade_id": n,
                    "last_qty": float(fill.qty),
                    "last_price": float(fill.price),
                    "cost": float(fill.qty * fill.price),
                    "order_status": "partially_filled",
                    "cum_qty": str(cum_qty),
                    "cum_cost": str(cum_cost),
                    "avg_price": str(cum_cost / cum_qty),
                    "fees": [{"asset": "USD", "qty": str(fill.fee)}],
                    "timestamp": T0,
                }
            )
        )
    return events


def rest_view(order: Order, trades: list[Fill]) -> Order:
    """What REST says after ``trades``: cumulative volume, cost and fee."""
    qty = sum((f.qty for f in trades), Decimal(0))
    cost = sum((f.qty * f.price for f in trades), Decimal(0))
    fee = sum((f.fee for f in trades), Decimal(0))
    return attrs.evolve(
        order,
        status=OrderStatus.OPEN,
        vol_exec=qty,
        cost=cost,
        fee=fee,
        price=cost / qty if qty else Decimal(0),
    )


@given(trades=fills, data=st.data())
def test_trades_merged_with_rest_answers_interleaved_count_each_fill_once(
    trades: list[Fill], data: st.DataObject
) -> None:
    """REST answers read at any point (always at least as new as the events applied so far:
    a REST read follows the events it is compared with) and repeated events leave the order
    exactly as REST says at the end."""
    order = placed()
    events = trade_events(trades)
    for n, event in enumerate(events, 1):
        if data.draw(st.booleans(), label="rest answer first"):
            ahead = data.draw(st.integers(n - 1, len(events)), label="rest has seen")
            order = rest_view(order, trades[:ahead])
        order = merge(order, event)
        if data.draw(st.booleans(), label="event repeated"):
            order = merge(order, event)
    truth = rest_view(placed(), trades)
    assert order.vol_exec == truth.vol_exec
    assert order.cost == truth.cost
    assert order.fee == truth.fee
    assert order.status is OrderStatus.OPEN


RANKED = ["pending_new", "new", "partially_filled", "filled"]


@given(st.lists(st.sampled_from([*RANKED, "canceled", "expired"]), min_size=1, max_size=8))
def test_the_status_never_moves_backwards(statuses: list[str]) -> None:
    order = placed()
    seen: list[OrderStatus] = [order.status]
    for status in statuses:
        order = merge(
            order,
            parsed(
                {
                    "order_id": PENDING["order_id"],
                    "exec_type": status if status != "partially_filled" else "trade",
                    "order_status": status,
                    "timestamp": T0,
                }
            ),
        )
        seen.append(order.status)
    rank = {"pending": 0, "open": 1, "closed": 2, "canceled": 2, "expired": 2}
    ranks = [rank[s.value] for s in seen]
    assert ranks == sorted(ranks)
    # Once final, it stays the first final status reached.
    finals = [s for s in seen if rank[s.value] == 2]
    assert all(s is finals[0] for s in finals)


def test_an_amend_changes_volume_and_limit_price_of_an_open_order() -> None:
    order = attrs.evolve(placed(), status=OrderStatus.OPEN)
    amended = merge(
        order,
        parsed(
            {
                "order_id": PENDING["order_id"],
                "exec_type": "amended",
                "order_status": "new",
                "order_qty": 0.4,
                "limit_price": 29999.5,
                "amended": True,
                "timestamp": T0,
            }
        ),
    )
    assert amended.vol == Decimal("0.4")
    assert amended.descr.price == Decimal("29999.5")


def test_a_cancel_closes_with_the_events_time_and_reason() -> None:
    cancelled = merge(
        attrs.evolve(placed(), status=OrderStatus.OPEN),
        parsed(
            {
                "order_id": PENDING["order_id"],
                "exec_type": "canceled",
                "order_status": "canceled",
                "reason": "User requested",
                "cum_qty": 0,
                "timestamp": "2026-12-07T10:00:05.000000Z",
            }
        ),
    )
    assert cancelled.status is OrderStatus.CANCELED
    assert cancelled.reason == "User requested"
    assert cancelled.closetm == pytest.approx(placed().opentm + 5)

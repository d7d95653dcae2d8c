"""WebSocket faults: drops, delays, silences and sequence gaps, from Python and the admin API;
and the property that the stream, folded per order, is what REST shows."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sandbox_ws_support import WsClient, drain, entries, eventually, ref_price, served, token
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from oms.sandbox import admin_request
from oms.sandbox.wsfaults import WsFault


def _closed_without_close_frame(ws: WsClient) -> list[dict[str, Any]]:
    """Messages received until the connection ends; asserts it ended abnormally."""
    got: list[dict[str, Any]] = []
    with pytest.raises(ConnectionClosedError) as closed:
        drain_into(ws, got)
    assert closed.value.rcvd is None  # no close frame: a network drop
    return got


def drain_into(ws: WsClient, got: list[dict[str, Any]]) -> None:
    while True:
        got.append(ws.recv())


def test_drop_now_hangs_up_without_a_close_frame() -> None:
    with served() as sb, WsClient(str(sb.ws_url)) as ws:
        ws.request("ping")
        assert len(sb.ws.drop()) == 1
        _closed_without_close_frame(ws)
        assert eventually(lambda: sb.ws.connections == [])


def test_drop_after_n_messages_sends_exactly_n() -> None:
    with served() as sb, WsClient(str(sb.ws_url)) as ws:
        sb.ws.drop(after=2)
        for n in range(3):
            ws.send({"method": "ping", "req_id": n})
        got = _closed_without_close_frame(ws)
        assert [m.get("req_id") for m in got] == [0, 1]


def test_a_delay_holds_messages_back_in_order_until_cleared() -> None:
    with served() as sb, WsClient(str(sb.ws_url)) as ws:
        sb.ws.delay(60)
        ws.send({"method": "ping", "req_id": 1})
        ws.send({"method": "ping", "req_id": 2})
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.3)
        sb.ws.clear_faults()
        assert [ws.recv()["req_id"], ws.recv()["req_id"]] == [1, 2]


def test_a_short_delay_still_delivers() -> None:
    with served() as sb, WsClient(str(sb.ws_url)) as ws:
        sb.ws.delay(0.05)
        assert ws.request("ping")["method"] == "pong"


def test_withhold_silences_heartbeats_too_then_sends_the_backlog() -> None:
    with served() as sb, WsClient(str(sb.ws_url)) as ws:
        ws.subscribe("heartbeat")
        ws.next(lambda m: m.get("channel") == "heartbeat")
        sb.ws.withhold(60)
        ws.send({"method": "ping", "req_id": 9})
        with pytest.raises(TimeoutError):
            ws.recv(timeout=1.5)  # longer than a heartbeat period: nothing at all
        sb.ws.clear_faults()
        assert ws.next(lambda m: m.get("method") == "pong")["req_id"] == 9


def test_skip_uses_up_a_sequence_number_without_sending_it() -> None:
    with served() as sb, sb.client() as client, WsClient(str(sb.ws_url)) as ws:
        ws.subscribe("executions", token(sb))
        ws.next(lambda m: m.get("type") == "snapshot")
        sb.ws.skip(1, channel="executions")
        client.add_order(pair="XBTUSD", side="buy", ordertype="market", volume="0.01")
        messages = ws.until_pong("executions")
        assert [m["sequence"] for m in messages] == [3, 4, 5]
        assert [m["data"][0]["exec_type"] for m in messages] == ["new", "trade", "filled"]


def test_faults_for_new_connections_hit_each_one_until_cleared() -> None:
    with served() as sb:
        assert sb.ws.drop(after=1, connections="new") == []
        with WsClient(str(sb.ws_url)) as ws:  # the status message is the one it gets
            assert ws.status["channel"] == "status"
            assert _closed_without_close_frame(ws) == []
        sb.ws.clear_faults()
        with WsClient(str(sb.ws_url)) as ws:
            assert ws.request("ping")["method"] == "pong"


def test_a_fault_can_target_one_account() -> None:
    with (
        served(accounts=2) as sb,
        WsClient(str(sb.ws_url)) as mine,
        WsClient(str(sb.ws_url)) as theirs,
    ):
        mine.subscribe("balances", token(sb, 0))
        theirs.subscribe("balances", token(sb, 1))
        hit = sb.ws.drop(account=sb.accounts[1].key)
        assert len(hit) == 1
        _closed_without_close_frame(theirs)
        assert mine.request("ping")["method"] == "pong"


def test_the_admin_api_injects_lists_and_clears_websocket_faults() -> None:
    with served() as sb, sb.client() as client, WsClient(str(sb.ws_url)) as ws:
        ws.subscribe("executions", token(sb))
        ws.next(lambda m: m.get("type") == "snapshot")
        status = admin_request(sb.base_url, "/ws")
        assert status["url"] == sb.ws_url
        assert len(status["connections"]) == 1
        added = admin_request(sb.base_url, "/ws/faults", {"kind": "skip", "count": 2})
        assert added["faults"][0]["applied_to"] == [status["connections"][0]["id"]]
        client.add_order(pair="XBTUSD", side="buy", ordertype="market", volume="0.01")
        assert [m["sequence"] for m in ws.until_pong("executions")] == [4, 5]
        admin_request(sb.base_url, "/ws/faults", {"kind": "delay", "seconds": 60})
        admin_request(sb.base_url, "/ws/faults", method="DELETE")
        assert ws.request("ping")["method"] == "pong"
        with pytest.raises(RuntimeError, match="unknown websocket fault kind"):
            admin_request(sb.base_url, "/ws/faults", {"kind": "explode"})


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "delay"},
        {"kind": "drop", "after": -1},
        {"kind": "skip", "count": 0},
        {"kind": "drop", "seconds": 1},
        {"kind": "drop", "connections": "some"},
        {"kind": "drop", "wat": 1},
    ],
)
def test_bad_fault_definitions_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"must|unknown|needs|only applies"):
        WsFault.from_dict(bad)


def test_a_dropped_client_can_reconnect_and_resubscribe_from_sequence_1() -> None:
    with served() as sb:
        good = token(sb)
        with WsClient(str(sb.ws_url)) as ws:
            ws.subscribe("executions", good)
            sb.ws.drop()
            with pytest.raises(ConnectionClosed):
                drain(ws)
        with WsClient(str(sb.ws_url)) as ws:
            ws.subscribe("executions", good)
            assert ws.next(lambda m: m.get("type") == "snapshot")["sequence"] == 1


# -- the stream agrees with REST -------------------------------------------------------------

_OPS = st.lists(
    st.sampled_from(["rest", "take", "cancel", "cross", "shrink"]), min_size=1, max_size=8
)


def _fold(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per order: its last order_status and the totals of its last event that has them."""
    orders: dict[str, dict[str, Any]] = {}
    for event in events:
        state = orders.setdefault(event["order_id"], {"trades": []})
        state["status"] = event["order_status"]
        if event["exec_type"] == "trade":
            state["trades"].append(event["exec_id"])
        for key in ("cum_qty", "cum_cost", "avg_price", "order_qty"):
            if key in event:
                state[key] = event[key]
    return orders


_REST_STATUS = {"new": "open", "partially_filled": "open", "filled": "closed"}


@settings(max_examples=12, deadline=None)
@given(ops=_OPS)
def test_the_stream_folded_per_order_equals_rest(ops: list[str]) -> None:
    with served() as sb, sb.client() as client, WsClient(str(sb.ws_url)) as ws:
        ws.subscribe("executions", token(sb))
        ws.next(lambda m: m.get("type") == "snapshot")
        resting: list[str] = []
        ref = ref_price(sb)
        low, high = ((ref * Decimal(f)).quantize(Decimal("0.1")) for f in ("0.9", "1.1"))
        for op in ops:
            if op == "rest":
                answer = client.call(
                    "AddOrder",
                    pair="XBTUSD",
                    type="buy",
                    ordertype="limit",
                    price=str(low),
                    volume="0.02",
                )
                resting.append(answer["txid"][0])
            elif op == "take":
                client.call(
                    "AddOrder", pair="XBTUSD", type="sell", ordertype="market", volume="0.01"
                )
            elif resting and op == "cancel":
                client.call("CancelOrder", txid=resting.pop(0))
            elif resting and op == "cross":
                client.call("AmendOrder", txid=resting.pop(), limit_price=str(high))
            elif resting and op == "shrink":
                client.call("AmendOrder", txid=resting[-1], order_qty="0.015")
        messages = ws.until_pong("executions")
        assert [m["sequence"] for m in messages] == list(range(2, 2 + len(messages)))
        folded = _fold(entries(messages))
        rest = client.call("QueryOrders", txid=",".join(folded), trades=True) if folded else {}
        assert set(folded) == set(rest)
        for txid, state in folded.items():
            order = rest[txid]
            assert _REST_STATUS.get(state["status"], state["status"]) == order["status"]
            assert state["trades"] == order.get("trades", [])
            assert state.get("cum_qty", Decimal(0)) == Decimal(order["vol_exec"])
            assert state.get("cum_cost", Decimal(0)) == Decimal(order["cost"])
            assert state["order_qty"] == Decimal(order["vol"])

"""The sandbox's WebSocket v2: Kraken's messages, driven by the same engine as REST."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import sandbox_ws_support as support
from sandbox_ws_support import WsClient, entries, ref_price, served, token
from websockets.exceptions import ConnectionClosed

from oms.client import KrakenClient
from oms.sandbox import Sandbox

PAIR = "XBTUSD"


def _resting_buy(client: KrakenClient, sb: Sandbox, **extra: Any) -> str:
    price = (ref_price(sb) * Decimal("0.9")).quantize(Decimal("0.1"))
    answer = client.call(
        "AddOrder",
        pair=PAIR,
        type="buy",
        ordertype="limit",
        price=str(price),
        volume="0.01",
        **extra,
    )
    return str(answer["txid"][0])


def _rest_order(client: KrakenClient, txid: str) -> dict[str, Any]:
    result: dict[str, Any] = client.call("QueryOrders", txid=txid, trades=True)[txid]
    return result


# -- connection, token, errors -------------------------------------------------------------


def test_connect_gets_the_status_message_and_ping_is_answered_with_pong() -> None:
    with served() as sb:
        assert sb.ws_url is not None
        assert sb.ws_url.startswith("ws://127.0.0.1:")
        with WsClient(sb.ws_url) as ws:
            assert ws.status["channel"] == "status"
            assert ws.status["type"] == "update"
            (data,) = ws.status["data"]
            assert data["api_version"] == "v2"
            assert data["system"] == "online"
            assert isinstance(data["connection_id"], int)
            pong = ws.request("ping")
            assert pong["method"] == "pong"
            assert set(pong) == {"method", "req_id", "time_in", "time_out"}
            assert pong["time_in"].endswith("Z")


def test_an_unknown_token_is_refused_with_kraken_error() -> None:
    with served() as sb, WsClient(str(sb.ws_url)) as ws:
        ack = ws.subscribe("executions", "not-a-token")
        assert ack["success"] is False
        assert ack["error"] == "ESession:Invalid session"
        assert ack["method"] == "subscribe"
        assert "result" not in ack
        assert ws.subscribe("balances")["error"] == "ESession:Invalid session"


def test_a_token_must_be_used_within_900_seconds_and_then_stays_good() -> None:
    with served() as sb, WsClient(str(sb.ws_url)) as ws:
        stale, fresh = token(sb), token(sb)
        ack = ws.subscribe("executions", fresh)
        assert ack["success"] is True
        sb.clock.advance(901)  # type: ignore[attr-defined]
        assert ws.subscribe("balances", stale)["error"] == "ESession:Invalid session"
        # Used once, the token no longer expires: unsubscribe and subscribe again with it.
        assert ws.request("unsubscribe", channel="executions", token=fresh)["success"] is True
        assert ws.subscribe("executions", fresh)["success"] is True


def test_a_token_is_bound_to_the_account_that_asked() -> None:
    with served(accounts=2) as sb:
        with sb.client(account=1) as other:
            theirs = _resting_buy(other, sb)
        with sb.client() as mine:
            own = _resting_buy(mine, sb)
        with WsClient(str(sb.ws_url)) as ws:
            ws.subscribe("executions", token(sb, account=1))
            snapshot = ws.next(lambda m: m.get("channel") == "executions")
            assert [e["order_id"] for e in snapshot["data"]] == [theirs]
            assert own != theirs


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("{not json", "EGeneral:Invalid arguments"),
        ('{"method": "subscribe", "params": {"channel": "bookz"}}', "Subscription name invalid"),
        ('{"method": "subscribe", "params": 3}', "EGeneral:Invalid arguments"),
        ('{"method": "unsubscribe", "params": {"channel": "heartbeat"}}', "Subscription Not Found"),
    ],
)
def test_bad_requests_get_an_error_ack_and_the_connection_stays(raw: str, error: str) -> None:
    with served() as sb, WsClient(str(sb.ws_url)) as ws:
        ws.ws.send(raw)
        ack = ws.recv()
        assert ack["success"] is False
        assert ack["error"].startswith(error)
        assert ws.request("ping")["method"] == "pong"


def test_subscribing_twice_is_refused() -> None:
    with served() as sb, WsClient(str(sb.ws_url)) as ws:
        good = token(sb)
        assert ws.subscribe("executions", good)["success"] is True
        assert ws.subscribe("executions", good)["error"] == "Already subscribed"


def test_heartbeats_flow_while_subscribed() -> None:
    with served() as sb, WsClient(str(sb.ws_url)) as ws:
        ack = ws.subscribe("heartbeat")
        assert ack["success"] is True
        assert ack["result"] == {"channel": "heartbeat"}
        beat = ws.next(lambda m: m.get("channel") == "heartbeat")
        assert beat == {"channel": "heartbeat"}


def test_the_feed_works_only_while_someone_is_subscribed() -> None:
    with served() as sb:
        assert sb.exchange.observers == []
        with WsClient(str(sb.ws_url)) as ws:
            good = token(sb)
            ws.subscribe("executions", good)
            assert len(sb.exchange.observers) == 1
            ws.request("unsubscribe", channel="executions", token=good)
            assert sb.exchange.observers == []
            ws.subscribe("balances", good)
            assert len(sb.exchange.observers) == 1
        # The server notices the hang-up in its handler thread, which detaches the sinks.
        assert support.eventually(lambda: sb.exchange.observers == [])


# -- executions ----------------------------------------------------------------------------


def test_the_snapshot_lists_open_orders_with_sequence_1() -> None:
    with served() as sb, sb.client() as client:
        txid = _resting_buy(client, sb, userref=42)
        with WsClient(str(sb.ws_url)) as ws:
            ack = ws.subscribe("executions", token(sb), snap_trades=True)
            assert ack["result"]["channel"] == "executions"
            assert ack["result"]["snap_orders"] is True
            assert ack["result"]["snap_trades"] is True
            snapshot = ws.next(lambda m: m.get("channel") == "executions")
        assert snapshot["type"] == "snapshot"
        assert snapshot["sequence"] == 1
        (entry,) = snapshot["data"]
        rest = _rest_order(client, txid)
        assert entry["order_id"] == txid
        assert entry["order_userref"] == 42
        assert entry["exec_type"] == "new"
        assert entry["order_status"] == "new"
        assert entry["symbol"] == "BTC/USD"
        assert entry["side"] == "buy"
        assert entry["order_type"] == "limit"
        assert entry["order_qty"] == Decimal(rest["vol"])
        assert entry["limit_price"] == Decimal(rest["descr"]["price"])
        assert entry["cum_qty"] == 0
        assert entry["amended"] is False


def test_place_fill_and_cancel_stream_in_order_and_match_rest() -> None:
    with served() as sb, sb.client() as client, WsClient(str(sb.ws_url)) as ws:
        ws.subscribe("executions", token(sb))
        ws.next(lambda m: m.get("type") == "snapshot")
        resting = _resting_buy(client, sb, cl_ord_id="rest-1")
        taker = client.add_order(pair=PAIR, side="buy", ordertype="market", volume="0.02")
        (taker_id,) = taker.txids
        client.call("CancelOrder", txid=resting)
        messages = ws.until_pong("executions")
        seqs = [m["sequence"] for m in messages]
        assert seqs == list(range(2, 2 + len(messages)))
        assert all(m["type"] == "update" and len(m["data"]) == 1 for m in messages)
        events = [(e["order_id"], e["exec_type"], e["order_status"]) for e in entries(messages)]
        assert events == [
            (resting, "pending_new", "pending_new"),
            (resting, "new", "new"),
            (taker_id, "pending_new", "pending_new"),
            (taker_id, "new", "new"),
            (taker_id, "trade", "filled"),
            (taker_id, "filled", "filled"),
            (resting, "canceled", "canceled"),
        ]
        by_kind = {(e["order_id"], e["exec_type"]): e for e in entries(messages)}
        assert by_kind[(resting, "pending_new")]["cl_ord_id"] == "rest-1"
        assert by_kind[(resting, "canceled")]["reason"] == "User requested"
        trade = by_kind[(taker_id, "trade")]
        rest = _rest_order(client, taker_id)
        (tid,) = rest["trades"]
        row = client.call("QueryTrades", txid=tid)[tid]
        assert trade["exec_id"] == tid
        assert trade["trade_id"] == row["trade_id"]
        assert trade["last_qty"] == Decimal(row["vol"])
        assert trade["last_price"] == Decimal(row["price"])
        assert trade["cost"] == Decimal(row["cost"])
        assert trade["fees"] == [{"asset": "USD", "qty": Decimal(row["fee"])}]
        assert trade["liquidity_ind"] == "t"
        filled = by_kind[(taker_id, "filled")]
        assert filled["cum_qty"] == Decimal(rest["vol_exec"])
        assert filled["cum_cost"] == Decimal(rest["cost"])
        assert filled["avg_price"] == Decimal(rest["price"])
        assert filled["fee_usd_equiv"] == Decimal(rest["fee"])


def test_an_amend_that_crosses_streams_amended_trade_filled() -> None:
    with served() as sb, sb.client() as client, WsClient(str(sb.ws_url)) as ws:
        txid = _resting_buy(client, sb)
        ws.subscribe("executions", token(sb))
        ws.next(lambda m: m.get("type") == "snapshot")
        high = (ref_price(sb) * Decimal("1.05")).quantize(Decimal("0.1"))
        client.call("AmendOrder", txid=txid, limit_price=str(high))
        kinds = [e["exec_type"] for e in entries(ws.until_pong("executions"))]
        assert kinds == ["amended", "trade", "filled"]
        assert _rest_order(client, txid)["status"] == "closed"


def test_expiry_on_the_exchange_clock_streams_expired() -> None:
    with served() as sb, sb.client() as client, WsClient(str(sb.ws_url)) as ws:
        ws.subscribe("executions", token(sb))
        ws.next(lambda m: m.get("type") == "snapshot")
        txid = _resting_buy(client, sb, expiretm="+30", timeinforce="GTD")
        ws.until_pong("executions")
        sb.clock.advance(31)  # type: ignore[attr-defined]
        sb.exchange.advance()
        (entry,) = entries(ws.until_pong("executions"))
        assert (entry["order_id"], entry["exec_type"]) == (txid, "expired")
        assert _rest_order(client, txid)["status"] == "expired"


def test_order_status_false_streams_only_open_and_close_transitions() -> None:
    with served() as sb, sb.client() as client, WsClient(str(sb.ws_url)) as ws:
        ws.subscribe("executions", token(sb), order_status=False)
        ws.next(lambda m: m.get("type") == "snapshot")
        client.add_order(pair=PAIR, side="buy", ordertype="market", volume="0.01")
        kinds = [e["exec_type"] for e in entries(ws.until_pong("executions"))]
        assert kinds == ["new", "filled"]


def test_snap_trades_shows_the_last_fills_with_rest_numbers() -> None:
    with served() as sb, sb.client() as client:
        client.add_order(pair=PAIR, side="buy", ordertype="market", volume="0.01")
        with WsClient(str(sb.ws_url)) as ws:
            ws.subscribe("executions", token(sb), snap_trades=True)
            snapshot = ws.next(lambda m: m.get("type") == "snapshot")
        (trade,) = snapshot["data"]
        row = client.call("QueryTrades", txid=trade["exec_id"])[trade["exec_id"]]
        assert trade["exec_type"] == "trade"
        assert trade["order_status"] == "filled"
        assert trade["cost"] == Decimal(row["cost"])


# -- balances --------------------------------------------------------------------------------


def test_balances_snapshot_then_one_update_per_asset_on_a_fill() -> None:
    with served() as sb, sb.client() as client, WsClient(str(sb.ws_url)) as ws:
        ack = ws.subscribe("balances", token(sb))
        assert ack["result"] == {"channel": "balances", "snapshot": True}
        snapshot = ws.next(lambda m: m.get("channel") == "balances")
        assert snapshot["type"] == "snapshot"
        assert snapshot["sequence"] == 1
        names = {e["asset"]: e["balance"] for e in snapshot["data"]}
        assert names["BTC"] == Decimal(2)
        assert names["DOGE"] == Decimal(100000)
        _resting_buy(client, sb)  # a hold is no balance change
        assert ws.until_pong("balances") == []
        client.add_order(pair=PAIR, side="buy", ordertype="market", volume="0.01")
        updates = ws.until_pong("balances")
        assert [m["sequence"] for m in updates] == [2, 3]
        rest = client.call("Balance")
        for entry in entries(updates):
            assert entry["type"] == "trade"
            assert entry["wallet_id"] == "main"
            rest_id = {"BTC": "XXBT", "USD": "ZUSD"}[entry["asset"]]
            assert entry["balance"] == Decimal(rest[rest_id])
            assert entry["balance"] - entry["amount"] == names[entry["asset"]]


# -- stopping ------------------------------------------------------------------------------


def test_stopping_the_sandbox_closes_every_connection() -> None:
    sb = Sandbox.serve(seed=3)
    try:
        ws = WsClient(str(sb.ws_url))
        ws.subscribe("executions", token(sb))
    finally:
        sb.close()
    with pytest.raises(ConnectionClosed) as closed:
        support.drain(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001
    ws.close()
    assert sb.server is not None
    assert sb.server.ws is not None
    assert sb.server.ws.connections == []


def test_guard_is_only_a_hang_guard() -> None:
    assert support.GUARD >= 5

"""The stream's own promises, against a scripted WebSocket server on 127.0.0.1: a subscription
with a fresh token, sequence gaps and (re)subscriptions reconciled, a silent connection given
up, a refused subscription retried, and a capped jittered backoff."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.sync.server import ServerConnection, serve

from oms.errors import ValidationError
from oms.live.stream import ExecutionStream, backoff_delay, check_ws_url

Script = Callable[[ServerConnection, int], None]


@contextmanager
def scripted(script: Script) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A WebSocket server running ``script(connection, n)`` for its n-th connection (from 1);
    yields its URL and the subscribe requests it received."""
    received: list[dict[str, Any]] = []
    count = 0
    lock = threading.Lock()

    def handler(ws: ServerConnection) -> None:
        nonlocal count
        with lock:
            count += 1
            n = count
        request = json.loads(ws.recv(timeout=10))
        received.append(request)
        try:
            script(ws, n)
        except Exception:  # the client went away: the script ends with it
            return

    with serve(handler, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}/v2", received
        finally:
            server.shutdown()
            thread.join(10)


def snapshot_then_quiet(ws: ServerConnection, n: int) -> None:
    """Subscribe, a snapshot, then nothing (not even a heartbeat)."""
    ack(ws)
    executions(ws, "snapshot", 1)
    ws.recv(timeout=30)


def ack(ws: ServerConnection, *, success: bool = True, error: str | None = None) -> None:
    message: dict[str, Any] = {"method": "subscribe", "success": success, "req_id": 1}
    if error:
        message["error"] = error
    else:
        message["result"] = {"channel": "executions", "snap_orders": True, "snap_trades": False}
    ws.send(json.dumps(message))


def executions(ws: ServerConnection, kind: str, sequence: int, txid: str = "O1") -> None:
    entry = {"order_id": txid, "exec_type": "new", "order_status": "new"}
    message = {"channel": "executions", "type": kind, "data": [entry], "sequence": sequence}
    ws.send(json.dumps(message))


class Recorder:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.resyncs: list[str] = []
        self.tokens = 0
        self.changed = threading.Condition()

    def token(self) -> str:
        self.tokens += 1
        return f"token-{self.tokens}"

    def on_message(self, message: Any) -> None:
        with self.changed:
            self.messages.append(dict(message))
            self.changed.notify_all()

    def on_resync(self, reason: str) -> None:
        with self.changed:
            self.resyncs.append(reason)
            self.changed.notify_all()

    def wait(self, done: Callable[[], bool], timeout: float = 20.0) -> None:
        with self.changed:
            assert self.changed.wait_for(done, timeout), "the stream never got there"


def stream(url: str, rec: Recorder, **options: Any) -> ExecutionStream:
    return ExecutionStream(
        url,
        rec.token,
        on_message=rec.on_message,
        on_resync=rec.on_resync,
        backoff=(0.01, 0.05),
        rng=random.Random(1),
        **options,
    )


def test_each_subscription_reconciles_and_a_sequence_gap_reconciles_again() -> None:
    def script(ws: ServerConnection, n: int) -> None:
        ack(ws)
        executions(ws, "snapshot", 1)
        executions(ws, "update", 2)
        executions(ws, "update", 4)  # 3 never came
        executions(ws, "update", 5)
        ws.recv(timeout=30)

    rec = Recorder()
    with scripted(script) as (url, received):
        live = stream(url, rec).start()
        try:
            rec.wait(lambda: len(rec.messages) == 4)
            assert live.wait_live(10)
            status = live.status
        finally:
            live.stop()
    assert [m["sequence"] for m in rec.messages] == [1, 2, 4, 5]
    assert len(rec.resyncs) == 2
    assert "subscribed" in rec.resyncs[0]
    assert "gap" in rec.resyncs[1]
    assert status.gaps == 1
    assert status.live
    params = received[0]["params"]
    assert received[0]["method"] == "subscribe"
    assert params["channel"] == "executions"
    assert params["token"] == "token-1"
    assert params["snap_orders"] is True


def test_a_silent_connection_is_given_up_and_made_again_with_the_same_token() -> None:
    rec = Recorder()
    with scripted(snapshot_then_quiet) as (url, received):
        live = stream(url, rec, silence=0.3).start()
        try:
            rec.wait(lambda: len(rec.messages) >= 2)
        finally:
            live.stop()
    assert live.status.connections >= 2
    assert "no message" in str(live.status.last_error)
    # A token not refused and not old is used again: no REST call per reconnection.
    assert [r["params"]["token"] for r in received[:2]] == ["token-1", "token-1"]
    assert rec.tokens == 1


def test_a_refused_subscription_is_tried_again_and_reported() -> None:
    def script(ws: ServerConnection, n: int) -> None:
        if n == 1:
            ack(ws, success=False, error="ESession:Invalid session")
            ws.recv(timeout=30)
            return
        ack(ws)
        executions(ws, "snapshot", 1)
        ws.recv(timeout=30)

    rec = Recorder()
    with scripted(script) as (url, received):
        live = stream(url, rec).start()
        try:
            assert live.wait_live(20)
            status = live.status
        finally:
            live.stop()
    assert status.connections == 2
    # Refused: the next connection asks for a new token.
    assert [r["params"]["token"] for r in received] == ["token-1", "token-2"]
    assert "ESession:Invalid session" in str(status.last_error)
    assert not live.status.live  # stopped


def test_an_old_token_is_not_used_again() -> None:
    rec = Recorder()
    with scripted(snapshot_then_quiet) as (url, received):
        live = stream(url, rec, silence=0.3, token_reuse=0.0).start()
        try:
            rec.wait(lambda: len(rec.messages) >= 2)
        finally:
            live.stop()
    assert [r["params"]["token"] for r in received[:2]] == ["token-1", "token-2"]


def test_stop_ends_the_thread() -> None:
    rec = Recorder()
    with scripted(snapshot_then_quiet) as (url, _):
        live = stream(url, rec).start()
        assert live.wait_live(20)
        live.stop()
    assert not any(t.name.startswith("oms-live:") for t in threading.enumerate())


@given(
    failures=st.integers(0, 100),
    base=st.floats(0.01, 5),
    cap=st.floats(0.1, 120),
    seed=st.integers(0, 2**32),
)
def test_the_backoff_is_jittered_below_a_capped_exponential(
    failures: int, base: float, cap: float, seed: int
) -> None:
    delay = backoff_delay(failures, base=base, cap=cap, rng=random.Random(seed))
    assert 0 <= delay <= min(cap, base * 2.0 ** min(failures, 32))


def test_the_backoff_spreads_clients_cut_off_together() -> None:
    rng = random.Random(5)
    delays = {round(backoff_delay(6, base=0.5, cap=30, rng=rng), 3) for _ in range(50)}
    assert len(delays) > 40


@pytest.mark.parametrize(
    "url", ["ws://example.com/v2", "http://127.0.0.1:5/v2", "wss:///v2", "ftp://x/v2"]
)
def test_the_token_never_goes_where_it_could_be_read(url: str) -> None:
    with pytest.raises(ValidationError):
        check_ws_url(url)


@pytest.mark.parametrize("url", ["wss://ws-auth.kraken.com/v2", "ws://127.0.0.1:8080/v2"])
def test_kraken_and_a_local_sandbox_are_fine(url: str) -> None:
    assert check_ws_url(url) == url


def test_a_quiet_subscription_pings_so_kraken_never_closes_it_as_idle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("oms.live.stream.PING_EVERY", 0.2)
    pings: list[dict[str, Any]] = []

    def script(ws: ServerConnection, n: int) -> None:
        ack(ws)
        executions(ws, "snapshot", 1)
        while True:
            request = json.loads(ws.recv(timeout=30))
            pings.append(request)
            reply = {"method": "pong", "req_id": request.get("req_id")}
            ws.send(json.dumps(reply))

    rec = Recorder()
    with scripted(script) as (url, _):
        live = stream(url, rec, silence=5.0).start()
        try:
            end = time.monotonic() + 20  # a hang guard
            while len(pings) < 2 and time.monotonic() < end:
                time.sleep(0.01)
        finally:
            live.stop()
    assert len(pings) >= 2
    assert all(p["method"] == "ping" for p in pings)
    assert len({p["req_id"] for p in pings}) == len(pings)
    assert live.status.connections == 1  # pongs (and pings) kept it going

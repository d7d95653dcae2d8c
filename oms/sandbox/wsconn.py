"""One WebSocket v2 connection of the sandbox: its requests, its subscriptions, its writer.

The reader (the websockets handler thread) answers requests; everything the connection
sends goes through one queue, so acks, snapshots and updates leave in the order they were
produced. Channel messages get their ``sequence`` when queued (per channel, from 1 at the
snapshot, restarting on each subscribe); a ``skip`` fault swallows one at the writer, so
its number is used up and the client sees a gap.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import socket
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from websockets.exceptions import ConnectionClosed

from oms.sandbox.feed import Entry, Sink
from oms.sandbox.wsfaults import ConnFaults, WsFault
from oms.sandbox.wsformat import dumps, rfc3339

if TYPE_CHECKING:
    from websockets.sync.server import ServerConnection

    from oms.sandbox.websocket import SandboxWebSocket

__all__ = ["INVALID_SESSION", "Connection"]

logger = logging.getLogger(__name__)

INVALID_SESSION = "ESession:Invalid session"
INVALID_ARGUMENTS = "EGeneral:Invalid arguments"
VERSION = "2.0.10"
_HEARTBEAT = dumps({"channel": "heartbeat"})
#: With order_status=false, only these transitions are streamed.
_OPEN_CLOSE = frozenset({"new", "filled", "canceled", "expired"})
_PRIVATE = ("executions", "balances")


class _Stop(Exception):
    pass


class Connection:
    """State and threads of one client connection (made by :class:`SandboxWebSocket`)."""

    def __init__(self, conn_id: int, ws: ServerConnection, server: SandboxWebSocket) -> None:
        self.id = conn_id
        self.ws = ws
        self.server = server
        self.exchange = server.exchange
        self.feed = server.feed
        #: The account of the first private subscription (faults can target it).
        self.account: str | None = None
        self.sent = 0
        self._cond = threading.Condition()
        self._queue: deque[tuple[float, str, str | None]] = deque()
        self._faults = ConnFaults()
        self._seq: dict[str, int] = {}
        self._subs: dict[str, tuple[str, Sink] | None] = {}
        self._closing = False
        self._writer = threading.Thread(
            target=self._write_forever, name=f"oms-sandbox-ws-writer:{conn_id}", daemon=True
        )

    def __repr__(self) -> str:
        return f"Connection({self.id}, account={self.account!r}, subs={sorted(self._subs)})"

    def describe(self) -> dict[str, Any]:
        with self._cond:
            return {
                "id": self.id,
                "account": self.account,
                "subscriptions": sorted(self._subs),
                "sequence": dict(self._seq),
                "queued": len(self._queue),
                "sent": self.sent,
            }

    # -- life cycle ------------------------------------------------------------------------

    def run(self) -> None:
        """Serve until the connection ends (called in the websockets handler thread)."""
        status = {
            "api_version": "v2",
            "connection_id": secrets.randbits(64),
            "system": self.exchange.config.system_status,
            "version": VERSION,
        }
        self._enqueue({"channel": "status", "type": "update", "data": [status]})
        self._writer.start()
        try:
            for raw in self.ws:
                self._on_message(raw)
        except ConnectionClosed:
            pass
        finally:
            self._unsubscribe_all()
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._writer.join(timeout=5)

    def close(self, code: int, reason: str) -> None:
        """Close with a close frame (the server is stopping)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        with contextlib.suppress(ConnectionClosed, OSError):
            self.ws.close(code, reason)

    def abort(self) -> None:
        """Hang up without a close frame: what a network failure looks like."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        with contextlib.suppress(OSError):
            self.ws.socket.shutdown(socket.SHUT_RDWR)

    # -- faults ----------------------------------------------------------------------------

    def add_fault(self, fault: WsFault) -> None:
        with self._cond:
            fault.apply(self._faults)
            drop_now = self._faults.drop_after == 0
            self._cond.notify_all()
        if drop_now:
            self.abort()

    def clear_faults(self) -> None:
        with self._cond:
            self._faults = ConnFaults()
            self._cond.notify_all()

    # -- the writer --------------------------------------------------------------------------

    def _enqueue(self, message: dict[str, Any], channel: str | None = None) -> None:
        """Queue a message; a channel message gets the channel's next ``sequence``."""
        with self._cond:
            if channel is not None:
                self._seq[channel] = self._seq.get(channel, 0) + 1
                message["sequence"] = self._seq[channel]
            self._queue.append((time.monotonic(), dumps(message), channel))
            self._cond.notify_all()

    def _next(self, last_sent: float) -> str:
        """The next text to send, waiting as long as faults and heartbeats say (under the
        condition); raises _Stop when the connection closes."""
        while True:
            if self._closing:
                raise _Stop
            now = time.monotonic()
            faults = self._faults
            if faults.withhold_until > now:
                self._cond.wait(faults.withhold_until - now)
                continue
            if self._queue:
                queued_at, text, channel = self._queue[0]
                if queued_at + faults.delay > now:
                    self._cond.wait(queued_at + faults.delay - now)
                    continue
                self._queue.popleft()
                if channel is not None and faults.take_skip(channel):
                    continue
                return text
            beat = self.server.heartbeat
            if self._subs and beat:
                if last_sent + beat <= now:
                    return _HEARTBEAT
                self._cond.wait(last_sent + beat - now)
                continue
            self._cond.wait()

    def _write_forever(self) -> None:
        last_sent = time.monotonic()
        while True:
            with self._cond:
                try:
                    text = self._next(last_sent)
                except _Stop:
                    return
            try:
                self.ws.send(text)
            except (ConnectionClosed, OSError):
                return
            last_sent = time.monotonic()
            with self._cond:
                self.sent += 1
                faults = self._faults
                if faults.drop_after is not None:
                    faults.drop_after -= 1
                drop = faults.drop_after is not None and faults.drop_after <= 0
            if drop:
                self.abort()
                return

    # -- requests ----------------------------------------------------------------------------

    def _now(self) -> float:
        return float(self.exchange.clock.time())

    def _ack(
        self,
        method: str,
        req_id: Any,
        time_in: float,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """An ack, keys in the order Kraken's answers show them (alphabetical)."""
        out: dict[str, Any] = {}
        if error is not None:
            out["error"] = error
        out["method"] = method
        if req_id is not None:
            out["req_id"] = req_id
        if result is not None:
            out["result"] = result
        out["success"] = error is None
        out["time_in"] = rfc3339(time_in)
        out["time_out"] = rfc3339(self._now())
        self._enqueue(out)

    def _on_message(self, raw: str | bytes) -> None:
        time_in = self._now()
        try:
            request = json.loads(raw)
        except ValueError:
            request = None
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            self._ack("error", None, time_in, error=f"{INVALID_ARGUMENTS}:malformed request")
            return
        method, req_id = request["method"], request.get("req_id")
        if method == "ping":
            pong: dict[str, Any] = {"method": "pong"}
            if req_id is not None:
                pong["req_id"] = req_id
            pong.update(time_in=rfc3339(time_in), time_out=rfc3339(self._now()))
            self._enqueue(pong)
            return
        if method not in ("subscribe", "unsubscribe"):
            message = (
                f"Unsupported method {method} (the sandbox serves subscribe, unsubscribe, ping)"
            )
            self._ack(method, req_id, time_in, error=message)
            return
        params = request.get("params")
        if not isinstance(params, dict):
            self._ack(method, req_id, time_in, error=f"{INVALID_ARGUMENTS}:params")
            return
        channel = params.get("channel")
        if channel not in (*_PRIVATE, "heartbeat"):
            self._ack(method, req_id, time_in, error="Subscription name invalid")
            return
        try:
            if method == "subscribe":
                result = self._subscribe(str(channel), params, req_id, time_in)
            else:
                result = self._unsubscribe(str(channel), params)
        except _Refused as refused:
            self._ack(method, req_id, time_in, error=str(refused))
            return
        if result is not None:
            self._ack(method, req_id, time_in, result=result)

    # -- subscriptions -------------------------------------------------------------------------

    def _account_for(self, params: dict[str, Any]) -> str:
        token = params.get("token")
        key = None
        if isinstance(token, str):
            key = self.exchange.private.ws_tokens.account(token, self._now())
        if key is None or key not in self.exchange.accounts:
            raise _Refused(INVALID_SESSION)
        return key

    def _subscribe(
        self, channel: str, params: dict[str, Any], req_id: Any, time_in: float
    ) -> dict[str, Any] | None:
        if channel in self._subs:
            raise _Refused("Already subscribed")
        if channel == "heartbeat":
            with self._cond:
                self._subs[channel] = None
            return {"channel": channel}
        options = _options(channel, params)
        with self.exchange.lock:
            self.exchange.advance()  # the snapshot shows the exchange at its clock
            key = self._account_for(params)
            self.exchange.private.ws_tokens.use(str(params["token"]))
            self.account = self.account or key
            sink = self._sink(channel, options)
            result: dict[str, Any] = {"channel": channel}
            if channel == "executions":
                limits = self.exchange.accounts[key].limits
                result["maxratecount"] = int(limits.trading_threshold)
                result["snap_orders"] = options["snap_orders"]
                result["snap_trades"] = options["snap_trades"]
                entries = self.feed.executions_snapshot(
                    key, orders=options["snap_orders"], trades=options["snap_trades"]
                )
                send_snapshot = True
            else:
                result["snapshot"] = options["snapshot"]
                entries = self.feed.balances_snapshot(key)
                send_snapshot = options["snapshot"]
            # Ack, snapshot and the sink all under the exchange lock: no update can come
            # between the snapshot and the first update, nor twice.
            with self._cond:
                self._seq[channel] = 0
                self._subs[channel] = (key, sink)
            self._ack("subscribe", req_id, time_in, result=result)
            if send_snapshot:
                message = {"channel": channel, "type": "snapshot", "data": entries}
                self._enqueue(message, channel)
            self.feed.attach(key, sink)
        return None

    def _sink(self, channel: str, options: dict[str, bool]) -> Sink:
        every_status = options.get("order_status", True)

        def executions(entries: list[Entry], ledger: list[Entry]) -> None:
            for entry in entries:
                if every_status or entry["exec_type"] in _OPEN_CLOSE:
                    self._enqueue(
                        {"channel": "executions", "type": "update", "data": [entry]}, channel
                    )

        def balances(entries: list[Entry], ledger: list[Entry]) -> None:
            for entry in ledger:
                self._enqueue({"channel": "balances", "type": "update", "data": [entry]}, channel)

        return executions if channel == "executions" else balances

    def _unsubscribe(self, channel: str, params: dict[str, Any]) -> dict[str, Any]:
        if channel in _PRIVATE:
            with self.exchange.lock:
                self._account_for(params)
        with self._cond:
            if channel not in self._subs:
                raise _Refused("Subscription Not Found")
            sub = self._subs.pop(channel)
        if sub is not None:
            self.feed.detach(*sub)
        return {"channel": channel}

    def _unsubscribe_all(self) -> None:
        with self._cond:
            subs = [sub for sub in self._subs.values() if sub is not None]
            self._subs.clear()
        for key, sink in subs:
            self.feed.detach(key, sink)


class _Refused(Exception):
    """A request answered with ``success: false`` and this error text."""


def _options(channel: str, params: dict[str, Any]) -> dict[str, bool]:
    """The subscription's boolean options with Kraken's defaults; a non-boolean is refused."""
    if channel == "executions":
        defaults = {"snap_orders": True, "snap_trades": False, "order_status": True}
        if "snapshot" in params and "snap_orders" not in params:
            defaults["snap_orders"] = params["snapshot"]  # the deprecated name
    else:
        defaults = {"snapshot": True}
    out: dict[str, bool] = {}
    for name, default in defaults.items():
        value = params.get(name, default)
        if not isinstance(value, bool):
            raise _Refused(f"{INVALID_ARGUMENTS}:{name}")
        out[name] = value
    return out

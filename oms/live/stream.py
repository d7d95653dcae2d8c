"""One authenticated Kraken WebSocket v2 connection, kept alive: the ``executions`` channel.

:class:`ExecutionStream` runs a thread that connects, subscribes with a fresh token, and hands
every executions message to its owner in order. It never decides what a message means for
the cache; it says when the owner must not trust the stream alone any more:

- ``on_resync(reason)`` after each (re)subscription's snapshot and at each sequence gap: events
  may have been missed, so the owner reconciles through REST before the next message is read;
- silence (no message, not even a heartbeat, for ``silence`` seconds), a closed connection or a
  refused subscription end the connection; it is made again after a capped, jittered backoff.

A token is asked for (REST ``GetWebSocketsToken``, one point of the REST counter) when there is
none yet, when the last one is older than ``token_reuse`` seconds (Kraken's must be used within
15 minutes), or when a subscription with it was refused; otherwise a reconnection reuses it.

``websockets`` is imported when the thread starts, not before (``import oms`` stays cheap).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from oms._version import USER_AGENT
from oms.errors import ValidationError

__all__ = ["KRAKEN_WS_AUTH_URL", "ExecutionStream", "StreamStatus", "backoff_delay"]

logger = logging.getLogger("oms.live")

# websockets logs every frame at DEBUG, the subscribe request (and its token) included: its
# logger for our connections never goes below INFO, whatever the application's level.
_WIRE = logging.getLogger("oms.live.websocket")
_WIRE.setLevel(logging.INFO)


class _NoFrames(logging.Filter):
    """Drops websockets' DEBUG frame records even when a logging configuration resets the
    level above (``dictConfig`` on ``"oms"``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


_WIRE.addFilter(_NoFrames())

#: Seconds a connection must have been live before a drop counts as a fresh start for the
#: backoff (a server that accepts, snapshots and hangs up must not be hammered).
STABLE = 30.0
#: Seconds between application pings (Kraken closes a connection idle for about a minute).
PING_EVERY = 30.0

#: Kraken's authenticated WebSocket v2 endpoint.
KRAKEN_WS_AUTH_URL = "wss://ws-auth.kraken.com/v2"


@attrs.frozen
class StreamStatus:
    """Where a stream stands. ``live`` is true from a subscription's snapshot (and the REST
    reconciliation after it) until the connection ends; ``since`` is when (local unix time) it
    last became live; ``resyncs`` counts the REST reconciliations done. ``last_message_at``
    counts heartbeats too."""

    live: bool
    since: float | None
    connections: int
    reconnects: int
    gaps: int
    resyncs: int
    last_message_at: float | None
    last_error: str | None


def backoff_delay(failures: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before connection attempt ``failures + 1``: "full jitter", a uniform
    draw below ``min(cap, base * 2**failures)``, so many clients cut off at once do not all
    come back in the same instant. The first retry after a working connection waits little."""
    return rng.uniform(0.0, min(cap, base * 2.0 ** min(failures, 32)))


def check_ws_url(url: str) -> str:
    """Refuse a URL the token must not travel to: anything but ``wss://``, except plain
    ``ws://`` to this machine (the sandbox)."""
    from oms.transport import _is_loopback

    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "wss" and parts.hostname:
        return url
    if parts.scheme == "ws" and _is_loopback(parts.hostname):
        return url
    raise ValidationError(
        f"a WebSocket URL must be wss:// (or ws:// to this machine), got {url!r}",
        field="ws_url",
        rule="wss",
    )


class _Reconnect(Exception):
    """The connection is to be given up and made again (the reason is the message)."""


class ExecutionStream:
    """The thread that keeps one ``executions`` subscription alive (see the module doc).

    ``token`` returns a fresh token (a REST ``GetWebSocketsToken``) for each connection;
    ``on_message`` gets each decoded executions message (numbers as :class:`Decimal`);
    ``on_resync`` is called, in the stream's thread, when the owner must reconcile.
    """

    def __init__(
        self,
        url: str,
        token: Callable[[], str],
        *,
        on_message: Callable[[Mapping[str, Any]], None],
        on_resync: Callable[[str], None],
        silence: float = 10.0,
        backoff: tuple[float, float] = (0.5, 30.0),
        open_timeout: float = 10.0,
        snap_trades: bool = False,
        token_reuse: float = 600.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ):
        if not silence > 0:
            raise ValidationError("silence must be a positive number of seconds", field="silence")
        self.url = check_ws_url(url)
        self._token = token
        self._on_message = on_message
        self._on_resync = on_resync
        self.silence = float(silence)
        self._base, self._cap = backoff
        self.open_timeout = open_timeout
        self.snap_trades = snap_trades
        self.token_reuse = token_reuse
        self._held: tuple[str, float] | None = None  # (token, when it was fetched: monotonic)
        self._rng = rng or random.Random()
        self._clock = clock
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ws: Any = None
        self._req_id = 0
        self._expected: int | None = None
        self._live_at: float | None = None  # monotonic time this connection became live
        self._status = StreamStatus(False, None, 0, 0, 0, 0, None, None)
        self._became_live = threading.Condition(self._lock)

    def __repr__(self) -> str:
        return f"ExecutionStream({self.url!r}, live={self._status.live})"

    # --- public ---------------------------------------------------------------------------

    @property
    def status(self) -> StreamStatus:
        with self._lock:
            return self._status

    def in_stream_thread(self) -> bool:
        """Whether the caller runs in this stream's thread (a subscriber's callback)."""
        return self._thread is not None and self._thread is threading.current_thread()

    def start(self) -> ExecutionStream:
        """Start the thread (once); returns self."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"oms-live:{self.url}", daemon=True
                )
                self._thread.start()
        return self

    def wait_live(self, timeout: float | None = None) -> bool:
        """Block until the stream is live (or ``timeout`` seconds pass); whether it is."""
        with self._lock:
            self._became_live.wait_for(
                lambda: self._status.live or self._stopping.is_set(), timeout
            )
            return self._status.live

    def stop(self, timeout: float = 5.0) -> None:
        """Close the connection and end the thread (waits up to ``timeout`` seconds)."""
        self._stopping.set()
        ws = self._ws
        if ws is not None:
            try:
                ws.close()
            except Exception:  # closing a connection that already broke
                logger.debug("closing the WebSocket failed", exc_info=True)
        with self._lock:
            self._became_live.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # --- the thread -----------------------------------------------------------------------

    def _set(self, **changes: Any) -> None:
        with self._lock:
            self._status = attrs.evolve(self._status, **changes)
            if changes.get("live"):
                self._became_live.notify_all()

    def _was_stable(self) -> bool:
        """Whether the connection that just ended had been live for :data:`STABLE` s."""
        live_at = self._live_at
        return live_at is not None and time.monotonic() - live_at >= STABLE

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            self._live_at = None
            try:
                self._connect_once()
                failures = 0
            except Exception as exc:  # every failure means "connect again"
                if self._stopping.is_set():
                    break
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                logger.warning("WebSocket connection to %s ended: %s", self.url, reason)
                self._set(last_error=reason)
                # After a connection that worked a while, the first retry waits little.
                failures = 1 if self._was_stable() else failures + 1
            finally:
                self._ws = None
                self._set(live=False)
            if self._stopping.is_set():
                break
            self._set(reconnects=self._status.reconnects + 1)
            self._stopping.wait(
                backoff_delay(failures - 1, base=self._base, cap=self._cap, rng=self._rng)
            )

    def _fresh_token(self) -> str:
        held = self._held
        if held is not None and time.monotonic() - held[1] < self.token_reuse:
            return held[0]
        token = self._token()
        self._held = (token, time.monotonic())
        return token

    def _connect_once(self) -> None:
        from websockets.sync.client import connect

        token = self._fresh_token()
        ssl_context = None
        if self.url.startswith("wss:"):
            from oms.transport._tls import make_ssl_context

            ssl_context = make_ssl_context()
        with connect(
            self.url,
            ssl=ssl_context,
            open_timeout=self.open_timeout,
            close_timeout=1.0,
            user_agent_header=USER_AGENT,
            max_size=2**24,
            compression=None,
            logger=_WIRE,
        ) as ws:
            self._ws = ws
            self._expected = None
            self._set(connections=self._status.connections + 1)
            if self._stopping.is_set():
                return
            self._subscribe(ws, token)
            self._read(ws)

    def _subscribe(self, ws: Any, token: str) -> None:
        self._req_id += 1
        params = {
            "channel": "executions",
            "token": token,
            "snap_orders": True,
            "snap_trades": self.snap_trades,
            "order_status": True,
        }
        ws.send(json.dumps({"method": "subscribe", "params": params, "req_id": self._req_id}))

    def _read(self, ws: Any) -> None:
        heard = pinged = time.monotonic()
        while not self._stopping.is_set():
            now = time.monotonic()
            if now - pinged >= PING_EVERY:
                self._req_id += 1
                ws.send(json.dumps({"method": "ping", "req_id": self._req_id}))
                pinged = now
            wait = min(self.silence - (now - heard), PING_EVERY - (now - pinged))
            try:
                raw = ws.recv(timeout=max(0.0, wait))
            except TimeoutError:
                if time.monotonic() - heard >= self.silence:
                    raise _Reconnect(f"no message for {self.silence:g} s (no heartbeat)") from None
                continue  # time to ping
            heard = time.monotonic()
            self._set(last_message_at=self._clock())
            message = json.loads(raw, parse_float=Decimal)
            if isinstance(message, dict):
                self._handle(message)

    def _handle(self, message: Mapping[str, Any]) -> None:
        if message.get("method") == "subscribe":
            if message.get("success") is not True:
                self._held = None  # the next connection asks for a new token
                raise _Reconnect(f"subscription refused: {message.get('error')!s}")
            return
        if message.get("channel") != "executions":
            return  # status, heartbeat, pong: their arrival is what counts
        kind = message.get("type")
        sequence = message.get("sequence")
        if kind == "snapshot":
            self._on_message(message)
            self._expected = _next(sequence)
            self._resync("subscribed: events may have been missed before the snapshot")
            self._set(live=True, since=self._clock())
            self._live_at = time.monotonic()
            return
        if kind != "update":
            return
        if self._expected is not None and isinstance(sequence, int) and sequence != self._expected:
            self._set(gaps=self._status.gaps + 1)
            logger.warning(
                "executions sequence jumped from %s to %s: reconciling through REST",
                self._expected - 1,
                sequence,
            )
            self._on_message(message)
            self._expected = _next(sequence)
            self._resync(f"sequence gap before {sequence}")
            return
        self._on_message(message)
        self._expected = _next(sequence)

    def _resync(self, reason: str) -> None:
        self._on_resync(reason)
        self._set(resyncs=self._status.resyncs + 1)  # counted once done


def _next(sequence: object) -> int | None:
    return sequence + 1 if isinstance(sequence, int) and not isinstance(sequence, bool) else None

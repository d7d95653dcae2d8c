"""Kraken's WebSocket v2 (the ``ws-auth`` endpoint) for the sandbox, on ``websockets.sync``.

:class:`SandboxWebSocket` serves ``ws://HOST:PORT/v2`` beside the REST server: the ``status``
message on connect, ``ping``/``pong``, ``heartbeat`` about once a second while subscribed,
and the private channels ``executions`` and ``balances`` (token from GetWebSocketsToken, as
on Kraken). Events come from :class:`~oms.sandbox.feed.Feed`, read off the engine's state
under its lock, so what REST shows and what the stream says agree.

Every connection has a reader (the websockets handler thread) and a writer thread that
sends from a queue: events are queued under the exchange lock in engine order, and the
writer acts out the faults of :mod:`oms.sandbox.wsfaults` (drops, delays, silences,
sequence gaps). Nothing polls: the writer sleeps on a condition until a message, a
heartbeat or a fault's deadline is due.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from collections.abc import Iterable
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from oms.sandbox.engine import Exchange
from oms.sandbox.feed import Feed
from oms.sandbox.wsconn import Connection
from oms.sandbox.wsfaults import WsFault

__all__ = ["SandboxWebSocket"]

logger = logging.getLogger(__name__)

#: Kraken's v2 path; the sandbox answers on any path, this is the one it advertises.
PATH = "/v2"


class SandboxWebSocket:
    """The WebSocket v2 server of one exchange, on ``host:port`` (0: a free port).

    Faults (:mod:`oms.sandbox.wsfaults`): :meth:`drop`, :meth:`delay`, :meth:`withhold`,
    :meth:`skip`, or :meth:`add_fault` with a :class:`~oms.sandbox.wsfaults.WsFault`;
    :meth:`clear_faults` ends delays and silences and forgets faults for new connections.
    """

    def __init__(
        self, exchange: Exchange, *, host: str = "127.0.0.1", port: int = 0, heartbeat: float = 1.0
    ) -> None:
        self.exchange = exchange
        self.feed = Feed(exchange)
        self.heartbeat = heartbeat
        self._lock = threading.Lock()
        self._conns: dict[int, Connection] = {}
        self._handlers: set[threading.Thread] = set()
        self._ids = itertools.count(1)
        self._pending: list[WsFault] = []  # faults for connections opened later
        self._stopping = threading.Event()
        self._server: Server = serve(
            self._handle, host, port, compression=None, close_timeout=2, server_header=None
        )
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"SandboxWebSocket({self.url!r}, connections={len(self.connections)})"

    @property
    def host(self) -> str:
        return str(self._server.socket.getsockname()[0])

    @property
    def port(self) -> int:
        return int(self._server.socket.getsockname()[1])

    @property
    def url(self) -> str:
        from oms.sandbox.server import url_of

        return url_of("ws", self.host, self.port, PATH)

    @property
    def connections(self) -> list[Connection]:
        """The open connections, oldest first."""
        with self._lock:
            return list(self._conns.values())

    def start(self) -> SandboxWebSocket:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, name=f"oms-sandbox-ws:{self.port}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close every connection (code 1001) and join all threads."""
        self._stopping.set()
        for conn in self.connections:
            conn.close(1001, "sandbox stopping")
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            handlers = list(self._handlers)
        for thread in handlers:
            thread.join(timeout=5)

    # -- connections -------------------------------------------------------------------

    def _handle(self, ws: ServerConnection) -> None:
        thread = threading.current_thread()
        conn = Connection(next(self._ids), ws, self)
        with self._lock:
            if self._stopping.is_set():
                refuse = True
            else:
                refuse = False
                self._handlers.add(thread)
                self._conns[conn.id] = conn
                pending = list(self._pending)
        if refuse:
            with contextlib.suppress(ConnectionClosed, OSError):
                ws.close(1001, "sandbox stopping")
            return
        try:
            for fault in pending:
                conn.add_fault(fault)
            conn.run()
        finally:
            with self._lock:
                self._conns.pop(conn.id, None)
                self._handlers.discard(thread)

    # -- faults ----------------------------------------------------------------------------

    def add_fault(self, fault: WsFault) -> list[int]:
        """Act out ``fault``; returns the ids of the open connections it was applied to."""
        hit: list[int] = []
        if fault.connections in ("open", "all"):
            for conn in self.connections:
                if fault.applies_to(conn.account):
                    conn.add_fault(fault)
                    hit.append(conn.id)
        if fault.connections in ("new", "all"):
            with self._lock:
                self._pending.append(fault)
        return hit

    def drop(self, *, after: int = 0, **scope: Any) -> list[int]:
        """Hang up (no close frame) now, or after ``after`` more messages."""
        return self.add_fault(WsFault("drop", after=after, **scope))

    def delay(self, seconds: float, **scope: Any) -> list[int]:
        """Send every message ``seconds`` late (until :meth:`clear_faults`)."""
        return self.add_fault(WsFault("delay", seconds=seconds, **scope))

    def withhold(self, seconds: float, **scope: Any) -> list[int]:
        """Send nothing, heartbeats included, for ``seconds``; then the backlog."""
        return self.add_fault(WsFault("withhold", seconds=seconds, **scope))

    def skip(self, count: int = 1, *, channel: str | None = None, **scope: Any) -> list[int]:
        """Never send the next ``count`` sequenced messages, using up their numbers."""
        return self.add_fault(WsFault("skip", count=count, channel=channel, **scope))

    def clear_faults(self) -> None:
        """End delays and silences, cancel pending drops and skips, forget faults meant
        for new connections."""
        with self._lock:
            self._pending.clear()
        for conn in self.connections:
            conn.clear_faults()

    def add_faults(self, items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add faults from JSON objects (the admin API); returns what each hit."""
        faults = [WsFault.from_dict(item) for item in items]
        return [{**f.to_dict(), "applied_to": self.add_fault(f)} for f in faults]

    def status(self) -> dict[str, Any]:
        """The admin view: URL, connections and faults waiting for new connections."""
        with self._lock:
            pending = [f.to_dict() for f in self._pending]
        return {
            "url": self.url,
            "connections": [conn.describe() for conn in self.connections],
            "faults": pending,
        }

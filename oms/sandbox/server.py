"""The sandbox over real HTTP: a threading HTTP/1.1 server on loopback, faults included.

Each request becomes a :class:`~oms.sandbox.engine.SandboxRequest` for the
:class:`~oms.sandbox.engine.Exchange`; its :class:`~oms.sandbox.engine.SandboxResponse` goes
back on the wire. Connections are kept alive (HTTP/1.1 with ``Content-Length`` on every
answer), so a client's session reuses one connection, as it would with Kraken.

Faults (:mod:`oms.sandbox.faults`) are acted out at the transport level: a dropped response
closes the connection with nothing written, a delay holds the answer back, an HTML fault
answers with a Cloudflare-style page.

Paths under ``/_sandbox/`` are the admin API (faults, clock, state), answered only to
loopback clients; see ``docs/sandbox.rst``. :func:`admin_request` is the small client for it
that ``oms sandbox fault`` uses.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import logging
import socket
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs

from oms._version import __version__
from oms.sandbox.clock import ManualClock, SystemClock
from oms.sandbox.engine import Exchange, SandboxRequest
from oms.sandbox.faults import Fault, Faults, method_of

if TYPE_CHECKING:
    from oms.sandbox.websocket import SandboxWebSocket

__all__ = ["TICK_INTERVAL", "SandboxServer", "admin_request", "is_loopback_host"]

logger = logging.getLogger(__name__)

_SERVER_HEADER = f"oms-sandbox/{__version__}"
ADMIN_PREFIX = "/_sandbox"


def url_of(scheme: str, host: str, port: int, path: str = "") -> str:
    """``scheme://host:port/path``, an IPv6 host in brackets."""
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}{path}"


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _AdminError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "oms-sandbox"
    # Answers are written in one buffered flush, and Nagle is off: otherwise a header write
    # followed by a small body write can wait for the client's delayed ACK (~40 ms each).
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    # Idle keep-alive connections are closed after this many seconds.
    timeout = 60
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.client_address[0], *args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        sent_server = False
        for name, value in headers.items():
            lower = name.lower()
            if lower in ("content-length", "connection", "date", "transfer-encoding"):
                continue
            sent_server = sent_server or lower == "server"
            self.send_header(name, value)
        if not sent_server:
            self.send_header("Server", _SERVER_HEADER)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        # Flushed here, not after the handler returns, so a client that gave up (a delay
        # fault) surfaces as an OSError where the caller expects it.
        self.wfile.flush()

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self._send(400, {"content-type": "text/plain"}, b"bad request body")
            return
        path, _, query = self.path.partition("?")
        owner = self.server.owner
        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            self._admin(owner, path, body)
            return
        request = SandboxRequest(
            method=self.command,
            path=path,
            query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client=self.client_address[0],
        )
        method = method_of(path)
        fault = owner.faults.pick(method) if method is not None else None
        if fault is None:
            response = owner.exchange.handle(request)
            self._send(response.status, response.headers, response.body)
            return
        self._act(owner, fault, request)

    def _act(self, owner: SandboxServer, fault: Fault, request: SandboxRequest) -> None:
        logger.info("fault %s (%s) on %s", fault.kind.value, fault.when, fault.method)
        if not fault.commits and fault.delay:
            # The request reaches the exchange late; it knows when it really arrived, so a
            # deadline that passed in the meantime is answered EService:Deadline elapsed.
            request = attrs.evolve(request, received_at=owner.exchange.clock.time())
            if owner.stopping.wait(fault.delay):
                self.close_connection = True
                return
        response = owner.exchange.handle(request) if fault.commits or fault.delay else None
        if fault.drops:
            # Nothing is written and the connection closes: the client sees the server hang
            # up without an answer, exactly what a lost response looks like.
            self.close_connection = True
            return
        if fault.commits and fault.delay and owner.stopping.wait(fault.delay):
            self.close_connection = True
            return
        replacement = fault.replacement()
        try:
            if replacement is not None:
                self._send(*replacement)
            elif response is not None:
                self._send(response.status, response.headers, response.body)
        except OSError:
            # The client gave up on a delayed answer; that is the point of the fault.
            self.close_connection = True

    # -- admin API ---------------------------------------------------------------------

    def _admin(self, owner: SandboxServer, path: str, body: bytes) -> None:
        if not is_loopback_host(self.client_address[0]):
            self._json(403, {"error": "the sandbox admin API only answers loopback clients"})
            return
        try:
            payload: Any = json.loads(body) if body.strip() else None
        except ValueError:
            self._json(400, {"error": "the body is not JSON"})
            return
        try:
            status, result = owner.admin(self.command, path[len(ADMIN_PREFIX) :], payload)
        except _AdminError as e:
            self._json(e.status, {"error": str(e)})
            return
        except (ValueError, TypeError, KeyError) as e:
            self._json(400, {"error": str(e)})
            return
        self._json(status, result)

    def _json(self, status: int, data: object) -> None:
        body = json.dumps(data, separators=(",", ":"), default=str).encode()
        self._send(status, {"content-type": "application/json"}, body)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Many short-lived test servers: never wait for TIME_WAIT sockets of an earlier one.
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], owner: SandboxServer):
        self.owner = owner
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, conn: socket.socket, *, add: bool) -> None:
        with self._conns_lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up is the normal end of many fault scenarios, not an error.
        logger.debug("connection from %s ended abruptly", client_address, exc_info=True)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


#: How often a served sandbox on the system clock advances the exchange by itself (seconds).
TICK_INTERVAL = 0.2


class SandboxServer:
    """Serve an :class:`~oms.sandbox.engine.Exchange` over HTTP on ``host:port``.

    ``port=0`` picks a free port (see :attr:`base_url`). Only loopback hosts are allowed
    unless ``allow_remote``: the sandbox accepts any order from anyone holding a sandbox key,
    and its admin API rewrites the clock and the faults.

    While it serves an exchange on the :class:`~oms.sandbox.clock.SystemClock`, a daemon
    thread calls ``exchange.advance()`` every ``tick`` seconds, so the dead man's switch,
    expiries, scheduled starts, fills against the market and funding progress happen when
    their time comes, not at the next request. A :class:`~oms.sandbox.clock.ManualClock`
    moves only when told to, so there is nothing to tick for; ``tick=None`` turns it off.
    """

    def __init__(
        self,
        exchange: Exchange,
        *,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_remote: bool = False,
        tick: float | None = TICK_INTERVAL,
        websocket: bool = True,
    ):
        if not allow_remote and not is_loopback_host(host):
            raise ValueError(
                f"refusing to listen on {host!r}: the sandbox is for this machine only "
                "(pass allow_remote=True to expose it on purpose)"
            )
        if tick is not None and not tick > 0:
            raise ValueError(f"tick must be a positive number of seconds or None, got {tick!r}")
        self.exchange = exchange
        self.faults = faults if faults is not None else Faults()
        self.tick = tick
        self.stopping = threading.Event()
        self._httpd = _HTTPServer((host, port), self)
        self._thread: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        self._serving = False
        #: The WebSocket v2 server (:class:`oms.sandbox.websocket.SandboxWebSocket`), made
        #: when serving starts unless ``websocket=False``.
        self.ws: SandboxWebSocket | None = None
        self._want_ws = websocket

    def __repr__(self) -> str:
        return f"SandboxServer({self.base_url!r})"

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return url_of("http", self.host, self.port)

    @property
    def ws_url(self) -> str | None:
        """``ws://HOST:PORT/v2`` of the WebSocket v2 server, once serving (else None)."""
        return self.ws.url if self.ws is not None else None

    def _start_ws(self) -> None:
        if self._want_ws and self.ws is None and not self.stopping.is_set():
            # Imported here: `websockets` is loaded only by a sandbox that serves.
            from oms.sandbox.websocket import SandboxWebSocket

            self.ws = SandboxWebSocket(self.exchange, host=self.host).start()

    @property
    def ticking(self) -> bool:
        """Whether the background thread advancing the exchange runs."""
        return self._ticker is not None and self._ticker.is_alive()

    def start(self) -> SandboxServer:
        """Serve in a background (daemon) thread; return self."""
        if self._thread is None and not self._serving:
            self._serving = True
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"oms-sandbox:{self.port}",
                daemon=True,
            )
            self._thread.start()
            self._start_ws()
            self._start_ticker()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`stop` is called (from another thread)."""
        self._serving = True
        self._start_ws()
        self._start_ticker()
        self._httpd.serve_forever(poll_interval=0.05)

    def _start_ticker(self) -> None:
        # Only the wall clock moves by itself; any other clock is moved by whoever owns it,
        # and advance() is then called by the request or admin call that follows.
        if self.tick is None or not isinstance(self.exchange.clock, SystemClock):
            return
        if self._ticker is None and not self.stopping.is_set():
            self._ticker = threading.Thread(
                target=self._tick_forever,
                args=(self.tick,),
                name=f"oms-sandbox-ticker:{self.port}",
                daemon=True,
            )
            self._ticker.start()

    def _tick_forever(self, interval: float) -> None:
        while not self.stopping.wait(interval):
            try:
                self.exchange.advance()
            except Exception:
                # One bad step must not stop time for the rest of the session; the next
                # request would hit the same error and answer EGeneral:Internal error.
                logger.exception("sandbox clock tick failed")

    def stop(self) -> None:
        """Stop accepting, close open connections (waking delayed answers) and the socket,
        and stop the clock ticker and the WebSocket server (closing its connections)."""
        self.stopping.set()
        if self.ws is not None:
            self.ws.stop()
        if self._serving:
            # shutdown() waits for serve_forever to return: never call it if nothing serves.
            self._httpd.shutdown()
            self._serving = False
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._ticker is not None:
            # It wakes from its wait as soon as `stopping` is set; at worst it finishes the
            # advance() it is in.
            self._ticker.join(timeout=5)
            self._ticker = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- admin API ---------------------------------------------------------------------

    def admin(self, verb: str, path: str, payload: Any) -> tuple[int, Any]:
        """Answer one admin call: (HTTP status, JSON-ready result)."""
        path = path.rstrip("/")
        routes: dict[tuple[str, str], Callable[[Any], tuple[int, Any]]] = {
            ("GET", ""): self._admin_status,
            ("GET", "/faults"): self._admin_faults,
            ("POST", "/faults"): self._admin_add_faults,
            ("PUT", "/faults"): self._admin_add_faults,
            ("DELETE", "/faults"): self._admin_clear_faults,
            ("POST", "/faults/clear"): self._admin_clear_faults,
            ("GET", "/clock"): self._admin_clock,
            ("POST", "/clock"): self._admin_set_clock,
            ("POST", "/advance"): self._admin_advance,
            ("GET", "/state"): lambda _: (200, self.exchange.snapshot()),
            ("GET", "/ws"): lambda _: (200, self._websocket().status()),
            ("POST", "/ws/faults"): self._admin_ws_faults,
            ("DELETE", "/ws/faults"): self._admin_ws_clear,
        }
        handler = routes.get((verb, path))
        if handler is not None:
            return handler(payload)
        if path.startswith("/faults/") and verb == "DELETE":
            rule_id = int(path.rsplit("/", 1)[1])
            if not self.faults.remove(rule_id):
                raise _AdminError(404, f"no fault rule {rule_id}")
            return 200, {"removed": rule_id}
        raise _AdminError(404, f"no admin endpoint {verb} {ADMIN_PREFIX}{path}")

    def _admin_status(self, payload: Any) -> tuple[int, Any]:
        clock = self.exchange.clock
        return 200, {
            "base_url": self.base_url,
            "time": clock.time(),
            "manual_clock": isinstance(clock, ManualClock),
            "ws_url": self.ws_url,
            "pairs": [p.pair_id for p in self.exchange.market.pairs],
            "faults": self.faults.to_list(),
        }

    def _admin_faults(self, payload: Any) -> tuple[int, Any]:
        return 200, {"rules": self.faults.to_list(), "fired": len(self.faults.fired)}

    def _admin_add_faults(self, payload: Any) -> tuple[int, Any]:
        items = payload if isinstance(payload, list) else [payload]
        if not all(isinstance(item, dict) for item in items):
            raise _AdminError(400, "post a fault object or a list of them")
        added = self.faults.extend(items)
        return 201, {"rules": [rule.to_dict() for rule in added]}

    def _admin_clear_faults(self, payload: Any) -> tuple[int, Any]:
        self.faults.clear()
        return 200, {"rules": []}

    def _websocket(self) -> SandboxWebSocket:
        if self.ws is None:
            raise _AdminError(409, "this sandbox serves no WebSocket")
        return self.ws

    def _admin_ws_faults(self, payload: Any) -> tuple[int, Any]:
        items = payload if isinstance(payload, list) else [payload]
        if not all(isinstance(item, dict) for item in items):
            raise _AdminError(400, "post a websocket fault object or a list of them")
        return 201, {"faults": self._websocket().add_faults(items)}

    def _admin_ws_clear(self, payload: Any) -> tuple[int, Any]:
        self._websocket().clear_faults()
        return 200, {"faults": []}

    def _admin_clock(self, payload: Any) -> tuple[int, Any]:
        clock = self.exchange.clock
        return 200, {"time": clock.time(), "manual": isinstance(clock, ManualClock)}

    def _admin_set_clock(self, payload: Any) -> tuple[int, Any]:
        clock = self.exchange.clock
        if not isinstance(clock, ManualClock):
            raise _AdminError(
                409, "the sandbox runs on the system clock; start it with a manual clock"
            )
        data = payload or {}
        if not isinstance(data, dict) or not {"advance", "set"} & set(data):
            raise _AdminError(400, 'post {"advance": seconds} or {"set": unix_time}')
        if "advance" in data:
            clock.advance(float(data["advance"]))
        if "set" in data:
            clock.set(float(data["set"]))
        return self._admin_advance(None)

    def _admin_advance(self, payload: Any) -> tuple[int, Any]:
        self.exchange.advance()
        return 200, {"time": self.exchange.clock.time()}


def admin_request(
    base_url: str,
    path: str,
    payload: object = None,
    *,
    method: str | None = None,
    timeout: float = 10.0,
) -> Any:
    """Call the admin API of a running sandbox (``path`` like ``"/faults"``); return its JSON.

    Raises :class:`RuntimeError` with the server's message on a non-2xx answer.
    """
    parts = urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"the sandbox URL must be http://host:port, got {base_url!r}")
    verb = method or ("GET" if payload is None else "POST")
    body = None if payload is None else json.dumps(payload).encode()
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json", "User-Agent": _SERVER_HEADER}
        conn.request(verb, ADMIN_PREFIX + path, body=body, headers=headers)
        answer = conn.getresponse()
        data = answer.read()
    finally:
        conn.close()
    try:
        decoded = json.loads(data) if data else None
    except ValueError:
        decoded = data.decode("utf-8", "replace")
    if not 200 <= answer.status < 300:
        message = decoded.get("error") if isinstance(decoded, dict) else decoded
        raise RuntimeError(f"sandbox admin {verb} {path}: HTTP {answer.status}: {message}")
    return decoded

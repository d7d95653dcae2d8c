"""Test doubles for the HTTP layer: a recording requests adapter and a loopback HTTP server.

``FakeAdapter`` is mounted on a :class:`oms.transport.Transport` so nothing goes on the wire;
``LoopbackServer`` is a real HTTP server on 127.0.0.1 for the few tests about real sockets
(and for the CLI, which builds its own transport).
"""

from __future__ import annotations

import base64
import collections
import json
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs
import requests
import requests.adapters
from requests.structures import CaseInsensitiveDict

from oms import auth

KEY = "TKEYabcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTU"
SECRET = base64.b64encode(bytes(range(64))).decode()
BASE_URL = "https://kraken.test"
JSON = {"Content-Type": "application/json; charset=utf-8"}


@attrs.frozen
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = attrs.Factory(dict)
    reason: str = "OK"


def ok(result: Any, *, warnings: Iterable[str] = ()) -> Answer:
    return Answer(200, json.dumps({"error": list(warnings), "result": result}).encode(), JSON)


def fail(*errors: str) -> Answer:
    return Answer(200, json.dumps({"error": list(errors)}).encode(), JSON)


def raw(envelope_text: str) -> Answer:
    return Answer(200, envelope_text.encode(), JSON)


def cloudflare(status: int, title: str, reason: str = "") -> Answer:
    page = f"<!DOCTYPE html><html><head><title>{title}</title></head><body>cloudflare</body></html>"
    headers = {"Content-Type": "text/html; charset=UTF-8", "Server": "cloudflare", "CF-RAY": "1-X"}
    return Answer(status, page.encode(), headers, reason)


Item = Answer | BaseException | Callable[[requests.PreparedRequest], Any]


class FakeAdapter(requests.adapters.BaseAdapter):
    """Records every PreparedRequest and answers from a queue (or ``default``)."""

    def __init__(self, *items: Item, default: Item | None = None):
        super().__init__()
        self.queue: collections.deque[Item] = collections.deque(items)
        self.default = default
        self.requests: list[requests.PreparedRequest] = []
        self.options: list[dict[str, Any]] = []

    def push(self, *items: Item) -> None:
        self.queue.extend(items)

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        self.requests.append(request.copy())
        self.options.append({"timeout": timeout, "verify": verify, "proxies": proxies})
        if self.queue:
            item = self.queue.popleft()
        elif self.default is not None:
            item = self.default
        else:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        if callable(item) and not isinstance(item, BaseException):
            item = item(request)
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, Answer)
        response = requests.Response()
        response.status_code = item.status
        response.reason = item.reason
        response.headers = CaseInsensitiveDict(item.headers)
        response._content = item.body
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass

    @property
    def last(self) -> requests.PreparedRequest:
        return self.requests[-1]


# --- reading what was sent --------------------------------------------------------------------


def body_text(request: requests.PreparedRequest) -> str:
    body = request.body
    if isinstance(body, bytes):
        return body.decode()
    return body or ""


def form(request: requests.PreparedRequest) -> dict[str, str]:
    return dict(parse_qsl(body_text(request), keep_blank_values=True))


def query(request: requests.PreparedRequest) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(request.url or "").query, keep_blank_values=True))


def sent_nonce(request: requests.PreparedRequest) -> int:
    text = body_text(request)
    if request.headers.get("Content-Type") == "application/json":
        return int(json.loads(text)["nonce"])
    return int(form(request)["nonce"])


def signature_ok(request: requests.PreparedRequest, secret: str = SECRET) -> bool:
    path = urlsplit(request.url or "").path
    expected = auth.sign(secret, path, sent_nonce(request), body_text(request))
    return request.headers.get("API-Sign") == expected


# --- a real server on 127.0.0.1 ---------------------------------------------------------------


@attrs.define
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 answering from a queue, recording what it got."""

    def __init__(self) -> None:
        self.answers: collections.deque[Answer | str] = collections.deque()
        self.seen: list[Seen] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.seen.append(Seen(self.command, self.path, dict(self.headers), body))
                answer = outer.answers.popleft() if outer.answers else ok({})
                if answer == "reset":
                    # Close without a byte of answer: the request did arrive.
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
                    self.close_connection = True
                    return
                if answer == "hang":
                    threading.Event().wait(2)
                    return
                assert isinstance(answer, Answer)
                self.send_response(answer.status, answer.reason)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @contextmanager
    def running(self) -> Iterator[LoopbackServer]:
        self.thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port

"""A small blocking WebSocket v2 client for the sandbox tests (websockets.sync.client)."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from typing import Any

from websockets.sync.client import ClientConnection, connect

from oms.sandbox import ManualClock, Sandbox

T0 = 1_700_000_000.0
#: A hang guard for every receive, never a measure of speed.
GUARD = 10.0

Msg = dict[str, Any]


@contextmanager
def served(**kwargs: Any) -> Iterator[Sandbox]:
    kwargs.setdefault("seed", 7)
    kwargs.setdefault("clock", ManualClock(T0))
    with Sandbox.serve(**kwargs) as sb:
        yield sb


class WsClient:
    """One connection; messages are parsed with ``parse_float=Decimal`` (exact numbers)."""

    def __init__(self, url: str) -> None:
        # Entered as a context manager, as websockets >= 17.1 requires (and older accept).
        self._stack = ExitStack()
        self.ws: ClientConnection = self._stack.enter_context(
            connect(url, open_timeout=GUARD, close_timeout=2)
        )
        self._ids = itertools.count(100)
        self.status = self.recv()

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> WsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, message: Msg) -> None:
        self.ws.send(json.dumps(message))

    def recv(self, timeout: float = GUARD) -> Msg:
        data: Msg = json.loads(self.ws.recv(timeout=timeout), parse_float=Decimal)
        return data

    def next(self, match: Callable[[Msg], bool], timeout: float = GUARD) -> Msg:
        """The next message ``match`` accepts (heartbeats and others skipped)."""
        while True:
            message = self.recv(timeout)
            if match(message):
                return message

    def request(self, method: str, **params: Any) -> Msg:
        """Send a request with a fresh req_id; return its ack (messages before it skipped)."""
        req_id = next(self._ids)
        message: Msg = {"method": method, "req_id": req_id}
        if params:
            message["params"] = params
        self.send(message)
        return self.next(lambda m: m.get("req_id") == req_id)

    def subscribe(self, channel: str, token: str | None = None, **options: Any) -> Msg:
        params: Msg = {"channel": channel, **options}
        if token is not None:
            params["token"] = token
        return self.request("subscribe", **params)

    def until_pong(self, channel: str | None = None) -> list[Msg]:
        """Every message up to the answer of a ping sent now (of ``channel`` if given).

        Events are queued under the exchange lock before the REST answer that caused them
        leaves, so once a REST call returned, its events all come before this pong."""
        req_id = next(self._ids)
        self.send({"method": "ping", "req_id": req_id})
        out: list[Msg] = []
        while True:
            message = self.recv()
            if message.get("method") == "pong" and message.get("req_id") == req_id:
                return out
            if channel is None or message.get("channel") == channel:
                out.append(message)


def token(sb: Sandbox, account: int = 0) -> str:
    """A token from GetWebSocketsToken over REST, as a real client gets it."""
    with sb.client(account=account) as client:
        return client.websockets_token().token


def ref_price(sb: Sandbox, pair: str = "XXBTZUSD") -> Decimal:
    with sb.exchange.lock:
        return sb.exchange.trading.ref_price(pair)


def drain(ws: WsClient) -> list[Msg]:
    """Every message until the connection ends (which raises ConnectionClosed)."""
    got: list[Msg] = []
    while True:
        got.append(ws.recv())


def eventually(condition: Callable[[], bool]) -> bool:
    """Whether ``condition`` holds within the hang guard (for state another thread sets)."""
    deadline = time.monotonic() + GUARD
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def entries(messages: list[Msg]) -> list[Msg]:
    return [entry for message in messages for entry in message["data"]]

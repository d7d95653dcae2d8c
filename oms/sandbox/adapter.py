"""The sandbox in-process: a requests adapter that answers from an Exchange, no socket at all.

Mount it on a base URL that cannot resolve (``Sandbox.in_process`` uses
``http://sandbox.invalid``) and every request the session sends there is answered by the same
:class:`~oms.sandbox.engine.Exchange` the HTTP server would use, with the same faults, acted
out as the exceptions ``requests`` raises for them:

* a dropped response → :class:`requests.exceptions.ConnectionError` (the engine has
  committed first for ``drop_after_commit``);
* a delay at least as long as the read timeout → :class:`requests.exceptions.ReadTimeout`
  (for ``when="after"`` the engine has committed), without waiting for the delay.

Time the client would have spent waiting is handed to ``sleep`` (``Sandbox.in_process``
passes a :class:`~oms.sandbox.clock.ManualClock`'s ``advance``, so sandbox time moves and no
test sleeps); by default nobody waits.
"""

from __future__ import annotations

import http.client
import io
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs
import requests
import requests.adapters
import urllib3.exceptions
from requests.structures import CaseInsensitiveDict

from oms.sandbox.engine import Exchange, SandboxRequest
from oms.sandbox.faults import Fault, Faults, method_of

__all__ = ["SandboxAdapter"]

_REASONS = http.client.responses


def _read_timeout(timeout: Any) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, tuple):
        read = timeout[1] if len(timeout) > 1 else timeout[0]
        return None if read is None else float(read)
    if isinstance(timeout, urllib3.Timeout):
        read = timeout.read_timeout
        return read if isinstance(read, (int, float)) else None
    return float(timeout)


class SandboxAdapter(requests.adapters.BaseAdapter):
    """Answer requests from ``exchange`` in this process, applying ``faults``."""

    def __init__(
        self,
        exchange: Exchange,
        *,
        faults: Faults | None = None,
        sleep: Callable[[float], object] | None = None,
    ):
        super().__init__()
        self.exchange = exchange
        self.faults = faults if faults is not None else Faults()
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"SandboxAdapter({self.exchange!r})"

    def _wait(self, seconds: float) -> None:
        if self._sleep is not None and seconds > 0:
            self._sleep(seconds)

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        parts = urlsplit(request.url or "")
        body = request.body
        if body is None:
            raw = b""
        elif isinstance(body, bytes):
            raw = body
        else:
            raw = body.encode("utf-8")
        if parts.path.startswith("/_sandbox"):
            # The admin API lives on the HTTP server; in process, use the Sandbox object.
            return self._build(request, 404, {"content-type": "application/json"}, b"{}")
        sandbox_request = SandboxRequest(
            method=(request.method or "GET").upper(),
            path=parts.path or "/",
            query=parts.query,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=raw,
        )
        method = method_of(parts.path)
        fault = self.faults.pick(method) if method is not None else None
        if fault is None:
            answer = self.exchange.handle(sandbox_request)
            return self._build(request, answer.status, answer.headers, answer.body)
        return self._act(fault, request, sandbox_request, _read_timeout(timeout))

    def _act(
        self,
        fault: Fault,
        request: requests.PreparedRequest,
        sandbox_request: SandboxRequest,
        read_timeout: float | None,
    ) -> requests.Response:
        timed_out = fault.delay > 0 and read_timeout is not None and fault.delay >= read_timeout
        if not fault.commits and fault.delay:
            # The request reaches the exchange late: sandbox time moves on first.
            sandbox_request = attrs.evolve(sandbox_request, received_at=self.exchange.clock.time())
            self._wait(fault.delay)
        answer = self.exchange.handle(sandbox_request) if fault.commits or fault.delay else None
        if fault.drops:
            raise requests.exceptions.ConnectionError(
                urllib3.exceptions.ProtocolError(
                    "Connection aborted.",
                    http.client.RemoteDisconnected("Remote end closed connection without response"),
                ),
                request=request,
            )
        if fault.commits and fault.delay:
            waited = fault.delay if read_timeout is None else min(fault.delay, read_timeout)
            self._wait(waited)
        if timed_out:
            raise requests.exceptions.ReadTimeout(
                urllib3.exceptions.ReadTimeoutError(
                    None,  # type: ignore[arg-type]
                    request.url,
                    f"Read timed out. (read timeout={read_timeout})",
                ),
                request=request,
            )
        replacement = fault.replacement()
        if replacement is not None:
            return self._build(request, *replacement)
        assert answer is not None
        return self._build(request, answer.status, answer.headers, answer.body)

    def _build(
        self,
        request: requests.PreparedRequest,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
    ) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        response.reason = _REASONS.get(status, "")
        response.headers = CaseInsensitiveDict({**headers, "content-length": str(len(body))})
        response._content = body
        response.raw = io.BytesIO(body)
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        pass

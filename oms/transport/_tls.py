"""Verified TLS 1.2+ adapters whose connections honour a request's overall deadline."""

from __future__ import annotations

import contextvars
import io
import os
import socket
import ssl
import time
from typing import Any

import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.exceptions

from oms.errors import (
    ValidationError,
)

# --- TLS ----------------------------------------------------------------------------------


def make_ssl_context() -> ssl.SSLContext:
    """A client context: TLS 1.2+, certificates required, host names checked (certifi roots)."""
    context = ssl.create_default_context(cafile=requests.utils.DEFAULT_CA_BUNDLE_PATH)
    # Kraken dropped TLS 1.0/1.1 (support note "TLS upgrade"); refuse them on our side too.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _check_context(context: ssl.SSLContext) -> None:
    too_old = context.minimum_version in (
        ssl.TLSVersion.MINIMUM_SUPPORTED,
        ssl.TLSVersion.SSLv3,
        ssl.TLSVersion.TLSv1,
        ssl.TLSVersion.TLSv1_1,
    )
    if too_old or context.verify_mode != ssl.CERT_REQUIRED or not context.check_hostname:
        raise ValidationError(
            "the SSL context must require TLS 1.2+, CERT_REQUIRED and check_hostname",
            field="ssl_context",
            rule="tls",
        )


def _refuse_unverified(verify: object) -> None:
    if verify is False:
        raise ValidationError(
            "certificate verification cannot be turned off: an API key sent to an unverified "
            "host is an API key given away",
            field="verify",
            rule="tls",
        )


# --- the overall deadline of one request ---------------------------------------------------

# When the request in this thread (or task) must be answered by, on the monotonic clock.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "oms_request_deadline", default=None
)


class _DeadlineSocket:
    """A connected socket as one response reads it: no read waits past the request's overall
    deadline. The read timeout alone bounds each read, not their sum: a server trickling a
    byte every half second would hold the request (and the key's nonce lock) for ever."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline
        self._timeout = sock.gettimeout()

    def settimeout(self, value: float | None) -> None:
        self._timeout = value
        self._sock.settimeout(value)

    def gettimeout(self) -> float | None:
        return self._timeout

    def _arm(self) -> None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request's overall deadline has passed")
        self._sock.settimeout(left if self._timeout is None else min(self._timeout, left))

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        self._arm()
        return self._sock.recv_into(buffer, nbytes, flags)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self._arm()
        return self._sock.recv(bufsize, flags)

    def makefile(self, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        # http.client reads the status line, headers and body through this file: route its
        # reads through recv_into above.
        if "r" not in mode or "b" not in mode:
            return self._sock.makefile(mode, *args, **kwargs)  # type: ignore[call-overload]
        self._sock._io_refs += 1  # type: ignore[attr-defined]  # as socket.makefile does
        return io.BufferedReader(socket.SocketIO(self, "rb"))  # type: ignore[arg-type]

    def _decref_socketios(self) -> None:
        self._sock._decref_socketios()  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _DeadlineConnection:
    """Mixed into urllib3's connections: the response is read through a
    :class:`_DeadlineSocket` while a deadline is set for the request, and a request's
    headers and body leave in one write.

    http.client sends the header block as soon as the headers end, and urllib3 then sends
    the body on its own: two ``sendall`` calls and two TCP segments for every signed POST,
    each a system call whose cost (on loopback, the receiver's processing too) is the
    largest single item of a call's CPU in the profile. The header block is held until the
    body's first piece (or, without a body, the response) and sent with it.
    """

    sock: Any
    _headers: bytes | None = None
    _ending_headers = False

    def endheaders(self, message_body: Any = None, *, encode_chunked: bool = False) -> None:
        self._ending_headers = True
        try:
            super().endheaders(message_body, encode_chunked=encode_chunked)  # type: ignore[misc]
        finally:
            self._ending_headers = False

    def send(self, data: Any) -> None:
        if self._ending_headers and isinstance(data, bytes):
            self._ending_headers = False  # only the header block is held, never a body
            self._headers = data
            return
        if self._headers is not None and isinstance(data, (bytes, bytearray, memoryview)):
            data, self._headers = self._headers + bytes(data), None
        self._send_held()  # before a file-like body, which http.client reads in blocks
        super().send(data)  # type: ignore[misc]

    def _send_held(self) -> None:
        held, self._headers = self._headers, None
        if held is not None:
            super().send(held)  # type: ignore[misc]

    def close(self) -> None:
        self._headers = None
        super().close()  # type: ignore[misc]

    def getresponse(self) -> Any:
        self._send_held()
        deadline = _DEADLINE.get()
        real = self.sock
        if deadline is None or not isinstance(real, socket.socket):
            # No deadline set, or not a plain/TLS socket (TLS inside an HTTPS proxy tunnel):
            # the per-read timeout alone applies.
            return super().getresponse()  # type: ignore[misc]
        proxy = _DeadlineSocket(real, deadline)
        self.sock = proxy
        try:
            return super().getresponse()  # type: ignore[misc]
        finally:
            if self.sock is proxy:  # kept for the next request on this connection
                self.sock = real


class _HTTPConnection(_DeadlineConnection, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineConnection, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class DeadlineAdapter(requests.adapters.HTTPAdapter):
    """An ``HTTPAdapter`` whose connections honour the transport's overall deadline."""

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(_POOLS)
        return manager

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> requests.Response:
        # requests' version also parses Set-Cookie into a jar per answer; the transport keeps
        # no cookies (Kraken's API uses none), so that work is skipped.
        response = requests.Response()
        response.status_code = resp.status
        response.headers = requests.structures.CaseInsensitiveDict(resp.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = req.url or ""
        response.request = req
        response.connection = self
        return response


class TLSAdapter(DeadlineAdapter):
    """An ``HTTPAdapter`` whose every connection uses one verified TLS 1.2+ context."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None, **kwargs: Any):
        context = ssl_context if ssl_context is not None else make_ssl_context()
        _check_context(context)
        self.ssl_context = context
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        pool_kwargs["ssl_context"] = self.ssl_context
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        proxy_kwargs["ssl_context"] = self.ssl_context
        return super().proxy_manager_for(proxy, **proxy_kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        # Replaces requests' version, which would turn verification off for verify=False.
        _refuse_unverified(verify)
        if cert:
            raise ValidationError("client certificates are not supported", field="cert")
        conn.cert_reqs = "CERT_REQUIRED"
        if isinstance(verify, str):
            # A custom bundle (REQUESTS_CA_BUNDLE, e.g. a company proxy) adds to the roots.
            if os.path.isdir(verify):
                conn.ca_certs, conn.ca_cert_dir = None, verify
            else:
                conn.ca_certs, conn.ca_cert_dir = verify, None
        else:
            # The context already holds the roots; loading them per connection only costs time.
            conn.ca_certs = conn.ca_cert_dir = None

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        _refuse_unverified(verify)
        return super().send(
            request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
        )

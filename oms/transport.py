"""The only module that touches the network, and the only one that imports ``requests``.

:class:`Transport` sends one HTTP request and returns an :class:`HTTPResponse` holding a parsed
JSON body, or raises a :class:`~oms.errors.TransportError` subclass that says whether the
request may have reached Kraken. Every ``requests``/``urllib3`` exception is translated here,
once; nothing above this module sees them.

Guarantees, whatever the caller does:

- TLS 1.2 or newer, certificate and host name verified (:class:`TLSAdapter`); asking for
  ``verify=False`` raises :class:`~oms.errors.ValidationError` instead of sending.
- A versioned ``User-Agent`` on every request (Cloudflare answers 403 to odd or missing ones).
- Separate connect and read timeouts.
- A non-200 status or a body that is not JSON (Cloudflare's HTML error pages) is never parsed
  as JSON: it becomes :class:`~oms.errors.HTTPStatusError` or
  :class:`~oms.errors.InvalidResponse`.
- Plain ``http://`` leaves the machine only for loopback hosts (the local sandbox).

A requests ``BaseAdapter`` mounted with :meth:`Transport.mount` answers requests without a
network: the in-process sandbox and the test fakes plug in there.
"""

from __future__ import annotations

import contextvars
import functools
import io
import ipaddress
import itertools
import json
import logging
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import IO, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import attrs
import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.exceptions

from oms._version import USER_AGENT
from oms.errors import (
    ConnectError,
    ConnectionLost,
    HTTPStatusError,
    InvalidResponse,
    RequestTimeout,
    TLSError,
    TransportError,
    ValidationError,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_TOTAL_TIMEOUT",
    "DeadlineAdapter",
    "HTTPResponse",
    "TLSAdapter",
    "Transcript",
    "Transport",
    "make_ssl_context",
    "translate",
]

logger = logging.getLogger(__name__)

#: (connect, read) seconds. The connect timeout is a little over a multiple of 3 s, the TCP
#: retransmission window, as the requests docs advise.
DEFAULT_TIMEOUT: tuple[float, float] = (3.05, 10.0)
#: Seconds one request may take in all, connect to the last byte of the answer. Well under
#: the minute another process waits for the key's nonce lock (held while a request is out).
DEFAULT_TOTAL_TIMEOUT = 20.0


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
    :class:`_DeadlineSocket` while a deadline is set for the request."""

    sock: Any

    def getresponse(self) -> Any:
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


# --- responses ----------------------------------------------------------------------------


@attrs.frozen
class HTTPResponse:
    """An HTTP 200 answer whose body parsed as JSON (``headers`` names are lower-case)."""

    status_code: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)
    payload: Any = attrs.field(repr=False)
    elapsed: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


# --- transcript ---------------------------------------------------------------------------

_REDACTED = "<redacted>"
# Headers that authenticate: a copy of them is a copy of the credential (or of one signed call).
_SECRET_HEADERS = frozenset({"api-sign", "authorization", "proxy-authorization"})
# Body fields that are credentials themselves: the 2FA one-time password.
_SECRET_FIELDS = frozenset({"otp"})
# Response fields that are credentials (GetWebSocketsToken's token).
_SECRET_RESPONSE = re.compile(r'("token"\s*:\s*")[^"]*(")')


def _short_key(value: str) -> str:
    return value[:4] + "…"


class Transcript:
    """Writes each request and response in full, for a support case, with credentials removed.

    Kraken support asks for "a full copy of the request(s) ... including ... all headers" when
    Cloudflare answers 403. The transcript has the method, URL, every header and the body of
    each request, and the status, every header and the body of each answer, except that
    ``API-Sign`` is replaced by ``<redacted>``, ``API-Key`` is cut to its first four characters,
    an ``otp`` field and a WebSocket ``token`` are removed, and every string given in
    ``redact`` (the secret, the full key) is blanked wherever it appears. The nonce stays: it
    is harmless without the signature and it is what support needs to diagnose nonce errors.
    """

    def __init__(self, stream: IO[str], *, redact: Iterable[str] = (), clock: Any = time.time):
        self._stream = stream
        self._scrub = tuple(sorted((s for s in redact if s), key=len, reverse=True))
        self._clock = clock
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Transcript(stream={getattr(self._stream, 'name', '?')!r})"

    def _clean(self, text: str) -> str:
        for secret in self._scrub:
            text = text.replace(secret, _REDACTED)
        return text

    def _stamp(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock()))

    def _header_lines(self, headers: Iterable[tuple[str, str]]) -> list[str]:
        lines = []
        for name, value in headers:
            lowered = name.lower()
            if lowered in _SECRET_HEADERS:
                value = _REDACTED
            elif lowered == "api-key":
                value = _short_key(value)
            lines.append(f"{name}: {value}")
        return lines

    def _request_body(self, body: bytes | None, content_type: str) -> str:
        if not body:
            return ""
        text = body.decode("utf-8", errors="replace")
        if "json" in content_type:
            try:
                data = json.loads(text)
            except ValueError:
                return text
            if isinstance(data, dict) and _SECRET_FIELDS & data.keys():
                data = {k: (_REDACTED if k in _SECRET_FIELDS else v) for k, v in data.items()}
                return json.dumps(data, separators=(",", ":"))
            return text
        pairs = parse_qsl(text, keep_blank_values=True)
        if any(k in _SECRET_FIELDS for k, _ in pairs):
            return urlencode([(k, _REDACTED if k in _SECRET_FIELDS else v) for k, v in pairs])
        return text

    def request(
        self,
        seq: int,
        method: str,
        url: str,
        headers: Iterable[tuple[str, str]],
        body: bytes | None,
    ) -> None:
        headers = list(headers)
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
        host = urlsplit(url).netloc
        lines = [
            f"=== request {seq} at {self._stamp()}",
            f"{method} {url}",
            # http.client adds Host itself; show it so the copy is complete.
            f"Host: {host}",
            *self._header_lines(headers),
            "",
            self._request_body(body, content_type),
        ]
        self._write(lines)

    def response(
        self,
        seq: int,
        status: int,
        reason: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        elapsed: float,
    ) -> None:
        text = _SECRET_RESPONSE.sub(rf"\1{_REDACTED}\2", body.decode("utf-8", errors="replace"))
        lines = [
            f"=== response {seq} after {elapsed:.3f} s",
            f"HTTP {status} {reason}".rstrip(),
            *self._header_lines(headers),
            "",
            text,
        ]
        self._write(lines)

    def failure(self, seq: int, error: TransportError) -> None:
        reached = "may have reached" if error.may_have_reached else "did not reach"
        self._write(
            [
                f"=== no response {seq}: {type(error).__name__} (the request {reached} the server)",
                str(error),
            ]
        )

    def _write(self, lines: list[str]) -> None:
        with self._lock:
            self._stream.write(self._clean("\n".join(lines)) + "\n\n")
            self._stream.flush()


# --- exception translation ----------------------------------------------------------------

# OpenSSL reasons that can only come from the handshake, before any request byte was sent.
_HANDSHAKE_MARKERS = (
    "CERTIFICATE",
    "HANDSHAKE",
    "PROTOCOL_VERSION",
    "UNSUPPORTED_PROTOCOL",
    "WRONG_VERSION_NUMBER",
    "NO_PROTOCOLS_AVAILABLE",
    "NO_SHARED_CIPHER",
    "UNKNOWN_CA",
    "HOSTNAME",
)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps (args, urllib3's ``reason``, causes)."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        reason = getattr(current, "reason", None)
        for inner in (*current.args, reason, current.__cause__, current.__context__):
            if isinstance(inner, BaseException):
                todo.append(inner)
    return seen


def _describe(exc: BaseException) -> str:
    # The innermost error says the most ("Connection refused"); requests' wrapper says the least.
    innermost = _chain(exc)[-1]
    text = str(innermost) or type(innermost).__name__
    return f"{type(innermost).__name__}: {text}"


def _never_connected(exc: BaseException) -> bool:
    for inner in _chain(exc):
        if isinstance(
            inner,
            (
                urllib3.exceptions.NewConnectionError,
                urllib3.exceptions.ClosedPoolError,
                urllib3.exceptions.LocationParseError,
                ConnectionRefusedError,
            ),
        ):
            return True
    return False


def _handshake_failure(exc: BaseException) -> bool:
    for inner in _chain(exc):
        if isinstance(inner, (ssl.SSLCertVerificationError, ssl.CertificateError)):
            return True
        if isinstance(inner, ssl.SSLError):
            text = f"{getattr(inner, 'reason', None) or ''} {inner}".upper()
            if any(marker in text for marker in _HANDSHAKE_MARKERS):
                return True
    return False


def translate(exc: BaseException, what: str) -> TransportError:
    """The :class:`~oms.errors.TransportError` for a requests/urllib3/socket exception."""
    detail = _describe(exc)
    rex = requests.exceptions
    if isinstance(exc, rex.SSLError):
        if _handshake_failure(exc):
            return TLSError(f"{what}: TLS handshake failed, nothing was sent ({detail})")
        return ConnectionLost(
            f"{what}: TLS error on an established connection; the request may have reached "
            f"Kraken ({detail})"
        )
    if isinstance(exc, rex.ConnectTimeout):
        return ConnectError(f"{what}: connect timed out, nothing was sent ({detail})")
    if isinstance(exc, rex.ProxyError):
        return ConnectError(f"{what}: the proxy refused the connection ({detail})")
    if isinstance(exc, rex.Timeout):
        return RequestTimeout(
            f"{what}: no answer within the read timeout; the request may have reached Kraken "
            f"({detail})"
        )
    if isinstance(exc, (rex.InvalidURL, rex.MissingSchema, rex.InvalidSchema, rex.URLRequired)):
        return ConnectError(f"{what}: invalid URL, nothing was sent ({detail})")
    if isinstance(exc, rex.ConnectionError) and _never_connected(exc):
        return ConnectError(f"{what}: could not connect, nothing was sent ({detail})")
    return ConnectionLost(
        f"{what}: the connection failed after the request was sent; it may have reached "
        f"Kraken ({detail})"
    )


# --- HTTP status and body checks ----------------------------------------------------------

_TITLE = re.compile(rb"<title>\s*(.*?)\s*</title>", re.IGNORECASE | re.DOTALL)


def _is_cloudflare(status: int, headers: Mapping[str, str], body: bytes) -> bool:
    if headers.get("server", "").lower() == "cloudflare" or "cf-ray" in headers:
        return True
    # 520-530 are Cloudflare's own codes.
    return 520 <= status <= 530 or b"cloudflare" in body[:4096].lower()


def _title(body: bytes) -> str:
    match = _TITLE.search(body[:8192])
    return match.group(1).decode("utf-8", errors="replace")[:120] if match else ""


def _status_error(
    what: str, status: int, reason: str, headers: Mapping[str, str], body: bytes, user_agent: str
) -> HTTPStatusError:
    cloudflare = _is_cloudflare(status, headers, body)
    source = "Cloudflare" if cloudflare else "the server"
    title = _title(body)
    described = f"HTTP {status} {reason}".rstrip() + f" from {source} for {what}"
    if title:
        described += f" ({title})"
    if status == 403:
        advice = (
            "Cloudflare's Browser Integrity Check in front of Kraken refuses requests with a "
            f"missing or unusual User-Agent: check the User-Agent (oms sends {user_agent!r}; "
            "a proxy may replace it) and the other headers. If it persists, capture the "
            "exchange with `oms call --transcript FILE <Method> ...` and send the file to "
            "Kraken support (credentials are redacted)"
        )
    else:
        advice = "Kraken or its Cloudflare edge had trouble"
    return HTTPStatusError(
        f"{described}: {advice}. The request may have reached Kraken.",
        status_code=status,
        cloudflare=cloudflare,
    )


def _parse_json(what: str, headers: Mapping[str, str], body: bytes) -> Any:
    content_type = headers.get("content-type", "").lower()
    if "html" in content_type or body.lstrip()[:1] == b"<":
        title = _title(body)
        raise InvalidResponse(
            f"{what}: HTTP 200 with an HTML page instead of JSON"
            + (f" ({title})" if title else "")
            + "; the request may have reached Kraken"
        )
    try:
        # Decimal, not float: Kraken's few JSON numbers with a fraction (times, fee tiers)
        # must not pick up binary rounding on the way.
        return json.loads(body.decode("utf-8"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError):
        raise InvalidResponse(
            f"{what}: HTTP 200 whose body is not JSON ({len(body)} bytes); the request may "
            "have reached Kraken"
        ) from None


# --- the transport ------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_timeout(timeout: tuple[float, float]) -> tuple[float, float]:
    if (
        not isinstance(timeout, tuple)
        or len(timeout) != 2
        or not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in timeout)
        or not all(t > 0 for t in timeout)
    ):
        raise ValidationError(
            f"timeout must be a (connect, read) pair of positive seconds, not {timeout!r}",
            field="timeout",
            rule="positive",
        )
    return (float(timeout[0]), float(timeout[1]))


class Transport:
    """Sends HTTP requests for the client; see the module docstring for its guarantees."""

    def __init__(
        self,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
        user_agent: str = USER_AGENT,
        transcript: Transcript | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ):
        self.timeout = _check_timeout(timeout)
        if (
            isinstance(total_timeout, bool)
            or not isinstance(total_timeout, (int, float))
            or not 0 < total_timeout <= 3600
        ):
            raise ValidationError(
                f"total_timeout must be seconds in (0, 3600], not {total_timeout!r}",
                field="total_timeout",
            )
        self.total_timeout = float(total_timeout)
        if not user_agent.strip():
            raise ValidationError(
                "the User-Agent must not be empty: Cloudflare answers 403 without one",
                field="user_agent",
            )
        self.user_agent = user_agent
        self.transcript = transcript
        self._session = requests.Session()
        # The environment (proxies, CA bundle, netrc) is read once per host, not per request:
        # see environment().
        self._session.trust_env = False
        self._session.verify = True
        self._environments: dict[str, Environment] = {}
        # Private calls go to a handful of fixed URLs: each is parsed and quoted once.
        self._urls: dict[str, str] = {}
        self._session.mount("https://", TLSAdapter(ssl_context=ssl_context))
        self._session.mount("http://", DeadlineAdapter())
        self._seq = itertools.count(1)

    def __repr__(self) -> str:
        return (
            f"Transport(timeout={self.timeout!r}, total_timeout={self.total_timeout!r}, "
            f"user_agent={self.user_agent!r})"
        )

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    def mount(self, prefix: str, adapter: requests.adapters.BaseAdapter) -> None:
        """Route URLs starting with ``prefix`` to ``adapter`` (sandbox, fault injection, fakes).

        A network adapter for ``https`` must be a :class:`TLSAdapter`: anything else could
        undo the TLS guarantees.
        """
        if (
            isinstance(adapter, requests.adapters.HTTPAdapter)
            and not isinstance(adapter, TLSAdapter)
            and prefix.lower().startswith("https")
        ):
            raise ValidationError(
                "mount a TLSAdapter (or a non-network BaseAdapter) for https URLs",
                field="adapter",
                rule="tls",
            )
        self._session.mount(prefix, adapter)

    def environment(self, url: str) -> Environment:
        """What the process environment says for requests to ``url``'s host, read once.

        requests reads ``HTTPS_PROXY``/``NO_PROXY``, ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``
        and ``~/.netrc`` again for every request (a third of a call's CPU, by profile); this
        transport reads them on the first request to a host (the client asks at
        construction) and keeps the answer. A changed environment applies to new
        transports.
        """
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}".lower()
        found = self._environments.get(key)
        if found is None:
            found = self._environments[key] = Environment.read(url)
        return found

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> HTTPResponse:
        """Send one request; return the parsed 200 JSON answer or raise a TransportError."""
        timeout = self.timeout if timeout is None else _check_timeout(timeout)
        parts = urlsplit(url)
        what = f"{method} {parts.path or '/'}"
        try:
            adapter = self._session.get_adapter(url)
        except requests.exceptions.InvalidSchema:
            raise ValidationError(f"no adapter for URL {url!r}", field="url") from None
        network = isinstance(adapter, requests.adapters.HTTPAdapter)
        if network and parts.scheme != "https" and not _is_loopback(parts.hostname):
            raise ValidationError(
                f"refusing plain {parts.scheme}:// to {parts.hostname}: use https "
                "(plain http is only for the local sandbox on 127.0.0.1)",
                field="url",
                rule="tls",
            )
        environment = self.environment(url)
        merged = {"Accept": "application/json", **(headers or {})}
        if environment.authorization is not None and "Authorization" not in merged:
            merged["Authorization"] = environment.authorization
        # Set last so no caller header can remove or blank it.
        merged["User-Agent"] = self.user_agent
        prepared = _prepare(what, method, url, merged, body, self._urls)
        seq = next(self._seq)
        if self.transcript is not None:
            self.transcript.request(
                seq,
                prepared.method or method,
                prepared.url or url,
                prepared.headers.items(),
                _as_bytes(prepared.body),
            )
        started = time.monotonic()
        token = _DEADLINE.set(started + self.total_timeout)
        try:
            # Straight to the mounted adapter: Session.send would re-read cookies, hooks and
            # redirect state that a Kraken call never uses (see environment()).
            response = adapter.send(
                prepared,
                stream=False,
                timeout=timeout,
                verify=environment.verify,
                cert=None,
                proxies=environment.proxies,
            )
            content = response.content
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
            error = translate(e, what)
            if time.monotonic() - started >= self.total_timeout and error.may_have_reached:
                error = RequestTimeout(
                    f"{what}: no complete answer within the overall deadline of "
                    f"{self.total_timeout:g} s (connect to the last byte); the request may have "
                    "reached Kraken"
                )
            logger.debug("%s failed: %s", what, type(error).__name__)
            if self.transcript is not None:
                self.transcript.failure(seq, error)
            raise error from None
        finally:
            _DEADLINE.reset(token)
        elapsed = time.monotonic() - started
        status = response.status_code
        # Lower-case names: HTTP header names are case-insensitive, dict lookups are not.
        response_headers = {k.lower(): v for k, v in response.headers.items()}
        logger.debug("%s -> HTTP %s in %.3f s", what, status, elapsed)
        if self.transcript is not None:
            self.transcript.response(
                seq, status, response.reason or "", response.headers.items(), content, elapsed
            )
        if status != 200:
            raise _status_error(
                what, status, response.reason or "", response_headers, content, self.user_agent
            )
        payload = _parse_json(what, response_headers, content)
        return HTTPResponse(
            status_code=status,
            headers=response_headers,
            body=content,
            payload=payload,
            elapsed=elapsed,
        )


@attrs.frozen
class Environment:
    """The environment's settings for one host: proxies, the CA bundle, netrc credentials."""

    proxies: Mapping[str, str]
    verify: bool | str
    authorization: str | None = attrs.field(repr=False)

    @classmethod
    def read(cls, url: str) -> Environment:
        # What requests' Session.merge_environment_settings and its netrc lookup do.
        proxies = requests.utils.get_environ_proxies(url, no_proxy=None)
        verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        _refuse_unverified(verify)
        netrc = requests.utils.get_netrc_auth(url)
        authorization = None
        if netrc is not None:
            authorization = requests.auth._basic_auth_str(*netrc)
        return cls(dict(proxies), verify or True, authorization)


_URL_CACHE_MAX = 256


def _prepare(
    what: str,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    urls: dict[str, str],
) -> requests.PreparedRequest:
    """A request as requests would prepare it, without its per-call cookie and hook work."""
    prepared = requests.PreparedRequest()
    try:
        prepared.prepare_method(method)
        known = urls.get(url)
        if known is None:
            prepared.prepare_url(url, None)
            if "?" not in url and len(urls) < _URL_CACHE_MAX:
                urls[url] = prepared.url or url
        else:
            prepared.url = known
        prepared.prepare_headers(headers)
    except (requests.exceptions.RequestException, ValueError) as exc:
        # A malformed URL or header value: the caller's mistake, found before any I/O.
        raise ValidationError(f"{what}: cannot build the request ({exc})") from None
    prepared.body = body
    if body is not None:
        prepared.headers["Content-Length"] = str(len(body))
    elif prepared.method not in ("GET", "HEAD"):
        prepared.headers["Content-Length"] = "0"
    prepared.hooks = {"response": []}
    return prepared


def _as_bytes(body: object) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return repr(body).encode()

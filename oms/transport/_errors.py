"""requests/urllib3 failures, non-200 answers and non-JSON bodies, translated once."""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.exceptions

from oms.errors import (
    ConnectError,
    ConnectionLost,
    HTTPStatusError,
    InvalidResponse,
    RequestTimeout,
    TLSError,
    TransportError,
)

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

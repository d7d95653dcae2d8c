"""A full, credential-free copy of each request and answer, for a support case."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterable
from typing import IO, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from oms.errors import (
    TransportError,
)

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

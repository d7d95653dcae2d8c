"""The only package that touches the network, and the only one that imports ``requests``.

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

The environment (proxies, CA bundle, netrc) is read once per host, not per request
(:meth:`Transport.environment`). Parts: :mod:`oms.transport._tls` (verified TLS adapters and
the overall deadline), :mod:`oms.transport._errors` (translation of every failure, once),
:mod:`oms.transport._transcript` (a credential-free copy for support).
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import logging
import os
import ssl
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs
import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.exceptions

from oms._version import USER_AGENT
from oms.errors import RequestTimeout, ValidationError
from oms.transport._errors import _parse_json, _status_error, translate
from oms.transport._tls import (
    _DEADLINE,
    DeadlineAdapter,
    TLSAdapter,
    _refuse_unverified,
    make_ssl_context,
)
from oms.transport._transcript import Transcript

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
        what = f"{method} {urlsplit(url).path or '/'}"
        adapter = self._adapter(url)
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
        response, content = self._send(what, seq, adapter, prepared, environment, timeout)
        return self._answer(what, seq, response, content, time.monotonic() - started)

    def _adapter(self, url: str) -> requests.adapters.BaseAdapter:
        """The adapter mounted for ``url``; plain http only to a loopback host."""
        parts = urlsplit(url)
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
        return adapter

    def _send(
        self,
        what: str,
        seq: int,
        adapter: requests.adapters.BaseAdapter,
        prepared: requests.PreparedRequest,
        environment: Environment,
        timeout: tuple[float, float],
    ) -> tuple[requests.Response, bytes]:
        """Send and read the whole answer within the overall deadline, or raise translated."""
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
            return response, response.content
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

    def _answer(
        self, what: str, seq: int, response: requests.Response, content: bytes, elapsed: float
    ) -> HTTPResponse:
        """The 200 JSON answer, or the error a non-200 status or a non-JSON body is."""
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

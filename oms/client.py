"""``KrakenClient``: every Kraken spot REST endpoint, signed, paced and retried where safe.

The endpoints live in three groups mixed into the client (:mod:`oms._calls_market`,
:mod:`oms._calls_orders`, :mod:`oms._calls_funding`); each checks its arguments
(``ValidationError`` before any I/O; an order also against its pair's rules, see
:mod:`oms.pairs`) and hands one call to the request path (:mod:`oms.request_path`), which
this module drives:

    encode and check -> pace -> nonce and sign -> send -> envelope and error mapping

The client holds the key's nonce lock from signing until the request has left (requests for
one key leave in nonce order), tells its hooks about every request sent, and retries a
failed attempt only when that cannot duplicate an effect (:mod:`oms.retry`).
"""

from __future__ import annotations

import logging
import os
import random as _random
import time as _time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from oms._calls_funding import FundingCalls
from oms._calls_market import MarketCalls
from oms._calls_orders import OrderCalls
from oms.auth import Credentials, key_fingerprint, key_prefix
from oms.errors import (
    InvalidNonce,
    KrakenError,
    PairRulesUnavailable,
    TransportError,
    ValidationError,
)
from oms.models import AssetPair
from oms.nonce import NonceSource
from oms.pairs import PAIR_RULES_MODES, PairCache, PairRules
from oms.ratelimit import OrderAges, RateLimiter, Tier
from oms.request_path import (
    JSON_METHODS,
    PUBLIC_METHODS,
    Call,
    check_raw_amounts,
    encode_call,
    envelope_error,
    feedback,
    log_request,
    pace,
    public_url,
    result_of,
    signed_request,
)
from oms.retry import RetryPolicy, call_kind
from oms.transport import DEFAULT_TIMEOUT, DEFAULT_TOTAL_TIMEOUT, HTTPResponse, Transport

__all__ = [
    "DEFAULT_BASE_URL",
    "JSON_METHODS",
    "PAIR_RULES_MODES",
    "PUBLIC_METHODS",
    "KrakenClient",
    "PairRules",
    "PairRulesUnavailable",
    "RequestHook",
]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.kraken.com"

#: ``hook(method, private, error)``, called once per HTTP request sent (see ``add_hook``).
RequestHook = Callable[[str, bool, "Exception | None"], object]


class KrakenClient(MarketCalls, OrderCalls, FundingCalls):
    """A Kraken spot REST client.

    ``credentials`` may be ``None`` for public endpoints only. ``nonce_source`` defaults to
    the machine-wide source for the key (see :class:`oms.nonce.NonceSource`);
    ``rate_limiter`` to a :class:`oms.ratelimit.RateLimiter` for ``tier`` (share one between
    clients that use the same key). ``clock``, ``sleep`` and ``random`` are injectable so tests
    never wait.

    Every :meth:`asset_pairs` answer is remembered (by pair id, altname and wsname, any case),
    and orders are checked against their pair's rules before anything is sent
    (:func:`oms.orders.check_against_pair`). ``pair_rules`` says what happens for a pair not
    learned yet: ``"fetch"`` (default) asks AssetPairs once for it, ``"known"`` sends the order
    unchecked, ``"off"`` never checks (not even a learned pair). An ``AssetPair`` passed as
    ``pair=`` to :meth:`add_order` / :meth:`add_order_batch` is applied in every mode.
    """

    def __init__(
        self,
        credentials: Credentials | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        transport: Transport | None = None,
        nonce_source: NonceSource | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
        retry: RetryPolicy | None = None,
        rate_limiter: RateLimiter | None = None,
        tier: Tier | str = Tier.STARTER,
        order_book: OrderAges | None = None,
        hooks: Iterable[RequestHook] = (),
        public_methods: Iterable[str] = PUBLIC_METHODS,
        pair_rules: PairRules = "fetch",
        clock: Callable[[], float] = _time.time,
        sleep: Callable[[float], None] = _time.sleep,
        random: Callable[[], float] = _random.random,
    ):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValidationError(
                f"base_url must be an http(s) URL: {base_url!r}", field="base_url"
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            # The signature covers "/0/private/<Method>": a path prefix would break it.
            raise ValidationError(
                f"base_url must not have a path: {base_url!r}", field="base_url", rule="url"
            )
        if credentials is not None and not isinstance(credentials, Credentials):
            raise ValidationError("credentials must be oms.auth.Credentials", field="credentials")
        if pair_rules not in PAIR_RULES_MODES:
            raise ValidationError(
                f"pair_rules must be one of {list(PAIR_RULES_MODES)}, not {pair_rules!r}",
                field="pair_rules",
                rule="enum",
            )
        self.base_url = f"{parts.scheme}://{parts.netloc}"
        self.credentials = credentials
        self.transport = (
            transport
            if transport is not None
            else Transport(timeout=timeout, total_timeout=total_timeout)
        )
        # The environment's proxies, CA bundle and netrc entry, read now and not per call.
        self.transport.environment(self.base_url)
        self._nonce_source = nonce_source
        self.retry = retry if retry is not None else RetryPolicy()
        if rate_limiter is not None and order_book is not None:
            raise ValidationError(
                "order_book= is handed to the rate limiter the client builds: give it to your "
                "RateLimiter(order_book=...) instead",
                field="order_book",
                rule="exclusive",
            )
        self.rate_limiter = (
            rate_limiter if rate_limiter is not None else RateLimiter(tier, order_book=order_book)
        )
        self._hooks: tuple[RequestHook, ...] = ()
        for hook in hooks:
            self.add_hook(hook)
        self.public_methods = frozenset(public_methods)
        self.pair_rules: PairRules = pair_rules
        #: The learned pair rules and the pairs of recent orders (shared with the manager).
        self.pairs = PairCache(self.asset_pairs)
        self._clock = clock
        self._sleep = sleep
        self._random = random

    @classmethod
    def from_env(cls, **kwargs: Any) -> KrakenClient:
        """A client from ``KRAKEN_API_KEY``/``KRAKEN_API_SECRET`` (and ``KRAKEN_BASE_URL``).

        With neither key variable set the client serves public endpoints only.
        """
        has_key = os.environ.get("KRAKEN_API_KEY") or os.environ.get("KRAKEN_API_SECRET")
        credentials = Credentials.from_env() if has_key else None
        kwargs.setdefault("base_url", os.environ.get("KRAKEN_BASE_URL") or DEFAULT_BASE_URL)
        return cls(credentials, **kwargs)

    def __repr__(self) -> str:
        key = "None" if self.credentials is None else repr(key_prefix(self.credentials.key))
        return f"KrakenClient(base_url={self.base_url!r}, key={key})"

    def __enter__(self) -> KrakenClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    def add_hook(self, hook: RequestHook) -> None:
        """Call ``hook(method, private, error)`` once per HTTP request sent.

        ``error`` is the :class:`~oms.errors.TransportError` or
        :class:`~oms.errors.KrakenError` the attempt ended with, ``None`` on success; a
        retried call calls it once per attempt. For counting and metrics: a hook that raises
        is logged and ignored, never allowed to hide the answer of a call that was sent.
        """
        if not callable(hook):
            raise ValidationError("a hook must be callable", field="hooks", rule="type")
        self._hooks = (*self._hooks, hook)

    def _run_hooks(self, method: str, private: bool, error: Exception | None) -> None:
        for hook in self._hooks:
            try:
                hook(method, private, error)
            except Exception:  # see add_hook: never hide the answer
                logger.exception("request hook %r failed on %s", hook, method)

    @property
    def nonce_source(self) -> NonceSource:
        # Created on first use: a public-only client never touches the nonce directory.
        if self._nonce_source is None:
            self._nonce_source = NonceSource(key_fingerprint(self._credentials().key))
        return self._nonce_source

    def _credentials(self) -> Credentials:
        if self.credentials is None:
            raise ValidationError(
                "this call is private: give the client Credentials (or set KRAKEN_API_KEY and "
                "KRAKEN_API_SECRET and use KrakenClient.from_env())",
                field="credentials",
            )
        return self.credentials

    # --- raw calls ------------------------------------------------------------------------

    def is_private(self, method: str) -> bool:
        return method not in self.public_methods

    def call(self, method: str, /, *, private: bool | None = None, **params: Any) -> Any:
        """Call any endpoint by name; return its ``result`` (warnings are logged).

        ``private`` overrides the table of public methods. Kraken errors raise the matching
        :class:`~oms.errors.KrakenError` subclass.
        """
        return result_of(method, self.request(method, params, private=private))

    def request(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        private: bool | None = None,
        raise_errors: bool = True,
        retry: RetryPolicy | None = None,
    ) -> HTTPResponse:
        """One logical call, with pacing and retries; return the final HTTP answer.

        The answer's ``payload`` is Kraken's whole envelope. With ``raise_errors=False`` a
        Kraken error that is not retried is returned instead of raised (``oms call`` prints
        the envelope either way).
        """
        is_private = self.is_private(method) if private is None else private
        call = encode_call(method, params, private=is_private)
        if is_private:
            self._credentials()
        check_raw_amounts(call.params)
        return self._send(call, raise_errors=raise_errors, retry=retry)

    def _send(
        self, call: Call, *, raise_errors: bool = True, retry: RetryPolicy | None = None
    ) -> HTTPResponse:
        """Attempt ``call`` until it succeeds or the retry policy gives up."""
        kind = call_kind(call.method, private=call.private)
        policy = retry if retry is not None else self.retry
        nonce_failures = attempt = 0
        while True:
            attempt += 1
            response, error = self._attempt(call)
            if error is None:
                assert response is not None
                return response
            nonce_failures += isinstance(error, InvalidNonce)
            feedback(self.rate_limiter, call, error, now=self._clock())
            delay = None
            if policy.allows(kind, error, attempt=attempt, nonce_failures=nonce_failures):
                delay = policy.delay(error, attempt, now=self._clock(), random=self._random)
            if delay is None:
                if response is not None and not raise_errors:
                    return response
                raise error
            logger.warning(
                "%s failed (%s: %s); attempt %d of %d in %.2f s",
                call.method,
                type(error).__name__,
                error,
                attempt + 1,
                policy.max_attempts,
                delay,
            )
            if delay > 0:
                self._sleep(delay)

    def _attempt(
        self, call: Call
    ) -> tuple[HTTPResponse | None, TransportError | KrakenError | None]:
        """One request through the layers, its outcome told to the log and the hooks."""
        response: HTTPResponse | None = None
        error: TransportError | KrakenError | None = None
        started = _time.monotonic()
        try:
            response = self._exchange(call)
            error, warnings = envelope_error(call, response)
        except TransportError as exc:
            error = exc
        log_request(self.rate_limiter, call, _time.monotonic() - started, error)
        if self._hooks:
            self._run_hooks(call.method, call.private, error)
        if error is None and response is not None:
            if warnings:
                logger.warning("%s answered with warnings: %s", call.method, warnings)
            if call.private:
                result = response.payload.get("result")
                self.rate_limiter.record(call.method, call.params, result, now=self._clock())
        return response, error

    def _exchange(self, call: Call) -> HTTPResponse:
        """Pace, take a nonce, sign and send: the answer as it came."""
        if not call.private:
            return self.transport.request("GET", public_url(self.base_url, call))
        credentials = self._credentials()
        pace(self.rate_limiter, call, clock=self._clock, sleep=self._sleep)
        # Held until the request has left, so a later nonce can never overtake this one.
        with self.nonce_source.reserve() as nonce:
            path, headers, body = signed_request(call, nonce, credentials)
            return self.transport.request("POST", self.base_url + path, headers=headers, body=body)

    def _call(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        private: bool | None = None,
        retry: RetryPolicy | None = None,
    ) -> Any:
        # The typed methods checked their amounts: no raw-amount pass here.
        is_private = self.is_private(method) if private is None else private
        call = encode_call(method, params, private=is_private)
        if is_private:
            self._credentials()
        return result_of(method, self._send(call, retry=retry))

    # --- pair rules -----------------------------------------------------------------------

    def known_pair(self, name: str) -> AssetPair | None:
        """The rules learned for ``name`` (pair id, altname or wsname, any case), if any."""
        return self.pairs.known(name)

    def pair(self, name: str) -> AssetPair:
        """The rules for ``name``: the learned ones, else AssetPairs' answer (asked once).

        Rules are kept for the life of the client; call :meth:`asset_pairs` to refresh them.
        """
        return self.pairs.get(name)

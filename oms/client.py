"""``KrakenClient``: every Kraken spot REST endpoint, signed, paced and retried where safe.

The client builds and signs requests and decides about retries; the :mod:`oms.transport`
sends them. For each call:

1. arguments are checked (``ValidationError`` before any I/O); an order is also checked
   against its pair's rules (decimals, tick size, ordermin, costmin) when they are known, see
   ``pair_rules``;
2. for a private call, :class:`oms.ratelimit.RateLimiter` says how long to wait so neither
   of Kraken's counters is exceeded, and the client sleeps that long (injected sleep);
3. a nonce is reserved from :class:`oms.nonce.NonceSource` and held while the body is encoded,
   signed and sent, so requests for one key leave in nonce order;
4. the answer's ``error`` array goes through :func:`oms.errors.raise_for_errors`;
5. a failed attempt is retried only when that cannot duplicate an effect (see
   :mod:`oms.retry`).
"""

from __future__ import annotations

import logging
import math
import os
import random as _random
import time as _time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from oms._decimal import to_decimal
from oms.auth import Credentials, key_fingerprint, key_prefix
from oms.conventions import PAGE_SIZE, check_dead_mans_switch, check_txid, chunks
from oms.errors import (
    InvalidNonce,
    KrakenError,
    PairRulesUnavailable,
    ResponseShapeError,
    TransportError,
    ValidationError,
)
from oms.models import (
    AddOrderResult,
    AmendResult,
    Asset,
    AssetPair,
    Balance,
    BatchOrderResult,
    CancelResult,
    DeadMansSwitch,
    DepositMethod,
    FundingPage,
    FundingTransaction,
    OHLCPage,
    Order,
    OrderBook,
    OrdersPage,
    PublicTrade,
    RelativePrice,
    ServerTime,
    SystemStatus,
    Ticker,
    TradesPage,
    WithdrawInfo,
    parse_price,
)
from oms.nonce import NonceSource
from oms.orders import (
    OrderRequest,
    batch_params,
    check_against_pair,
    check_asset_class,
    check_cl_ord_id,
    check_deadline,
    check_userref,
    format_deadline,
)
from oms.pairs import PAIR_RULES_MODES, PairCache, PairRules, check_amend
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

_OHLC_INTERVALS = frozenset({1, 5, 15, 30, 60, 240, 1440, 10080, 21600})


def _positive_int(value: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{field} must be a positive int", field=field, rule="positive")
    return value


def _as_list(value: str | Iterable[str] | None, field: str) -> list[str] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    if not items or not all(isinstance(v, str) and v for v in items):
        raise ValidationError(f"{field} must be a non-empty string or list", field=field)
    return items


def _amount(value: object, field: str) -> Decimal:
    amount = to_decimal(value, field=field)
    if amount <= 0:
        raise ValidationError(f"{field} must be positive", field=field, rule="positive")
    return amount


def _time_param(value: float | int | str | None, field: str) -> object:
    """``start``/``end``: a unix time or a txid (Kraken accepts both), sent as an integer.

    The OpenAPI spec types both as integers (or a txid). A fractional time is widened to
    whole seconds, never narrowed: ``start`` (exclusive) down, ``end`` (inclusive) up, so an
    order the caller asked for is never left out; a wider window only ever repeats orders,
    which paging drops by txid.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValidationError(f"{field} must be a unix time or a txid", field=field, rule="type")
    if isinstance(value, int):
        return value
    if not math.isfinite(value) or not 0 <= value < 10**11:
        raise ValidationError(f"{field} must be a unix time or a txid", field=field, rule="range")
    return math.floor(value) if field == "start" else math.ceil(value)


def _opt_asset_class(value: str | None) -> str | None:
    # Kraken requires it for non-crypto pairs (`tokenized_asset` for xStocks): spec
    # partials/parameters/query/asset_class.yaml, on OHLC, Trades, Depth and Ticker.
    return None if value is None else check_asset_class(value)


def _one_of(**given: object) -> tuple[str, object]:
    present = [(k, v) for k, v in given.items() if v is not None]
    if len(present) != 1:
        names = " / ".join(given)
        raise ValidationError(f"give exactly one of {names}", field=names, rule="exclusive")
    return present[0]


class KrakenClient:
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

    # --- public market data ---------------------------------------------------------------

    def time(self) -> ServerTime:
        return ServerTime.from_api(self._call("Time", {}))

    def system_status(self) -> SystemStatus:
        return SystemStatus.from_api(self._call("SystemStatus", {}))

    def assets(
        self, assets: str | Iterable[str] | None = None, *, aclass: str | None = None
    ) -> dict[str, Asset]:
        params = {"asset": _as_list(assets, "assets"), "aclass": aclass}
        return Asset.map_from_api(self._call("Assets", params))

    def asset_pairs(
        self,
        pairs: str | Iterable[str] | None = None,
        *,
        info: str | None = None,
        aclass_base: str | None = None,
        country_code: str | None = None,
    ) -> dict[str, AssetPair]:
        """Every pair's rules, keyed by pair id. ``info`` may only be ``"info"`` (the default,
        the whole entry): Kraken's ``leverage``/``fees``/``margin`` views leave out the
        fields an :class:`~oms.models.AssetPair` needs (all of them are in the whole entry;
        ``call("AssetPairs", info=...)`` gives the raw view)."""
        if info not in (None, "info"):
            raise ValidationError(
                f"info={info!r} answers a partial entry that is not an AssetPair: leave info "
                "out (the whole entry has the leverage, fees and margin fields too) or use "
                "call('AssetPairs', info=...)",
                field="info",
                rule="enum",
            )
        names = _as_list(pairs, "pairs")
        params = {
            "pair": names,
            "info": info,
            "aclass_base": aclass_base,
            "country_code": country_code,
        }
        found = AssetPair.map_from_api(self._call("AssetPairs", params))
        self.pairs.learn(found.values(), asked=names or ())
        return found

    # --- pair rules -----------------------------------------------------------------------

    def known_pair(self, name: str) -> AssetPair | None:
        """The rules learned for ``name`` (pair id, altname or wsname, any case), if any."""
        return self.pairs.known(name)

    def pair(self, name: str) -> AssetPair:
        """The rules for ``name``: the learned ones, else AssetPairs' answer (asked once).

        Rules are kept for the life of the client; call :meth:`asset_pairs` to refresh them.
        """
        return self.pairs.get(name)

    def ticker(
        self, pairs: str | Iterable[str] | None = None, *, asset_class: str | None = None
    ) -> dict[str, Ticker]:
        params = {"pair": _as_list(pairs, "pairs"), "asset_class": _opt_asset_class(asset_class)}
        return Ticker.map_from_api(self._call("Ticker", params))

    def ohlc(
        self,
        pair: str,
        *,
        interval: int = 1,
        since: int | None = None,
        asset_class: str | None = None,
    ) -> OHLCPage:
        """At most the 720 latest bars (older ones are unreachable through this endpoint)."""
        if interval not in _OHLC_INTERVALS:
            raise ValidationError(
                f"interval must be one of {sorted(_OHLC_INTERVALS)} minutes",
                field="interval",
                rule="range",
            )
        params = {
            "pair": pair,
            "interval": interval,
            "since": since,
            "asset_class": _opt_asset_class(asset_class),
        }
        return OHLCPage.from_api(self._call("OHLC", params))

    def trades(
        self,
        pair: str,
        *,
        since: int | None = None,
        count: int | None = None,
        asset_class: str | None = None,
    ) -> TradesPage:
        """One page of the public tape. ``since`` is a nanosecond cursor (``TradesPage.last``)."""
        if count is not None and not 1 <= _positive_int(count, "count") <= 1000:
            raise ValidationError("count must be 1..1000", field="count", rule="range")
        params = {
            "pair": pair,
            "since": since,
            "count": count,
            "asset_class": _opt_asset_class(asset_class),
        }
        return TradesPage.from_api(self._call("Trades", params))

    def iter_trades(
        self,
        pair: str,
        since: int = 0,
        *,
        count: int | None = None,
        max_pages: int | None = None,
        asset_class: str | None = None,
    ) -> Iterator[PublicTrade]:
        """Every public trade from ``since`` (nanoseconds; 0 = the market's first trade) on.

        Pages follow Kraken's exact ``last`` cursor (never a rounded time). A trade repeated
        at a page boundary is yielded once. Stops when a page is empty, ``last`` is empty
        (Kraken's end of pagination) or does not advance (the present is reached).
        """
        cursor = since
        previous: set[object] = set()
        pages = 0
        while max_pages is None or pages < max_pages:
            page = self.trades(pair, since=cursor, count=count, asset_class=asset_class)
            pages += 1
            for trade in page.trades:
                if _trade_key(trade) not in previous:
                    yield trade
            if not page.trades or page.last is None or page.last <= cursor:
                return
            previous = {_trade_key(t) for t in page.trades}
            cursor = page.last

    def depth(
        self, pair: str, *, count: int | None = None, asset_class: str | None = None
    ) -> OrderBook:
        if count is not None and not 1 <= _positive_int(count, "count") <= 500:
            raise ValidationError("count must be 1..500", field="count", rule="range")
        params = {"pair": pair, "count": count, "asset_class": _opt_asset_class(asset_class)}
        return OrderBook.from_api(self._call("Depth", params))

    # --- account and orders ---------------------------------------------------------------

    def balance(self) -> Balance:
        return Balance.from_api(self._call("Balance", {}))

    def add_order(
        self,
        request: OrderRequest | None = None,
        /,
        *,
        pair: AssetPair | str | None = None,
        now: float | None = None,
        retry: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> AddOrderResult:
        """Place (or, with ``validate=True``, only check) one order.

        Pass an :class:`oms.orders.OrderRequest`, or its fields as keyword arguments. ``pair``
        may be the pair's :class:`~oms.models.AssetPair`: its rules are then applied (with
        keyword arguments the order is for its altname); a string is the order's pair field.
        Otherwise the rules come from ``pair_rules`` (see the class). A broken rule raises
        :class:`~oms.errors.ValidationError` naming it, before AddOrder is sent. Not retried
        once it may have reached Kraken: on a timeout or 5xx the order may exist, and
        :class:`oms.OrderManager` reconciles by userref / cl_ord_id.

        ``now`` is the exchange's time to check a ``deadline`` against (default: the client's
        clock); the order manager passes its estimate of Kraken's clock, by which it set the
        deadline, so a local clock that stepped cannot refuse it. ``retry`` replaces the
        client's policy for this call: :meth:`RetryPolicy.none() <oms.retry.RetryPolicy.none>`
        sends exactly one request, for a caller that owns the retrying (the order manager).
        """
        rules = pair if isinstance(pair, AssetPair) else None
        if request is None:
            if pair is not None:
                kwargs["pair"] = pair if rules is None else rules.altname
            request = OrderRequest(**kwargs)
        elif kwargs or (pair is not None and rules is None):
            raise ValidationError(
                "give an OrderRequest or keyword arguments, not both", field="request"
            )
        # Everything that needs no I/O first: a request wrong anyway fetches no rules.
        sent_at = self._clock() if now is None else now
        request.to_params(now=sent_at)
        found = self.pairs.rules_for(request.pair, rules, self.pair_rules)
        if found is not None:
            check_against_pair(request, found)
        # Encoded again after a possible AssetPairs call, so the deadline is checked as sent.
        params = request.to_params(now=sent_at if now is not None else self._clock())
        answer = AddOrderResult.from_api(
            self._call("AddOrder", params, retry=retry), validate=request.validate
        )
        self.pairs.remember_orders(request.pair, [*answer.txids, request.cl_ord_id])
        return answer

    def add_order_batch(
        self,
        orders: Sequence[OrderRequest],
        *,
        pair: AssetPair | None = None,
        deadline: datetime | None = None,
        validate: bool = False,
        retry: RetryPolicy | None = None,
    ) -> BatchOrderResult:
        """Place 2 to 15 orders for one pair in one call (sent as JSON); never retried once
        it may have reached Kraken (``retry`` replaces the client's policy for this call, as
        for :meth:`add_order`).

        Every order is checked against the pair's rules first (``pair``, or as
        ``pair_rules`` says); one broken rule refuses the whole batch before anything is sent.
        """
        batch_params(orders, deadline=deadline, validate=validate, now=self._clock())
        found = self.pairs.rules_for(orders[0].pair, pair, self.pair_rules)
        if found is not None:
            for i, order in enumerate(orders):
                try:
                    check_against_pair(order, found)
                except ValidationError as exc:
                    raise ValidationError(
                        f"orders[{i}]: {exc}", field=exc.field, rule=exc.rule
                    ) from None
        body = batch_params(orders, deadline=deadline, validate=validate, now=self._clock())
        result = BatchOrderResult.from_api(
            self._call("AddOrderBatch", body, retry=retry),
            validate=validate,
            expected=len(orders),
        )
        refs = [item.txid for item in result.items] + [o.cl_ord_id for o in orders]
        self.pairs.remember_orders(orders[0].pair, refs)
        return result

    def amend_order(
        self,
        *,
        txid: str | None = None,
        cl_ord_id: str | None = None,
        order_qty: object = None,
        display_qty: object = None,
        limit_price: object = None,
        trigger_price: object = None,
        post_only: bool | None = None,
        pair: str | AssetPair | None = None,
        deadline: datetime | None = None,
    ) -> AmendResult:
        """Change an order in place (txid, userref-free identifiers and queue priority kept
        where possible). Prices may be relative (``"+5"``, ``"-1%"``) as Kraken allows.

        New absolute prices are checked against the pair's ``pair_decimals`` and
        ``tick_size``, new quantities against ``lot_decimals``, when the pair is known: from
        ``pair`` (a string is also sent to Kraken, which needs it for xStocks; an
        :class:`~oms.models.AssetPair` only supplies the rules), else from the order having
        been placed through this client. ``pair_rules`` applies as for :meth:`add_order`.
        """
        key, ref = _one_of(txid=txid, cl_ord_id=cl_ord_id)
        if key == "cl_ord_id":
            check_cl_ord_id(ref)
        else:
            check_txid(ref, "txid")
        if not isinstance(ref, str) or not ref:
            raise ValidationError(f"{key} must be a non-empty string", field=key)
        changes = {
            "order_qty": None if order_qty is None else _amount(order_qty, "order_qty"),
            "display_qty": None if display_qty is None else _amount(display_qty, "display_qty"),
            "limit_price": _price_param(limit_price, "limit_price"),
            "trigger_price": _price_param(trigger_price, "trigger_price"),
        }
        if all(v is None for v in changes.values()):
            raise ValidationError(
                "nothing to amend: give order_qty, display_qty, limit_price or trigger_price",
                field="order_qty",
                rule="required",
            )
        if pair is not None and not isinstance(pair, (str, AssetPair)):
            raise ValidationError("pair must be a pair name or an AssetPair", field="pair")
        sent_pair = pair if isinstance(pair, str) else None
        params: dict[str, object] = {key: ref, **changes, "post_only": post_only, "pair": sent_pair}
        if deadline is not None:
            check_deadline(deadline, self._clock())  # before a possible AssetPairs call
        found = self.pairs.amend_rules(ref, pair, self.pair_rules)
        if found is not None:
            check_amend(changes, found)
        if deadline is not None:
            # Again as sent: learning the pair's rules may have taken a while.
            check_deadline(deadline, self._clock())
            params["deadline"] = format_deadline(deadline)
        return AmendResult.from_api(self._call("AmendOrder", params))

    def cancel_order(
        self,
        *,
        txid: str | None = None,
        userref: int | None = None,
        cl_ord_id: str | None = None,
    ) -> CancelResult:
        """Cancel one order by txid or cl_ord_id, or **every** open order tagged ``userref``.

        Kraken takes a userref in the ``txid`` parameter, as an integer. Retried on transport
        errors: a repeat of a cancel that already happened answers ``EOrder:Unknown order`` or
        ``EOrder:Invalid order`` (both raised as :class:`oms.errors.UnknownOrder`; the second
        as its subclass :class:`~oms.errors.InvalidOrder`), which means the order is gone
        either way.
        """
        key, ref = _one_of(txid=txid, userref=userref, cl_ord_id=cl_ord_id)
        if key == "userref":
            params: dict[str, object] = {"txid": check_userref(ref)}
        elif key == "cl_ord_id":
            params = {"cl_ord_id": check_cl_ord_id(ref)}
        else:
            params = {"txid": check_txid(ref, "txid")}
        return CancelResult.from_api(self._call("CancelOrder", params))

    def cancel_order_batch(
        self,
        *,
        txids: Iterable[str] = (),
        userrefs: Iterable[int] = (),
        cl_ord_ids: Iterable[str] = (),
    ) -> CancelResult:
        """Cancel up to 50 orders (txids, userrefs and cl_ord_ids together) in one JSON call."""
        orders: list[object] = [check_txid(t, "txids") for t in dict.fromkeys(txids)]
        orders.extend(dict.fromkeys(check_userref(u) for u in userrefs))
        ids = list(dict.fromkeys(check_cl_ord_id(c) for c in cl_ord_ids))
        total = len(orders) + len(ids)
        if not 1 <= total <= PAGE_SIZE:
            raise ValidationError(
                f"CancelOrderBatch takes 1 to {PAGE_SIZE} ids, got {total}",
                field="txids",
                rule="batch-size",
            )
        params: dict[str, object] = {}
        if orders:
            params["orders"] = orders
        if ids:
            # The OpenAPI spec (krakenfx/api-specs spot-rest, CancelOrderBatch) types
            # `cl_ord_ids` as an array of {"cl_ord_id": ...} objects, while `orders` takes
            # plain txids/userrefs as its own example shows; WebSocket's batch_cancel takes
            # plain strings. The REST spec's shape is what is sent (the sandbox takes both).
            params["cl_ord_ids"] = [{"cl_ord_id": c} for c in ids]
        return CancelResult.from_api(self._call("CancelOrderBatch", params))

    def cancel_all(self) -> CancelResult:
        return CancelResult.from_api(self._call("CancelAll", {}))

    def cancel_all_orders_after(self, timeout: int) -> DeadMansSwitch:
        """Arm (or with 0, disarm) the dead man's switch: all orders are cancelled when
        ``timeout`` seconds pass without another call. Call again every 15-30 s."""
        check_dead_mans_switch(timeout)
        return DeadMansSwitch.from_api(self._call("CancelAllOrdersAfter", {"timeout": timeout}))

    def open_orders(
        self, *, trades: bool = False, userref: int | None = None, cl_ord_id: str | None = None
    ) -> OrdersPage:
        params = _order_filters(trades=trades, userref=userref, cl_ord_id=cl_ord_id)
        return OrdersPage.from_api(self._call("OpenOrders", params))

    def closed_orders(
        self,
        *,
        trades: bool = False,
        userref: int | None = None,
        cl_ord_id: str | None = None,
        start: float | int | str | None = None,
        end: float | int | str | None = None,
        ofs: int | None = None,
        closetime: str | None = None,
        consolidate_taker: bool | None = None,
        without_count: bool | None = None,
    ) -> OrdersPage:
        """One page (50, newest first). ``start``/``end`` take a unix time or a txid."""
        if closetime not in (None, "open", "close", "both"):
            raise ValidationError("closetime must be open, close or both", field="closetime")
        if ofs is not None and (isinstance(ofs, bool) or not isinstance(ofs, int) or ofs < 0):
            raise ValidationError("ofs must be an int >= 0", field="ofs")
        params = {
            **_order_filters(trades=trades, userref=userref, cl_ord_id=cl_ord_id),
            "start": _time_param(start, "start"),
            "end": _time_param(end, "end"),
            "ofs": ofs,
            "closetime": closetime,
            "consolidate_taker": consolidate_taker,
            "without_count": without_count,
        }
        return OrdersPage.from_api(self._call("ClosedOrders", params))

    def iter_closed_orders(
        self,
        *,
        trades: bool = False,
        userref: int | None = None,
        cl_ord_id: str | None = None,
        start: float | int | str | None = None,
        end: float | int | str | None = None,
        closetime: str | None = None,
        consolidate_taker: bool | None = None,
        max_pages: int | None = None,
    ) -> Iterator[Order]:
        """Every closed order matching the filters, newest first, each once.

        Pages of 50 by offset, with ``end`` pinned to the newest close time of the first page
        and, unless ``closetime="open"`` was asked for, the window taken by close time:
        orders closing while we page (even ones opened long before) fall outside it, so
        offsets do not shift and nothing is skipped. Duplicates (from any remaining shift,
        e.g. with a caller's own ``end``) are dropped by txid; a shift only ever repeats
        orders, so paging goes on until Kraken's ``count`` is reached.
        """
        seen: set[str] = set()
        ofs = 0
        pages = 0
        window = closetime
        while max_pages is None or pages < max_pages:
            page = self.closed_orders(
                trades=trades,
                userref=userref,
                cl_ord_id=cl_ord_id,
                start=start,
                end=end,
                ofs=ofs,
                closetime=window,
                consolidate_taker=consolidate_taker,
            )
            pages += 1
            fresh = [o for o in page.orders if o.txid not in seen]
            if end is None and page.orders:
                end = max(o.closetm if o.closetm is not None else o.opentm for o in page.orders)
                if window in (None, "both"):
                    # "both" (Kraken's default) matches an order by its opentm too: one opened
                    # before `end` that closes while we page would be matched and inserted
                    # ahead of our offset. Within the pinned window "close" selects the same
                    # orders as the first page did, and none that close later.
                    window = "close"
            for order in fresh:
                seen.add(order.txid)
                yield order
            ofs += len(page.orders)
            done = len(page.orders) < PAGE_SIZE or (page.count is not None and ofs >= page.count)
            # Without a count, a page of nothing new is the only sign of a server that
            # ignores `ofs`; with one, such a page is a shift and later pages still matter.
            if done or (page.count is None and not fresh):
                return

    def query_orders(
        self,
        txids: str | Iterable[str],
        *,
        trades: bool = False,
        userref: int | None = None,
        consolidate_taker: bool | None = None,
    ) -> OrdersPage:
        """Orders by txid (open or closed), asked 50 at a time; one page with all answers."""
        wanted = [check_txid(t, "txids") for t in dict.fromkeys(_as_list(txids, "txids") or [])]
        found: dict[str, Order] = {}
        for batch in chunks(wanted):
            params = {
                "txid": list(batch),
                **_order_filters(trades=trades, userref=userref, cl_ord_id=None),
                "consolidate_taker": consolidate_taker,
            }
            page = OrdersPage.from_api(self._call("QueryOrders", params))
            found.update(page.by_txid())
        return OrdersPage(tuple(found.values()))

    # --- funding --------------------------------------------------------------------------

    def deposit_methods(self, asset: str, *, aclass: str | None = None) -> list[DepositMethod]:
        result = self._call("DepositMethods", {"asset": asset, "aclass": aclass})
        if not isinstance(result, list):
            raise ResponseShapeError("DepositMethods: expected an array")
        return [DepositMethod.from_api(item) for item in result]

    def deposit_status(
        self,
        *,
        asset: str | None = None,
        aclass: str | None = None,
        method: str | None = None,
        start: float | int | str | None = None,
        end: float | int | str | None = None,
        cursor: bool | str | None = None,
        limit: int | None = None,
    ) -> FundingPage:
        """Recent deposits, newest first. ``cursor=True`` starts paging; pass a page's
        ``next_cursor`` for the next one (or use :meth:`iter_deposit_status`)."""
        filters = _funding_filters(asset, aclass, method, start, end, cursor, limit)
        return FundingPage.from_api(self._call("DepositStatus", filters))

    def withdraw_status(
        self,
        *,
        asset: str | None = None,
        aclass: str | None = None,
        method: str | None = None,
        start: float | int | str | None = None,
        end: float | int | str | None = None,
        cursor: bool | str | None = None,
        limit: int | None = None,
    ) -> FundingPage:
        """Recent withdrawals; the same filters and paging as :meth:`deposit_status`."""
        filters = _funding_filters(asset, aclass, method, start, end, cursor, limit)
        return FundingPage.from_api(self._call("WithdrawStatus", filters))

    def iter_deposit_status(
        self,
        *,
        asset: str | None = None,
        aclass: str | None = None,
        method: str | None = None,
        start: float | int | str | None = None,
        end: float | int | str | None = None,
        limit: int | None = None,
    ) -> Iterator[FundingTransaction]:
        """Every deposit matching the filters, following ``next_cursor`` page by page."""
        filters = _funding_filters(asset, aclass, method, start, end, None, limit)
        return self._iter_funding("DepositStatus", filters)

    def iter_withdraw_status(
        self,
        *,
        asset: str | None = None,
        aclass: str | None = None,
        method: str | None = None,
        start: float | int | str | None = None,
        end: float | int | str | None = None,
        limit: int | None = None,
    ) -> Iterator[FundingTransaction]:
        """Every withdrawal matching the filters, following ``next_cursor`` page by page."""
        filters = _funding_filters(asset, aclass, method, start, end, None, limit)
        return self._iter_funding("WithdrawStatus", filters)

    def _iter_funding(self, endpoint: str, filters: dict[str, Any]) -> Iterator[FundingTransaction]:
        cursor: bool | str = True
        seen: set[str] = set()
        while True:
            page = FundingPage.from_api(self._call(endpoint, {**filters, "cursor": cursor}))
            for item in page.items:
                if item.refid not in seen:
                    seen.add(item.refid)
                    yield item
            if page.next_cursor is None or page.next_cursor == cursor or not page.items:
                return
            cursor = page.next_cursor

    def withdraw_info(self, asset: str, key: str, amount: object) -> WithdrawInfo:
        params = {"asset": asset, "key": key, "amount": _amount(amount, "amount")}
        return WithdrawInfo.from_api(self._call("WithdrawInfo", params))

    def withdraw(
        self,
        asset: str,
        key: str,
        amount: object,
        *,
        address: str | None = None,
        max_fee: object = None,
        aclass: str | None = None,
    ) -> str:
        """Request a withdrawal to the saved address ``key``; return its ``refid``.

        Never retried once it may have reached Kraken: check :meth:`withdraw_status` instead.
        """
        params = {
            "asset": asset,
            "key": key,
            "amount": _amount(amount, "amount"),
            "address": address,
            "max_fee": None if max_fee is None else _amount(max_fee, "max_fee"),
            "aclass": aclass,
        }
        result = self._call("Withdraw", params)
        refid = result.get("refid") if isinstance(result, Mapping) else None
        if not isinstance(refid, str) or not refid:
            raise ResponseShapeError(f"Withdraw answered without a refid: {result!r}")
        return refid

    def withdraw_cancel(self, asset: str, refid: str) -> bool:
        """Ask to cancel a withdrawal not yet processed; True if the request was accepted.

        Never repeated once it may have reached Kraken (a repeat answers false, as for a
        withdrawal too far along): on a transport error check :meth:`withdraw_status`, whose
        ``status_prop`` is ``cancel-pending`` if the first request arrived.
        """
        result = self._call("WithdrawCancel", {"asset": asset, "refid": refid})
        if not isinstance(result, bool):
            raise ResponseShapeError(f"WithdrawCancel: expected true/false, got {result!r}")
        return result


def _trade_key(trade: PublicTrade) -> object:
    if trade.trade_id is not None:
        return trade.trade_id
    return (trade.price, trade.volume, trade.time, trade.side, trade.ordertype, trade.misc)


def _price_param(value: object, field: str) -> object:
    if value is None:
        return None
    if isinstance(value, str) and value.strip()[:1] in ("+", "-"):
        # Relative forms ("+5", "-1.5%") are sent as Kraken defines them, once their amount
        # has passed the same bounds as any other (parse_price checks it).
        price = parse_price(value, field=field)
        if isinstance(price, RelativePrice) and price.prefix in ("+", "-"):
            return str(price)
    return _amount(value, field)


def _order_filters(*, trades: bool, userref: int | None, cl_ord_id: str | None) -> dict[str, Any]:
    return {
        "trades": True if trades else None,
        "userref": None if userref is None else check_userref(userref),
        "cl_ord_id": None if cl_ord_id is None else check_cl_ord_id(cl_ord_id),
    }


def _funding_filters(
    asset: str | None,
    aclass: str | None,
    method: str | None,
    start: float | int | str | None,
    end: float | int | str | None,
    cursor: bool | str | None,
    limit: int | None,
) -> dict[str, Any]:
    if limit is not None:
        _positive_int(limit, "limit")
    if cursor is not None and not isinstance(cursor, (bool, str)):
        raise ValidationError("cursor must be True/False or a next_cursor", field="cursor")
    return {
        "asset": asset,
        "aclass": aclass,
        "method": method,
        "start": _time_param(start, "start"),
        "end": _time_param(end, "end"),
        "cursor": cursor,
        "limit": limit,
    }

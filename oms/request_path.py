"""The path of one Kraken call, as short layers the client drives in order.

1. **encode and check** (:func:`encode_call`): the method name, the reserved ``nonce``, the
   parameters encoded once (a float is refused here, before any I/O);
2. **pace** (:func:`pace`): the rate limiter says how long to wait, the injected sleep waits;
3. **nonce and sign** (:func:`signed_request`): the body gets its nonce (spliced in front of
   the encoding made in step 1) and its signature;
4. **send**: :meth:`oms.transport.Transport.request`, the only layer that touches the network;
5. **envelope and error mapping** (:func:`envelope_error`): Kraken's ``error`` array becomes a
   :class:`~oms.errors.KrakenError` (warnings are returned apart).

:class:`oms.client.KrakenClient` runs them, holding the key's nonce lock from step 3 until
the request has left, and owns the retry loop around them (:mod:`oms.retry`); each layer can
be read and tested alone. Nothing here sleeps, reads a clock or keeps state of its own.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from oms.auth import Credentials, encode_form, encode_json
from oms.errors import (
    APIRateLimitExceeded,
    InvalidResponse,
    KrakenError,
    OrderRateLimitExceeded,
    ResponseShapeError,
    TooManyRequests,
    TransportError,
    ValidationError,
    kraken_error,
)
from oms.models import RelativePrice, parse_price
from oms.ratelimit import RateLimiter
from oms.transport import HTTPResponse

__all__ = [
    "JSON_METHODS",
    "PUBLIC_METHODS",
    "Call",
    "check_raw_amounts",
    "encode_call",
    "envelope_error",
    "feedback",
    "log_request",
    "pace",
    "public_url",
    "result_of",
    "signed_request",
]

logger = logging.getLogger("oms.client")
#: One INFO line per request sent: method, REST cost, latency, outcome (``oms -v`` shows it).
#: Never parameters, keys or signatures.
request_log = logging.getLogger("oms.requests")

#: Methods served under ``/0/public/`` (GET, no signature). Anything else is private.
PUBLIC_METHODS = frozenset(
    {"Time", "SystemStatus", "Assets", "AssetPairs", "Ticker", "OHLC", "Trades", "Depth", "Spread"}
)
#: Kraken refuses these form-encoded (``EGeneral:Invalid arguments:orders``): send JSON.
JSON_METHODS = frozenset({"AddOrderBatch", "CancelOrderBatch"})

_METHOD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_FORM = "application/x-www-form-urlencoded"

#: Parameters that carry an amount, checked in raw calls too (``call("AddOrder", price=...)``,
#: ``oms call``): the typed methods check them anyway, a raw call must not be a way around.
_AMOUNT_PARAMS = frozenset(
    {
        "volume",
        "price",
        "price2",
        "displayvol",
        "amount",
        "max_fee",
        "order_qty",
        "display_qty",
        "limit_price",
        "trigger_price",
    }
)


class Call:
    """One logical call, checked and encoded: what every attempt sends (re-signed each time)."""

    __slots__ = ("encoded", "json", "method", "params", "private")

    def __init__(self, method: str, params: dict[str, Any], private: bool, encoded: str):
        self.method = method
        self.params = params
        self.private = private
        self.json = private and method in JSON_METHODS
        self.encoded = encoded

    def __repr__(self) -> str:
        # Never the parameters: they may carry an address or a one-time password.
        return f"Call({self.method!r}, private={self.private})"


# --- 1. encode and check ----------------------------------------------------------------


def encode_call(method: str, params: Mapping[str, Any] | None, *, private: bool) -> Call:
    """Check the method name and parameters and encode them once, before any I/O."""
    if not isinstance(method, str) or not _METHOD_NAME.fullmatch(method):
        raise ValidationError(f"not a Kraken method name: {method!r}", field="method")
    checked = dict(params or {})
    if "nonce" in checked:
        raise ValidationError("the client supplies the nonce", field="nonce", rule="reserved")
    json_body = private and method in JSON_METHODS
    encoded = (encode_json if json_body else encode_form)(checked)
    return Call(method, checked, private, encoded)


def check_raw_amounts(params: Mapping[str, Any]) -> None:
    """Every amount in a raw call's parameters (nested ones too) must parse as a price."""
    for key, value in params.items():
        if isinstance(value, Mapping):
            check_raw_amounts({f"{key}[{k}]": v for k, v in value.items()})
            continue
        if isinstance(value, (list, tuple)):
            # AddOrderBatch's orders: each a mapping of its own.
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    check_raw_amounts({f"{key}[{i}][{k}]": v for k, v in item.items()})
            continue
        name = key.rsplit("[", 1)[-1].rstrip("]")
        if name in _AMOUNT_PARAMS and value is not None and not isinstance(value, RelativePrice):
            parse_price(value, field=key)


def public_url(base_url: str, call: Call) -> str:
    return f"{base_url}/0/public/{call.method}" + (f"?{call.encoded}" if call.encoded else "")


# --- 2. pace ------------------------------------------------------------------------------


def pace(
    limiter: RateLimiter, call: Call, *, clock: Callable[[], float], sleep: Callable[[float], None]
) -> None:
    """Book the call on the limiter's counters and wait until it fits under them."""
    wait = limiter.reserve(call.method, call.params, now=clock())
    if wait > 0:
        logger.info("%s paced: waiting %.2f s for Kraken's rate limits", call.method, wait)
        sleep(wait)


def feedback(limiter: RateLimiter, call: Call, error: Exception, *, now: float) -> None:
    """Kraken said a limit was exceeded: saturate the matching counter."""
    # Only private calls count on the modelled counters; the public throttle is per IP.
    if isinstance(error, (APIRateLimitExceeded, TooManyRequests)) and call.private:
        limiter.exceeded(now=now)
    elif isinstance(error, OrderRateLimitExceeded):
        limiter.exceeded(now=now, trading=True, method=call.method, params=call.params)


# --- 3. nonce and sign --------------------------------------------------------------------


def signed_request(
    call: Call, nonce: int, credentials: Credentials
) -> tuple[str, dict[str, str], bytes]:
    """The URL path, headers and body of a private call sent with ``nonce``.

    The nonce goes first, exactly as encoding ``{"nonce": nonce, **params}`` would put it,
    so the parameters encoded in step 1 are reused rather than encoded again per attempt.
    """
    path = f"/0/private/{call.method}"
    if call.json:
        rest = call.encoded[1:]  # without its "{"
        body = f'{{"nonce":{nonce}' + ("}" if rest == "}" else "," + rest)
        content_type = "application/json"
    else:
        body = f"nonce={nonce}" + (f"&{call.encoded}" if call.encoded else "")
        content_type = _FORM
    headers = {
        "API-Key": credentials.key,
        "API-Sign": credentials.sign(path, nonce, body),
        "Content-Type": content_type,
    }
    return path, headers, body.encode()


# --- 5. envelope and error mapping --------------------------------------------------------


def envelope_error(call: Call, response: HTTPResponse) -> tuple[KrakenError | None, list[str]]:
    """The Kraken error the answer carries (``None`` if none), and its warnings."""
    envelope = response.payload
    errors = envelope.get("error") if isinstance(envelope, dict) else None
    if not isinstance(errors, list) or not all(isinstance(e, str) for e in errors):
        raise InvalidResponse(
            f"{call.method}: HTTP 200 JSON without Kraken's envelope (an 'error' array); "
            "the request may have reached Kraken"
        )
    failures = [e for e in errors if not e.startswith("W")]
    if failures:
        return kraken_error(failures[0], errors), errors
    return None, errors


def result_of(method: str, response: HTTPResponse) -> Any:
    """The ``result`` of an answer without errors."""
    envelope = response.payload
    if "result" not in envelope:
        raise ResponseShapeError(f"{method}: answer without errors and without a result")
    return envelope["result"]


def log_request(
    limiter: RateLimiter, call: Call, elapsed: float, error: TransportError | KrakenError | None
) -> None:
    if not request_log.isEnabledFor(logging.INFO):
        return
    cost = f"cost {limiter.rest_cost(call.method):g}" if call.private else "public"
    outcome = "ok" if error is None else f"{type(error).__name__}: {error}"
    request_log.info("%s %s %.0f ms %s", call.method, cost, elapsed * 1000, outcome)

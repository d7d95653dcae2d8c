"""The door every request passes before a method runs: parameters, the public token buckets,
and for private calls the key, signature, nonce, lockouts and the REST counter.

Kraken's rules, in the order Kraken applies them: a locked-out key is refused before anything
is read; the signature is checked over the exact body bytes before the nonce is looked at;
``lockout_after`` failures in a row lock the key out for ``lockout_seconds``; the REST counter
charges every private call but :data:`REST_EXEMPT` (history calls cost more).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from oms.auth import sign
from oms.sandbox.accounts import Account
from oms.sandbox.config import SandboxConfig
from oms.sandbox.protocol import ApiError, Params, json_loads, parse_form
from oms.sandbox.ratelimit import TokenBucket

if TYPE_CHECKING:
    from oms.sandbox.engine import SandboxRequest

__all__ = ["REST_EXEMPT", "Gate", "parse_params"]

# ASCII digits ([0-9]; \d would take other scripts' digits too), matched whole.
_NONCE = re.compile(r"[0-9]{1,20}")
_HISTORY = frozenset({"ClosedOrders", "TradesHistory", "Ledgers", "QueryLedgers"})
#: Calls the REST counter does not count (the trading engine's limiter does). Kraken's
#: rate-limit guide names AddOrder and CancelOrder; their batch forms are the same
#: transactions on the trading counter (and CCXT weighs them 0 too). No source exempts
#: AmendOrder, so it counts +1 here, as EditOrder does; the client paces the same set
#: (:data:`oms.ratelimit.REST_EXEMPT`, kept equal by a test).
REST_EXEMPT = frozenset({"AddOrder", "AddOrderBatch", "CancelOrder", "CancelOrderBatch"})


def parse_params(request: SandboxRequest) -> Params:
    """The request's parameters: the query string for a GET, else the form or JSON body."""
    content_type = request.headers.get("content-type", "").lower()
    if request.method.upper() == "GET" or not request.body:
        data: dict[str, object] = parse_form(request.query) if request.query else {}
        if request.body and not content_type.startswith("application/json"):
            data.update(parse_form(request.body.decode("utf-8", "replace")))
        return Params(data)
    if content_type.startswith("application/json"):
        try:
            loaded = json_loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise ApiError("EGeneral:Invalid arguments") from None
        if not isinstance(loaded, dict):
            raise ApiError("EGeneral:Invalid arguments")
        return Params(loaded, is_json=True)
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError("EGeneral:Invalid arguments") from None
    return Params(parse_form(text))


def _signature_ok(acct: Account, request: SandboxRequest, nonce: str, given: str) -> bool:
    try:
        provided = base64.b64decode(given, validate=True)
    except (binascii.Error, ValueError):
        return False
    if not provided:
        return False
    paths = [request.path]
    if request.query:
        # Kraken's Go SDK signs the request URI, query string included.
        paths.append(f"{request.path}?{request.query}")
    for path in paths:
        expected = base64.b64decode(sign(acct.config.secret, path, nonce, request.body))
        if hmac.compare_digest(expected, provided):
            return True
    return False


class Gate:
    """Admission of requests. ``accounts`` is the exchange's own dict (accounts opened later
    are seen); ``config`` returns the exchange's current settings."""

    def __init__(
        self, *, accounts: Mapping[str, Account], config: Callable[[], SandboxConfig]
    ) -> None:
        self.accounts = accounts
        self.config = config
        self._auth_failures: dict[str, int] = {}
        self._lockouts: dict[str, float] = {}
        self._public: dict[str, TokenBucket] = {}

    def admit_public(self, client: str, now: float) -> None:
        """Take a token from the caller's bucket, or ``EGeneral:Too many requests``."""
        config = self.config()
        if not config.public_rate_limit:
            return
        bucket = self._public.get(client)
        if bucket is None:
            bucket = self._public[client] = TokenBucket(
                config.public_burst, config.public_rate, now
            )
        if not bucket.take(now):
            raise ApiError("EGeneral:Too many requests")

    def admit_private(
        self, request: SandboxRequest, method: str, now: float
    ) -> tuple[Account, Params]:
        """The authenticated account and the request's parameters, the REST counter charged."""
        key = request.headers.get("api-key", "")
        until = self._lockouts.get(key)
        if until is not None:
            if now < until:
                raise ApiError("EGeneral:Temporary lockout")
            del self._lockouts[key]
        params = parse_params(request)
        acct = self._authenticate(request, key, params, now)
        self._charge_rest(acct, method, now)
        return acct, params

    def _charge_rest(self, acct: Account, method: str, now: float) -> None:
        config = self.config()
        if not config.rest_rate_limit or method in REST_EXEMPT:
            return
        cost = config.history_cost if method in _HISTORY else 1
        limits = acct.limits
        if acct.rest.would_exceed(now, limits.rest_decay, cost, limits.rest_max):
            # Calls made while limited keep the counter up ("for a few seconds, or longer
            # if calls continue"), capped so that it always drains.
            level = acct.rest.level(now, limits.rest_decay)
            acct.rest.value = min(level + cost, 2 * limits.rest_max)
            acct.rest.at = now
            raise ApiError("EAPI:Rate limit exceeded")
        acct.rest.add(now, limits.rest_decay, cost)

    def _failed(self, key: str, code: str, now: float) -> ApiError:
        config = self.config()
        if config.lockout_after:
            count = self._auth_failures.get(key, 0) + 1
            self._auth_failures[key] = count
            if count >= config.lockout_after:
                self._auth_failures.pop(key, None)
                self._lockouts[key] = now + config.lockout_seconds
        return ApiError(code)

    def _authenticate(
        self, request: SandboxRequest, key: str, params: Params, now: float
    ) -> Account:
        acct = self.accounts.get(key) if key else None
        if acct is None:
            raise self._failed(key, "EAPI:Invalid key", now)
        raw_nonce = params.raw("nonce")
        nonce_text = "" if raw_nonce is None else str(raw_nonce)
        given = request.headers.get("api-sign", "")
        if not _signature_ok(acct, request, nonce_text, given):
            raise self._failed(key, "EAPI:Invalid signature", now)
        if not self._nonce_ok(acct, raw_nonce, nonce_text):
            raise self._failed(key, "EAPI:Invalid nonce", now)
        acct.last_nonce = max(acct.last_nonce, int(nonce_text))
        self._auth_failures.pop(key, None)
        return acct

    def _nonce_ok(self, acct: Account, raw: object, text: str) -> bool:
        """An unsigned 64-bit integer above the key's last (or inside its nonce window)."""
        if isinstance(raw, bool) or not _NONCE.fullmatch(text):
            return False
        nonce = int(text)
        if nonce >= 2**64 or nonce == 0:
            return False
        window = acct.config.nonce_window
        if window is None:
            window = self.config().nonce_window
        return nonce > acct.last_nonce or bool(window and nonce > acct.last_nonce - window)

"""One exception tree for everything `oms` raises.

Every error says two things a trading program must know before it decides what to do next:

- ``outcome_known``: is it certain what happened on the exchange?  ``False`` means an order
  may or may not exist; only reconciliation (see :class:`oms.OrderManager`) can tell.
- ``retry_safe``: can the very same call be made again without risking a duplicate?

::

    OmsError                        every error oms raises (outcome_known, retry_safe)
    ├── ValidationError             bad input, found before any byte was sent (a ValueError)
    │   └── DatabaseBindingError    an order database used with another exchange or account
    ├── ResponseShapeError          an answer that does not have the documented shape
    ├── OutcomeUnknownError         could not decide whether an order exists
    │   └── PlacementNotRecorded    Kraken placed it; the cache could not record it
    ├── OrderNotPlaced              every attempt proven absent; the manager gave up
    ├── DryRunPlacedOrder           a validate=True dry run became a real order
    ├── AllocatorExhausted          a userref allocator has no value left to hand out
    ├── CacheError                  an oms SQLite file failed (read-only, corrupt, disk full)
    │   └── CacheBusy               another process held its write lock past the busy timeout
    ├── NonceLockTimeout            another process held the key's nonce lock too long
    ├── ServerTimeUnavailable       Kraken's time unknown before a placement: nothing sent
    ├── PairRulesUnavailable        an order's pair rules could not be learned: nothing sent
    ├── PlotUnavailable             matplotlib is not installed (the ``plot`` extra)
    ├── TransportError              the request did not complete as HTTP 200 + JSON
    │   ├── ConnectError            never reached the server
    │   ├── TLSError                refused during the TLS handshake (never reached)
    │   ├── RequestTimeout          sent, no answer in time (may have reached)
    │   ├── ConnectionLost          sent, connection dropped (may have reached)
    │   ├── HTTPStatusError         non-200 status, e.g. a Cloudflare 403/502/520 page
    │   └── InvalidResponse         200 but not JSON
    └── KrakenError                 an ``E...`` string in Kraken's ``error`` array
        ├── UnknownKrakenError      a string not in the table: still raised, never returned
        ├── InvalidArguments
        ├── UnknownMethod
        ├── PermissionDenied
        ├── AccountError
        ├── AuthError
        │   ├── InvalidKey
        │   ├── InvalidSignature
        │   ├── InvalidNonce
        │   ├── TemporaryLockout
        │   └── AccountDisabled
        ├── RateLimitError
        │   ├── APIRateLimitExceeded
        │   ├── OrderRateLimitExceeded
        │   ├── TooManyRequests
        │   └── Throttled
        ├── ServiceError
        │   ├── ServiceUnavailable
        │   ├── ServiceBusy
        │   ├── DeadlineElapsed
        │   ├── InternalError
        │   └── MarketRestricted
        │       ├── MarketCancelOnly
        │       └── MarketPostOnly
        ├── OrderError
        │   ├── InsufficientFunds
        │   ├── OrderMinimumNotMet
        │   ├── CostMinimumNotMet
        │   ├── TickSizeCheckFailed
        │   ├── OrdersLimitExceeded
        │   ├── DuplicateClOrdId
        │   ├── UnknownOrder
        │   │   └── InvalidOrder    an order that existed and is closed now
        │   ├── InvalidPrice
        │   └── PostOnlyOrder
        ├── QueryError
        │   ├── UnknownAssetPair
        │   └── UnknownAsset
        └── FundingError
            ├── UnknownWithdrawKey
            ├── InvalidAmount
            ├── MaxFeeExceeded
            └── UnknownReferenceId

Every ``OmsError`` subclass belongs in this module and in this tree (``tests/test_errors.py``
checks the tree against the classes).

Kraken's strings map to classes through one table, :data:`ERROR_TABLE`, matched by longest
prefix because Kraken appends detail (``EGeneral:Invalid arguments:volume``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "ERROR_TABLE",
    "APIRateLimitExceeded",
    "AccountDisabled",
    "AccountError",
    "AllocatorExhausted",
    "AuthError",
    "CacheBusy",
    "CacheError",
    "ConnectError",
    "ConnectionLost",
    "CostMinimumNotMet",
    "DatabaseBindingError",
    "DeadlineElapsed",
    "DryRunPlacedOrder",
    "DuplicateClOrdId",
    "FundingError",
    "HTTPStatusError",
    "InsufficientFunds",
    "InternalError",
    "InvalidAmount",
    "InvalidArguments",
    "InvalidKey",
    "InvalidNonce",
    "InvalidOrder",
    "InvalidPrice",
    "InvalidResponse",
    "InvalidSignature",
    "KrakenError",
    "MarketCancelOnly",
    "MarketPostOnly",
    "MarketRestricted",
    "MaxFeeExceeded",
    "NonceLockTimeout",
    "OmsError",
    "OrderError",
    "OrderMinimumNotMet",
    "OrderNotPlaced",
    "OrderRateLimitExceeded",
    "OrdersLimitExceeded",
    "OutcomeUnknownError",
    "PairRulesUnavailable",
    "PermissionDenied",
    "PlacementNotRecorded",
    "PlotUnavailable",
    "PostOnlyOrder",
    "QueryError",
    "RateLimitError",
    "RequestTimeout",
    "ResponseShapeError",
    "ServerTimeUnavailable",
    "ServiceBusy",
    "ServiceError",
    "ServiceUnavailable",
    "TLSError",
    "TemporaryLockout",
    "Throttled",
    "TickSizeCheckFailed",
    "TooManyRequests",
    "TransportError",
    "UnknownAsset",
    "UnknownAssetPair",
    "UnknownKrakenError",
    "UnknownMethod",
    "UnknownOrder",
    "UnknownReferenceId",
    "UnknownWithdrawKey",
    "ValidationError",
    "kraken_error",
    "raise_for_errors",
]


class OmsError(Exception):
    """Base of every error `oms` raises."""

    #: Whether it is certain what happened on the exchange.
    outcome_known: bool = True
    #: Whether repeating the same call cannot create a duplicate.
    retry_safe: bool = False


# --- local errors -------------------------------------------------------------------------


class ValidationError(OmsError, ValueError):
    """Bad input, found before any byte went on the wire (so nothing happened)."""

    outcome_known = True
    retry_safe = False

    def __init__(self, message: str, *, field: str | None = None, rule: str | None = None):
        super().__init__(message)
        #: The argument at fault, e.g. ``"price"``.
        self.field = field
        #: The rule it breaks, e.g. ``"pair_decimals"``, ``"userref-range"``.
        self.rule = rule


class NonceLockTimeout(OmsError):
    """Another process held the API key's nonce lock too long; nothing was sent. The message
    names the holder (its pid) and for how long it has held the lock."""

    outcome_known = True
    retry_safe = True


class ServerTimeUnavailable(OmsError):
    """Kraken's ``Time`` could not be read before an order was sent, so no deadline could be
    set: nothing was sent (the cause is chained)."""

    outcome_known = True
    retry_safe = True


class PairRulesUnavailable(OmsError):
    """An order's pair rules could not be learned, so the order was **not** sent.

    Raised in ``pair_rules="fetch"`` mode when AssetPairs failed in a way that says nothing
    definite about the pair (a timeout, a 5xx, an unexpected answer); ``__cause__`` holds that
    error. Nothing was placed, so sending the order again is safe. A definite answer about
    the pair (``EQuery:Unknown asset pair``) is raised as it is instead.
    """

    outcome_known = True
    retry_safe = True


class DatabaseBindingError(ValidationError):
    """An order database opened for another exchange or account than the one it belongs to.

    Txids and userrefs only mean something on one exchange and account: mixing two (a
    restarted sandbox hands out the same txids again) would rewrite orders and adopt strangers.
    """

    def __init__(self, message: str):
        super().__init__(message, field="db", rule="database-binding")


class ResponseShapeError(OmsError):
    """An answer that does not have the documented shape (e.g. a validate answer with a txid).

    The request did reach Kraken, so for a write its effect is not known.
    """

    outcome_known = False
    retry_safe = False


class OutcomeUnknownError(OmsError):
    """The order manager could not decide whether an order exists on the exchange.

    The intent stays recorded in the cache as ``unknown``; :meth:`oms.OrderManager.recover`
    (run automatically before the next placement) tries again to resolve it.
    """

    outcome_known = False
    retry_safe = False

    def __init__(
        self,
        message: str,
        *,
        intent_id: str | None = None,
        userref: int | None = None,
        cl_ord_id: str | None = None,
    ):
        super().__init__(message)
        self.intent_id = intent_id
        self.userref = userref
        self.cl_ord_id = cl_ord_id


class AllocatorExhausted(OmsError):
    """A userref allocator cannot hand out a value within its range."""


class PlacementNotRecorded(OutcomeUnknownError):
    """Kraken accepted the order (``txid``) but the cache could not record it (the database
    stayed locked, the disk is full, ...).

    The order exists; its intent is left for :meth:`oms.OrderManager.recover` (run before the
    next placement), which adopts it by its userref. Do not place it again.
    """

    def __init__(self, message: str, *, intent_id: str, userref: int, txid: str):
        super().__init__(message, intent_id=intent_id, userref=userref)
        self.txid = txid


class OrderNotPlaced(OmsError):
    """The order is provably not on the exchange, and the manager gave up re-sending it.

    Every attempt ended ambiguously and each lookup after its deadline found nothing, so it
    is certain nothing was placed; sending again (as a new placement) cannot duplicate.
    """

    outcome_known = True
    retry_safe = True

    def __init__(self, message: str, *, intent_id: str, userref: int):
        super().__init__(message)
        self.intent_id = intent_id
        self.userref = userref


class DryRunPlacedOrder(OmsError):
    """A dry run (``validate=True``) became a real order: the exchange ignored ``validate``.

    The order was found by its userref after the deadline and is tracked in the cache (its
    intent is ``placed``); nothing was sent again. Cancel it if it is not wanted.
    """

    outcome_known = True
    retry_safe = False

    def __init__(self, message: str, *, intent_id: str, userref: int, txid: str):
        super().__init__(message)
        self.intent_id = intent_id
        self.userref = userref
        self.txid = txid


class PlotUnavailable(OmsError):
    """matplotlib is not installed (``pip install 'oms[plot]'``); nothing was drawn."""


class CacheError(OmsError):
    """An oms SQLite file (the order cache, an account's state, a history database) could not
    be read or written: read-only, corrupt, on a full disk. SQLite's own exception is chained
    as ``__cause__``; ``path`` names the file.

    What the exchange did is not this error's business: a placement that fails to write its
    intent sends nothing, and one that fails to record an answer says so itself.
    """

    outcome_known = True
    retry_safe = False

    def __init__(self, message: str, *, path: str | None = None):
        super().__init__(message)
        #: The file that failed.
        self.path = path


class CacheBusy(CacheError):
    """Another process held the file's write lock for longer than the busy timeout; the
    write did not happen, and trying again later is safe."""

    retry_safe = True


# --- transport errors ---------------------------------------------------------------------


class TransportError(OmsError):
    """The request did not complete with an HTTP 200 JSON answer."""

    #: Whether the request may have reached Kraken (and so may have taken effect).
    may_have_reached: bool = True

    # Derived from may_have_reached so the two can never disagree.
    @property
    def outcome_known(self) -> bool:  # type: ignore[override]
        return not self.may_have_reached

    @property
    def retry_safe(self) -> bool:  # type: ignore[override]
        return not self.may_have_reached


class ConnectError(TransportError):
    """No connection could be made: nothing reached the server."""

    may_have_reached = False


class TLSError(TransportError):
    """The TLS handshake failed (or the server offered less than TLS 1.2): nothing was sent."""

    may_have_reached = False


class RequestTimeout(TransportError):
    """The request was sent but no answer came in time; it may have taken effect."""


class ConnectionLost(TransportError):
    """The connection broke after the request was sent; it may have taken effect."""


class HTTPStatusError(TransportError):
    """A non-200 answer: usually Cloudflare in front of Kraken (403, 5xx, 52x HTML pages)."""

    def __init__(self, message: str, *, status_code: int, cloudflare: bool = False):
        super().__init__(message)
        self.status_code = status_code
        self.cloudflare = cloudflare


class InvalidResponse(TransportError):
    """HTTP 200 whose body is not a JSON envelope; it may have taken effect."""


# --- Kraken errors ------------------------------------------------------------------------


class KrakenError(OmsError):
    """An error string from Kraken's ``error`` array."""

    # Kraken answered, so the request reached it; most errors are definite rejections.
    outcome_known = True
    retry_safe = False
    #: Explanation added to the message, for errors whose fix is not obvious from the string.
    hint: str = ""

    def __init__(self, code: str, errors: Sequence[str] = ()):
        self.code = code
        self.errors: tuple[str, ...] = tuple(errors) or (code,)
        message = code if not self.hint else f"{code}: {self.hint}"
        super().__init__(message)


class UnknownKrakenError(KrakenError):
    """A Kraken error string not in :data:`ERROR_TABLE`; still an error, never data."""

    outcome_known = False


class InvalidArguments(KrakenError):
    """Kraken found the request malformed; the suffix names the parameter."""


class UnknownMethod(KrakenError):
    """The endpoint name is not known to Kraken."""


class PermissionDenied(KrakenError):
    """The API key lacks the permission for this call."""

    hint = "the API key lacks the permission this endpoint needs (see the key's settings)"


class AccountError(KrakenError):
    """The account is restricted (region, permissions, lock)."""


class AuthError(KrakenError):
    """Authentication failed: key, signature or nonce."""


class InvalidKey(AuthError):
    hint = "the API-Key header is not a valid key (KRAKEN_API_KEY: the public key, not the secret)"


class InvalidSignature(AuthError):
    hint = (
        "the API-Sign does not match: check the secret (base64, as shown by Kraken) and that "
        "the signed body is byte-identical to the body sent; `oms sign --example` checks the "
        "algorithm"
    )


class InvalidNonce(AuthError):
    # The nonce was rejected before the request was processed: a retry with a new nonce is safe.
    retry_safe = True
    hint = (
        "the nonce was not larger than the last one Kraken saw for this key. Likely causes: "
        "another program (or another library) uses the same API key; this key once received a "
        "larger-scale nonce (e.g. nanoseconds) and a smaller-scale one (milliseconds) is now "
        "being sent, which Kraken rejects forever; or requests overtook each other on the "
        "network. oms shares one nanosecond nonce source per key across threads and processes "
        "on this machine; use one key per program elsewhere, or set a nonce window on the key "
        "in Kraken's API settings (it tolerates reordering, at the cost of replay protection)"
    )


class TemporaryLockout(AuthError):
    hint = (
        "too many failed calls (invalid key/signature/nonce); Kraken locks the key for ~15 minutes"
    )


class AccountDisabled(AuthError):
    pass


class RateLimitError(KrakenError):
    """A rate limit was exceeded; nothing was done, so a later retry is safe."""

    retry_safe = True


class APIRateLimitExceeded(RateLimitError):
    hint = "the REST call counter for this key is over its maximum; wait for it to decay"


class OrderRateLimitExceeded(RateLimitError):
    hint = (
        "the per-pair trading counter is over the tier's threshold; cancelling orders younger "
        "than 5 s costs the most"
    )


class TooManyRequests(RateLimitError):
    hint = "the public endpoint throttle; slow down to about one call per second"


class Throttled(RateLimitError):
    """``EService:Throttled: <unix ts>``: too many concurrent requests; retry after ``retry_at``."""

    def __init__(self, code: str, errors: Sequence[str] = ()):
        super().__init__(code, errors)
        match = re.search(r"Throttled:\s*(\d+(?:\.\d+)?)", code)
        #: Unix time after which a retry is welcome (``None`` if Kraken gave none).
        self.retry_at: float | None = float(match.group(1)) if match else None


class ServiceError(KrakenError):
    """The exchange could not handle the request."""


class ServiceUnavailable(ServiceError):
    # Kraken's own docs: the engine may be offline, but an order can still have been taken.
    outcome_known = False


class ServiceBusy(ServiceError):
    outcome_known = False


class DeadlineElapsed(ServiceError):
    # The engine refuses to act after the deadline, but the answer may race the commit.
    outcome_known = False


class InternalError(ServiceError):
    outcome_known = False


class MarketRestricted(ServiceError):
    """The market accepts only some requests now (cancel_only, post_only, limit_only, ...)."""


class MarketCancelOnly(MarketRestricted):
    hint = "the market is in cancel-only mode: no new orders (see SystemStatus / AssetPairs)"


class MarketPostOnly(MarketRestricted):
    hint = "the market is in post-only mode: only post-only limit orders are accepted"


class OrderError(KrakenError):
    """The order was rejected; nothing was placed."""


class InsufficientFunds(OrderError):
    pass


class OrderMinimumNotMet(OrderError):
    hint = "the volume is below the pair's ordermin (AssetPairs)"


class CostMinimumNotMet(OrderError):
    hint = "price x volume is below the pair's costmin (AssetPairs)"


class TickSizeCheckFailed(OrderError):
    hint = "the price is not a multiple of the pair's tick_size (AssetPairs)"


class OrdersLimitExceeded(OrderError):
    hint = "too many open orders on this pair for the account's tier"


class DuplicateClOrdId(OrderError):
    """Another open order already carries this cl_ord_id (unique among open orders)."""


class UnknownOrder(OrderError):
    """No open order has that txid/userref/cl_ord_id (it may have closed already).

    Catch this class to mean "gone": :class:`InvalidOrder`, Kraken's other answer for the
    same situation, is a subclass.
    """


class InvalidOrder(UnknownOrder):
    """``EOrder:Invalid order``: Kraken's other answer for an id that names no open order.

    Kraken's official SDK documents it for cancelling an order already cancelled or filled
    (krakenfx/kraken-api-sdk, rust/docs/guides/error-handling.md, "Invalid order"), and the
    same string for ids that were never valid; CCXT and hummingbot see ``EOrder:Unknown
    order`` for a closed order. Both mean the order is not open, so this is an
    :class:`UnknownOrder` wherever an order is cancelled or checked.
    """


class InvalidPrice(OrderError):
    pass


class PostOnlyOrder(OrderError):
    hint = "the post-only order would have taken liquidity, so it was rejected"


class QueryError(KrakenError):
    """A query named something Kraken does not know."""


class UnknownAssetPair(QueryError):
    pass


class UnknownAsset(QueryError):
    pass


class FundingError(KrakenError):
    """A deposit/withdrawal request was refused."""


class UnknownWithdrawKey(FundingError):
    hint = "no withdrawal address with that key name exists on the account"


class InvalidAmount(FundingError):
    pass


class MaxFeeExceeded(FundingError):
    pass


class UnknownReferenceId(FundingError):
    pass


#: Kraken error strings (prefixes) → classes. The longest matching prefix wins.
ERROR_TABLE: dict[str, type[KrakenError]] = {
    "EGeneral:Invalid arguments": InvalidArguments,
    "EGeneral:Unknown method": UnknownMethod,
    "EGeneral:Permission denied": PermissionDenied,
    "EGeneral:Temporary lockout": TemporaryLockout,
    "EGeneral:Internal error": InternalError,
    "EGeneral:Too many requests": TooManyRequests,
    "EAPI:Invalid key": InvalidKey,
    "EAPI:Invalid signature": InvalidSignature,
    "EAPI:Invalid nonce": InvalidNonce,
    "EAPI:Rate limit exceeded": APIRateLimitExceeded,
    "EAPI:Bad request": InvalidArguments,
    "EAuth:Account temporary disabled": AccountDisabled,
    "EAuth:Account unconfirmed": AccountDisabled,
    "EAuth:Rate limit exceeded": APIRateLimitExceeded,
    "EAuth:Too many requests": TooManyRequests,
    "EAuth:Failed": AuthError,
    "ESession:Invalid session": AuthError,
    "EAccount:Invalid permissions": AccountError,
    "ETrade:User Locked": AccountError,
    "ETrade:Invalid request": InvalidArguments,
    "EBM:limit exceeded:CAL": AccountError,
    "EService:Unavailable": ServiceUnavailable,
    "EService:Busy": ServiceBusy,
    "EService:Market in cancel_only mode": MarketCancelOnly,
    "EService:Market in post_only mode": MarketPostOnly,
    "EService:Market in": MarketRestricted,
    "EService:Deadline elapsed": DeadlineElapsed,
    "EService:Throttled": Throttled,
    "EService: Throttled": Throttled,
    "EDatabase:Internal error": InternalError,
    "EOrder:Insufficient funds": InsufficientFunds,
    "EOrder:Insufficient margin": InsufficientFunds,
    "EOrder:Order minimum not met": OrderMinimumNotMet,
    "EOrder:Cost minimum not met": CostMinimumNotMet,
    "EOrder:Tick size check failed": TickSizeCheckFailed,
    "EOrder:Orders limit exceeded": OrdersLimitExceeded,
    "EOrder:Positions limit exceeded": OrdersLimitExceeded,
    "EOrder:Scheduled orders limit exceeded": OrdersLimitExceeded,
    "EOrder:Rate limit exceeded": OrderRateLimitExceeded,
    "EOrder:Domain rate limit exceeded": OrderRateLimitExceeded,
    "EOrder:Unknown order": UnknownOrder,
    # Kraken documents no string for a duplicate open cl_ord_id; this is the sandbox's choice.
    "EOrder:Duplicate cl_ord_id": DuplicateClOrdId,
    "EOrder:Invalid order": InvalidOrder,
    "EOrder:Invalid price": InvalidPrice,
    "EOrder:Post only order": PostOnlyOrder,
    "EOrder:Cannot open opposing position": OrderError,
    "EOrder:Cannot open position": OrderError,
    "EOrder:Margin allowance exceeded": OrderError,
    "EOrder:Margin level too low": OrderError,
    "EOrder:Margin position size exceeded": OrderError,
    "EOrder:Reduce only": OrderError,
    "EOrder:Unknown position": OrderError,
    "EOrder:Cancel pending": OrderError,
    "EOrder:": OrderError,
    "EQuery:Unknown asset pair": UnknownAssetPair,
    "EQuery:Invalid asset pair": UnknownAssetPair,
    "EQuery:Unknown asset": UnknownAsset,
    "EQuery:": QueryError,
    "EFunding:Unknown withdraw key": UnknownWithdrawKey,
    "EFunding:Invalid amount": InvalidAmount,
    "EFunding:Max fee exceeded": MaxFeeExceeded,
    "EFunding:Invalid reference id": UnknownReferenceId,
    "EFunding:Unknown reference id": UnknownReferenceId,
    "EFunding:": FundingError,
}

_PREFIXES = sorted(ERROR_TABLE, key=len, reverse=True)


def kraken_error(code: str, errors: Sequence[str] = ()) -> KrakenError:
    """The exception for one Kraken error string (longest table prefix; unknown → generic)."""
    for prefix in _PREFIXES:
        if code.startswith(prefix):
            return ERROR_TABLE[prefix](code, errors)
    return UnknownKrakenError(code, errors)


def raise_for_errors(errors: Sequence[str]) -> list[str]:
    """Raise for the first ``E...`` string; return the ``W...`` warnings (success with warnings)."""
    failures = [e for e in errors if not e.startswith("W")]
    if failures:
        raise kraken_error(failures[0], list(errors))
    return list(errors)

"""When a failed Kraken call may be sent again, and how long to wait first (pure).

The rule that matters most: a call that *acts* (AddOrder, AddOrderBatch, AmendOrder,
Withdraw, any method not known to be harmless) is repeated only when the error proves Kraken
did not act on it. After a timeout, a dropped connection or a 5xx the order may exist, and
only reconciliation (:class:`oms.OrderManager`) can tell; repeating would risk a duplicate.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import attrs

from oms.errors import (
    ConnectError,
    HTTPStatusError,
    InternalError,
    InvalidNonce,
    RateLimitError,
    ServiceBusy,
    ServiceUnavailable,
    Throttled,
    TLSError,
    TransportError,
    ValidationError,
)

__all__ = [
    "CANCEL_METHODS",
    "NO_RETRY",
    "READ_METHODS",
    "CallKind",
    "RetryPolicy",
    "call_kind",
    "should_retry",
]

#: Private methods that only read: repeating one changes nothing.
READ_METHODS = frozenset(
    {
        "Balance",
        "BalanceEx",
        "TradeBalance",
        "OpenOrders",
        "ClosedOrders",
        "QueryOrders",
        "OrderAmends",
        "TradesHistory",
        "QueryTrades",
        "OpenPositions",
        "Ledgers",
        "QueryLedgers",
        "TradeVolume",
        "DepositMethods",
        "DepositStatus",
        "WithdrawMethods",
        "WithdrawAddresses",
        "WithdrawInfo",
        "WithdrawStatus",
        "GetWebSocketsToken",
        "ExportStatus",
    }
)
#: Cancels: repeating one after it took effect finds nothing left to cancel
#: (``EOrder:Unknown order``, or a count of 0), which the caller can read as "done".
#: Not ``WithdrawCancel``: its repeat answers ``false`` ("already asked"), the same answer as
#: "too late to cancel", so a lost first answer must reach the caller as the ambiguity it is.
CANCEL_METHODS = frozenset({"CancelOrder", "CancelOrderBatch", "CancelAll", "CancelAllOrdersAfter"})


class CallKind(str, enum.Enum):
    """How safe it is to repeat a call whose outcome is unknown."""

    READ = "read"  # public endpoints and private queries
    CANCEL = "cancel"  # idempotent enough: a repeat finds nothing left to cancel
    WRITE = "write"  # places, amends, moves money: never repeated once it may have arrived


def call_kind(method: str, *, private: bool) -> CallKind:
    if not private or method in READ_METHODS:
        return CallKind.READ
    if method in CANCEL_METHODS:
        return CallKind.CANCEL
    # Unknown private methods are assumed to act: repeating an unknown effect is the risk.
    return CallKind.WRITE


def should_retry(kind: CallKind, error: Exception) -> bool:
    """Whether a call of ``kind`` that failed with ``error`` may be sent again.

    A write is repeated only when nothing reached Kraken (``ConnectError``, ``TLSError``) or
    Kraken refused it before processing (``InvalidNonce``). Reads and cancels are also repeated
    after transport failures, 5xx answers, rate limits and
    ``EService:Unavailable``/``Busy``/``EGeneral:Internal error``.
    """
    if isinstance(error, (InvalidNonce, ConnectError, TLSError)):
        return True
    if kind is CallKind.WRITE:
        return False
    if isinstance(error, HTTPStatusError):
        # 4xx (a Cloudflare 403 in particular) will not change by repeating the same request.
        return error.status_code >= 500 or error.status_code == 429
    if isinstance(error, TransportError):
        return True
    return isinstance(error, (RateLimitError, ServiceUnavailable, ServiceBusy, InternalError))


def _check_attempts(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(
            "max_attempts must be a positive int", field=attribute.name, rule="positive"
        )


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How often and how patiently to repeat a call that :func:`should_retry` allows.

    The delay before attempt ``n + 1`` is drawn from ``[d/2, d]`` with
    ``d = min(max_delay, base_delay * 2**(n-1))`` ("equal jitter": never an immediate retry,
    and clients failing together spread out). ``Throttled`` waits until its ``retry_at``
    unless that is more than ``max_throttle_wait`` away. ``InvalidNonce`` is repeated at most
    ``nonce_retries`` times, at once: a fresh nonce cures requests that overtook each other,
    but a persistent cause (another program on the key) would only earn a lockout.
    """

    max_attempts: int = attrs.field(default=4, validator=_check_attempts)
    base_delay: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))
    max_delay: float = attrs.field(default=8.0, validator=attrs.validators.ge(0))
    max_throttle_wait: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))
    nonce_retries: int = attrs.field(default=1, validator=attrs.validators.ge(0))

    @classmethod
    def none(cls) -> RetryPolicy:
        """One attempt, no retries: for a caller that owns the retrying (:data:`NO_RETRY`)."""
        return NO_RETRY

    def backoff(self, attempt: int, random: Callable[[], float]) -> float:
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** max(0, attempt - 1))
        return ceiling / 2 + random() * ceiling / 2

    def allows(
        self, kind: CallKind, error: Exception, *, attempt: int, nonce_failures: int
    ) -> bool:
        """Whether attempt number ``attempt``, which failed with ``error``, may be followed
        by another (``nonce_failures`` counts the InvalidNonce answers so far)."""
        if attempt >= self.max_attempts or not should_retry(kind, error):
            return False
        return not (isinstance(error, InvalidNonce) and nonce_failures > self.nonce_retries)

    def delay(
        self, error: Exception, attempt: int, *, now: float, random: Callable[[], float]
    ) -> float | None:
        """Seconds to wait before the next attempt; ``None`` to give up instead."""
        if isinstance(error, Throttled) and error.retry_at is not None:
            wait = error.retry_at - now
            if wait > self.max_throttle_wait:
                return None
            return max(0.0, wait) + random() * self.base_delay
        if isinstance(error, InvalidNonce):
            # A fresh nonce is all it takes; no point in waiting.
            return 0.0
        return self.backoff(attempt, random)


#: One attempt only; for callers that do their own retrying (and ``oms call --no-retry``).
NO_RETRY = RetryPolicy(max_attempts=1)

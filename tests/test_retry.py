"""A call is repeated only when repeating cannot duplicate its effect, after a capped,
jittered wait; a write is repeated only when Kraken provably did not act on it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms.errors import (
    APIRateLimitExceeded,
    ConnectError,
    ConnectionLost,
    HTTPStatusError,
    InsufficientFunds,
    InternalError,
    InvalidArguments,
    InvalidNonce,
    InvalidResponse,
    RequestTimeout,
    ServiceUnavailable,
    Throttled,
    TLSError,
    ValidationError,
)
from oms.retry import CallKind, RetryPolicy, call_kind, should_retry


@pytest.mark.parametrize(
    ("method", "private", "kind"),
    [
        ("Time", False, CallKind.READ),
        ("Balance", True, CallKind.READ),
        ("QueryOrders", True, CallKind.READ),
        ("CancelOrder", True, CallKind.CANCEL),
        ("CancelAll", True, CallKind.CANCEL),
        ("AddOrder", True, CallKind.WRITE),
        ("AddOrderBatch", True, CallKind.WRITE),
        ("AmendOrder", True, CallKind.WRITE),
        ("Withdraw", True, CallKind.WRITE),
        # A repeated WithdrawCancel answers false, which cannot be told from "too late".
        ("WithdrawCancel", True, CallKind.WRITE),
        ("SomethingNew", True, CallKind.WRITE),
    ],
)
def test_call_kinds(method: str, private: bool, kind: CallKind) -> None:
    assert call_kind(method, private=private) is kind


@given(
    st.integers(min_value=1, max_value=50),
    st.floats(min_value=0, max_value=1, exclude_max=True),
    st.floats(min_value=0.01, max_value=5),
    st.floats(min_value=0.01, max_value=60),
)
def test_backoff_bounds(attempt: int, draw: float, base: float, cap: float) -> None:
    policy = RetryPolicy(base_delay=base, max_delay=cap)
    delay = policy.backoff(attempt, lambda: draw)
    ceiling = min(cap, base * 2 ** (attempt - 1))
    assert ceiling / 2 <= delay <= ceiling


def _http(status: int) -> HTTPStatusError:
    return HTTPStatusError("x", status_code=status)


R, C, W = CallKind.READ, CallKind.CANCEL, CallKind.WRITE


@pytest.mark.parametrize(
    ("error", "read", "cancel", "write"),
    [
        (ConnectError("x"), True, True, True),
        (TLSError("x"), True, True, True),
        (InvalidNonce("EAPI:Invalid nonce"), True, True, True),
        (RequestTimeout("x"), True, True, False),
        (ConnectionLost("x"), True, True, False),
        (InvalidResponse("x"), True, True, False),
        (_http(502), True, True, False),
        (_http(520), True, True, False),
        (_http(429), True, True, False),
        (_http(403), False, False, False),
        (APIRateLimitExceeded("EAPI:Rate limit exceeded"), True, True, False),
        (Throttled("EService:Throttled: 1"), True, True, False),
        (ServiceUnavailable("EService:Unavailable"), True, True, False),
        (InternalError("EGeneral:Internal error"), True, True, False),
        (InvalidArguments("EGeneral:Invalid arguments:volume"), False, False, False),
        (InsufficientFunds("EOrder:Insufficient funds"), False, False, False),
    ],
)
def test_retry_table(error: Exception, read: bool, cancel: bool, write: bool) -> None:
    assert [should_retry(k, error) for k in (R, C, W)] == [read, cancel, write]


def test_attempts_and_nonce_retries_are_bounded() -> None:
    policy = RetryPolicy(max_attempts=3, nonce_retries=1)
    timeout, nonce = RequestTimeout("x"), InvalidNonce("EAPI:Invalid nonce")
    assert policy.allows(R, timeout, attempt=2, nonce_failures=0)
    assert not policy.allows(R, timeout, attempt=3, nonce_failures=0)
    assert policy.allows(W, nonce, attempt=1, nonce_failures=1)
    assert not policy.allows(W, nonce, attempt=2, nonce_failures=2)


def test_delays() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=3.0)
    half = 0.5
    assert policy.delay(RequestTimeout("x"), 1, now=0, random=lambda: half) == 0.75
    assert policy.delay(InvalidNonce("EAPI:Invalid nonce"), 1, now=0, random=lambda: half) == 0
    throttled = Throttled("EService:Throttled: 100")
    assert policy.delay(throttled, 1, now=90, random=lambda: half) == 10.5
    assert policy.delay(throttled, 1, now=0, random=lambda: half) is None
    assert policy.delay(Throttled("EService:Throttled"), 1, now=0, random=lambda: 0) == 0.5


@pytest.mark.parametrize("attempts", [0, -1, True, 1.5])
def test_bad_policy_refused(attempts: object) -> None:
    with pytest.raises(ValidationError):
        RetryPolicy(max_attempts=attempts)  # type: ignore[arg-type]

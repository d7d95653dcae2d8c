"""Every Kraken error string maps to one class; every error says if its outcome is known."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms import errors

CASES = [
    ("EAPI:Invalid nonce", errors.InvalidNonce, True, True),
    ("EAPI:Invalid key", errors.InvalidKey, True, False),
    ("EAPI:Invalid signature", errors.InvalidSignature, True, False),
    ("EGeneral:Invalid arguments:volume", errors.InvalidArguments, True, False),
    ("EGeneral:Temporary lockout", errors.TemporaryLockout, True, False),
    ("EGeneral:Internal error:12", errors.InternalError, False, False),
    ("EService:Unavailable", errors.ServiceUnavailable, False, False),
    ("EService:Busy", errors.ServiceBusy, False, False),
    ("EService:Deadline elapsed", errors.DeadlineElapsed, False, False),
    ("EService:Market in cancel_only mode", errors.MarketCancelOnly, True, False),
    ("EAPI:Rate limit exceeded", errors.APIRateLimitExceeded, True, True),
    ("EOrder:Rate limit exceeded", errors.OrderRateLimitExceeded, True, True),
    ("EGeneral:Too many requests", errors.TooManyRequests, True, True),
    ("EOrder:Insufficient funds", errors.InsufficientFunds, True, False),
    ("EOrder:Order minimum not met", errors.OrderMinimumNotMet, True, False),
    ("EOrder:Cost minimum not met", errors.CostMinimumNotMet, True, False),
    ("EOrder:Tick size check failed", errors.TickSizeCheckFailed, True, False),
    ("EOrder:Unknown order", errors.UnknownOrder, True, False),
    ("EOrder:Invalid order", errors.InvalidOrder, True, False),
    ("EOrder:Post only order", errors.PostOnlyOrder, True, False),
    ("EOrder:Invalid price:Invalid price argument", errors.InvalidPrice, True, False),
    ("EOrder:Something new", errors.OrderError, True, False),
    ("EOrder:Duplicate cl_ord_id", errors.DuplicateClOrdId, True, False),
    ("EService:Market in limit_only mode", errors.MarketRestricted, True, False),
    ("EQuery:Unknown asset pair", errors.UnknownAssetPair, True, False),
    ("EQuery:Unknown asset", errors.UnknownAsset, True, False),
    ("EFunding:Max fee exceeded", errors.MaxFeeExceeded, True, False),
    ("EFunding:Unknown withdraw key", errors.UnknownWithdrawKey, True, False),
    ("EBrandNew:Category", errors.UnknownKrakenError, False, False),
]


@pytest.mark.parametrize(("code", "cls", "known", "retry"), CASES)
def test_table(code: str, cls: type[errors.KrakenError], known: bool, retry: bool) -> None:
    exc = errors.kraken_error(code)
    assert type(exc) is cls
    assert isinstance(exc, errors.OmsError)
    assert (exc.outcome_known, exc.retry_safe) == (known, retry)
    assert exc.code == code
    assert code in str(exc)


def test_every_table_entry_resolves_to_itself() -> None:
    for prefix, cls in errors.ERROR_TABLE.items():
        assert isinstance(errors.kraken_error(prefix), cls)


@pytest.mark.parametrize(
    ("code", "retry_at"),
    [
        ("EService:Throttled: 1700000000", 1700000000.0),
        ("EService:Throttled:1700000000", 1700000000.0),
        ("EService: Throttled: 1700000001", 1700000001.0),
        ("EService:Throttled", None),
    ],
)
def test_throttled_carries_retry_time(code: str, retry_at: float | None) -> None:
    exc = errors.kraken_error(code)
    assert isinstance(exc, errors.Throttled)
    assert exc.retry_at == retry_at


def test_invalid_nonce_explains_causes() -> None:
    text = str(errors.kraken_error("EAPI:Invalid nonce")).lower()
    for cause in ("another program", "nanoseconds", "nonce window"):
        assert cause in text


def test_raise_for_errors_returns_warnings_and_raises_errors() -> None:
    assert errors.raise_for_errors([]) == []
    assert errors.raise_for_errors(["WDatabase:No change"]) == ["WDatabase:No change"]
    with pytest.raises(errors.InsufficientFunds) as info:
        errors.raise_for_errors(["WSome:warning", "EOrder:Insufficient funds"])
    assert info.value.errors == ("WSome:warning", "EOrder:Insufficient funds")


@given(st.text(min_size=1).filter(lambda s: not s.startswith("W")))
def test_any_error_string_raises(code: str) -> None:
    with pytest.raises(errors.KrakenError):
        errors.raise_for_errors([code])


@pytest.mark.parametrize(
    ("cls", "reached"),
    [
        (errors.ConnectError, False),
        (errors.TLSError, False),
        (errors.RequestTimeout, True),
        (errors.ConnectionLost, True),
        (errors.InvalidResponse, True),
    ],
)
def test_transport_outcome_follows_reach(cls: type[errors.TransportError], reached: bool) -> None:
    exc = cls("x")
    assert exc.may_have_reached is reached
    assert exc.outcome_known is (not reached)
    assert exc.retry_safe is (not reached)


def test_validation_error_is_value_error() -> None:
    exc = errors.ValidationError("bad", field="price", rule="tick_size")
    assert isinstance(exc, ValueError)
    assert (exc.field, exc.rule) == ("price", "tick_size")


def test_invalid_order_means_gone_like_unknown_order() -> None:
    # krakenfx/kraken-api-sdk error-handling.md: "EOrder:Invalid order" for an id already
    # cancelled or filled; CCXT/hummingbot: "EOrder:Unknown order". One `except` covers both.
    for code in ("EOrder:Invalid order", "EOrder:Unknown order"):
        assert isinstance(errors.kraken_error(code), errors.UnknownOrder)

"""The public surface of `oms` and `oms.sandbox` is exactly what is listed here."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import oms
import oms.sandbox

#: What strategy code uses; plumbing (transport, nonces, rate limits, retries, signing, the
#: cache, the history and funding stores) is imported from its own module.
OMS = {
    "APIRateLimitExceeded", "AccountDisabled", "AccountError", "AddOrderResult",
    "AllocatorExhausted", "AssetPair", "AuthError", "CacheBusy", "CacheError", "CancelResult",
    "ConnectError",
    "ConnectionLost", "CostMinimumNotMet", "CounterAllocator", "Credentials",
    "DatabaseBindingError", "DeadlineElapsed", "DryRunPlacedOrder", "DuplicateClOrdId",
    "FundingError", "FundingStatus", "FundingTransaction", "Group", "GroupCancelResult",
    "HTTPStatusError", "InsufficientFunds", "Intent", "IntentState", "InternalError",
    "InvalidAmount", "InvalidArguments", "InvalidKey", "InvalidNonce", "InvalidOrder",
    "InvalidPrice", "InvalidResponse", "InvalidSignature", "KrakenClient", "KrakenError",
    "MarketCancelOnly", "MarketPostOnly", "MarketRestricted", "MaxFeeExceeded",
    "NonceLockTimeout", "OHLCBar", "OmsError", "Order", "OrderError", "OrderManager",
    "OrderMinimumNotMet", "OrderNotPlaced", "OrderRateLimitExceeded", "OrderRequest",
    "OrderStatus", "OrderType", "OrdersLimitExceeded", "OutcomeUnknownError",
    "PairRulesUnavailable", "PermissionDenied", "Placement", "PlacementNotRecorded",
    "PlotUnavailable", "PostOnlyOrder", "PublicTrade", "QueryError", "RandomAllocator",
    "RateLimitError", "RecoveryReport", "RequestTimeout", "ResponseShapeError",
    "ServerTimeUnavailable", "ServiceBusy", "ServiceError", "ServiceUnavailable", "Side",
    "StatusProp", "SyncResult", "TLSError", "TemporaryLockout", "Throttled",
    "TickSizeCheckFailed", "TimeInForce", "TimestampAllocator", "TooManyRequests", "TradesPage",
    "TransportError", "UnknownAsset", "UnknownAssetPair", "UnknownKrakenError", "UnknownMethod",
    "UnknownOrder", "UnknownReferenceId", "UnknownWithdrawKey", "UserrefAllocator",
    "ValidationError", "__version__", "min_volume", "price_step", "round_price",
    "round_to_step", "round_volume", "sub_range", "volume_step",
}  # fmt: skip

SANDBOX = {
    "DEFAULT_BALANCES", "DEFAULT_PAIRS", "IN_PROCESS_URL", "AccountConfig", "Clock", "Exchange",
    "Fault", "FaultKind", "FaultRule", "Faults", "ManualClock", "Market", "MarketTrade",
    "PairSpec", "Sandbox", "SandboxAdapter", "SandboxConfig", "SandboxRequest",
    "SandboxResponse", "SandboxServer", "SystemClock", "admin_request",
}  # fmt: skip


@pytest.mark.parametrize(("module", "expected"), [(oms, OMS), (oms.sandbox, SANDBOX)])
def test_all_is_pinned(module: object, expected: set[str]) -> None:
    exported = getattr(module, "__all__")  # noqa: B009 - the attribute under test
    assert set(exported) == expected
    assert len(exported) == len(set(exported))


def test_oms_all_is_sorted() -> None:
    assert list(oms.__all__) == sorted(oms.__all__)


def test_every_error_class_is_exported() -> None:
    errors = importlib.import_module("oms.errors")
    classes = {n for n in errors.__all__ if isinstance(getattr(errors, n), type)}
    assert classes <= set(oms.__all__)


@pytest.mark.parametrize(
    "plumbing",
    [
        ("oms.transport", "Transport"),
        ("oms.transport", "Transcript"),
        ("oms.nonce", "NonceSource"),
        ("oms.ratelimit", "RateLimiter"),
        ("oms.ratelimit", "Tier"),
        ("oms.retry", "RetryPolicy"),
        ("oms.auth", "sign"),
        ("oms.account", "AccountState"),
        ("oms.cache", "OrderCache"),
        ("oms.history_store", "HistoryStore"),
    ],
)
def test_plumbing_stays_in_its_module(plumbing: tuple[str, str]) -> None:
    module, name = plumbing
    assert hasattr(importlib.import_module(module), name)
    assert name not in oms.__all__


def test_import_oms_loads_neither_the_cli_nor_the_sandbox() -> None:
    code = (
        "import sys, oms\n"
        "print(','.join(m for m in sys.modules if m.split('.')[:2] in (['oms', 'cli'], "
        "['oms', 'sandbox'])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""


@pytest.mark.parametrize(("module", "expected"), [(oms, OMS), (oms.sandbox, SANDBOX)])
def test_every_name_resolves_and_is_public(module: object, expected: set[str]) -> None:
    for name in expected:
        member = getattr(module, name)
        owner = getattr(member, "__module__", None)
        if owner is not None:
            assert owner.startswith("oms"), (name, owner)


def test_errors_module_all_resolves() -> None:
    errors = importlib.import_module("oms.errors")
    for name in errors.__all__:
        assert hasattr(errors, name), name


def test_library_does_not_print_logs_by_default() -> None:
    import logging

    handlers = logging.getLogger("oms").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)

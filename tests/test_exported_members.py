"""The public surface of `oms` and `oms.sandbox` is exactly what is listed here."""

from __future__ import annotations

import importlib

import pytest

import oms
import oms.sandbox

OMS = {
    "USER_AGENT", "AccountIdentity", "AccountState", "DatabaseBindingError", "NonceLockTimeout",
    "ServerTimeUnavailable", "AddOrderResult", "AllocatorExhausted", "AssetPair", "CancelResult",
    "CounterAllocator", "Credentials", "DryRunPlacedOrder", "PairRulesUnavailable",
    "PlacementNotRecorded", "FundingStatus", "FundingStore", "FundingTracker",
    "FundingTransaction", "Group", "GroupCancelResult", "HTTPStatusError", "HistoryStore",
    "Intent", "IntentState", "InvalidNonce", "KrakenClient", "KrakenError", "NonceSource",
    "OHLCBar", "OmsError", "Order", "OrderCache", "OrderManager", "OrderNotPlaced",
    "OrderRequest", "OrderStatus", "OrderType", "OutcomeUnknownError", "Placement",
    "PublicTrade", "RandomAllocator", "RateLimiter", "RecoveryReport", "ResponseShapeError",
    "RetryPolicy", "Side", "StatusProp", "SyncResult", "Tier", "TimeInForce",
    "TimestampAllocator", "TradesPage", "Transcript", "Transport", "TransportError",
    "UserrefAllocator", "ValidationError", "__version__", "check_against_pair",
    "check_recent_ohlc", "check_userref", "ohlc_from_trades", "sign", "sub_range",
    "sync_trades",
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

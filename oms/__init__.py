"""oms: order management for the Kraken spot REST API.

Strategy code → :class:`OrderManager` → :class:`KrakenClient` → transport → Kraken (or
:mod:`oms.sandbox`); the SQLite order cache and a userref allocator sit beside the manager.

``__all__`` is what strategy code uses: the manager and its named constructors
(:meth:`OrderManager.from_env`, :meth:`OrderManager.on_sandbox`), what it returns, the order
request and the models, every error class, the userref allocators, the price and volume
rounding helpers, the client and its credentials. The plumbing (transport, nonces, rate
limits, retries, signing, the cache and the history and funding stores) is imported from its
own module (``oms.transport``, ``oms.nonce``, ...); the local exchange lives in
:mod:`oms.sandbox`, the command line in ``oms.cli`` (never imported by ``import oms``).
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from oms._version import __version__
from oms.errors import (
    AccountDisabled,
    AccountError,
    AllocatorExhausted,
    APIRateLimitExceeded,
    AuthError,
    CacheBusy,
    CacheError,
    ConnectError,
    ConnectionLost,
    CostMinimumNotMet,
    DatabaseBindingError,
    DeadlineElapsed,
    DryRunPlacedOrder,
    DuplicateClOrdId,
    FundingError,
    HTTPStatusError,
    InsufficientFunds,
    InternalError,
    InvalidAmount,
    InvalidArguments,
    InvalidKey,
    InvalidNonce,
    InvalidOrder,
    InvalidPrice,
    InvalidResponse,
    InvalidSignature,
    KrakenError,
    MarketCancelOnly,
    MarketPostOnly,
    MarketRestricted,
    MaxFeeExceeded,
    NonceLockTimeout,
    OmsError,
    OrderError,
    OrderMinimumNotMet,
    OrderNotPlaced,
    OrderRateLimitExceeded,
    OrdersLimitExceeded,
    OutcomeUnknownError,
    PairRulesUnavailable,
    PermissionDenied,
    PlacementNotRecorded,
    PlotUnavailable,
    PostOnlyOrder,
    QueryError,
    RateLimitError,
    RequestTimeout,
    ResponseShapeError,
    ServerTimeUnavailable,
    ServiceBusy,
    ServiceError,
    ServiceUnavailable,
    TemporaryLockout,
    Throttled,
    TickSizeCheckFailed,
    TLSError,
    TooManyRequests,
    TransportError,
    UnknownAsset,
    UnknownAssetPair,
    UnknownKrakenError,
    UnknownMethod,
    UnknownOrder,
    UnknownReferenceId,
    UnknownWithdrawKey,
    ValidationError,
)

if TYPE_CHECKING:  # what the names below are, for type checkers and readers
    from oms.auth import Credentials
    from oms.cache import Group, Intent, IntentState
    from oms.client import KrakenClient
    from oms.manager import (
        GroupCancelResult,
        OrderManager,
        Placement,
        RecoveryReport,
        SyncResult,
    )
    from oms.models import (
        AddOrderResult,
        AssetPair,
        CancelResult,
        FundingStatus,
        FundingTransaction,
        OHLCBar,
        Order,
        OrderStatus,
        OrderType,
        PublicTrade,
        Side,
        StatusProp,
        TimeInForce,
        TradesPage,
    )
    from oms.orders import OrderRequest
    from oms.rounding import (
        min_volume,
        price_step,
        round_price,
        round_to_step,
        round_volume,
        volume_step,
    )
    from oms.userref import (
        CounterAllocator,
        RandomAllocator,
        TimestampAllocator,
        UserrefAllocator,
        sub_range,
    )

#: Where each name of the surface lives; imported on first use (PEP 562), so that ``import oms``
#: stays light (errors and the version are always loaded: a handler needs them at once).
_LAZY: dict[str, str] = {
    "AddOrderResult": "oms.models",
    "AssetPair": "oms.models",
    "CancelResult": "oms.models",
    "CounterAllocator": "oms.userref",
    "Credentials": "oms.auth",
    "FundingStatus": "oms.models",
    "FundingTransaction": "oms.models",
    "Group": "oms.cache",
    "GroupCancelResult": "oms.manager",
    "Intent": "oms.cache",
    "IntentState": "oms.cache",
    "KrakenClient": "oms.client",
    "OHLCBar": "oms.models",
    "Order": "oms.models",
    "OrderManager": "oms.manager",
    "OrderRequest": "oms.orders",
    "OrderStatus": "oms.models",
    "OrderType": "oms.models",
    "Placement": "oms.manager",
    "PublicTrade": "oms.models",
    "RandomAllocator": "oms.userref",
    "RecoveryReport": "oms.manager",
    "Side": "oms.models",
    "StatusProp": "oms.models",
    "SyncResult": "oms.manager",
    "TimeInForce": "oms.models",
    "TimestampAllocator": "oms.userref",
    "TradesPage": "oms.models",
    "UserrefAllocator": "oms.userref",
    "min_volume": "oms.rounding",
    "price_step": "oms.rounding",
    "round_price": "oms.rounding",
    "round_to_step": "oms.rounding",
    "round_volume": "oms.rounding",
    "sub_range": "oms.userref",
    "volume_step": "oms.rounding",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'oms' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "APIRateLimitExceeded",
    "AccountDisabled",
    "AccountError",
    "AddOrderResult",
    "AllocatorExhausted",
    "AssetPair",
    "AuthError",
    "CacheBusy",
    "CacheError",
    "CancelResult",
    "ConnectError",
    "ConnectionLost",
    "CostMinimumNotMet",
    "CounterAllocator",
    "Credentials",
    "DatabaseBindingError",
    "DeadlineElapsed",
    "DryRunPlacedOrder",
    "DuplicateClOrdId",
    "FundingError",
    "FundingStatus",
    "FundingTransaction",
    "Group",
    "GroupCancelResult",
    "HTTPStatusError",
    "InsufficientFunds",
    "Intent",
    "IntentState",
    "InternalError",
    "InvalidAmount",
    "InvalidArguments",
    "InvalidKey",
    "InvalidNonce",
    "InvalidOrder",
    "InvalidPrice",
    "InvalidResponse",
    "InvalidSignature",
    "KrakenClient",
    "KrakenError",
    "MarketCancelOnly",
    "MarketPostOnly",
    "MarketRestricted",
    "MaxFeeExceeded",
    "NonceLockTimeout",
    "OHLCBar",
    "OmsError",
    "Order",
    "OrderError",
    "OrderManager",
    "OrderMinimumNotMet",
    "OrderNotPlaced",
    "OrderRateLimitExceeded",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "OrdersLimitExceeded",
    "OutcomeUnknownError",
    "PairRulesUnavailable",
    "PermissionDenied",
    "Placement",
    "PlacementNotRecorded",
    "PlotUnavailable",
    "PostOnlyOrder",
    "PublicTrade",
    "QueryError",
    "RandomAllocator",
    "RateLimitError",
    "RecoveryReport",
    "RequestTimeout",
    "ResponseShapeError",
    "ServerTimeUnavailable",
    "ServiceBusy",
    "ServiceError",
    "ServiceUnavailable",
    "Side",
    "StatusProp",
    "SyncResult",
    "TLSError",
    "TemporaryLockout",
    "Throttled",
    "TickSizeCheckFailed",
    "TimeInForce",
    "TimestampAllocator",
    "TooManyRequests",
    "TradesPage",
    "TransportError",
    "UnknownAsset",
    "UnknownAssetPair",
    "UnknownKrakenError",
    "UnknownMethod",
    "UnknownOrder",
    "UnknownReferenceId",
    "UnknownWithdrawKey",
    "UserrefAllocator",
    "ValidationError",
    "__version__",
    "min_volume",
    "price_step",
    "round_price",
    "round_to_step",
    "round_volume",
    "sub_range",
    "volume_step",
]

# A library logs; the application decides where logs go (and without this, Python's last-resort
# handler would print the manager's warnings to stderr).
logging.getLogger("oms").addHandler(logging.NullHandler())

"""oms: order management for the Kraken spot REST API.

Strategy code → :class:`OrderManager` → :class:`KrakenClient` → transport → Kraken (or
:mod:`oms.sandbox`); the SQLite :class:`OrderCache` and a userref allocator sit beside the
manager. Everything listed in ``__all__`` is the supported surface; the local exchange lives in
:mod:`oms.sandbox`, the error classes in :mod:`oms.errors`.
"""

from __future__ import annotations

import logging

from oms._version import USER_AGENT, __version__
from oms.account import AccountIdentity, AccountState
from oms.auth import Credentials, sign
from oms.cache import Group, Intent, IntentState, OrderCache
from oms.client import KrakenClient, PairRulesUnavailable
from oms.errors import (
    AllocatorExhausted,
    DatabaseBindingError,
    HTTPStatusError,
    InvalidNonce,
    KrakenError,
    NonceLockTimeout,
    OmsError,
    OutcomeUnknownError,
    ResponseShapeError,
    ServerTimeUnavailable,
    TransportError,
    ValidationError,
)
from oms.funding import FundingTracker
from oms.funding_store import FundingStore
from oms.history import check_recent_ohlc, ohlc_from_trades, sync_trades
from oms.history_store import HistoryStore
from oms.manager import (
    DryRunPlacedOrder,
    GroupCancelResult,
    OrderManager,
    OrderNotPlaced,
    Placement,
    PlacementNotRecorded,
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
from oms.nonce import NonceSource
from oms.orders import OrderRequest, check_against_pair, check_userref
from oms.ratelimit import RateLimiter, Tier
from oms.retry import RetryPolicy
from oms.transport import Transcript, Transport
from oms.userref import (
    CounterAllocator,
    RandomAllocator,
    TimestampAllocator,
    UserrefAllocator,
    sub_range,
)

__all__ = [
    "USER_AGENT",
    "AccountIdentity",
    "AccountState",
    "AddOrderResult",
    "AllocatorExhausted",
    "AssetPair",
    "CancelResult",
    "CounterAllocator",
    "Credentials",
    "DatabaseBindingError",
    "DryRunPlacedOrder",
    "FundingStatus",
    "FundingStore",
    "FundingTracker",
    "FundingTransaction",
    "Group",
    "GroupCancelResult",
    "HTTPStatusError",
    "HistoryStore",
    "Intent",
    "IntentState",
    "InvalidNonce",
    "KrakenClient",
    "KrakenError",
    "NonceLockTimeout",
    "NonceSource",
    "OHLCBar",
    "OmsError",
    "Order",
    "OrderCache",
    "OrderManager",
    "OrderNotPlaced",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "OutcomeUnknownError",
    "PairRulesUnavailable",
    "Placement",
    "PlacementNotRecorded",
    "PublicTrade",
    "RandomAllocator",
    "RateLimiter",
    "RecoveryReport",
    "ResponseShapeError",
    "RetryPolicy",
    "ServerTimeUnavailable",
    "Side",
    "StatusProp",
    "SyncResult",
    "Tier",
    "TimeInForce",
    "TimestampAllocator",
    "TradesPage",
    "Transcript",
    "Transport",
    "TransportError",
    "UserrefAllocator",
    "ValidationError",
    "__version__",
    "check_against_pair",
    "check_recent_ohlc",
    "check_userref",
    "ohlc_from_trades",
    "sign",
    "sub_range",
    "sync_trades",
]

# A library logs; the application decides where logs go (and without this, Python's last-resort
# handler would print the manager's warnings to stderr).
logging.getLogger("oms").addHandler(logging.NullHandler())

"""Typed, frozen views of Kraken's answers, parsed from JSON without losing a digit.

Every model has a ``from_api`` named constructor taking the ``result`` member of Kraken's
envelope (already JSON-decoded, with ``parse_float=Decimal`` or without). Money is
:class:`~decimal.Decimal`, parsed from Kraken's strings and never through ``float``; times are
UTC unix seconds (``float``, or ``int`` where Kraken sends whole seconds). A value that does not
have the documented shape raises :class:`~oms.errors.ResponseShapeError`, except where Kraken is
known to add values over time (funding statuses, order types in old orders): those are kept as
raw strings beside an "unknown" marker, so nothing is flattened and nothing crashes.

The models live in private modules by kind (``_fields``: enums and parsing helpers,
``_orders``, ``_market``, ``_funding``); this package is their one public home, and each
public class names ``oms.models`` as its module (reprs, pickles and the docs stay as before).
"""

from __future__ import annotations

from oms.models._fields import (
    DecimalInput as DecimalInput,
)
from oms.models._fields import (
    FundingStatus,
    OFlag,
    OrderStatus,
    OrderType,
    Price,
    RelativePrice,
    Side,
    StatusProp,
    StpType,
    SystemState,
    TimeInForce,
    Trigger,
    parse_price,
)
from oms.models._fields import (
    TimeInput as TimeInput,
)
from oms.models._fields import (
    checked as checked,
)
from oms.models._funding import (
    Balance,
    DepositMethod,
    FundingPage,
    FundingTransaction,
    WithdrawInfo,
)
from oms.models._market import (
    Asset,
    AssetPair,
    BookLevel,
    FeeTier,
    OHLCBar,
    OHLCPage,
    OrderBook,
    PublicTrade,
    ServerTime,
    SystemStatus,
    Ticker,
    TradesPage,
)
from oms.models._orders import (
    AddOrderResult,
    AmendResult,
    BatchOrderItem,
    BatchOrderResult,
    CancelResult,
    DeadMansSwitch,
    Order,
    OrderDescr,
    OrdersPage,
    WebSocketToken,
)

__all__ = [
    "AddOrderResult",
    "AmendResult",
    "Asset",
    "AssetPair",
    "Balance",
    "BatchOrderItem",
    "BatchOrderResult",
    "BookLevel",
    "CancelResult",
    "DeadMansSwitch",
    "DepositMethod",
    "FeeTier",
    "FundingPage",
    "FundingStatus",
    "FundingTransaction",
    "OFlag",
    "OHLCBar",
    "OHLCPage",
    "Order",
    "OrderBook",
    "OrderDescr",
    "OrderStatus",
    "OrderType",
    "OrdersPage",
    "Price",
    "PublicTrade",
    "RelativePrice",
    "ServerTime",
    "Side",
    "StatusProp",
    "StpType",
    "SystemState",
    "SystemStatus",
    "Ticker",
    "TimeInForce",
    "TradesPage",
    "Trigger",
    "WebSocketToken",
    "WithdrawInfo",
    "parse_price",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = __name__
del _name, _obj

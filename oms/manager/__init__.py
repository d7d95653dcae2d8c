"""The order manager: placement that never duplicates, group cancels that are checked,
recovery after a crash.

Strategy code → :class:`OrderManager` → :class:`~oms.client.KrakenClient` → transport →
Kraken. Beside the manager sit the :class:`~oms.cache.OrderCache` (SQLite) and a userref
allocator (:mod:`oms.userref`). The manager is a facade over parts with one job each; the
flow of one placement is in ``docs/architecture.rst``.
"""

from oms.errors import DryRunPlacedOrder, OrderNotPlaced, PlacementNotRecorded
from oms.manager.facade import OrderManager
from oms.manager.results import GroupCancelResult, Placement, RecoveryReport, SyncResult

__all__ = [
    "DryRunPlacedOrder",
    "GroupCancelResult",
    "OrderManager",
    "OrderNotPlaced",
    "Placement",
    "PlacementNotRecorded",
    "RecoveryReport",
    "SyncResult",
]

"""Keeping the cache up to date with the exchange: :meth:`Tracker.sync`, lookups by userref,
and noticing other programs' orders inside this program's userref range."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from oms.account import AccountState
from oms.cache import OPEN_STATUSES, OrderCache
from oms.client import KrakenClient
from oms.manager.counts import RequestCounts, requests_for
from oms.manager.lookup import OrderLookup, Undecided
from oms.manager.recovery import UNRESOLVED
from oms.manager.results import SyncResult
from oms.manager.timing import KrakenTime
from oms.models import Order
from oms.userref import UserrefAllocator

__all__ = ["Tracker"]

logger = logging.getLogger("oms.manager")

SYNC_CURSOR = "sync.closed_cursor"
SYNC_AT = "sync.at"


class Tracker:
    """Brings what the exchange knows into the cache."""

    def __init__(
        self,
        *,
        client: KrakenClient,
        cache: OrderCache,
        time: KrakenTime,
        lookup: OrderLookup,
        counts: RequestCounts,
        allocator: UserrefAllocator,
    ):
        self.client = client
        self.cache = cache
        self.time = time
        self.lookup = lookup
        self.counts = counts
        self.allocator = allocator

    def find_by_userref(self, userref: int, *, refresh: bool) -> list[Order]:
        """See :meth:`oms.manager.OrderManager.find_by_userref`."""
        cached = self.cache.by_userref(userref)
        if cached and not refresh:
            return cached
        try:
            seen = self.lookup.by_userref(userref, since=0)
        except Undecided as undecided:
            raise undecided.cause from None
        self.cache.upsert_orders(seen, synced_at=self.time.now())
        return self.cache.by_userref(userref)

    def sync(self, open_orders: Sequence[Order] | None = None) -> SyncResult:
        """See :meth:`oms.manager.OrderManager.sync`. ``open_orders``: every open order, as
        just learned another way (a live subscription's snapshot), instead of OpenOrders."""
        started = self.time.now()
        cursor_text = self.cache.get_meta(SYNC_CURSOR)
        cursor = float(cursor_text) if cursor_text is not None else None
        if open_orders is None:
            self.counts.add("OpenOrders")
            opened = list(self.client.open_orders())
        else:
            opened = list(open_orders)
        closed = list(self.client.iter_closed_orders(start=cursor, closetime="close"))
        self.counts.add("ClosedOrders", requests_for(len(closed)))
        seen = {o.txid for o in opened} | {o.txid for o in closed}
        stale = sorted(self.cache.txids(status=OPEN_STATUSES) - seen)
        refreshed, missing = self.lookup.query_known(stale)
        everything = [*opened, *closed, *refreshed]
        foreign = self.foreign(everything)
        # The cursor trails the sync's start by the slack, so an order closing during this
        # sync, or stamped by a clock a little behind ours, is fetched again next time.
        # Oldest answer first, so a later one wins (an order open at the first call may have
        # closed by the second; the cache also never reopens a closed order).
        slack = self.lookup.match_slack
        self.cache.apply_sync(
            everything,
            synced_at=started,
            meta={SYNC_CURSOR: repr(started - slack), SYNC_AT: repr(started)},
        )
        return SyncResult(
            open=len(opened),
            closed=len(closed),
            refreshed=len(refreshed),
            at=started,
            foreign=tuple(o.txid for o in foreign),
            missing=tuple(sorted(missing)),
        )

    def foreign(self, orders: Sequence[Order]) -> list[Order]:
        """Orders in this program's userref range that this database did not place and did
        not know yet; their userrefs are reserved machine-wide (never handed out)."""
        lo, hi = self.allocator.lo, self.allocator.hi
        candidates = [o for o in orders if o.userref is not None and lo <= o.userref <= hi]
        if not candidates:
            return []
        ours = self.cache.placed_here(o.txid for o in candidates)
        undecided = {i.userref for i in self.cache.intents(states=UNRESOLVED)}
        strangers = [o for o in candidates if o.txid not in ours and o.userref not in undecided]
        store = getattr(self.allocator, "store", None)
        if isinstance(store, AccountState):
            # Reported once, when first reserved, however the cache learned of the order
            # (a lookup, a group cancel, find_by_userref).
            foreign = [o for o in strangers if self._reserve(store, o)]
        else:
            known = self.cache.txids()
            foreign = [o for o in strangers if o.txid not in known]
        for order in foreign:
            logger.warning(
                "order %s carries userref %s, inside this program's range %s..%s, but was not "
                "placed by it; the userref is reserved and will not be handed out",
                order.txid,
                order.userref,
                lo,
                hi,
            )
        return foreign

    def _reserve(self, store: AccountState, order: Order) -> bool:
        assert order.userref is not None
        return store.reserve(
            order.userref,
            txid=order.txid,
            reason="seen on the exchange, not placed by this program",
            seen_at=self.time.local_now(),
        )

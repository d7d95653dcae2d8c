"""What the rate limiter needs to know about orders placed before this process started.

Cancelling or amending a young order costs Kraken's trading counter up to 8 points; the
limiter learns the ages of orders this process placed, but only the cache knows the others'.
:class:`CacheOrderBook` answers from the cache; it is given to the client when the client is
built (``KrakenClient(order_book=...)``, as :meth:`oms.OrderManager.from_env` does), so no one
reaches into the limiter afterwards.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable

from oms.cache import OrderCache
from oms.models import Order

__all__ = ["CacheOrderBook"]


class CacheOrderBook:
    """Order ages and pairs from ``cache``; ``clock`` is the time ages are measured against
    (the exchange's ``opentm`` is in Kraken's time, so a manager's ``now`` fits best)."""

    def __init__(self, cache: OrderCache, *, clock: Callable[[], float] = _time.time):
        self.cache = cache
        self.clock = clock

    def _youngest(self, ref: str) -> Order | None:
        if ref.isdigit():
            members = self.cache.open_orders(userref=int(ref), limit=1)
            return members[0] if members else None
        return self.cache.order(ref)

    def order_age(self, ref: str) -> float | None:
        """Seconds since the order with this txid (or the youngest open one with this
        userref) opened; ``None`` if the cache does not know it."""
        order = self._youngest(ref)
        return None if order is None else max(0.0, self.clock() - order.opentm)

    def order_pair(self, ref: str) -> str | None:
        order = self._youngest(ref)
        return None if order is None else order.pair

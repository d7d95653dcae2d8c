"""What the live-update tests share: waiting for the stream, and comparing the cache with
what the exchange says over REST."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from oms.manager import OrderManager
from oms.models import Order

# The fields REST and the stream must agree on (descr.order's text comes from REST only).
FIELDS = ("status", "vol", "vol_exec", "cost", "fee", "price", "userref", "pair", "side")

#: How far from the market a resting order is placed (never fills by itself).
FAR = Decimal(20000)


def view(order: Order) -> dict[str, Any]:
    return {name: getattr(order, name) for name in FIELDS}


def exchange_view(manager: OrderManager, txids: list[str]) -> dict[str, dict[str, Any]]:
    """Each order as REST QueryOrders has it now."""
    found = manager.client.query_orders(txids) if txids else []
    return {o.txid: view(o) for o in found}


def cache_view(manager: OrderManager, txids: list[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for txid in txids:
        order = manager.cache.order(txid)
        if order is not None:
            out[txid] = view(order)
    return out


def settle(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Wait (a hang guard, not a measurement) until ``check()`` holds; whether it did."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.02)
    return check()


def assert_cache_matches_exchange(manager: OrderManager, txids: list[str]) -> None:
    """The cache comes to equal REST's view of ``txids`` (the stream has a moment to land
    what it already sent); fails with both views if it does not."""
    truth = exchange_view(manager, txids)
    settle(lambda: cache_view(manager, txids) == truth)
    cached = cache_view(manager, txids)
    assert cached == truth, f"cache {cached} != exchange {truth}"

"""Requests the order manager sent, by Kraken method (for cost accounting)."""

from __future__ import annotations

import threading

__all__ = ["RequestCounts", "pages"]

# Kraken's page and batch size (QueryOrders, ClosedOrders pages, CancelOrderBatch).
PAGE = 50


def pages(n: int, size: int = PAGE) -> int:
    """Requests a listing of ``n`` items took (Kraken pages by ``size``; an empty one is a
    request too)."""
    return max(1, -(-n // size))


class RequestCounts(dict[str, int]):
    """A ``{method: requests}`` mapping that the manager's parts add to."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def add(self, method: str, n: int = 1) -> None:
        with self._lock:
            self[method] = self.get(method, 0) + n

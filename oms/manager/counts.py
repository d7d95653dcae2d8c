"""Requests the order manager sent, by Kraken method (for cost accounting)."""

from __future__ import annotations

import threading

from oms.conventions import PAGE_SIZE, pages

__all__ = ["PAGE_SIZE", "RequestCounts", "requests_for"]


def requests_for(n: int) -> int:
    """Requests a listing of ``n`` items took (Kraken pages by 50; an empty listing is one
    request too)."""
    return max(1, pages(n))


class RequestCounts(dict[str, int]):
    """A ``{method: requests}`` mapping that the manager's parts add to."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def add(self, method: str, n: int = 1) -> None:
        with self._lock:
            self[method] = self.get(method, 0) + n

"""Orders the live stream has just seen, for a placement whose AddOrder answer was lost.

The manager builds one :class:`Sightings` and gives it to its order lookup and to its follower
(the seam between them): the follower reports every order an executions event wrote to the
cache, and the lookup, while the stream is live, waits here for an order that answers its
intent instead of waiting out the whole deadline. A sighting only ever *finds* an order; that
one is absent stays for REST to prove, after the deadline.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable

from oms.models import Order

__all__ = ["Sightings"]


class Sightings:
    """The last ``memory`` orders the stream wrote, and a way to wait for the next ones."""

    def __init__(self, memory: int = 10_000) -> None:
        # (serial, order): the serial says which a waiter has looked at already.
        self._recent: collections.deque[tuple[int, Order]] = collections.deque(maxlen=memory)
        self._serial = 0
        self._changed = threading.Condition()
        self._live: Callable[[], bool] = lambda: False

    @property
    def live(self) -> bool:
        """Whether a stream is live now (only then is waiting here worth anything)."""
        return self._live()

    def attach(self, live: Callable[[], bool]) -> None:
        """A stream reports here from now on; ``live`` says whether it is live."""
        self._live = live

    def detach(self) -> None:
        with self._changed:
            self._live = lambda: False
            self._changed.notify_all()

    def seen(self, orders: Iterable[Order]) -> None:
        """The stream wrote these orders (as the cache now has them)."""
        with self._changed:
            for order in orders:
                self._serial += 1
                self._recent.append((self._serial, order))
            self._changed.notify_all()

    def wait_for(self, wanted: Callable[[Order], bool], timeout: float) -> Order | None:
        """The first order seen (lately, or within ``timeout`` seconds of real time) that
        ``wanted`` accepts; ``None`` when none came or the stream stopped being live."""
        end = time.monotonic() + max(0.0, timeout)
        checked = 0
        with self._changed:
            while True:
                for serial, order in self._recent:
                    if serial > checked and wanted(order):
                        return order
                checked = self._serial
                left = end - time.monotonic()
                if left <= 0 or not self._live():
                    return None
                self._changed.wait(left)

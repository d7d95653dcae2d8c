"""Clocks for the sandbox exchange.

Everything in the sandbox that depends on time (order expiry, ``deadline``, the dead man's
switch, funding progress, rate-limit decay, the market's price path) reads one injected
clock, so tests move time with :class:`ManualClock` and never sleep.
"""

from __future__ import annotations

import threading
import time as _time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Anything with ``time() -> float`` (UTC unix seconds)."""

    def time(self) -> float: ...


class SystemClock:
    """The wall clock."""

    def time(self) -> float:
        return _time.time()

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that only moves when told to; it never goes backwards.

    Going backwards would let an order expire before it was placed and make nonces and
    rate-limit decay meaningless, so :meth:`set` refuses an earlier time.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        if start < 0:
            raise ValueError(f"start must be a unix time >= 0, got {start!r}")
        self._now = float(start)
        # The HTTP server calls time() from several threads while a test advances it.
        self._lock = threading.Lock()

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (>= 0) and return the new time."""
        if seconds < 0:
            raise ValueError(f"a clock only moves forward; got {seconds!r} seconds")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, t: float) -> None:
        """Jump to ``t`` (not earlier than the current time)."""
        with self._lock:
            if t < self._now:
                raise ValueError(f"a clock only moves forward: {t!r} < {self._now!r}")
            self._now = float(t)

    def __repr__(self) -> str:
        return f"ManualClock({self._now!r})"

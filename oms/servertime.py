"""The exchange's time, as far as this process can know it, whatever the local clock does.

The order manager needs Kraken's time for two things: the ``deadline`` it sends with each
AddOrder (Kraken refuses one outside now + 2 s .. now + 60 s by *its* clock), and deciding
whether an order on the exchange can be the answer to an intent (it cannot have opened
before the request was sent). A local clock can be wrong by any amount and can step at any
moment (an NTP correction, a VM resumed, an injected test clock), so:

- the offset between the local clock and Kraken's is measured with ``Time`` and kept as an
  interval: the server read its clock somewhere between our send and our receipt, and
  ``unixtime`` is truncated to the second. A local clock that lies inside that interval is
  trusted as it is (offset 0); otherwise the smallest correction that reaches the interval
  is applied. :attr:`ServerClock.uncertainty` is the interval's width;
- the offset is learned again whenever it may be stale: before first use, after
  ``max_age`` seconds, when the local clock is seen to step against the monotonic clock
  (which no step moves), and whenever a caller says so (after an ambiguous outcome);
- :attr:`ServerClock.floor` is the last ``unixtime`` Kraken answered: a time the server's
  clock had certainly reached. It is never extrapolated with a local clock, so it is the
  only time safe for "this order opened too early to be ours".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["ServerClock"]

logger = logging.getLogger(__name__)


class ServerClock:
    """Kraken's time from ``fetch`` (a call returning ``Time``'s ``unixtime``) and a local
    ``clock``, checked against ``monotonic`` for steps."""

    def __init__(
        self,
        fetch: Callable[[], float],
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        max_age: float = 300.0,
        step_tolerance: float = 1.0,
    ):
        self._fetch = fetch
        self._clock = clock
        self._monotonic = monotonic
        self.max_age = max_age
        self.step_tolerance = step_tolerance
        self._lock = threading.Lock()
        self._offset: float | None = None
        self._width = 0.0
        self._floor: float | None = None
        self._calibrated_at = 0.0  # monotonic
        self._skew = 0.0  # local clock minus monotonic, at calibration
        self._stale = True
        self._retry_at = float("-inf")  # monotonic; after a failed calibration
        self._floor_at = 0.0  # monotonic, when the floor was read
        #: How many times Kraken's ``Time`` was asked.
        self.calls = 0

    def __repr__(self) -> str:
        return f"ServerClock(offset={self._offset!r}, uncertainty={self._width:.3f})"

    @property
    def floor(self) -> float | None:
        """The last ``unixtime`` Kraken answered (``None`` before the first)."""
        return self._floor

    @property
    def uncertainty(self) -> float:
        """How far :meth:`now` may be from the server's clock, in seconds (after the last
        calibration; a step seen since is recalibrated before it matters)."""
        return self._width

    @property
    def offset(self) -> float | None:
        """Server time minus local clock, as last measured."""
        return self._offset

    def estimate(self) -> float:
        """The local clock corrected by the last measured offset (none yet: uncorrected),
        without asking ``Time``: for bookkeeping when Kraken may not be reachable."""
        return self._clock() + (self._offset or 0.0)

    def invalidate(self) -> None:
        """Ask ``Time`` again before the next :meth:`now`."""
        self._stale = True

    def _stepped(self) -> bool:
        skew = self._clock() - self._monotonic()
        return abs(skew - self._skew) > self.step_tolerance

    def _needs_calibration(self) -> bool:
        if self._stale or self._offset is None:
            return True
        if self._monotonic() - self._calibrated_at > self.max_age:
            return True
        return self._stepped()

    def floor_age(self) -> float:
        """Seconds (monotonic) since :attr:`floor` was read; infinite before the first."""
        if self._floor is None:
            return float("inf")
        return self._monotonic() - self._floor_at

    def calibrate(self) -> float:
        """Ask Kraken's ``Time`` now; returns its ``unixtime``. Raises what ``fetch`` raises
        (the previous calibration, if any, stays in force). A local clock that stepped during
        the call is noticed (it moved unlike the monotonic clock) and the call repeated."""
        with self._lock:
            for _ in range(3):
                started = self._monotonic()
                before = self._clock()
                server = float(self._fetch())
                after = self._clock()
                elapsed = self._monotonic() - started
                self.calls += 1
                if abs((after - before) - elapsed) <= self.step_tolerance:
                    break
            # The server read its clock (truncated to the second) between our send and our
            # receipt: server - local lies in [server - after, server + 1 - before].
            low, high = server - after, server + 1.0 - before
            if low > high:  # the local clock stepped back during the call: trust the server
                low, high = high, low
            self._offset = min(max(0.0, low), high)
            self._width = high - low
            if self._floor is None or server >= self._floor:
                self._floor, self._floor_at = server, self._monotonic()
            self._calibrated_at = self._monotonic()
            self._skew = self._clock() - self._monotonic()
            self._stale = False
            return server

    def now(self) -> float:
        """The server's time now, estimated (calibrating first if the estimate is stale).

        If ``Time`` cannot be read but an earlier measurement still holds (it is only old, or
        was marked stale), that one is used and ``Time`` asked again a few seconds later: an
        estimate only sets deadlines and paces waits, which Kraken's own clock then judges.
        After a step of the local clock the last measurement is known wrong: then a failure
        to read ``Time`` is raised.
        """
        stepped = self._offset is not None and self._stepped()
        if stepped or (self._needs_calibration() and self._monotonic() >= self._retry_at):
            try:
                self.calibrate()
            except Exception as exc:
                if self._offset is None or stepped:
                    raise
                self._retry_at = self._monotonic() + 5.0
                logger.warning("could not read Kraken's time (%s); using the last offset", exc)
        return self.estimate()

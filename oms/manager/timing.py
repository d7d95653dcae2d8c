"""Kraken's time as the manager uses it: the deadline of each AddOrder, and the wait until a
deadline has passed by the server's own clock (the only moment an absence proves anything)."""

from __future__ import annotations

import math
import time as _time
from collections.abc import Callable

from oms.client import KrakenClient
from oms.errors import OutcomeUnknownError, Throttled
from oms.manager.counts import RequestCounts
from oms.orders import DEADLINE_MAX, DEADLINE_MIN
from oms.servertime import ServerClock

__all__ = ["KrakenTime"]


class KrakenTime:
    """The server's clock (:class:`~oms.servertime.ServerClock`, fed by the client's ``Time``)
    and the rules built on it.

    ``deadline`` is how far ahead of the server's time each AddOrder's ``deadline`` is set,
    ``margin`` the safety added before a deadline counts as passed, ``floor_max_age`` how old
    Kraken's last ``Time`` answer may be when an intent records its ``not_before``.
    """

    def __init__(
        self,
        client: KrakenClient,
        counts: RequestCounts,
        *,
        deadline: float,
        margin: float,
        floor_max_age: float,
        max_age: float,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
        sleep: Callable[[float], object],
    ):
        self.deadline = deadline
        self.margin = margin
        self.floor_max_age = floor_max_age
        self.clock = clock
        self.sleep = sleep
        self._client = client
        self._counts = counts
        self.server = ServerClock(self._fetch, clock=clock, monotonic=monotonic, max_age=max_age)

    def _fetch(self) -> float:
        self._counts.add("Time")
        return float(self._client.time().unixtime)

    def now(self) -> float:
        """The exchange's time: the local clock corrected by the last measured offset."""
        return self.server.now()

    def local_now(self) -> float:
        """The time for bookkeeping fields when the server may not be reachable."""
        try:
            return self.server.estimate()
        except Exception:  # an injected clock failing must not stop an intent being marked
            return _time.time()

    def fresh_floor(self) -> float | None:
        """Kraken's last ``Time`` answer, asked again first when older than ``floor_max_age``:
        a time the server had certainly reached before what is sent next."""
        if self.server.floor_age() > self.floor_max_age:
            self.server.calibrate()
        return self.server.floor

    def bounds(self) -> tuple[float, float]:
        """How far ahead of :meth:`now` a deadline may lie so that Kraken, by its own clock,
        sees it within now + 2 s .. now + 60 s, given what the estimate may be off."""
        room = self.server.uncertainty + 0.5
        return DEADLINE_MIN.total_seconds() + room, DEADLINE_MAX.total_seconds() - room

    def ahead(self) -> float:
        """Seconds ahead of :meth:`now` for the next deadline: ``deadline`` within
        :meth:`bounds`."""
        low, high = self.bounds()
        if low > high:
            # A very slow Time answer: measure again (the next one is usually quick).
            self.server.calibrate()
            low, high = self.bounds()
        return min(max(self.deadline, low), max(low, high))

    def next_deadline(self) -> float:
        return self.now() + self.ahead()

    def too_close(self, deadline: float) -> bool:
        """Whether too little of ``deadline`` is left to send a request with it."""
        return deadline - self.now() < self.bounds()[0]

    def wait_past(self, deadline: float) -> None:
        """Sleep until the server's clock is past ``deadline`` (plus the margin).

        The estimate paces the waiting; the conclusion is Kraken's: ``Time`` must say the
        target has passed (an estimate running ahead of Kraken's clock would look too early
        and miss a late order). Raises whatever reading the server's time raises.
        """
        # Time answers whole seconds: Kraken can confirm no less than the next whole second.
        target = float(math.ceil(deadline + self.margin))
        ask = False
        for _ in range(1000):
            estimate = self.server.now()
            if estimate >= target or ask:
                # unixtime is truncated and was read before the answer left: the server's
                # clock is at least this, so "past" is never concluded too soon.
                if self.server.calibrate() >= target:
                    return
                estimate = self.server.now()
            wanted = max(0.0, target - estimate) + 0.25
            before = self.clock()
            self.sleep(wanted)
            # A sleep that did not move the local clock (an injected one) says nothing about
            # the server's: ask Kraken after it instead of trusting the estimate.
            ask = self.clock() - before < wanted / 2
        raise OutcomeUnknownError(f"the server clock did not pass {target}")

    def backoff(self, exc: Exception, attempt: int) -> float:
        """Seconds to wait before trying again after ``exc`` (the ``attempt``-th failure):
        until Kraken's ``retry_at`` when it throttled, else doubling from 0.5 s up to 8 s."""
        if isinstance(exc, Throttled) and exc.retry_at is not None:
            return max(0.0, exc.retry_at - self.now())
        return min(8.0, 0.5 * 2.0 ** (attempt - 1))

"""Kraken's limiters, as the sandbox enforces them.

* The REST counter (per API key): each private call adds 1 (history calls more), the counter
  decays per second by tier, and a call that would push it over the tier's maximum is
  refused with ``EAPI:Rate limit exceeded``. Calls answered by the trading engine's own limiter
  (AddOrder, CancelOrder and their batch/amend/edit cousins) do not count here.
* The trading counter (per API key and pair): +1 per order, and cancels/amends cost more the
  younger the order is (the table in Kraken's "Trading rate limits" guide); over the
  threshold → ``EOrder:Rate limit exceeded``.
* The public limiter (per client): a token bucket → ``EGeneral:Too many requests``.

Counters are floats: they are rates, not money.
"""

from __future__ import annotations

import attrs

__all__ = [
    "AMEND_PENALTY",
    "CANCEL_PENALTY",
    "EDIT_PENALTY",
    "TIERS",
    "DecayingCounter",
    "TierLimits",
    "TokenBucket",
    "age_penalty",
]


@attrs.frozen
class TierLimits:
    """The numbers of one verification tier."""

    rest_max: float
    rest_decay: float  # per second
    trading_threshold: float
    trading_decay: float  # per second
    max_open_per_pair: int
    #: Orders scheduled (``starttm`` at least 5 s ahead) that may wait at once; they count as
    #: open orders too. Over it: ``EOrder:Scheduled orders limit exceeded``.
    max_scheduled: int = 15


TIERS: dict[str, TierLimits] = {
    "starter": TierLimits(15, 0.33, 60, 1.0, 60, 15),
    "intermediate": TierLimits(20, 0.5, 125, 2.34, 80, 25),
    "pro": TierLimits(20, 1.0, 180, 3.75, 225, 40),
}

# (order younger than N seconds, extra count); the first matching row applies.
CANCEL_PENALTY: tuple[tuple[float, int], ...] = (
    (5, 8),
    (10, 6),
    (15, 5),
    (45, 4),
    (90, 2),
    (300, 1),
)
AMEND_PENALTY: tuple[tuple[float, int], ...] = ((5, 3), (10, 2), (15, 1))
EDIT_PENALTY: tuple[tuple[float, int], ...] = ((5, 6), (10, 5), (15, 4), (45, 2), (90, 1))


def age_penalty(table: tuple[tuple[float, int], ...], age: float) -> int:
    """The extra count for an order of ``age`` seconds (0 once older than the table)."""
    for limit, extra in table:
        if age < limit:
            return extra
    return 0


class DecayingCounter:
    """A counter that loses ``decay`` per second down to zero."""

    __slots__ = ("at", "value")

    def __init__(self, value: float = 0.0, at: float = 0.0) -> None:
        self.value = value
        self.at = at

    def level(self, now: float, decay: float) -> float:
        elapsed = max(0.0, now - self.at)
        return max(0.0, self.value - decay * elapsed)

    def add(self, now: float, decay: float, amount: float) -> float:
        self.value = self.level(now, decay) + amount
        self.at = max(now, self.at)
        return self.value

    def would_exceed(self, now: float, decay: float, amount: float, maximum: float) -> bool:
        # Unix-time floats resolve to ~2.4e-7 s, so decay * elapsed carries that much error; a
        # client pacing its call to the exact moment the counter has room must not be refused.
        return self.level(now, decay) + amount > maximum + 1e-6

    def to_json(self) -> list[float]:
        return [self.value, self.at]

    @classmethod
    def from_json(cls, data: object) -> DecayingCounter:
        if not isinstance(data, list) or len(data) != 2:
            raise ValueError("bad counter snapshot")
        return cls(float(data[0]), float(data[1]))


class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` per second; a call takes one."""

    __slots__ = ("at", "capacity", "rate", "tokens")

    def __init__(self, capacity: float, rate: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.at = now

    def take(self, now: float) -> bool:
        if now > self.at:
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
            self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

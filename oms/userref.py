"""Userref allocators: counter, random and timestamp, each confined to a range.

Kraken takes any number from 1 to 2,147,483,647 as a ``userref`` and enforces no uniqueness
(support note "How to place, view, and cancel orders using a user reference"). The note names
three ways to produce one; each is an allocator here:

- :class:`CounterAllocator`: the next integer, persisted in SQLite. The read-increment-write
  runs in one ``BEGIN IMMEDIATE`` transaction, so two threads or two processes never get the
  same value, and a restart continues where the last run stopped. Values an order, intent or
  group in the same file already carries (a userref chosen by hand) are stepped over.
- :class:`RandomAllocator`: uniform over the range, skipping values the cache knows as in use.
- :class:`TimestampAllocator`: the current unix second, or the next unused one when two
  allocations fall in the same second; it refuses (:class:`~oms.errors.AllocatorExhausted`)
  once the value would pass 2,147,483,647 (2038-01-19 03:14:07 UTC) instead of wrapping.
  Persisted like the counter, unless kept in memory on purpose (``memory_only=True``).

The persisted sequences are keyed by the allocator's kind, its ``name`` and its range, so a
counter and a timestamp allocator never share one. The :class:`~oms.OrderManager` checks every
value it is handed against its cache in the transaction that records it, whatever allocator
handed it out.

Each takes ``lo``/``hi``: processes or hosts trading one account can split the range with
:func:`sub_range` and allocate without talking to each other. Zero is never handed out: Kraken
shows orders placed without a userref as ``userref: 0``, so 0 cannot tell orders apart.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from oms.account import AccountIdentity, AccountState
from oms.cache import OrderCache
from oms.errors import AllocatorExhausted, ValidationError

# 1 (0 means "no userref" in Kraken's answers) .. 2**31 - 1, the largest positive int32.
from oms.orders import USERREF_MAX, USERREF_MIN, check_userref

__all__ = [
    "USERREF_MAX",
    "USERREF_MIN",
    "CounterAllocator",
    "RandomAllocator",
    "TimestampAllocator",
    "UserrefAllocator",
    "sub_range",
]


class UserrefAllocator(Protocol):
    """Anything that hands out userrefs within ``lo..hi``."""

    @property
    def lo(self) -> int: ...

    @property
    def hi(self) -> int: ...

    def allocate(self) -> int:
        """A userref in ``lo..hi``; :class:`~oms.errors.AllocatorExhausted` if none is left."""
        ...


def _check_range(lo: object, hi: object) -> tuple[int, int]:
    bounds = []
    for name, value in (("lo", lo), ("hi", hi)):
        try:
            bounds.append(check_userref(value))
        except ValidationError as exc:
            raise ValidationError(f"{name}: {exc}", field=name, rule=exc.rule) from None
    if bounds[0] > bounds[1]:
        raise ValidationError(f"lo={lo} is above hi={hi}", field="lo", rule="userref-range")
    return bounds[0], bounds[1]


def sub_range(
    index: int, count: int, *, lo: int = USERREF_MIN, hi: int = USERREF_MAX
) -> tuple[int, int]:
    """The ``index``-th of ``count`` disjoint, contiguous slices of ``lo..hi`` (0-based).

    Give each process or host trading one account its own slice and their userrefs can never
    collide, with no coordination between them.
    """
    lo, hi = _check_range(lo, hi)
    size = hi - lo + 1
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= size:
        raise ValidationError(f"count must be 1..{size}, got {count!r}", field="count")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
        raise ValidationError(f"index must be 0..{count - 1}, got {index!r}", field="index")
    start = lo + size * index // count
    end = lo + size * (index + 1) // count - 1
    return start, end


#: Where a persisted allocator keeps its sequence: an order cache, an account's machine-wide
#: state (:class:`~oms.account.AccountState`), or the path of an order cache.
Store = OrderCache | AccountState


def _open_cache(where: Store | str | os.PathLike[str]) -> tuple[Store, bool]:
    """The store to persist in, and whether it was opened here (and must be closed here)."""
    if isinstance(where, (OrderCache, AccountState)):
        return where, False
    return OrderCache(where), True


class _Ranged:
    """The bounds every allocator reports (read-only: they are checked once, at creation)."""

    _lo: int
    _hi: int

    @property
    def lo(self) -> int:
        return self._lo

    @property
    def hi(self) -> int:
        return self._hi


class _Persisted:
    """Closing for allocators that may have opened their own database connection."""

    _cache: Store | None
    _owns: bool

    @property
    def store(self) -> Store | None:
        """Where the sequence is kept (``None`` for a timestamp allocator kept in memory)."""
        return self._cache

    def close(self) -> None:
        """Close the database connection if this allocator opened it (not a cache passed in)."""
        if self._cache is not None and self._owns:
            self._cache.close()

    def __enter__(self: _P) -> _P:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_P = TypeVar("_P", bound=_Persisted)


class CounterAllocator(_Ranged, _Persisted):
    """``lo``, ``lo + 1``, ... persisted in SQLite; atomic across threads and processes.

    ``where`` is an account's machine-wide :class:`~oms.account.AccountState` (see
    :meth:`for_account`, the :class:`~oms.OrderManager`'s default), an
    :class:`~oms.cache.OrderCache` or a database path (several counters, with different
    ``name`` or ranges, can share one file). The counter never wraps: reusing a userref would
    make old and new orders indistinguishable, so past ``hi`` it raises
    :class:`~oms.errors.AllocatorExhausted`. With ``skip_in_use`` (the default) a value that is
    in use there (an order, intent or group in a cache; a reserved userref in an account
    state) is stepped over, in the same transaction as the step.
    """

    def __init__(
        self,
        where: Store | str | os.PathLike[str],
        *,
        name: str = "counter",
        lo: int = USERREF_MIN,
        hi: int = USERREF_MAX,
        skip_in_use: bool = True,
    ):
        self._lo, self._hi = _check_range(lo, hi)
        if not isinstance(name, str) or not name:
            raise ValidationError("name must be a non-empty string", field="name")
        self.name = name
        self._skip_in_use = bool(skip_in_use)
        self._cache, self._owns = _open_cache(where)

    @classmethod
    def for_account(
        cls,
        identity: AccountIdentity,
        *,
        lo: int = USERREF_MIN,
        hi: int = USERREF_MAX,
        directory: str | os.PathLike[str] | None = None,
    ) -> CounterAllocator:
        """A counter in the account's machine-wide state: every program on this machine
        allocating for the account (whatever its order database) shares it, and it skips
        userrefs reserved there."""
        lo, hi = _check_range(lo, hi)
        allocator = cls(AccountState.for_account(identity, directory=directory), lo=lo, hi=hi)
        allocator._owns = True
        return allocator

    def __repr__(self) -> str:
        return f"CounterAllocator(name={self.name!r}, lo={self._lo}, hi={self._hi})"

    def _step(self, last: int | None) -> int:
        value = self._lo if last is None else max(last + 1, self._lo)
        if value > self._hi:
            raise AllocatorExhausted(
                f"counter {self.name!r} has handed out every userref in {self._lo}..{self._hi}"
            )
        return value

    def allocate(self) -> int:
        assert self._cache is not None
        return self._cache.advance_sequence(
            self.name,
            self._lo,
            self._hi,
            self._step,
            kind="counter",
            skip_in_use=self._skip_in_use,
        )

    def last(self) -> int | None:
        """The last value handed out (by any process), or ``None`` before the first."""
        assert self._cache is not None
        return self._cache.sequence_last(self.name, self._lo, self._hi, kind="counter")


class RandomAllocator(_Ranged):
    """Uniform over ``lo..hi``, never a value ``in_use`` reports (e.g. the cache's userrefs).

    ``rng`` is injected for tests; by default a :class:`random.SystemRandom`, so processes
    started at the same instant do not draw the same sequence. Collisions with another process
    that does not share the cache stay possible (birthday odds: ~1 in 2,000 after 1,000 draws
    on the full range); when that matters use :func:`sub_range` slices or a counter.
    """

    def __init__(
        self,
        *,
        lo: int = USERREF_MIN,
        hi: int = USERREF_MAX,
        rng: random.Random | None = None,
        in_use: Callable[[int], bool] | None = None,
        max_tries: int = 64,
    ):
        self._lo, self._hi = _check_range(lo, hi)
        if isinstance(max_tries, bool) or not isinstance(max_tries, int) or max_tries < 1:
            raise ValidationError("max_tries must be a positive int", field="max_tries")
        self._rng = rng if rng is not None else random.SystemRandom()
        self._in_use = in_use
        self._max_tries = max_tries
        # Handed out by this allocator but maybe not yet recorded where in_use can see it.
        self._issued: set[int] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RandomAllocator(lo={self._lo}, hi={self._hi})"

    def allocate(self) -> int:
        with self._lock:
            for _ in range(self._max_tries):
                value = self._rng.randint(self._lo, self._hi)
                if value in self._issued or (self._in_use is not None and self._in_use(value)):
                    continue
                self._issued.add(value)
                return value
        raise AllocatorExhausted(
            f"no free userref in {self._lo}..{self._hi} after {self._max_tries} random draws; "
            "the range is nearly full"
        )


class TimestampAllocator(_Ranged, _Persisted):
    """The current unix second as a userref; never the same second twice.

    When two allocations fall in one second, the second gets the next unused second (the
    allocator runs ahead of the clock for a burst, then the clock catches up). ``where`` (a
    cache or database path) persists the last value, shared across processes like the
    counter's; with ``skip_in_use`` (the default) a second some order, intent or group in that
    file already carries is stepped over.

    Kept in memory only, a restarted program would hand out again the seconds the last one
    ran ahead of the clock (a burst of 100 allocations is 100 s of lead): so memory is used
    only when asked for, with ``memory_only=True`` — for one short-lived process, or values
    that are checked elsewhere (the :class:`~oms.OrderManager` refuses values its cache knows).
    Past ``hi`` (by default 2,147,483,647 = 2038-01-19 03:14:07 UTC) it raises
    :class:`~oms.errors.AllocatorExhausted` rather than wrap.
    """

    def __init__(
        self,
        *,
        lo: int = USERREF_MIN,
        hi: int = USERREF_MAX,
        clock: Callable[[], float] = time.time,
        where: Store | str | os.PathLike[str] | None = None,
        name: str = "timestamp",
        memory_only: bool = False,
        skip_in_use: bool = True,
    ):
        self._lo, self._hi = _check_range(lo, hi)
        if where is not None and memory_only:
            raise ValidationError(
                "give where= or memory_only=True, not both", field="where", rule="exclusive"
            )
        if where is None and not memory_only:
            raise ValidationError(
                "TimestampAllocator needs where= (an OrderCache or a database path): in memory "
                "a restart hands out again the seconds the last run was ahead of the clock. "
                "Pass memory_only=True instead to accept that",
                field="where",
                rule="required",
            )
        self._clock = clock
        self.name = name
        self._skip_in_use = bool(skip_in_use)
        self._cache, self._owns = _open_cache(where) if where is not None else (None, False)
        self._last: int | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TimestampAllocator(lo={self._lo}, hi={self._hi})"

    def _step(self, last: int | None) -> int:
        now = int(self._clock())
        value = max(now, self._lo) if last is None else max(now, self._lo, last + 1)
        if value > self._hi:
            when = "2038-01-19 03:14:07 UTC" if self._hi == USERREF_MAX else str(self._hi)
            raise AllocatorExhausted(
                f"timestamp userref {value} would pass {self._hi} ({when}); "
                "switch to a counter or random allocator"
            )
        return value

    def allocate(self) -> int:
        if self._cache is not None:
            return self._cache.advance_sequence(
                self.name,
                self._lo,
                self._hi,
                self._step,
                kind="timestamp",
                skip_in_use=self._skip_in_use,
            )
        with self._lock:
            self._last = self._step(self._last)
            return self._last

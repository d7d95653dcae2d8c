"""Every allocator hands out userrefs only within lo..hi ⊆ 1..2**31-1, never the same one twice."""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oms.cache import Group, Intent, IntentState, OrderCache
from oms.errors import AllocatorExhausted, ValidationError
from oms.models import Order
from oms.orders import check_userref
from oms.userref import (
    USERREF_MAX,
    USERREF_MIN,
    CounterAllocator,
    RandomAllocator,
    TimestampAllocator,
    sub_range,
)


def api_order(txid: str, *, userref: int) -> Order:
    return Order.from_api(
        txid,
        {
            "userref": userref,
            "status": "open",
            "opentm": 1_700_000_000.0,
            "descr": {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "1.0"},
            "vol": "1",
            "vol_exec": "0",
            "cost": "0",
            "fee": "0",
            "price": "0",
        },
    )


def pending_intent(intent_id: str, *, userref: int) -> Intent:
    return Intent(
        id=intent_id,
        created_at=1_700_000_000.0,
        userref=userref,
        pair="XBTUSD",
        side="buy",
        ordertype="limit",
        volume=Decimal("1"),
        price=Decimal("1.0"),
        params={},
        state=IntentState.PENDING,
    )


ranges = (
    st.tuples(
        st.integers(min_value=USERREF_MIN, max_value=USERREF_MAX),
        st.integers(min_value=USERREF_MIN, max_value=USERREF_MAX),
    )
    .map(sorted)
    .map(tuple)
)


def test_bounds_agree_with_the_order_check() -> None:
    assert check_userref(USERREF_MIN) == USERREF_MIN
    assert check_userref(USERREF_MAX) == USERREF_MAX
    for outside in (USERREF_MIN - 1, USERREF_MAX + 1):
        with pytest.raises(ValidationError):
            check_userref(outside)


@pytest.mark.parametrize(
    ("lo", "hi"),
    [(0, 10), (-5, 10), (1, USERREF_MAX + 1), (10, 9), (True, 5)],
)
@pytest.mark.parametrize("make", ["counter", "random", "timestamp"])
def test_ranges_outside_the_userref_range_are_refused(
    lo: int, hi: int, make: str, tmp_path: Path
) -> None:
    factories = {
        "counter": lambda: CounterAllocator(tmp_path / "db", lo=lo, hi=hi),
        "random": lambda: RandomAllocator(lo=lo, hi=hi),
        "timestamp": lambda: TimestampAllocator(lo=lo, hi=hi, memory_only=True),
    }
    with pytest.raises(ValidationError) as info:
        factories[make]()
    assert info.value.rule in ("userref-range", "type")


# --- counter ----------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(bounds=ranges, n=st.integers(min_value=1, max_value=20))
def test_counter_counts_within_bounds_and_refuses_past_hi(bounds: tuple[int, int], n: int) -> None:
    lo, hi = bounds
    with tempfile.TemporaryDirectory() as folder:
        got: list[int] = []
        with CounterAllocator(Path(folder) / "c.db", lo=lo, hi=hi) as counter:
            for _ in range(n):
                try:
                    got.append(counter.allocate())
                except AllocatorExhausted:
                    break
    assert got == list(range(lo, lo + len(got)))
    assert all(lo <= v <= hi for v in got)
    assert len(got) == min(n, hi - lo + 1)


def test_counter_never_wraps(tmp_path: Path) -> None:
    with CounterAllocator(tmp_path / "c.db", lo=USERREF_MAX - 1) as counter:
        assert [counter.allocate(), counter.allocate()] == [USERREF_MAX - 1, USERREF_MAX]
        for _ in range(2):
            with pytest.raises(AllocatorExhausted):
                counter.allocate()


def test_counter_continues_after_restart(tmp_path: Path) -> None:
    with CounterAllocator(tmp_path / "c.db", lo=100) as first:
        values = [first.allocate() for _ in range(3)]
    with CounterAllocator(tmp_path / "c.db", lo=100) as again:
        assert again.last() == values[-1]
        assert again.allocate() == values[-1] + 1


def test_counters_with_other_names_or_ranges_are_independent(tmp_path: Path) -> None:
    with OrderCache(tmp_path / "c.db") as cache:
        a = CounterAllocator(cache, name="a", lo=1, hi=100)
        b = CounterAllocator(cache, name="b", lo=1, hi=100)
        c = CounterAllocator(cache, name="a", lo=200, hi=300)
        assert (a.allocate(), b.allocate(), c.allocate(), a.allocate()) == (1, 1, 200, 2)


def test_counter_is_unique_across_threads(tmp_path: Path) -> None:
    cache = OrderCache(tmp_path / "c.db")
    got: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        # One allocator per thread on one shared cache and one per thread on its own
        # connection: both must serialise.
        shared = CounterAllocator(cache)
        with CounterAllocator(tmp_path / "c.db") as own:
            for i in range(40):
                value = (own if i % 2 else shared).allocate()
                with lock:
                    got.append(value)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cache.close()
    assert sorted(got) == list(range(1, 6 * 40 + 1))


_CHILD = """
import sys, time
from pathlib import Path
from oms.userref import CounterAllocator
db, go, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
counter = CounterAllocator(db, lo=1000)
while not go.exists():
    time.sleep(0.005)
print(" ".join(str(counter.allocate()) for _ in range(n)))
counter.close()
"""


def test_counter_is_unique_across_processes(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    OrderCache(db).close()  # create the schema once so the children only race on allocation
    go = tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(db), str(go), "60"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    go.touch()  # start all four at once
    values: list[int] = []
    for child in children:
        out, _ = child.communicate(timeout=60)
        assert child.returncode == 0
        values.extend(int(v) for v in out.split())
    assert sorted(values) == list(range(1000, 1000 + 4 * 60))


@pytest.mark.parametrize("holder", ["group", "order", "intent"])
def test_counter_steps_over_userrefs_already_in_use(tmp_path: Path, holder: str) -> None:
    with OrderCache(tmp_path / "c.db") as cache:
        if holder == "group":
            cache.add_group(Group(userref=2, label="hand-chosen", created_at=0.0))
        elif holder == "order":
            cache.upsert_orders([api_order("OHAND", userref=2)])
        else:
            cache.add_intent(pending_intent("i-hand", userref=2))
        counter = CounterAllocator(cache)
        assert [counter.allocate(), counter.allocate(), counter.allocate()] == [1, 3, 4]


def test_counter_and_timestamp_with_one_name_keep_separate_sequences(tmp_path: Path) -> None:
    with OrderCache(tmp_path / "c.db") as cache:
        stamps = TimestampAllocator(where=cache, name="shared", clock=_Clock(1_700_000_000.0))
        counter = CounterAllocator(cache, name="shared")
        assert stamps.allocate() == 1_700_000_000
        assert counter.allocate() == 1  # not 1_700_000_001
        assert stamps.allocate() == 1_700_000_001
        assert counter.last() == 1


# --- random -----------------------------------------------------------------------------------


class _RecordingRandom(random.Random):
    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.calls: list[tuple[int, int]] = []

    def randint(self, a: int, b: int) -> int:
        self.calls.append((a, b))
        return super().randint(a, b)


@settings(max_examples=50)
@given(bounds=ranges, seed=st.integers(min_value=0, max_value=2**32))
def test_random_draws_uniformly_over_the_whole_range(bounds: tuple[int, int], seed: int) -> None:
    lo, hi = bounds
    rng = _RecordingRandom(seed)
    allocator = RandomAllocator(lo=lo, hi=hi, rng=rng)
    value = allocator.allocate()
    assert lo <= value <= hi
    # Every draw is randint over the full range: uniform, and never 0 or negative.
    assert set(rng.calls) == {(lo, hi)}


def test_random_spreads_evenly_over_a_small_range() -> None:
    allocator = RandomAllocator(lo=1, hi=10, rng=random.Random(7))
    draws = Counter()
    for _ in range(200):
        draws[allocator.allocate()] += 1
        allocator._issued.clear()  # measure the distribution, not the no-repeat rule
    expected = 200 / 10
    # Chi-squared with 9 degrees of freedom: 21.67 is the 99% quantile.
    chi2 = sum((draws[v] - expected) ** 2 / expected for v in range(1, 11))
    assert chi2 < 21.67


def test_random_skips_values_in_use_and_never_repeats() -> None:
    in_use = {3, 5}
    allocator = RandomAllocator(lo=1, hi=6, rng=random.Random(1), in_use=in_use.__contains__)
    got = {allocator.allocate() for _ in range(4)}
    assert got == {1, 2, 4, 6}


def test_random_skips_userrefs_the_cache_knows(tmp_path: Path) -> None:
    with OrderCache(tmp_path / "c.db") as cache:
        cache.add_group(Group(userref=2, label="taken", created_at=0.0))
        allocator = RandomAllocator(lo=1, hi=2, rng=random.Random(3), in_use=cache.userref_in_use)
        assert allocator.allocate() == 1


def test_random_gives_up_when_the_range_is_full() -> None:
    allocator = RandomAllocator(lo=9, hi=9, rng=random.Random(0), max_tries=5)
    assert allocator.allocate() == 9
    with pytest.raises(AllocatorExhausted):
        allocator.allocate()


# --- timestamp --------------------------------------------------------------------------------


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_timestamp_is_the_current_second() -> None:
    clock = _Clock(1_700_000_000.75)
    assert TimestampAllocator(clock=clock, memory_only=True).allocate() == 1_700_000_000


def test_timestamp_in_memory_only_when_asked_for(tmp_path: Path) -> None:
    """In memory, a restart inside the burst's lead over the clock hands the same seconds out
    again; so it must be asked for by name, and the persisted one is the default."""
    with pytest.raises(ValidationError) as info:
        TimestampAllocator(clock=_Clock(1_700_000_000.0))
    assert info.value.field == "where"
    clock = _Clock(1_700_000_000.0)
    db = tmp_path / "t.db"
    with TimestampAllocator(clock=clock, where=db) as first:
        burst = [first.allocate() for _ in range(5)]
    with TimestampAllocator(clock=clock, where=db) as restarted:  # same second, new process
        again = [restarted.allocate() for _ in range(5)]
    assert not set(burst) & set(again)


@settings(max_examples=50)
@given(steps=st.lists(st.floats(min_value=0, max_value=3), min_size=1, max_size=30))
def test_timestamp_never_repeats_even_within_a_second(steps: list[float]) -> None:
    clock = _Clock(1_700_000_000.0)
    allocator = TimestampAllocator(clock=clock, memory_only=True)
    got = []
    for step in steps:
        clock.now += step
        value = allocator.allocate()
        got.append(value)
        # Never behind the clock, never more ahead than the burst so far requires.
        assert value >= int(clock.now)
    assert got == sorted(set(got))


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (USERREF_MAX - 1.0, [USERREF_MAX - 1, USERREF_MAX, "refused"]),
        (USERREF_MAX + 0.5, [USERREF_MAX, "refused"]),  # 2038-01-19 03:14:07.5 UTC
        (USERREF_MAX + 1.0, ["refused"]),  # 03:14:08: the first second past the range
        (USERREF_MAX + 3600.0, ["refused"]),
    ],
)
def test_timestamp_refuses_after_2038_instead_of_wrapping(
    now: float, expected: list[object]
) -> None:
    allocator = TimestampAllocator(clock=_Clock(now), memory_only=True)
    handed_out = [v for v in expected if v != "refused"]
    assert [allocator.allocate() for _ in handed_out] == handed_out
    for _ in range(2):  # and keeps refusing
        with pytest.raises(AllocatorExhausted, match="2038"):
            allocator.allocate()


def test_timestamp_sub_range_starts_at_lo_and_stops_at_hi() -> None:
    allocator = TimestampAllocator(
        lo=2_000_000_000, hi=2_000_000_001, clock=_Clock(1_700_000_000), memory_only=True
    )
    assert [allocator.allocate(), allocator.allocate()] == [2_000_000_000, 2_000_000_001]
    with pytest.raises(AllocatorExhausted):
        allocator.allocate()


def test_persisted_timestamps_are_unique_across_allocators(tmp_path: Path) -> None:
    clock = _Clock(1_700_000_000.0)
    with (
        TimestampAllocator(clock=clock, where=tmp_path / "t.db") as a,
        TimestampAllocator(clock=clock, where=tmp_path / "t.db") as b,
    ):
        assert [a.allocate(), b.allocate(), a.allocate()] == [
            1_700_000_000,
            1_700_000_001,
            1_700_000_002,
        ]


# --- sub ranges -------------------------------------------------------------------------------


@given(bounds=ranges, count=st.integers(min_value=1, max_value=64), data=st.data())
def test_sub_ranges_partition_the_range(
    bounds: tuple[int, int], count: int, data: st.DataObject
) -> None:
    lo, hi = bounds
    count = min(count, hi - lo + 1)
    slices = [sub_range(i, count, lo=lo, hi=hi) for i in range(count)]
    assert slices[0][0] == lo
    assert slices[-1][1] == hi
    for (_, end), (start, _) in itertools.pairwise(slices):
        assert start == end + 1  # contiguous and disjoint
    assert all(s <= e for s, e in slices)
    i = data.draw(st.integers(min_value=0, max_value=count - 1))
    s, e = slices[i]
    assert RandomAllocator(lo=s, hi=e, rng=random.Random(i)).allocate() in range(s, e + 1)


@pytest.mark.parametrize(("index", "count"), [(3, 3), (-1, 3), (0, 0)])
def test_sub_range_refuses_bad_slices(index: int, count: int) -> None:
    with pytest.raises(ValidationError):
        sub_range(index, count)

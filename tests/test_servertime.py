"""The server-time estimate is never further from Kraken's clock than its stated uncertainty,
and a step of the local clock is noticed and measured again."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms.servertime import ServerClock


class World:
    """Real time ``t``; the server's clock is ``t + server_skew``; the local one
    ``t + local_skew``; a ``Time`` call takes ``rtt`` and is read ``read_at`` of the way in."""

    def __init__(self, server_skew: float, local_skew: float, rtt: float, read_at: float):
        self.t = 1_700_000_000.0
        self.server_skew = server_skew
        self.local_skew = local_skew
        self.rtt = rtt
        self.read_at = read_at
        self.calls = 0

    def local(self) -> float:
        return self.t + self.local_skew

    def monotonic(self) -> float:
        return self.t - 1_699_000_000.0

    def fetch(self) -> float:
        self.calls += 1
        self.t += self.rtt * self.read_at
        unixtime = math.floor(self.t + self.server_skew)
        self.t += self.rtt * (1 - self.read_at)
        return unixtime

    def server(self) -> float:
        return self.t + self.server_skew


skews = st.floats(min_value=-120, max_value=120, allow_nan=False)


@given(
    server_skew=skews,
    local_skew=skews,
    rtt=st.floats(min_value=0, max_value=3),
    read_at=st.floats(min_value=0, max_value=1),
)
def test_the_estimate_is_within_its_uncertainty(
    server_skew: float, local_skew: float, rtt: float, read_at: float
) -> None:
    world = World(server_skew, local_skew, rtt, read_at)
    clock = ServerClock(world.fetch, clock=world.local, monotonic=world.monotonic)
    estimate = clock.now()
    assert abs(estimate - world.server()) <= clock.uncertainty + 1e-6
    assert clock.floor is not None
    assert clock.floor <= world.server()  # a time the server certainly reached


@given(step=st.floats(min_value=1.5, max_value=60) | st.floats(min_value=-60, max_value=-1.5))
def test_a_local_clock_step_is_measured_again(step: float) -> None:
    world = World(server_skew=0.0, local_skew=0.0, rtt=0.01, read_at=0.5)
    clock = ServerClock(world.fetch, clock=world.local, monotonic=world.monotonic)
    clock.now()
    clock.now()
    assert world.calls == 1  # nothing stale: measured once
    world.local_skew += step
    estimate = clock.now()
    assert world.calls == 2
    assert abs(estimate - world.server()) <= clock.uncertainty + 1e-6


def test_a_stale_estimate_is_measured_again_and_a_failure_keeps_the_last() -> None:
    world = World(server_skew=5.0, local_skew=0.0, rtt=0.01, read_at=0.5)
    clock = ServerClock(world.fetch, clock=world.local, monotonic=world.monotonic, max_age=300)
    clock.now()
    world.t += 301
    clock.now()
    assert world.calls == 2

    def down() -> float:
        raise OSError("no route")

    failing = ServerClock(down, clock=world.local, monotonic=world.monotonic)
    with pytest.raises(OSError, match="no route"):  # never measured: nothing to estimate from
        failing.now()
    clock._fetch = down
    clock.invalidate()
    assert abs(clock.now() - world.server()) <= clock.uncertainty + 1e-6  # the last offset

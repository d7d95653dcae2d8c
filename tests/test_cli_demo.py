"""The demo fills some rungs and cancels a non-empty group on every run, whatever the wall
clock says when it starts: its ladder is planned on the sandbox's own price path."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import oms.cli.demo as demo_module
from oms.cli.demo import demo, plan_ladder

#: Start times a day apart and at odd minutes: the price path differs at each.
STARTS = [1_700_000_000.0 + k * 86_400 + k * 437.0 for k in range(6)]


@pytest.mark.parametrize("start", STARTS)
def test_every_run_fills_and_cancels(
    start: float, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo_module.time, "time", lambda: start)
    result = CliRunner().invoke(
        demo, [], env={"KRAKEN_API_KEY": "", "OMS_DATA_DIR": str(tmp_path)}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    filled = int(re.search(r"filled\s+(\d+)\n", result.output).group(1))  # type: ignore[union-attr]
    cancelled = int(re.search(r"cancelled\s+(\d+),", result.output).group(1))  # type: ignore[union-attr]
    assert filled >= 1
    assert cancelled >= 1
    assert "the group cancel checks out" in result.output
    assert "identical to the exchange's" in result.output


@given(
    last=st.integers(10_000, 100_000).map(Decimal),
    dip=st.integers(20, 2_000).map(Decimal),
    rungs=st.integers(2, 20),
    tick=st.sampled_from([Decimal("0.1"), Decimal("1"), Decimal("0.01")]),
)
def test_plan_ladder_straddles_the_low(
    last: Decimal, dip: Decimal, rungs: int, tick: Decimal
) -> None:
    low = last - dip
    prices, above = plan_ladder(last, low, rungs, tick)
    assert len(prices) == rungs
    assert above == max(1, rungs // 2)
    assert all(low <= p <= last for p in prices[:above])
    assert all(p < low for p in prices[above:])
    assert all(p % tick == 0 for p in prices)
    assert prices == sorted(prices, reverse=True)

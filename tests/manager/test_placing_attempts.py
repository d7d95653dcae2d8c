"""The placing part: one owner of retries, so ``Placement.attempts`` is what was sent."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from oms.errors import OrderNotPlaced
from oms.manager import OrderManager
from oms.orders import OrderRequest
from oms.sandbox import ManualClock, Sandbox


@pytest.fixture
def sb() -> Sandbox:
    return Sandbox.in_process(seed=5, clock=ManualClock(1_700_000_000.0))


@pytest.fixture
def mgr(sb: Sandbox, tmp_path: Path) -> Iterator[OrderManager]:
    clock = sb.clock
    assert isinstance(clock, ManualClock)
    with OrderManager(
        sb.client(), tmp_path / "p.db", clock=clock.time, sleep=clock.advance, max_attempts=3
    ) as m:
        yield m


def _order(sb: Sandbox) -> OrderRequest:
    price = (sb.market.last_price("XBTUSD") * Decimal("0.5")).quantize(Decimal("0.1"))
    return OrderRequest(pair="XBTUSD", side="buy", ordertype="limit", volume="0.001", price=price)


@pytest.mark.parametrize(
    ("kind", "error"),
    [("error", "EAPI:Invalid nonce"), ("rate_limit", None), ("unavailable", None)],
)
def test_attempts_equal_the_addorder_requests_sent(
    sb: Sandbox, mgr: OrderManager, kind: str, error: str | None
) -> None:
    # The client repeats other calls after a refused nonce (or a rate limit); an AddOrder is
    # repeated only by the manager, which counts every request it sends.
    mgr.place(_order(sb))  # warm: pairs, time
    rule = sb.faults.add(method="AddOrder", kind=kind, count=2, error=error)
    placed = mgr.place(_order(sb))
    assert placed.placed
    assert rule.fired == 2
    assert placed.attempts == rule.fired + 1 == 3
    assert mgr.requests["AddOrder"] == 1 + placed.attempts


def test_max_attempts_bounds_the_requests_sent(sb: Sandbox, mgr: OrderManager) -> None:
    mgr.place(_order(sb))
    rule = sb.faults.add(method="AddOrder", kind="error", error="EAPI:Invalid nonce", count=10)
    with pytest.raises(OrderNotPlaced):
        mgr.place(_order(sb))
    assert rule.fired == 3  # max_attempts requests, never max_attempts x the client's retries
    assert mgr.requests["AddOrder"] == 1 + 3

"""Helpers shared by the order manager's tests (a sandbox on a manual clock, managers
that are closed after each test, and a fault-free view of the exchange)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

from oms.cache import OrderCache
from oms.manager import (
    OrderManager,
)
from oms.models import Order
from oms.orders import OrderRequest
from oms.sandbox import ManualClock, Sandbox

START = 1_700_000_000.0


OPENED: list[OrderManager] = []


@pytest.fixture(autouse=True)
def _nonce_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OMS_DATA_DIR", str(tmp_path / "data"))
    yield
    while OPENED:  # close every manager a test made (their SQLite connections with them)
        OPENED.pop().close()


@pytest.fixture
def sb() -> Sandbox:
    return Sandbox.in_process(seed=3, clock=ManualClock(START))


def manager(sb: Sandbox, db: Path | OrderCache, **kw: Any) -> OrderManager:
    clock = sb.clock
    assert isinstance(clock, ManualClock)
    made = OrderManager(sb.client(), db, clock=clock.time, sleep=clock.advance, **kw)
    OPENED.append(made)
    return made


@pytest.fixture
def mgr(sb: Sandbox, tmp_path: Path) -> Iterator[OrderManager]:
    m = manager(sb, tmp_path / "oms.db")
    yield m
    m.close()


def far_price(sb: Sandbox, side: str = "buy", pair: str = "XBTUSD") -> Decimal:
    """A limit price that will not fill during a test: half (or double) the market."""
    last = sb.market.last_price(pair)
    factor = Decimal("0.5") if side == "buy" else Decimal("2")
    return (last * factor).quantize(Decimal("0.1"))


def limit(
    sb: Sandbox, *, side: str = "buy", volume: str = "0.001", price: Decimal | None = None
) -> OrderRequest:
    return OrderRequest(
        pair="XBTUSD",
        side=side,
        ordertype="limit",
        volume=volume,
        price=price if price is not None else far_price(sb, side),
    )


def exchange_orders(sb: Sandbox) -> dict[str, Order]:
    """Every order the exchange has for the account, asked through a fault-free path that
    leaves the key's REST counter alone (its own client would not share the manager's
    pacing, and history calls cost 4)."""
    saved = sb.faults.rules
    sb.faults.clear()
    config = sb.exchange.config
    sb.exchange.config = attrs.evolve(config, rest_rate_limit=False)
    try:
        client = sb.client()
        found = {o.txid: o for o in client.open_orders()}
        found.update({o.txid: o for o in client.iter_closed_orders()})
    finally:
        sb.exchange.config = config
        for rule in saved:
            sb.faults.add(
                kind=rule.kind, method=rule.method, count=rule.remaining,
                probability=rule.probability, when=rule.when,
                status=rule.status if rule.kind.value == "html" else None,
                delay=rule.delay or None, error=rule.error, skip=rule.skip,
            )  # fmt: skip
    return found


def with_userref(sb: Sandbox, userref: int) -> list[Order]:
    return [o for o in exchange_orders(sb).values() if o.userref == userref]


def fields_of(req: OrderRequest) -> dict[str, Any]:
    return {
        "pair": req.pair,
        "side": req.side,
        "ordertype": req.ordertype,
        "volume": req.volume,
        "price": req.price,
    }


class Crash(BaseException):
    """Stands for the process dying: nothing after it runs (BaseException skips cleanup code)."""


def crashing_manager(sb: Sandbox, db: Path) -> OrderManager:
    clock = sb.clock
    assert isinstance(clock, ManualClock)

    def die(seconds: float) -> None:
        raise Crash

    made = OrderManager(sb.client(), db, clock=clock.time, sleep=die)
    OPENED.append(made)
    return made


def assert_every_order_tracked(sb: Sandbox, m: OrderManager) -> None:
    cached = m.cache.txids()
    for order in exchange_orders(sb).values():
        assert order.txid in cached, order

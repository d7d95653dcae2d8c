"""Helpers for the history and funding tests: a sandbox with a short trade history on a
ManualClock (in-process or over real HTTP on 127.0.0.1), and the market's own tape."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from oms.sandbox import (
    IN_PROCESS_URL,
    Faults,
    ManualClock,
    Market,
    MarketTrade,
    Sandbox,
    SandboxAdapter,
    SandboxConfig,
)

T0 = 1_700_000_000.0
NS = 1_000_000_000


@contextmanager
def short_history_sandbox(
    *, http: bool = False, hours: float = 4, seed: int = 3, clock: ManualClock | None = None
) -> Iterator[Sandbox]:
    """A sandbox whose market starts ``hours`` before ``T0`` (a few thousand trades per
    pair), with rate limits off so paging needs no waiting."""
    clock = clock if clock is not None else ManualClock(T0)
    market = Market(seed=seed, genesis=clock.time(), history=hours * 3600)
    exchange = Sandbox.build_exchange(
        clock=clock, market=market, config=SandboxConfig(seed=seed).without_limits()
    )
    if http:
        with Sandbox.serve(exchange=exchange) as sb:
            yield sb
        return
    faults = Faults(seed=seed)
    adapter = SandboxAdapter(exchange, faults=faults, sleep=clock.advance)
    yield Sandbox(exchange, faults=faults, base_url=IN_PROCESS_URL, adapter=adapter)


def market_tape(market: Market, pair_id: str) -> list[MarketTrade]:
    """Every trade on the market's tape, read from the market itself (not over HTTP)."""
    out: list[MarketTrade] = []
    since = 0
    while True:
        page, last = market.trades(pair_id, since, 1000)
        if not page:
            return out
        out.extend(page)
        since = last

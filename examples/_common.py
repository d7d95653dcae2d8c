"""Set-up shared by the examples: a built-in sandbox by default, a real exchange with --base-url.

Not an example itself. Each example calls :func:`session` and gets an ``OrderManager`` bound to
either a sandbox exchange started in the background (real HTTP on 127.0.0.1, a funded test
account, a clock the example can move) or, with ``--base-url``, the exchange at that URL with
the key and secret from ``KRAKEN_API_KEY`` / ``KRAKEN_API_SECRET``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from oms.client import KrakenClient
from oms.manager import OrderManager
from oms.sandbox import ManualClock, Sandbox


class Session:
    """What an example works with: the manager, and how to let time pass."""

    def __init__(self, manager: OrderManager, sandbox: Sandbox | None, clock: ManualClock | None):
        self.manager = manager
        self.sandbox = sandbox
        self._clock = clock

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` pass: sandbox time jumps ahead; on a real exchange we sleep."""
        if self._clock is not None:
            self._clock.advance(seconds)
        else:
            time.sleep(seconds)

    def price(self, pair: str, percent: str) -> Decimal:
        """The last price of ``pair`` moved by ``percent`` (e.g. "-2"), on the pair's tick."""
        info = self.manager.pair(pair)
        (ticker,) = self.manager.client.ticker(pair).values()
        tick = info.tick_size or Decimal(1).scaleb(-info.pair_decimals)
        raw = ticker.last * (1 + Decimal(percent) / 100)
        return (raw / tick).to_integral_value() * tick


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--base-url",
        help="trade on this exchange (e.g. https://api.kraken.com) with KRAKEN_API_KEY and "
        "KRAKEN_API_SECRET; default: a built-in sandbox, no keys needed",
    )
    p.add_argument("--db", help="the order cache file (default: a temporary file)")
    return p


@contextmanager
def session(args: argparse.Namespace) -> Iterator[Session]:
    with tempfile.TemporaryDirectory(prefix="oms-example-") as scratch:
        db = args.db or os.path.join(scratch, "orders.db")
        if args.base_url:
            client = KrakenClient.from_env(base_url=args.base_url)
            manager = OrderManager(client, db)
            try:
                yield Session(manager, None, None)
            finally:
                manager.close()
                client.close()
            return
        # The sandbox's throwaway keys get their nonce files here, not in the user's data dir.
        os.environ.setdefault("OMS_DATA_DIR", scratch)
        clock = ManualClock(time.time())
        with Sandbox.serve(seed=11, clock=clock) as sb:
            client = sb.client()
            manager = OrderManager(client, db, clock=clock.time, sleep=clock.advance)
            try:
                yield Session(manager, sb, clock)
            finally:
                manager.close()
                client.close()

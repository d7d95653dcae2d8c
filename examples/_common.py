"""Set-up shared by the examples: a built-in sandbox by default, a real exchange with --base-url.

Not an example itself. Each example calls :func:`session` and gets an ``OrderManager`` opened
the one way a strategy opens it: ``OrderManager.on_sandbox`` on a sandbox exchange started in
the background (real HTTP on 127.0.0.1, a funded test account, a clock the example can move),
or, with ``--base-url``, ``OrderManager.from_env`` on the exchange at that URL with the key and
secret from ``KRAKEN_API_KEY`` / ``KRAKEN_API_SECRET``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from oms import OrderManager, round_price
from oms.sandbox import ManualClock, Sandbox


class Session:
    """What an example works with: the manager, and how to let time pass."""

    def __init__(self, manager: OrderManager, sandbox: Sandbox | None, base_url: str | None):
        self.manager = manager
        self.sandbox = sandbox
        self.base_url = base_url

    def another(self, db: str) -> OrderManager:
        """A second manager on the same exchange and account (another program), opened the
        same way as the first."""
        if self.sandbox is not None:
            return OrderManager.on_sandbox(self.sandbox, db)
        return OrderManager.from_env(db, base_url=self.base_url)

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` pass: sandbox time jumps ahead; on a real exchange we sleep."""
        clock = None if self.sandbox is None else self.sandbox.clock
        if isinstance(clock, ManualClock):
            clock.advance(seconds)
        else:
            time.sleep(seconds)

    def price(self, pair: str, percent: str) -> Decimal:
        """The last price of ``pair`` moved by ``percent`` (e.g. "-2"), on the pair's tick."""
        (ticker,) = self.manager.client.ticker(pair).values()
        return round_price(ticker.last * (1 + Decimal(percent) / 100), self.manager.pair(pair))


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
            with OrderManager.from_env(db, base_url=args.base_url) as manager:
                yield Session(manager, None, args.base_url)
            return
        # The sandbox's throwaway keys get their nonce files here, not in the user's data dir.
        os.environ.setdefault("OMS_DATA_DIR", scratch)
        with (
            Sandbox.serve(seed=11, clock=ManualClock(time.time())) as sb,
            OrderManager.on_sandbox(sb, db) as manager,  # the sandbox's clock, given once
        ):
            yield Session(manager, sb, None)

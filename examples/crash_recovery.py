"""Crash in the middle of a placement (kill -9), restart, and find that nothing was lost or doubled.

    python examples/crash_recovery.py
    python examples/crash_recovery.py --base-url https://api.kraken.com --db orders.db

Against the built-in sandbox the script starts a child process that places an order; the
sandbox takes the order but holds back its answer, and the child is killed with SIGKILL while
it waits. A new OrderManager on the same database then resolves the placement the child left
behind before placing anything. With --base-url it does the restart part only: it resolves
whatever a crashed program left in --db.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal

from _common import parser, session

from oms import IntentState, OrderManager, OrderRequest


def child(base_url: str, db: str, price: str) -> None:
    """The program that crashes: it places one order and is killed before the answer comes."""
    # The sandbox at base_url, with the keys the parent put in the environment; a long read
    # timeout so that it is the kill, not a timeout, that ends the wait.
    manager = OrderManager.on_sandbox(
        base_url, db, deadline=5, client_options={"timeout": (3.05, 300)}
    )
    print("placing", flush=True)
    manager.place(
        OrderRequest(pair="XBTUSD", side="buy", ordertype="limit", volume="0.0001", price=price)
    )


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--child", nargs=3, metavar=("BASE_URL", "DB", "PRICE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(*args.child)
        return
    with session(args) as s:
        if s.sandbox is None:
            report = s.manager.recover()
            print(f"resolved: placed {report.placed}, absent {report.absent}")
            print(f"still unknown: {report.unknown}")
            return
        sb = s.sandbox
        db = s.manager.cache.path
        price = s.price("XBTUSD", "-5")
        # The sandbox commits the order, then sits on the answer for ten minutes.
        sb.faults.add(method="AddOrder", kind="delay", delay=600.0)
        env = {
            **os.environ,
            "KRAKEN_API_KEY": sb.key,
            "KRAKEN_API_SECRET": sb.secret,
            # The child keeps its own nonce file: it holds its lock while it waits.
            "OMS_DATA_DIR": os.path.join(os.path.dirname(db), "child"),
        }
        proc = subprocess.Popen(  # noqa: S603 -- this very script, as the child
            [sys.executable, __file__, "--child", sb.base_url, db, str(price)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        proc.stdout.readline()
        client = s.manager.client
        for _ in range(600):  # until the exchange has the order (at most ~30 s)
            if client.open_orders().orders:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        print(f"child placed an order and was killed with SIGKILL (exit {proc.returncode})")
        sb.faults.clear()

        m = s.manager
        (left,) = m.cache.intents(states=[IntentState.PENDING])
        print(f"it left intent {left.id[:8]}... (userref {left.userref}) pending")
        report = m.recover()
        resolved = m.cache.intent(left.id)
        assert resolved is not None
        print(f"after restart: intent is {resolved.state.value}, txid {resolved.txid}")
        on_exchange = [o for o in client.open_orders() if o.userref == left.userref]
        print(f"orders with userref {left.userref} on the exchange: {len(on_exchange)}")
        nxt = m.place(
            OrderRequest(
                pair="XBTUSD",
                side="buy",
                ordertype="limit",
                volume="0.0001",
                price=Decimal(price) - 10,
            )
        )
        print(f"and trading goes on: {nxt.txid} (userref {nxt.userref})")
        if report.placed != (left.id,) or len(on_exchange) != 1:
            raise SystemExit(1)


if __name__ == "__main__":
    main()

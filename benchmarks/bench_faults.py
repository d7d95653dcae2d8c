"""Placements under injected faults: duplicates and untracked orders (both must be 0), and the
cost of reconciling in extra requests.

    python benchmarks/bench_faults.py                       # 10,000 placements, 10 % faulted
    python benchmarks/bench_faults.py --placements 2000 --fault-rate 0.2

Runs an OrderManager against the in-process sandbox (no sockets; a manual clock, so waiting
for a deadline costs no real time; the sandbox's rate limits off, as they only add waiting).
Each faulted placement gets one fault drawn from the kinds below on its AddOrder; every order
carries its own userref, so a duplicate shows as two exchange orders with one userref.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import random
import shutil
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from oms.auth import key_fingerprint
from oms.cache import IntentState
from oms.errors import OutcomeUnknownError
from oms.manager import OrderManager, OrderNotPlaced
from oms.nonce import NonceSource
from oms.orders import OrderRequest
from oms.sandbox import ManualClock, Sandbox, SandboxConfig
from oms.sandbox.faults import method_of

FAULTS: dict[str, dict[str, Any]] = {
    "lost answer (after commit)": {"kind": "drop_after_commit"},
    "lost request (before commit)": {"kind": "drop_before_commit"},
    "502 page (after commit)": {"kind": "html", "status": 502},
    "520 page (before commit)": {"kind": "html", "status": 520, "when": "before"},
    "read timeout (after commit)": {"kind": "delay", "delay": 30.0},
    "late arrival (past deadline)": {"kind": "delay", "delay": 30.0, "when": "before"},
    "EService:Unavailable": {"kind": "unavailable"},
    "EService:Busy": {"kind": "busy"},
    "EGeneral:Internal error": {"kind": "error", "error": "EGeneral:Internal error"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--placements", type=int, default=10_000)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    # Each reconciliation logs a warning; at 1,000 of them that is noise here.
    logging.getLogger("oms").setLevel(logging.ERROR)
    folder = Path(tempfile.mkdtemp(prefix="oms-bench-"))
    try:
        report = run(args.placements, args.fault_rate, rng, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for key, value in report.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"    {k:<32} {v}")
        else:
            print(f"{key:<36} {value}")


def run(n: int, fault_rate: float, rng: random.Random, folder: Path) -> dict[str, Any]:
    clock = ManualClock(1_700_000_000.0)
    sb = Sandbox.in_process(seed=2, clock=clock, config=SandboxConfig(seed=2).without_limits())
    assert sb.adapter is not None
    requests: collections.Counter[str] = collections.Counter()
    send = sb.adapter.send

    def counting_send(request: Any, *a: Any, **kw: Any) -> Any:
        requests[method_of(request.path_url) or "?"] += 1
        return send(request, *a, **kw)

    sb.adapter.send = counting_send  # type: ignore[method-assign]
    nonces = NonceSource(key_fingerprint(sb.key), directory=folder)
    manager = OrderManager(
        sb.client(nonce_source=nonces),
        folder / "bench.db",
        clock=clock.time,
        sleep=clock.advance,
        # The manual clock stands for real time here (it never steps): measure steps against it.
        monotonic=clock.time,
    )
    manager.pair("XBTUSD")
    requests.clear()  # the pair lookup is set-up, not placement cost
    faulted: collections.Counter[str] = collections.Counter()
    outcomes: collections.Counter[str] = collections.Counter()
    t0 = time.perf_counter()
    for i in range(n):
        last = sb.market.last_price("XBTUSD")
        # Mostly resting orders far from the market; every 10th crosses it and fills at once,
        # so lookups must find orders in ClosedOrders too.
        factor = Decimal("1.05") if i % 10 == 9 else Decimal("0.5")
        request = OrderRequest(
            pair="XBTUSD",
            side="buy",
            ordertype="limit",
            volume="0.0001",
            price=(last * factor).quantize(Decimal("0.1")),
        )
        if rng.random() < fault_rate:
            name = rng.choice(sorted(FAULTS))
            faulted[name] += 1
            sb.faults.add(method="AddOrder", count=1, **FAULTS[name])
        try:
            placed = manager.place(request)
            outcomes["placed (reconciled)" if placed.reconciled else "placed"] += 1
        except OrderNotPlaced:
            outcomes["provably not placed"] += 1
        except OutcomeUnknownError:
            outcomes["outcome unknown"] += 1
        sb.faults.clear()
        clock.advance(1.0)
        if i % 1000 == 999:
            # Keep the book small (and the funds free), as a strategy would.
            manager.client.cancel_all()
    elapsed = time.perf_counter() - t0
    requests.pop("CancelAll", None)  # housekeeping, not part of the placement cost
    by_method = dict(sorted(requests.items()))  # before the final sync and checks add theirs
    placement_requests = sum(by_method.values())

    manager.sync()
    client = sb.client(nonce_source=nonces)
    on_exchange = {o.txid: o for o in client.open_orders()}
    on_exchange.update({o.txid: o for o in client.iter_closed_orders()})
    per_userref = collections.Counter(o.userref for o in on_exchange.values())
    duplicates = sum(count - 1 for count in per_userref.values() if count > 1)
    cached = manager.cache.txids()
    untracked = sum(1 for txid in on_exchange if txid not in cached)
    placed_intents = {
        i.txid for i in manager.cache.intents(states=[IntentState.PLACED]) if i.txid is not None
    }
    unresolved = len(manager.cache.intents(states=[IntentState.PENDING, IntentState.UNKNOWN]))
    manager.close()

    baseline = n  # one AddOrder per placement when nothing goes wrong
    extra = placement_requests - baseline
    n_faulted = sum(faulted.values())
    return {
        "placements": n,
        "faulted placements": n_faulted,
        "faults injected": dict(sorted(faulted.items())),
        "outcomes": dict(sorted(outcomes.items())),
        "orders on the exchange": len(on_exchange),
        "duplicates (must be 0)": duplicates,
        "untracked orders (must be 0)": untracked,
        "exchange orders without an intent": len(set(on_exchange) - placed_intents),
        "unresolved intents": unresolved,
        "requests during placement": placement_requests,
        "requests by method": by_method,
        "extra requests (vs 1 per placement)": extra,
        "extra requests per faulted placement": round(extra / n_faulted, 2) if n_faulted else 0,
        "wall time (s)": round(elapsed, 1),
    }


if __name__ == "__main__":
    main()

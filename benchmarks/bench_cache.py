"""How fast the order cache answers "orders with this userref" at a million cached orders.

    python benchmarks/bench_cache.py                 # 1,000,000 orders
    python benchmarks/bench_cache.py --rows 200000

Reports the time per by-userref query through ``OrderCache.by_userref`` (the index) and, as a
same-run baseline, the same query forced to scan the table (``NOT INDEXED``); the figure that
matters is their ratio, which does not depend on the machine. Also prints SQLite's query plan.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from oms.cache import OrderCache, _order_from_row


def _rows(n: int, groups: int, rng: random.Random) -> Any:
    start = 1_700_000_000.0
    for i in range(n):
        side = "buy" if i % 2 else "sell"
        yield {
            "txid": f"O{i:06d}-BENCH-{i % 997:06d}",
            "userref": rng.randint(1, groups),
            "status": "closed" if i % 10 else "open",
            "pair": ("XBTUSD", "ETHUSD", "XDGUSD")[i % 3],
            "side": side,
            "ordertype": "limit",
            "price": f"{60000 + (i % 5000)}.{i % 10}",
            "price2": "0",
            "leverage": "none",
            "descr_order": "",
            "descr_close": "",
            "vol": "0.00100000",
            "vol_exec": "0.00100000" if i % 10 else "0.00000000",
            "cost": "65.00000",
            "fee": "0.16900",
            "avg_price": "65000.0",
            "misc": "",
            "oflags": "fciq",
            "opentm": start + i,
            "closetm": start + i + 60 if i % 10 else None,
        }


def _time(fn: Any, refs: list[int]) -> float:
    """Median seconds per call of ``fn(ref)`` over ``refs``."""
    samples = []
    for ref in refs:
        t0 = time.perf_counter()
        fn(ref)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--per-userref", type=int, default=10, help="orders per userref")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--scans", type=int, default=5, help="queries for the slow baseline")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    groups = max(1, args.rows // args.per_userref)

    with tempfile.TemporaryDirectory() as folder:
        cache = OrderCache(Path(folder) / "bench.db")
        t0 = time.perf_counter()
        # Straight into the table in one transaction: the benchmark is about reading.
        with cache._write() as db:
            db.table("orders").insert_all(_rows(args.rows, groups, rng), batch_size=20_000)
        load = time.perf_counter() - t0
        refs = [rng.randint(1, groups) for _ in range(args.queries)]

        def indexed(ref: int) -> None:
            cache.by_userref(ref)

        def scanned(ref: int) -> None:
            # The same query and the same Order objects, only without the index.
            rows = cache._query(
                "SELECT * FROM orders NOT INDEXED WHERE userref = ? ORDER BY opentm DESC, txid",
                [ref],
            )
            [_order_from_row(r) for r in rows]

        found = len(cache.by_userref(refs[0]))
        fast = _time(indexed, refs)
        slow = _time(scanned, refs[: args.scans])
        plan = cache.explain_userref_query()
        cache.close()

    print(f"orders cached           {args.rows:,} ({groups:,} userrefs, ~{args.per_userref} each)")
    print(f"load                    {load:.1f} s")
    print(f"query plan              {plan}")
    print(f"by_userref (indexed)    {fast * 1e3:.3f} ms per query (median of {len(refs)})")
    print(f"full scan (baseline)    {slow * 1e3:.1f} ms per query (median of {args.scans})")
    print(f"speed-up                {slow / fast:,.0f}x  (orders per answer: {found})")


if __name__ == "__main__":
    main()

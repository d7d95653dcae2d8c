"""What the order manager itself spends on a 10,000-member group cancel (and on placing).

    python benchmarks/bench_group_cancel.py              # 10,000 members
    python benchmarks/bench_group_cancel.py --members 2000

The exchange is an in-memory fake client (the manager's seam), so the figures are the
manager's and the cache's own work: every call into the fake is timed and subtracted. The
group cancel's *bookkeeping* (cache reads and writes, deciding members and strangers,
judging the result) must stay under 50 ms at 10,000 members. Same-run baselines: reading the
same 10,000 rows with a raw ``sqlite3`` SELECT, reported as a ratio, and the floor SQLite sets
for the one write the cancel cannot skip: the members' final state (the columns that move when
an order closes) written through bare ``sqlite3`` from tuples made beforehand, on a copy of the
same file, so no Python of ours runs in it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from oms.manager import OrderManager
from oms.models import AddOrderResult, AssetPair, CancelResult, Order, ServerTime
from oms.orders import OrderRequest
from oms.sandbox import Sandbox

START = 1_700_000_000.0


def _order(txid: str, userref: int, status: str, price: str) -> Order:
    return Order.from_api(
        txid,
        {
            "userref": userref,
            "status": status,
            "opentm": START,
            "descr": {
                "pair": "XBTUSD",
                "type": "buy",
                "ordertype": "limit",
                "price": price,
                "price2": "0",
                "order": f"buy 0.001 XBTUSD @ limit {price}",
            },
            "vol": "0.001",
            "vol_exec": "0",
            "cost": "0",
            "fee": "0",
            "price": "0",
            "oflags": "",
        },
    )


class FakeExchange:
    """Just enough of KrakenClient for placing and cancelling, answering from memory; the
    time spent in it is counted in ``spent``."""

    base_url = "https://fake.invalid"
    credentials = None

    def __init__(self, pair: AssetPair) -> None:
        self._pair = pair
        self.open: dict[str, Order] = {}
        self.closed: dict[str, Order] = {}
        self.spent = 0.0
        self._n = 0

    def _timed(self, t0: float) -> None:
        self.spent += time.perf_counter() - t0

    def time(self) -> ServerTime:
        return ServerTime(int(START), "")

    @property
    def pairs(self) -> FakeExchange:
        return self  # the pair-rules cache: known() and get()

    def known(self, name: str) -> AssetPair | None:
        return self._pair

    def get(self, name: str) -> AssetPair:
        return self._pair

    def add_order(self, request: OrderRequest, **_: Any) -> AddOrderResult:
        t0 = time.perf_counter()
        self._n += 1
        txid = f"O{self._n:05d}-FAKE-{self._n:06d}"
        assert request.userref is not None
        self.open[txid] = _order(txid, request.userref, "open", str(request.price))
        self._timed(t0)
        return AddOrderResult(descr_order="", txids=(txid,))

    def open_orders(self, *, userref: int | None = None, **_: Any) -> list[Order]:
        t0 = time.perf_counter()
        found = [o for o in self.open.values() if userref is None or o.userref == userref]
        self._timed(t0)
        return found

    def iter_closed_orders(self, **_: Any) -> Iterator[Order]:
        return iter(())

    def query_orders(self, txids: Sequence[str], **_: Any) -> list[Order]:
        t0 = time.perf_counter()
        found = [self.closed.get(t) or self.open[t] for t in txids]
        self._timed(t0)
        return found

    def cancel_order(self, *, userref: int | None = None, **_: Any) -> CancelResult:
        t0 = time.perf_counter()
        gone = [t for t, o in self.open.items() if o.userref == userref]
        for txid in gone:
            order = self.open.pop(txid)
            self.closed[txid] = attrs.evolve(order, status=type(order.status)("canceled"))
        self._timed(t0)
        return CancelResult(len(gone))

    def cancel_order_batch(self, **_: Any) -> CancelResult:
        raise AssertionError("not used: no stranger shares the userref")


def _raw_members(db: Path, userref: int) -> float:
    with sqlite3.connect(db) as conn:
        t0 = time.perf_counter()
        rows = conn.execute("SELECT * FROM orders WHERE userref = ?", [userref]).fetchall()
        took = time.perf_counter() - t0
    conn.close()
    assert rows
    return took


def _bare_final_write(db: Path, userref: int, closed: Sequence[Order]) -> float:
    """Time the members' final state written through bare sqlite3 (no Python of ours)."""
    copy = Path(tempfile.mkdtemp()) / "floor.db"
    shutil.copy(db, copy)
    moving = ("status", "vol_exec", "cost", "fee", "avg_price", "closetm", "reason", "synced_at")
    sql = "UPDATE orders SET {} WHERE txid = ?".format(", ".join(f"{c} = ?" for c in moving))  # noqa: S608 -- our column names
    rows = [
        (
            o.status.value,
            str(o.vol_exec),
            str(o.cost),
            str(o.fee),
            None,
            START + 1,
            None,
            START,
            o.txid,
        )
        for o in closed
    ]
    conn = sqlite3.connect(copy, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("SELECT count(*) FROM orders WHERE userref = ?", [userref]).fetchone()
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
        return time.perf_counter() - t0
    finally:
        conn.close()


def _place(manager: OrderManager, group: Any, n: int, price: Decimal) -> list[float]:
    fake = manager.client
    samples = []
    request = OrderRequest(
        pair="XBTUSD", side="buy", ordertype="limit", volume="0.001", price=price
    )
    for _ in range(n):
        spent = fake.spent  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        manager.place(request, group=group)
        samples.append(time.perf_counter() - t0 - (fake.spent - spent))  # type: ignore[attr-defined]
    return samples


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    args = parser.parse_args(list(argv) if argv is not None else None)
    os.environ.setdefault("OMS_DATA_DIR", tempfile.mkdtemp())
    pair = Sandbox.in_process(seed=1).client().pair("XBTUSD")
    fake = FakeExchange(pair)
    db = Path(tempfile.mkdtemp()) / "bench.db"
    with OrderManager(fake, db, clock=lambda: START, sleep=lambda s: None) as manager:  # type: ignore[arg-type]
        group = manager.new_group("bench")
        placing = _place(manager, group, args.members, Decimal("30000.0"))
        raw = _raw_members(db, group.userref)
        closed = [attrs.evolve(o, status=type(o.status)("canceled")) for o in fake.open.values()]
        floor = _bare_final_write(db, group.userref, closed)
        spent = fake.spent
        t0 = time.perf_counter()
        result = manager.cancel_group(group)
        total = time.perf_counter() - t0
        bookkeeping = total - (fake.spent - spent)
    assert result.ok, result
    assert len(result.cancelled) == args.members
    print(f"members: {args.members:,}")
    print(f"place, manager + cache only: median {statistics.median(placing) * 1e6:,.0f} µs")
    print(f"group cancel bookkeeping: {bookkeeping * 1e3:,.1f} ms (target < 50 ms)")
    print(f"raw sqlite3 read of the members: {raw * 1e3:,.2f} ms")
    print(f"ratio bookkeeping / raw read: {bookkeeping / raw:,.1f}x")
    print(f"floor: bare sqlite3 write of the members' final state: {floor * 1e3:,.1f} ms")
    print(f"ratio bookkeeping / that floor: {bookkeeping / floor:,.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

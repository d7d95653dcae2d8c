"""How fast the order cache answers the manager's lookups, at up to a million cached orders.

    python benchmarks/bench_cache.py                 # 1,000,000 orders
    python benchmarks/bench_cache.py --rows 200000

House rule: ratios against a baseline measured in the same run, plus absolute times. The
baseline of each lookup is the same SQL through a bare ``sqlite3`` connection returning plain
tuples (what the lookup costs SQLite itself); the ratio is what the cache adds (its lock, its
error translation, building :class:`~oms.models.Order` objects). The by-userref lookup is
also timed forced to scan the table (``NOT INDEXED``), which is what an unindexed lookup
would cost. Reported:

- ``by_userref`` and ``txid_claimed`` (the lookups of an ambiguous placement) at ``--rows``
  cached orders and ``--rows / 10`` intents: must stay under 1 ms (index seeks);
- the cache writes of one placement (CPU), against one committed intent INSERT, and the same
  statements (recorded from the cache, values inlined) replayed through bare ``sqlite3``:
  what SQLite itself costs, so the difference is the cache's Python;
- ``open_orders()`` with ``--open`` open orders (default 2,000);
- the bookkeeping of a ``--group`` member group cancel (default 10,000): members, placed_here,
  the upsert of every member as read back, mark_closed, open orders by userref: under 50 ms.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

from oms._order_rows import COLUMNS
from oms._sqlite import insert_sql
from oms.cache import OrderCache
from oms.intents import IntentState
from oms.models import OrderStatus

_T0 = 1_700_000_000.0
_ORDER_SQL = insert_sql("orders", (*COLUMNS, "intent_id"))


def _order_rows(
    n: int, userrefs: int, rng: random.Random, *, first: int = 0, open_every: int = 10
) -> Iterator[tuple[Any, ...]]:
    for i in range(first, first + n):
        is_open = i % open_every == 0
        values = {
            "txid": f"O{i:07d}-BENCH-{i % 997:06d}",
            "userref": rng.randint(1, userrefs),
            "status": "open" if is_open else "closed",
            "pair": ("XBTUSD", "ETHUSD", "XDGUSD")[i % 3],
            "side": "buy" if i % 2 else "sell",
            "ordertype": "limit",
            "price": f"{60000 + (i % 5000)}.{i % 10}",
            "price2": "0",
            "leverage": "none",
            "descr_order": "",
            "descr_close": None,
            "vol": "0.00100000",
            "vol_exec": "0.00000000" if is_open else "0.00100000",
            "cost": "65.00000",
            "fee": "0.16900",
            "avg_price": "65000.0",
            "misc": "",
            "oflags": "fciq",
            "opentm": _T0 + i,
            "closetm": None if is_open else _T0 + i + 60,
            "synced_at": _T0 + i + 1,  # read back from the exchange once
            "intent_id": f"I{i:07d}" if i % 10 == 0 else None,
        }
        yield tuple(values.get(c) for c in (*COLUMNS, "intent_id"))


def _intent_rows(n: int) -> Iterator[tuple[Any, ...]]:
    for i in range(0, n * 10, 10):
        yield (
            f"I{i:07d}",
            _T0 + i,
            i + 1,
            "XBTUSD",
            "buy",
            "limit",
            "0.001",
            "60000",
            "{}",
            IntentState.PLACED.value,
            f"O{i:07d}-BENCH-{i % 997:06d}",
        )


def _load(path: Path, rows: Iterator[tuple[Any, ...]], intents: int) -> None:
    """Straight into the tables in one transaction: the benchmark is about reading."""
    with sqlite3.connect(path) as conn:
        conn.executemany(_ORDER_SQL, rows)
        conn.executemany(
            "INSERT INTO intents (id, created_at, userref, pair, side, ordertype, volume, price, "
            "params, state, txid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _intent_rows(intents),
        )
    conn.close()


def _median(fn: Callable[[Any], object], args: list[Any]) -> float:
    """Median seconds per call of ``fn(arg)`` over ``args``."""
    samples = []
    for arg in args:
        t0 = time.perf_counter()
        fn(arg)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def _line(name: str, cache: float, raw: float | None, note: str = "") -> None:
    ratio = f"{cache / raw:5.1f}x raw sqlite3 ({raw * 1e3:8.3f} ms)" if raw else ""
    print(f"{name:<28}{cache * 1e3:9.3f} ms  {ratio}  {note}")


def lookups(folder: Path, args: argparse.Namespace, rng: random.Random) -> None:
    userrefs = max(1, args.rows // args.per_userref)
    path = folder / "big.db"
    OrderCache(path).close()
    t0 = time.perf_counter()
    _load(path, _order_rows(args.rows, userrefs, rng), args.rows // 10)
    print(
        f"orders cached               {args.rows:,} ({userrefs:,} userrefs), "
        f"{args.rows // 10:,} intents; load {time.perf_counter() - t0:.1f} s"
    )
    raw = sqlite3.connect(path)
    with OrderCache(path) as cache:
        refs = [rng.randint(1, userrefs) for _ in range(args.queries)]
        by_ref = "SELECT * FROM orders WHERE userref = ? ORDER BY opentm DESC, txid"
        _line(
            "by_userref",
            _median(cache.by_userref, refs),
            _median(lambda r: raw.execute(by_ref, (r,)).fetchall(), refs),
        )
        scan = by_ref.replace("orders WHERE", "orders NOT INDEXED WHERE")
        _line(
            "  the same, table scan",
            _median(lambda r: raw.execute(scan, (r,)).fetchall(), refs[: args.scans]),
            None,
            "(what the index saves)",
        )
        txids = [f"O{i:07d}-BENCH-{i % 997:06d}" for i in rng.sample(range(args.rows), 200)]
        claimed = "SELECT 1 FROM intents WHERE txid = ? AND id IS NOT ?"
        _line(
            "txid_claimed",
            _median(lambda t: cache.txid_claimed(t, exclude_intent="I"), txids),
            _median(lambda t: raw.execute(claimed, (t, "I")).fetchone(), txids),
        )
        _line(
            "  claimed_txids (old way)",
            _median(lambda _: cache.claimed_txids(exclude_intent="I"), [None] * 3),
            None,
            "(reads every intent)",
        )
        print(f"  plan: {cache.explain_userref_query()}")
    raw.close()


def open_orders(folder: Path, args: argparse.Namespace, rng: random.Random) -> None:
    path = folder / "open.db"
    OrderCache(path).close()
    _load(path, _order_rows(args.open * 5, 50, rng, open_every=5), 0)
    raw = sqlite3.connect(path)
    sql = (
        "SELECT * FROM orders WHERE status IN ('pending', 'open') AND missing_at IS NULL "
        "ORDER BY opentm DESC, txid"
    )
    with OrderCache(path) as cache:
        got = len(cache.open_orders())
        _line(
            f"open_orders ({got:,} open)",
            _median(lambda _: cache.open_orders(), [None] * 20),
            _median(lambda _: raw.execute(sql).fetchall(), [None] * 20),
        )
    raw.close()


def group_cancel(folder: Path, args: argparse.Namespace) -> None:
    """What the manager's cache does around a group cancel of ``--group`` members."""
    n, ref = args.group, 4242
    path = folder / "group.db"
    OrderCache(path).close()
    made = _order_rows(n, 1, random.Random(0), open_every=1)
    rows = [(*r[:1], ref, *r[2:-1], f"I{i}") for i, r in enumerate(made)]
    _load(path, iter(rows), 0)
    with OrderCache(path) as cache:
        t0 = time.perf_counter()
        member_txids = cache.member_txids(ref)
        members = cache.open_orders(userref=ref)  # as the exchange would answer
        own = member_txids | cache.placed_here(o.txid for o in members)
        cache.upsert_orders(members, synced_at=_T0)
        closed = [attrs.evolve(o, status=OrderStatus.CANCELED) for o in members]
        t1 = time.perf_counter()
        cache.upsert_orders(closed, synced_at=_T0 + 1)
        marked = cache.mark_closed([o.txid for o in members], closetm=_T0 + 1)
        left = cache.open_orders(userref=ref)
        t2 = time.perf_counter()
    assert len(own) == n, len(own)
    assert not left, (len(left), marked)
    print(
        f"group cancel of {n:,}         {(t2 - t0) * 1e3:9.3f} ms  (member_txids, open_orders, "
        f"placed_here, upsert as read: {(t1 - t0) * 1e3:.1f} ms; upsert closed, mark_closed, "
        f"open by userref: {(t2 - t1) * 1e3:.1f} ms)"
    )


class _Recording:
    """A connection that notes every statement and its parameters as it runs them."""

    def __init__(self, conn: sqlite3.Connection, where: str, sent: list[Any]) -> None:
        self._conn, self._where, self._sent = conn, where, sent

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        self._sent.append((self._where, sql, params, False))
        return self._conn.execute(sql, params)

    def executemany(self, sql: str, params: Any) -> sqlite3.Cursor:
        params = list(params)
        self._sent.append((self._where, sql, params, True))
        return self._conn.executemany(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def placement_writes(folder: Path, args: argparse.Namespace) -> None:
    """CPU of the cache work one OrderManager.place does: a userref from the account state,
    the intent (fresh userref checked), the answer adopted. Baseline: the one write that
    makes a placement crash-safe, an intent row INSERTed and committed through bare sqlite3
    on a WAL file with synchronous=NORMAL (as the cache is)."""
    from decimal import Decimal

    from oms.account import AccountState
    from oms.intents import Intent
    from oms.models import Order

    n = args.placements
    answer = {
        "userref": 1,
        "status": "pending",
        "opentm": _T0,
        "descr": {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "60000"},
        "vol": "0.001",
        "vol_exec": "0",
        "cost": "0",
        "fee": "0",
        "price": "0",
    }
    orders = [Order.from_api(f"OPLACE-{i:06d}-AAAAAA", answer) for i in range(n)]
    intents = [
        Intent(
            id=f"P{i}",
            created_at=_T0,
            userref=i + 1,
            pair="XBTUSD",
            side="buy",
            ordertype="limit",
            volume=Decimal("0.001"),
            price=Decimal("60000"),
            params={"pair": "XBTUSD", "type": "buy", "volume": "0.001"},
            state=IntentState.PENDING,
            attempts=1,
            deadline=_T0 + 30,
        )
        for i in range(n)
    ]

    def place_all(cache: OrderCache, account: AccountState) -> None:
        for intent, order in zip(intents, orders, strict=True):
            account.advance_sequence("c", 1, 2**31 - 1, lambda v: (v or 0) + 1, skip_in_use=True)
            cache.add_intent(intent, fresh_userref=True)
            cache.adopt(intent.id, order, synced_at=None)

    # The statements the cache sends, with their parameters, recorded in a first run.
    sent: list[tuple[str, str, Any, bool]] = []
    with OrderCache(folder / "trace.db") as cache, AccountState(folder / "trace-a.db") as account:
        cache._db = _Recording(cache._db, "cache", sent)  # type: ignore[assignment]
        account._db = _Recording(account._db, "account", sent)  # type: ignore[assignment]
        place_all(cache, account)
    with OrderCache(folder / "place.db") as cache, AccountState(folder / "acct.db") as account:
        t0 = time.process_time()
        place_all(cache, account)
        ours = (time.process_time() - t0) / n
    # Floor: the same statements replayed through bare sqlite3 on files of the same schema.
    OrderCache(folder / "floor.db").close()
    AccountState(folder / "floor-a.db").close()
    bare = {
        "cache": sqlite3.connect(folder / "floor.db", isolation_level=None),
        "account": sqlite3.connect(folder / "floor-a.db", isolation_level=None),
    }
    for conn in bare.values():
        conn.execute("PRAGMA synchronous = NORMAL")
    t0 = time.process_time()
    for where, sql, params, many in sent:
        conn = bare[where]
        if many:
            conn.executemany(sql, params)
        else:
            conn.execute(sql, params)
    floor = (time.process_time() - t0) / n
    for conn in bare.values():
        conn.close()
    raw = sqlite3.connect(folder / "raw.db", isolation_level=None)
    raw.execute("PRAGMA journal_mode = wal")
    raw.execute("PRAGMA synchronous = NORMAL")
    raw.execute("CREATE TABLE intents (id TEXT PRIMARY KEY, userref INTEGER, params TEXT)")
    t0 = time.process_time()
    for intent in intents:
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("INSERT INTO intents VALUES (?, ?, ?)", (intent.id, intent.userref, "{}"))
        raw.execute("COMMIT")
    base = (time.process_time() - t0) / n
    raw.close()
    _line(f"placement writes (CPU, {n:,})", ours, base, "(allocate + add_intent + adopt)")
    _line("  the same statements, bare", floor, base, f"(ours / this: {ours / floor:.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--per-userref", type=int, default=10, help="orders per userref")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--scans", type=int, default=3, help="queries for the scan baseline")
    parser.add_argument("--open", type=int, default=2_000, help="open orders for open_orders()")
    parser.add_argument("--group", type=int, default=10_000, help="members of a group cancel")
    parser.add_argument("--placements", type=int, default=2_000, help="for placement writes")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"{'':<28}{'cache':>12}  baseline (same SQL, bare sqlite3, same run)")
    with tempfile.TemporaryDirectory() as folder:
        placement_writes(Path(folder), args)
        lookups(Path(folder), args, rng)
        open_orders(Path(folder), args, rng)
        group_cancel(Path(folder), args)


if __name__ == "__main__":
    main()

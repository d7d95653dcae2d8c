"""The history database stores each trade once, money as exact text, and a page's rows and
its cursor together or not at all; it refuses files that are not history databases."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms._decimal import fmt
from oms.cache import OrderCache
from oms.errors import ValidationError
from oms.funding_store import FundingStore
from oms.history_store import MIGRATIONS, HistoryStore, time_to_ns
from oms.models import OrderType, PublicTrade, Side, TradesPage

FIXTURES = Path(__file__).parent / "fixtures"


def seed_page() -> TradesPage:
    """The seed's Trades example (rows without trade ids)."""
    return TradesPage.from_api(json.loads((FIXTURES / "seed_trades.json").read_text())["result"])


def trade(
    t: float, *, price: str = "100.0", volume: str = "1", trade_id: int | None = None
) -> PublicTrade:
    return PublicTrade(
        price=Decimal(price),
        volume=Decimal(volume),
        time=t,
        side=Side.BUY,
        ordertype=OrderType.LIMIT,
        trade_id=trade_id,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    # Closed explicitly: Python 3.13 warns (an error here) about connections left to the GC.
    with HistoryStore(tmp_path / "history.db") as opened:
        yield opened


# --- schema ---------------------------------------------------------------------------------


def test_new_file_gets_every_migration_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with HistoryStore(path) as store:
        assert store.schema_version == len(MIGRATIONS)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    # Reopening (by either store) applies nothing twice.
    with FundingStore(path) as again:
        assert again.schema_version == len(MIGRATIONS)


def test_order_cache_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "orders.db"
    OrderCache(path).close()
    with pytest.raises(ValidationError) as info:
        HistoryStore(path)
    assert info.value.rule == "application-id"


def test_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(ValidationError) as info:
        HistoryStore(path)
    assert info.value.rule == "application-id"


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"not a database at all" * 50)
    with pytest.raises(ValidationError) as info:
        FundingStore(path)
    assert info.value.rule == "application-id"


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    HistoryStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(ValidationError) as info:
        HistoryStore(path)
    assert info.value.rule == "schema-version"


# --- time and money ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "ns"),
    [
        (1559347203.7998, 1559347203_799800000),
        (1559350785.297, 1559350785_297000000),
        (1700000000.123456, 1700000000_123456000),
        (1.5, 1_500_000_000),
        (0.0, 0),
    ],
)
def test_time_to_ns_goes_through_the_decimal_text(seconds: float, ns: int) -> None:
    assert time_to_ns(seconds) == ns


def test_money_is_stored_as_the_exact_text(store: HistoryStore) -> None:
    page = seed_page()
    store.commit_page(page.pair, page.trades, cursor=page.last, origin=0, now=0.0)
    rows = store._query("SELECT price, volume, typeof(price) AS t FROM trades ORDER BY id")
    assert {r["t"] for r in rows} == {"text"}
    assert [(r["price"], r["volume"]) for r in rows] == [
        (fmt(t.price), fmt(t.volume)) for t in page.trades
    ]
    stored = store.trades(page.pair)
    assert [s.to_public() for s in stored] == list(page.trades)


# --- de-duplication ---------------------------------------------------------------------------


def test_a_repeated_page_tail_adds_nothing(store: HistoryStore) -> None:
    page = seed_page()
    first, tail = page.trades[:8], page.trades[6:]
    w1 = store.commit_page(page.pair, first, cursor=1, origin=0, now=0.0)
    w2 = store.commit_page(page.pair, tail, cursor=2, origin=0, now=0.0)
    assert (w1.inserted, w2.duplicates) == (8, 2)
    assert [s.to_public() for s in store.trades(page.pair)] == list(page.trades)


def test_identical_trades_in_one_page_stay_distinct(store: HistoryStore) -> None:
    twins = [trade(10.25), trade(10.25), trade(10.25, volume="2")]
    assert store.commit_page("P", twins, cursor=1, origin=0, now=0.0).inserted == 3
    # The next page repeats the first twin only: nothing new.
    assert store.commit_page("P", twins[:1], cursor=2, origin=0, now=0.0).inserted == 0
    assert store.count("P") == 3


def test_trade_id_alone_identifies_a_trade(store: HistoryStore) -> None:
    store.commit_page("P", [trade(1.0, trade_id=7)], cursor=1, origin=0, now=0.0)
    write = store.commit_page("P", [trade(1.0, trade_id=7), trade(1.0, trade_id=8)], cursor=2,
                              origin=0, now=0.0)  # fmt: skip
    assert (write.received, write.inserted) == (2, 1)


# --- atomicity --------------------------------------------------------------------------------


def test_rows_and_cursor_are_one_transaction(
    store: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = seed_page()
    store.commit_page(page.pair, page.trades[:3], cursor=100, origin=0, now=0.0)

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk gone between the rows and the cursor")

    monkeypatch.setattr(HistoryStore, "_write_cursor", staticmethod(crash))
    with pytest.raises(OSError, match="disk gone"):
        store.commit_page(page.pair, page.trades, cursor=200, origin=0, now=1.0)
    monkeypatch.undo()
    assert store.count(page.pair) == 3
    position = store.position(page.pair)
    assert position is not None
    assert position.cursor == 100


# --- reading ----------------------------------------------------------------------------------


@given(
    times=st.lists(st.integers(0, 50), max_size=40),
    lo=st.none() | st.integers(0, 50),
    hi=st.none() | st.integers(0, 50),
    batch=st.integers(1, 7),
)
def test_range_reads_are_complete_and_in_order(
    times: list[int], lo: int | None, hi: int | None, batch: int
) -> None:
    with HistoryStore(":memory:") as store:
        trades = [trade(float(t), trade_id=i) for i, t in enumerate(sorted(times))]
        store.commit_page("P", trades, cursor=1, origin=0, now=0.0)
        lo_ns = None if lo is None else lo * 10**9
        hi_ns = None if hi is None else hi * 10**9
        got = list(store.iter_trades("P", start_ns=lo_ns, end_ns=hi_ns, batch=batch))
        expected = [
            t for t in trades if (lo is None or t.time >= lo) and (hi is None or t.time < hi)
        ]
        assert [g.trade_id for g in got] == [t.trade_id for t in expected]


def test_a_name_used_once_resolves_to_the_pair_id(store: HistoryStore) -> None:
    store.commit_page("XXBTZUSD", [trade(1.0)], cursor=5, origin=0, now=0.0, alias="xbtusd")
    assert store.resolve("XBTUSD") == "XXBTZUSD"
    assert store.resolve("XXBTZUSD") == "XXBTZUSD"
    assert store.resolve("ETHUSD") is None
    position = store.position("XBTUSD")
    assert position is not None
    assert position.cursor == 5
    assert store.count("XBTUSD") == 1

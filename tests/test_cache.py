"""The order cache returns exactly what was stored, keeps money as TEXT, and upgrades its schema."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import orders

from oms._decimal import fmt
from oms.cache import MIGRATIONS, Group, Intent, IntentState, OrderCache
from oms.errors import CacheBusy, CacheError, ValidationError
from oms.models import Order, OrderStatus

CLOSED = {"closed", "canceled", "expired"}


def api_order(
    *,
    userref: int | None = 7,
    status: str = "open",
    pair: str = "XBTUSD",
    side: str = "buy",
    price: str = "25000.1",
    vol: str = "0.01000000",
    vol_exec: str = "0.00000000",
    opentm: float = 1_700_000_000.25,
    **extra: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "refid": None,
        "userref": userref,
        "status": status,
        "opentm": opentm,
        "starttm": 0,
        "expiretm": 0,
        "descr": {
            "pair": pair,
            "type": side,
            "ordertype": "limit",
            "price": price,
            "price2": "0",
            "leverage": "none",
            "order": f"{side} {vol} {pair} @ limit {price}",
            "close": "",
        },
        "vol": vol,
        "vol_exec": vol_exec,
        "cost": "0.00000",
        "fee": "0.00000",
        "price": "0.00000",
        "stopprice": "0.00000",
        "limitprice": "0.00000",
        "misc": "",
        "oflags": "fciq",
    }
    data.update(extra)
    return data


def order(txid: str = "OAAAAA-AAAAA-AAAAAA", **kw: Any) -> Order:
    return Order.from_api(txid, api_order(**kw))


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[OrderCache]:
    c = OrderCache(tmp_path / "cache.db")
    yield c
    c.close()


# --- schema -----------------------------------------------------------------------------------


def test_new_database_is_at_the_latest_schema_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    OrderCache(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"orders", "groups", "intents", "userref_sequences", "meta"} <= tables
    conn.close()


def test_reopening_applies_no_migration_twice(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with OrderCache(path) as first:
        first.upsert_orders([order()])
    with OrderCache(path) as again:
        assert again.schema_version == len(MIGRATIONS)
        assert again.count() == 1


def test_an_older_file_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE unrelated (x)")  # a file from before oms touched it: version 0
    conn.commit()
    conn.close()
    with OrderCache(path) as upgraded:
        assert upgraded.schema_version == len(MIGRATIONS)


def test_version_1_sequences_continue_for_both_kinds_after_the_upgrade(tmp_path: Path) -> None:
    """Before version 2 a counter and a timestamp allocator of one name shared a row: after
    the upgrade each kind continues past it, so neither can repeat a value."""
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    MIGRATIONS[0](conn)  # version 1's tables
    conn.execute("INSERT INTO userref_sequences VALUES ('counter', 1, 2147483647, 41)")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with OrderCache(path) as upgraded:
        assert upgraded.schema_version == len(MIGRATIONS)
        for kind in ("counter", "timestamp"):
            assert upgraded.sequence_last("counter", 1, 2**31 - 1, kind=kind) == 41
        assert upgraded.advance_sequence("counter", 1, 2**31 - 1, lambda v: (v or 0) + 1) == 42


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(ValidationError) as info:
        OrderCache(path)
    assert info.value.rule == "schema-version"


def test_money_is_stored_as_text(cache: OrderCache, tmp_path: Path) -> None:
    cache.upsert_orders([order(price="0.29", vol="0.00001")])
    conn = sqlite3.connect(tmp_path / "cache.db")
    row = conn.execute("SELECT typeof(price), price, typeof(vol), vol FROM orders").fetchone()
    assert row == ("text", "0.29", "text", "0.00001")
    conn.close()


def test_userref_query_uses_the_index(cache: OrderCache) -> None:
    assert "USING INDEX orders_userref" in cache.explain_userref_query()


# --- orders -----------------------------------------------------------------------------------

decimals = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("1000000"), places=8)


@settings(max_examples=40, deadline=None)
@given(
    price=decimals,
    vol=decimals,
    userref=st.one_of(st.none(), st.integers(min_value=1, max_value=2**31 - 1)),
    status=st.sampled_from([s.value for s in OrderStatus]),
    side=st.sampled_from(["buy", "sell"]),
    opentm=st.floats(min_value=1e9, max_value=2e9),
    closetm=st.one_of(st.none(), st.floats(min_value=1e9, max_value=2e9)),
    oflags=st.sampled_from(["", "fciq", "post,fcib"]),
)
def test_an_order_reads_back_equal(
    tmp_path_factory: pytest.TempPathFactory,
    price: Decimal,
    vol: Decimal,
    userref: int | None,
    status: str,
    side: str,
    opentm: float,
    closetm: float | None,
    oflags: str,
) -> None:
    extra: dict[str, Any] = {"oflags": oflags}
    if closetm is not None:
        extra["closetm"] = closetm
        extra["reason"] = "User requested"
    original = order(
        userref=userref,
        status=status,
        side=side,
        price=fmt(price),
        vol=fmt(vol),
        opentm=opentm,
        **extra,
    )
    c = OrderCache(":memory:")
    c.upsert_orders([original])
    assert c.order(original.txid) == original
    c.close()


RANK = {"pending": 0, "open": 1, "closed": 2, "canceled": 2, "expired": 2}


def behind(answer: Order, cached: Order) -> bool:
    """Whether ``answer`` is older than ``cached``: less far in its life, or as far but
    less filled."""
    return (RANK[answer.status.value], answer.vol_exec) < (
        RANK[cached.status.value],
        cached.vol_exec,
    )


@settings(max_examples=60, deadline=None)
@given(first=orders(), later=orders(), confirmed=st.booleans())
def test_a_later_answer_for_a_cached_order_reads_back_equal(
    first: Order, later: Order, confirmed: bool
) -> None:
    # Whatever moved between two answers for one order (fills, amends, its close), the
    # cache holds the later one, through whichever statement writes it; an order's life
    # only goes forward (pending, open, closed), so a "later" answer that goes back is an
    # older one (see the test below).
    later = attrs.evolve(
        later,
        txid=first.txid,
        userref=first.userref,
        descr=attrs.evolve(later.descr, side=first.descr.side, pair=first.descr.pair),
        opentm=first.opentm if confirmed else later.opentm,
    )
    assume(not behind(later, first))
    c = OrderCache(":memory:")
    c.upsert_orders([first], synced_at=1.0)
    c.upsert_orders([later], synced_at=2.0)
    assert c.order(first.txid) == later
    c.close()


@settings(max_examples=60, deadline=None)
@given(
    first=orders(),
    older=orders(),
    statuses=st.sampled_from([(new, old) for new in RANK for old in RANK if RANK[old] < RANK[new]]),
)
def test_an_answer_that_goes_back_in_an_orders_life_is_not_written(
    first: Order, older: Order, statuses: tuple[str, str]
) -> None:
    """Pending after open, open after closed: an answer read before the cached one (a
    placement's answer landing after a live event, an OpenOrders read older than the
    ClosedOrders one) leaves the cached order as it is. So does one as far along but less
    filled (test below)."""
    first = attrs.evolve(first, status=OrderStatus(statuses[0]))
    older = attrs.evolve(
        older,
        txid=first.txid,
        userref=first.userref,
        status=OrderStatus(statuses[1]),
        descr=attrs.evolve(older.descr, side=first.descr.side, pair=first.descr.pair),
    )
    c = OrderCache(":memory:")
    c.upsert_orders([first], synced_at=1.0)
    c.upsert_orders([older], synced_at=2.0)
    assert c.order(first.txid) == first
    c.close()


def test_an_update_replaces_the_row(cache: OrderCache) -> None:
    cache.upsert_orders([order(status="open")])
    cache.upsert_orders([order(status="closed", vol_exec="0.01000000", closetm=1_700_000_100.0)])
    got = cache.order("OAAAAA-AAAAA-AAAAAA")
    assert got is not None
    assert got.status is OrderStatus.CLOSED
    assert cache.count() == 1


def test_a_multi_row_write_is_all_or_nothing(cache: OrderCache, tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "cache.db")
    conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON orders WHEN NEW.txid = 'OBAD' "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    conn.commit()
    conn.close()
    with pytest.raises(CacheError) as info:
        cache.upsert_orders([order("OGOOD1"), order("OGOOD2"), order("OBAD")])
    assert isinstance(info.value.__cause__, sqlite3.IntegrityError)
    assert cache.count() == 0


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["O5", "O4", "O3", "O2", "O1"]),
        ({"userref": 7}, ["O4", "O2", "O1"]),
        ({"group": Group(8, "g", 0.0)}, ["O5", "O3"]),
        ({"group": 8, "status": "canceled"}, ["O3"]),
        ({"pair": "ETHUSD"}, ["O5", "O4"]),
        ({"side": "sell"}, ["O4"]),
        ({"status": ["closed", "canceled"]}, ["O3", "O2"]),
        ({"since": 1_700_000_002.0}, ["O5", "O4", "O3"]),
        ({"until": 1_700_000_002.0}, ["O2", "O1"]),
        ({"since": 1_700_000_002.0, "until": 1_700_000_004.0}, ["O4", "O3"]),
        ({"userref": 7, "limit": 2}, ["O4", "O2"]),
    ],
)
def test_queries_filter_and_sort_newest_first(
    cache: OrderCache, filters: dict[str, Any], expected: list[str]
) -> None:
    cache.upsert_orders(
        [
            order("O1", userref=7, opentm=1_700_000_000.0),
            order(
                "O2", userref=7, status="closed", opentm=1_700_000_001.0, closetm=1_700_000_009.0
            ),
            order(
                "O3", userref=8, status="canceled", opentm=1_700_000_002.0, closetm=1_700_000_009.0
            ),
            order("O4", userref=7, pair="ETHUSD", side="sell", opentm=1_700_000_003.0),
            order("O5", userref=8, pair="ETHUSD", opentm=1_700_000_004.0),
        ]
    )
    assert [o.txid for o in cache.orders(**filters)] == expected
    assert cache.count(**{k: v for k, v in filters.items() if k != "limit"}) == len(
        cache.orders(**{k: v for k, v in filters.items() if k != "limit"})
    )


def test_open_and_closed_views(cache: OrderCache) -> None:
    cache.upsert_orders(
        [
            order("O1", status="pending"),
            order("O2", status="open"),
            order("O3", status="closed"),
            order("O4", status="canceled"),
            order("O5", status="expired"),
        ]
    )
    assert {o.txid for o in cache.open_orders()} == {"O1", "O2"}
    assert {o.txid for o in cache.closed_orders()} == {"O3", "O4", "O5"}
    assert [o.txid for o in cache.by_userref(7)] != []


def test_mark_closed_only_touches_open_orders(cache: OrderCache) -> None:
    cache.upsert_orders([order("O1"), order("O2", status="closed")])
    assert cache.mark_closed(["O1", "O2"], closetm=1_700_000_050.0) == 1
    got = cache.order("O1")
    assert got is not None
    assert got.status is OrderStatus.CANCELED
    assert got.closetm == 1_700_000_050.0
    other = cache.order("O2")
    assert other is not None
    assert other.status is OrderStatus.CLOSED


def test_disagreeing_userref_and_group_are_refused(cache: OrderCache) -> None:
    with pytest.raises(ValidationError):
        cache.orders(userref=1, group=2)


def test_two_connections_share_one_file(tmp_path: Path) -> None:
    with OrderCache(tmp_path / "shared.db") as a, OrderCache(tmp_path / "shared.db") as b:
        a.upsert_orders([order("O1")])
        assert b.order("O1") is not None


# --- groups, intents --------------------------------------------------------------------------


def test_groups_persist_with_their_label(tmp_path: Path) -> None:
    first = OrderCache(tmp_path / "g.db")
    first.add_group(Group(userref=11, label="ladder", created_at=1.0))
    first.add_group(Group(userref=12, label="grid", created_at=2.0))
    first.close()
    with OrderCache(tmp_path / "g.db") as again:
        assert again.group(11) == Group(11, "ladder", 1.0)
        assert [g.userref for g in again.groups()] == [12, 11]
        assert again.groups(label="grid") == [Group(12, "grid", 2.0)]
        assert again.userref_in_use(11)
        assert not again.userref_in_use(13)


@pytest.mark.parametrize("holder", ["group", "order", "intent"])
def test_a_userref_in_use_is_refused_for_a_group_or_a_fresh_intent(
    cache: OrderCache, holder: str
) -> None:
    if holder == "group":
        cache.add_group(Group(userref=5, label="first", created_at=0.0))
    elif holder == "order":
        cache.upsert_orders([order("OHAS5", userref=5)])
    else:
        cache.add_intent(intent("i-has-5", userref=5))
    with pytest.raises(ValidationError) as info:
        cache.add_group(Group(userref=5, label="second", created_at=1.0))
    assert info.value.rule == "userref-in-use"
    with pytest.raises(ValidationError):
        cache.add_intent(intent("i-new", userref=5), fresh_userref=True)
    assert cache.intent("i-new") is None
    cache.add_intent(intent("i-joins", userref=5))  # a group's members share it on purpose
    assert [g.label for g in cache.groups()] == (["first"] if holder == "group" else [])


def test_a_sequence_skips_userrefs_in_use_in_its_transaction(cache: OrderCache) -> None:
    cache.add_group(Group(userref=2, label="g", created_at=0.0))
    cache.upsert_orders([order("O3", userref=3)])
    step = lambda v: 1 if v is None else v + 1  # noqa: E731 -- a one-line step function
    got = [cache.advance_sequence("n", 1, 9, step, skip_in_use=True) for _ in range(2)]
    assert got == [1, 4]
    assert cache.advance_sequence("n", 1, 9, step) == 5


def intent(intent_id: str = "i1", *, userref: int = 7, **kw: Any) -> Intent:
    fields: dict[str, Any] = {
        "id": intent_id,
        "created_at": 1_700_000_000.0,
        "userref": userref,
        "pair": "XBTUSD",
        "side": "buy",
        "ordertype": "limit",
        "volume": Decimal("0.01"),
        "price": Decimal("25000.1"),
        "params": {"pair": "XBTUSD", "type": "buy", "volume": "0.01", "userref": userref},
        "state": IntentState.PENDING,
    }
    fields.update(kw)
    return Intent(**fields)


def test_an_intent_reads_back_equal(cache: OrderCache) -> None:
    original = intent(deadline=1_700_000_020.0, owner="me", attempts=1)
    cache.add_intent(original)
    assert cache.intent("i1") == original
    assert cache.intents(states=[IntentState.PENDING]) == [original]
    assert cache.intents(states=[IntentState.PLACED]) == []
    assert cache.userref_in_use(7)


def test_intent_updates_are_compare_and_set(cache: OrderCache) -> None:
    cache.add_intent(intent(attempts=1))
    assert cache.update_intent("i1", expect_attempts=2, attempts=3) is None
    won = cache.update_intent("i1", expect_attempts=1, attempts=2, deadline=5.0)
    assert won is not None
    assert won.attempts == 2
    assert won.deadline == 5.0
    assert (
        cache.update_intent("i1", expect_states=[IntentState.UNKNOWN], state=IntentState.ABSENT)
        is None
    )
    with pytest.raises(ValidationError):
        cache.update_intent("i1", userref=9)


def test_one_exchange_order_answers_for_one_intent(cache: OrderCache) -> None:
    cache.add_intent(intent("i1"))
    cache.add_intent(intent("i2"))
    placed = order("OX", userref=7)
    assert cache.adopt("i1", placed, synced_at=1.0, state_from=[IntentState.PENDING])
    assert not cache.adopt("i2", placed, synced_at=1.0, state_from=[IntentState.PENDING])
    assert cache.claimed_txids(exclude_intent="i2") == {"OX"}
    assert cache.claimed_txids(exclude_intent="i1") == set()
    adopted = cache.intent("i1")
    assert adopted is not None
    assert adopted.state is IntentState.PLACED
    assert adopted.txid == "OX"
    assert cache.orders(userref=7)[0].txid == "OX"


def test_meta_values_persist(cache: OrderCache) -> None:
    assert cache.get_meta("k") is None
    cache.set_meta("k", "1")
    cache.set_meta("k", "2")
    assert cache.get_meta("k") == "2"


def test_a_closed_order_is_never_reopened_by_an_older_answer(cache: OrderCache) -> None:
    cache.upsert_orders([order("O1", status="closed", closetm=1_700_000_100.0)])
    cache.upsert_orders([order("O1", status="open"), order("O2", status="open")])
    got = cache.order("O1")
    assert got is not None
    assert got.status is OrderStatus.CLOSED
    assert cache.count() == 2


def test_a_history_database_is_refused_not_mixed(tmp_path: Path) -> None:
    from oms.history_store import HistoryStore

    path = tmp_path / "history.db"
    HistoryStore(path).close()
    with pytest.raises(ValidationError, match="not an oms order cache") as caught:
        OrderCache(path)
    assert caught.value.rule == "database-kind"
    # Untouched: no order-cache table was added.
    with contextlib.closing(sqlite3.connect(path)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "intents" not in tables


def test_a_file_that_is_not_sqlite_is_a_validation_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not a database " * 100)
    with pytest.raises(ValidationError, match="cannot use"):
        OrderCache(path)


# --- SQLite's failures, translated at the boundary -------------------------------------------


def test_a_lock_held_past_the_busy_timeout_is_cache_busy(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    with OrderCache(path, busy_timeout=0.05) as cache:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(CacheBusy) as info:
                cache.add_group(Group(5, "g", 0.0))
            assert info.value.retry_safe
            assert info.value.path == str(path)
            assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        finally:
            other.execute("ROLLBACK")
            other.close()
        cache.add_group(Group(5, "g", 0.0))  # and works again once the lock is gone
        assert cache.group(5) is not None


def test_a_corrupted_file_is_a_cache_error(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    with OrderCache(path) as cache:
        cache.upsert_orders([order(f"O{i}") for i in range(200)])
        cache.close()
        data = bytearray(path.read_bytes())
        data[4096:] = b"\xff" * (len(data) - 4096)  # every page after the first
        path.write_bytes(bytes(data))
    with OrderCache(path) as broken, pytest.raises(CacheError) as info:
        broken.orders()
    assert not isinstance(info.value, CacheBusy)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)


def test_a_read_only_connection_is_a_cache_error(tmp_path: Path) -> None:
    """A file SQLite may not write to (here: the connection made read-only, as a read-only
    mount or permissions would, which root ignores) fails every write as a CacheError."""
    with OrderCache(tmp_path / "cache.db") as cache:
        with cache._read() as db:
            db.execute("PRAGMA query_only = 1")
        with pytest.raises(CacheError) as info:
            cache.set_meta("k", "v")
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        assert cache.get_meta("k") is None  # reads still work


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only files")
def test_a_read_only_file_is_a_cache_error(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    OrderCache(path).close()
    for name in ("cache.db", "cache.db-wal", "cache.db-shm"):
        if (tmp_path / name).exists():
            (tmp_path / name).chmod(0o444)
    try:
        with OrderCache(path) as cache, pytest.raises(CacheError):
            cache.set_meta("k", "v")
    except ValidationError:
        pass  # or refused when opening (the WAL needs a writable -shm): said, not raw sqlite3
    finally:
        for name in ("cache.db", "cache.db-wal", "cache.db-shm"):
            if (tmp_path / name).exists():
                (tmp_path / name).chmod(0o644)


def _write_to(kind: str, path: Path) -> None:
    from oms.account import AccountState
    from oms.history_store import HistoryStore

    if kind == "cache":
        with OrderCache(path, busy_timeout=0.05) as cache:
            cache.set_meta("k", "v")
    elif kind == "account":
        with AccountState(path, busy_timeout=0.05) as state:
            state.reserve(5, txid=None, reason="seen", seen_at=0.0)
    else:
        with HistoryStore(path, busy_timeout=0.05) as store:
            store.commit_page("XXBTZUSD", [], cursor=1, origin=0, now=0.0)


@pytest.mark.parametrize("kind", ["cache", "account", "history"])
def test_every_sqlite_file_says_cache_busy_for_a_held_lock(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.db"
    _write_to(kind, path)  # created, schema and all
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(CacheBusy):
            _write_to(kind, path)
        other.execute("ROLLBACK")
    _write_to(kind, path)


@pytest.mark.parametrize(
    "extra",
    [
        {
            "descr": {
                "pair": "XBTUSD",
                "type": "sell",
                "ordertype": "stop-loss-limit",
                "price": "+5%",
                "price2": "#1.5",
                "leverage": "5:1",
                "order": "o",
                "close": "close position @ limit 1",
            }
        },
        {
            "trigger": "index",
            "margin": True,
            "stopprice": "1.5",
            "limitprice": "2.25",
            "misc": "stopped,touched",
            "sender_sub_id": "sub",
            "cl_ord_id": "my-id",
        },
        {
            "descr": {
                "pair": "XBTUSD",
                "type": "buy",
                "ordertype": "settle-position",
                "price": "0",
            },
            "userref": 0,
            "starttm": 1_700_000_005,
            "expiretm": 0,
        },
    ],
)
def test_every_field_reads_back_equal(extra: dict[str, Any]) -> None:
    """Rows are read back without the API parser: relative prices, unknown order types,
    flags, triggers and zero-means-unset times come back as the parser made them."""
    data = {**api_order(), **extra}
    original = Order.from_api("OFIELDS-AAAAA-AAAAAA", data)
    with OrderCache(":memory:") as c:
        c.upsert_orders([original])
        assert c.order(original.txid) == original


@pytest.mark.parametrize("newer", ["open", "closed", "canceled"])
def test_an_answer_older_than_the_cached_row_still_says_which_intent_it_answers(
    cache: OrderCache, newer: str
) -> None:
    """A live event wrote the order (already open, or closed) before the placement's own
    answer (pending) came back: the row stays as the event left it, and it is the intent's,
    so the group's members include it."""
    cache.add_intent(intent(deadline=1_700_000_020.0, attempts=1))
    live = order(status=newer)
    cache.upsert_orders([live], synced_at=2.0)
    assert cache.adopt("i1", order(status="pending"), synced_at=1.0)
    assert cache.order(live.txid) == live
    expected = {live.txid} if newer == "open" else set()  # members are the open ones
    assert cache.member_txids(7) == expected
    assert cache.placed_here([live.txid]) == {live.txid}


@settings(max_examples=60, deadline=None)
@given(first=orders(), older=orders(), fewer=st.decimals("0", "0.9", places=4))
def test_an_answer_less_filled_than_the_cached_one_is_not_written(
    first: Order, older: Order, fewer: Decimal
) -> None:
    """A REST read taken before the fills the cache already shows (a sync in another
    thread, a REST behind the stream) would undo them, and a fee added with the next fill
    would then be counted on the wrong base."""
    first = attrs.evolve(first, status=OrderStatus.OPEN, vol_exec=first.vol)
    older = attrs.evolve(
        older,
        txid=first.txid,
        userref=first.userref,
        status=OrderStatus.OPEN,
        vol_exec=(first.vol * fewer).quantize(Decimal("0.00000001")),
        descr=attrs.evolve(older.descr, side=first.descr.side, pair=first.descr.pair),
    )
    assume(older.vol_exec < first.vol_exec)
    c = OrderCache(":memory:")
    c.upsert_orders([first], synced_at=1.0)
    c.upsert_orders([older], synced_at=2.0)
    assert c.order(first.txid) == first
    c.close()

"""The history database: the public trade tape per pair with its paging cursor (this
module), and the deposits and withdrawals being tracked (:mod:`oms.funding_store`).

Both stores share one file format, and may share one file: :class:`HistoryDatabase` opens
SQLite the way :mod:`oms.cache` does (WAL, a busy timeout, ``BEGIN IMMEDIATE`` for every
write) and applies :data:`MIGRATIONS`, the one ordered schema history of the file, counted in
``PRAGMA user_version``. ``PRAGMA application_id`` marks the file as a history database, so
pointing a store at the order cache (or any other SQLite file) fails instead of mixing
schemas.

Money is TEXT holding Kraken's exact decimal string. A trade's time is kept twice: ``time``,
the float seconds of Kraken's row, and ``time_ns``, the same value as an exact integer of
nanoseconds (converted through its decimal text, never through float arithmetic), used for
ordering and range reads in SQL.

Only the SQLite files' modules touch SQLite: this one, :mod:`oms.funding_store`, the order
cache's (:mod:`oms.cache` and its parts) and :mod:`oms.account`, all through
:mod:`oms._sqlite`, which translates SQLite's exceptions into :class:`~oms.errors.CacheError`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, TypeVar

import attrs

from oms._decimal import fmt, to_decimal
from oms._sqlite import (
    Database,
    Migration,
    SQLiteFile,
    apply_migrations,
    script,
    translated,
)
from oms.errors import ValidationError
from oms.models import OrderType, PublicTrade, Side

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "HistoryDatabase",
    "HistoryStore",
    "PageWrite",
    "StoredTrade",
    "TradeCursor",
    "time_to_ns",
]

#: ``PRAGMA application_id`` of a history database ("omsh").
APPLICATION_ID = 0x6F6D7368

_NS = 10**9


def time_to_ns(time: float) -> int:
    """A trade row's float seconds as integer nanoseconds, through the float's shortest
    decimal text (which is the text Kraken sent: its rows carry at most microseconds)."""
    exact = Decimal(repr(time)).scaleb(9)
    return int(exact.to_integral_value(rounding=ROUND_HALF_EVEN))


# --- schema -------------------------------------------------------------------------------


def _table(name: str, columns: Sequence[tuple[str, str]], *, pk: str | None = None) -> str:
    """``CREATE TABLE`` as sqlite-utils wrote it for versions 1 and 2 (the same files)."""
    body = ",\n".join(f'   "{c}" {kind}' for c, kind in columns)
    tail = f",\n   PRIMARY KEY ({pk})" if pk else ""
    return f'CREATE TABLE "{name}" (\n{body}{tail}\n)'


def _index(name: str, table: str, columns: str, *, unique: bool = False) -> str:
    kind = "UNIQUE INDEX" if unique else "INDEX"
    return f'CREATE {kind} "{name}"\n    ON "{table}" ({columns})'


_T, _TN, _I, _IN = "TEXT", "TEXT NOT NULL", "INTEGER", "INTEGER NOT NULL"
_R, _RN = "REAL", "REAL NOT NULL"

_m1_trades = script(
    _table(
        "trades",
        [
            ("id", "INTEGER PRIMARY KEY"),
            ("pair", _TN),
            # What makes a trade the same trade when a page repeats it (see _trade_keys).
            ("key", _TN),
            ("time_ns", _IN),
            ("time", _RN),
            *((c, _TN) for c in ("price", "volume", "side", "ordertype")),
            ("misc", _T),
            ("trade_id", _I),
        ],
    ),
    _index("trades_key", "trades", '"pair", "key"', unique=True),
    # Range reads (OHLC windows) are an index seek on (pair, time); id keeps tape order.
    _index("trades_time", "trades", '"pair", "time_ns", "id"'),
    _table(
        "trade_cursors",
        [("pair", "TEXT PRIMARY KEY"), ("cursor", _IN), ("origin", _IN), ("updated_at", _RN)],
    ),
    # Kraken answers with the pair id (XXBTZUSD) whatever name was asked for (XBTUSD).
    _table("pair_names", [("name", "TEXT PRIMARY KEY"), ("pair", _TN)]),
)

_m2_funding = script(
    _table(
        "funding",
        [
            ("kind", _T),
            ("refid", _T),
            ("method", _TN),
            ("aclass", _T),
            ("asset", _TN),
            *((c, _T) for c in ("txid", "info")),
            ("amount", _TN),
            ("fee", _T),
            ("time", _RN),
            ("status_raw", _TN),
            *((c, _T) for c in ("status_prop_raw", "network", "key", "originators")),
            ("first_seen", _RN),
            ("last_seen", _RN),
            ("changed_at", _R),
        ],
        pk='"kind", "refid"',
    ),
    _table(
        "funding_transitions",
        [
            ("id", "INTEGER PRIMARY KEY"),
            ("kind", _TN),
            ("refid", _TN),
            ("seen_at", _RN),
            *((c, _T) for c in ("from_status_raw", "from_prop_raw")),
            ("to_status_raw", _TN),
            *((c, _T) for c in ("to_prop_raw", "txid")),
            ("allowed", _IN),
            ("problem", _T),
        ],
    ),
    _index("funding_transitions_refid", "funding_transitions", '"refid", "id"'),
)


#: Schema migrations, applied in order; ``PRAGMA user_version`` counts those applied.
MIGRATIONS: tuple[Migration, ...] = (_m1_trades, _m2_funding)


def _migrate(db: Database, path: str) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        app = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        has_tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
        if app != APPLICATION_ID and (app != 0 or version != 0 or has_tables):
            raise ValidationError(
                f"{path} is not an oms history database (an order cache, or another "
                "application's file?); give a new file",
                field="path",
                rule="application-id",
            )
        apply_migrations(db, MIGRATIONS, what="history database")
        if app != APPLICATION_ID:
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


class HistoryDatabase(SQLiteFile):
    """One SQLite connection to a history database (schema up to date), shared by threads
    under a lock. :class:`HistoryStore` and :class:`oms.funding_store.FundingStore` build on
    it."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0):
        super().__init__(
            path, busy_timeout=busy_timeout, migrate=lambda db: _migrate(db, str(path))
        )

    def _unusable(self, exc: sqlite3.Error) -> Exception:
        # Exactly DatabaseError is SQLite's "file is not a database"; its subclasses (a
        # read-only file, say) are real I/O conditions: a CacheError.
        if type(exc) is not sqlite3.DatabaseError:
            return translated(exc, self.path)
        return ValidationError(
            f"{self.path} is not an SQLite database ({exc})",
            field="path",
            rule="application-id",
        )


# --- public trades --------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class StoredTrade:
    """A public trade as stored: the :class:`~oms.models.PublicTrade` fields plus its pair
    and ``time_ns``. Usable wherever a trade is expected (e.g. ``ohlc_from_trades``)."""

    pair: str
    time_ns: int
    time: float
    price: Decimal
    volume: Decimal
    side: Side | None
    ordertype: OrderType | None
    misc: str = ""
    trade_id: int | None = None
    #: Kraken's text for a side/type this library does not know (else empty).
    side_raw: str = ""
    ordertype_raw: str = ""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StoredTrade:
        side = _known(Side, row["side"])
        ordertype = _known(OrderType, row["ordertype"])
        return cls(
            pair=row["pair"],
            time_ns=int(row["time_ns"]),
            time=float(row["time"]),
            price=to_decimal(row["price"]),
            volume=to_decimal(row["volume"]),
            side=side,
            ordertype=ordertype,
            misc=row["misc"] or "",
            trade_id=row["trade_id"],
            side_raw="" if side is not None else row["side"],
            ordertype_raw="" if ordertype is not None else row["ordertype"],
        )

    def to_public(self) -> PublicTrade:
        extra = {}
        if self.side is None:
            extra["side_raw"] = self.side_raw
        if self.ordertype is None:
            extra["ordertype_raw"] = self.ordertype_raw
        return PublicTrade(
            price=self.price,
            volume=self.volume,
            time=self.time,
            side=self.side,
            ordertype=self.ordertype,
            misc=self.misc,
            trade_id=self.trade_id,
            **extra,
        )


_K = TypeVar("_K", Side, OrderType)


def _known(cls: type[_K], text: str) -> _K | None:
    try:
        return cls(text)
    except ValueError:
        return None


def _text(value: Side | OrderType | None, raw: str) -> str:
    """A side/type as stored: the enum's value, or Kraken's own text for an unknown one."""
    return raw if value is None else value.value


@attrs.frozen(kw_only=True)
class TradeCursor:
    """Where paging of one pair stands.

    ``cursor`` is the ``since`` for the next Trades call (Kraken's exact nanosecond ``last``);
    every trade up to it is stored. Trades after ``origin`` (the ``since`` the stored run of
    pages started from; 0 = the market's first trade) up to ``cursor`` are complete.
    """

    pair: str
    cursor: int
    origin: int
    updated_at: float

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TradeCursor:
        return cls(
            pair=row["pair"],
            cursor=int(row["cursor"]),
            origin=int(row["origin"]),
            updated_at=float(row["updated_at"]),
        )

    def covers(self, start_ns: int, end_ns: int) -> bool:
        """Whether every trade with ``start_ns <= time < end_ns`` is stored."""
        return (self.origin == 0 or start_ns > self.origin) and end_ns <= self.cursor + 1


@attrs.frozen
class PageWrite:
    """What one :meth:`HistoryStore.commit_page` did."""

    received: int
    inserted: int

    @property
    def duplicates(self) -> int:
        return self.received - self.inserted


def _trade_keys(trades: Sequence[PublicTrade], times: Sequence[int]) -> list[str]:
    """Identity of each trade: its ``trade_id`` when Kraken sends one; otherwise every field
    plus the occurrence of that combination within the page, so two identical fills in a
    page stay two trades while a page repeating the previous page's tail adds nothing."""
    seen: dict[str, int] = {}
    keys = []
    for trade, time_ns in zip(trades, times, strict=True):
        if trade.trade_id is not None:
            keys.append(f"id:{trade.trade_id}")
            continue
        fields = "|".join(
            (
                str(time_ns),
                fmt(trade.price),
                fmt(trade.volume),
                _text(trade.side, trade.side_raw),
                _text(trade.ordertype, trade.ordertype_raw),
                trade.misc,
            )
        )
        occurrence = seen.get(fields, 0)
        seen[fields] = occurrence + 1
        keys.append(f"k:{fields}|{occurrence}")
    return keys


_INSERT_TRADE = (
    "INSERT OR IGNORE INTO trades "
    "(pair, key, time_ns, time, price, volume, side, ordertype, misc, trade_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class HistoryStore(HistoryDatabase):
    """The public trade tape of any number of pairs, with each pair's paging cursor.

    ``path`` is a file (created if missing) or ``":memory:"``. Several processes may open the
    same file; one object may be shared by threads.
    """

    # --- pairs and cursors ------------------------------------------------------------

    def resolve(self, name: str) -> str | None:
        """The pair id Kraken answered with when asked for ``name`` before, if ever."""
        rows = self._query(
            "SELECT pair FROM pair_names WHERE name = ? "
            "UNION SELECT pair FROM trade_cursors WHERE pair = ?",
            [name.upper(), name],
        )
        return str(rows[0]["pair"]) if rows else None

    def position(self, pair: str) -> TradeCursor | None:
        """The paging position of ``pair`` (any name used before, or the pair id)."""
        pair_id = self.resolve(pair) or pair
        rows = self._query("SELECT * FROM trade_cursors WHERE pair = ?", [pair_id])
        return TradeCursor.from_row(rows[0]) if rows else None

    def positions(self) -> list[TradeCursor]:
        rows = self._query("SELECT * FROM trade_cursors ORDER BY pair")
        return [TradeCursor.from_row(r) for r in rows]

    # --- writing --------------------------------------------------------------------------

    def commit_page(
        self,
        pair: str,
        trades: Sequence[PublicTrade],
        *,
        cursor: int | None,
        origin: int,
        now: float,
        alias: str | None = None,
    ) -> PageWrite:
        """Store one Trades page and move the pair's cursor, in ONE transaction.

        ``pair`` is the pair id Kraken answered with; ``cursor`` the page's ``last`` (None
        leaves the cursor where it is); ``origin`` where this run of pages started. A trade
        already stored (a page boundary repeated) is skipped. A crash or an error anywhere
        in here leaves the old rows and the old cursor: the cursor never gets ahead of the
        trades it vouches for.
        """
        times = [time_to_ns(t.time) for t in trades]
        keys = _trade_keys(trades, times)
        rows = [
            (
                pair,
                key,
                time_ns,
                t.time,
                fmt(t.price),
                fmt(t.volume),
                _text(t.side, t.side_raw),
                _text(t.ordertype, t.ordertype_raw),
                t.misc,
                t.trade_id,
            )
            for t, key, time_ns in zip(trades, keys, times, strict=True)
        ]
        with self._write() as db:
            inserted = db.executemany(_INSERT_TRADE, rows).rowcount if rows else 0
            if alias is not None and alias.upper() != pair:
                db.execute(
                    "INSERT OR REPLACE INTO pair_names (name, pair) VALUES (?, ?)",
                    [alias.upper(), pair],
                )
            if cursor is not None:
                self._write_cursor(db, pair, cursor=cursor, origin=origin, now=now)
        return PageWrite(len(rows), inserted)

    @staticmethod
    def _write_cursor(db: Database, pair: str, *, cursor: int, origin: int, now: float) -> None:
        db.execute(
            "INSERT OR REPLACE INTO trade_cursors (pair, cursor, origin, updated_at) "
            "VALUES (?, ?, ?, ?)",
            [pair, cursor, origin, now],
        )

    # --- reading --------------------------------------------------------------------------

    def iter_trades(
        self,
        pair: str,
        *,
        start_ns: int | None = None,
        end_ns: int | None = None,
        batch: int = 5000,
    ) -> Iterator[StoredTrade]:
        """Stored trades of ``pair`` with ``start_ns <= time_ns < end_ns``, in tape order.

        Read in batches (keyset pagination), so a long history never sits in memory whole
        and no lock is held between batches.
        """
        if batch < 1:
            raise ValidationError("batch must be positive", field="batch", rule="positive")
        pair_id = self.resolve(pair) or pair
        after: tuple[int, int] = (-1, -1) if start_ns is None else (start_ns - 1, 1 << 62)
        stop = (1 << 63) - 1 if end_ns is None else end_ns
        while True:
            rows = self._query(
                "SELECT * FROM trades WHERE pair = ? AND (time_ns, id) > (?, ?) "
                "AND time_ns < ? ORDER BY time_ns, id LIMIT ?",
                [pair_id, after[0], after[1], stop, batch],
            )
            for row in rows:
                yield StoredTrade.from_row(row)
            if len(rows) < batch:
                return
            after = (int(rows[-1]["time_ns"]), int(rows[-1]["id"]))

    def trades(
        self, pair: str, *, start_ns: int | None = None, end_ns: int | None = None
    ) -> list[StoredTrade]:
        """Like :meth:`iter_trades`, as a list."""
        return list(self.iter_trades(pair, start_ns=start_ns, end_ns=end_ns))

    def count(self, pair: str) -> int:
        pair_id = self.resolve(pair) or pair
        rows = self._query("SELECT count(*) AS n FROM trades WHERE pair = ?", [pair_id])
        return int(rows[0]["n"])

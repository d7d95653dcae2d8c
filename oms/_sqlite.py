"""Opening an oms SQLite file: one recipe for the order cache and the history database.

Both are shared by threads (under the owner's lock) and by processes (WAL, busy timeout), and
write only inside explicit ``BEGIN IMMEDIATE`` transactions.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from oms.errors import ValidationError

__all__ = [
    "SQLiteFile",
    "SequenceFile",
    "advance_sequence",
    "apply_migrations",
    "migrator",
    "open_database",
]


def open_database(
    path: str | os.PathLike[str],
    *,
    busy_timeout: float,
    migrate: Callable[[sqlite_utils.Database], None],
) -> sqlite_utils.Database:
    """Connect to ``path`` (a file, created if missing, or ``":memory:"``) and migrate it.

    The connection is closed again if anything fails, so a refused file leaks nothing.
    """
    if busy_timeout <= 0:
        raise ValidationError("busy_timeout must be positive", field="busy_timeout")
    name = str(path)
    if name != ":memory:":
        Path(name).parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: the driver never opens transactions behind our back; every write
    # says BEGIN IMMEDIATE itself. check_same_thread=False because the owner's lock serialises
    # the threads that share the connection.
    conn = sqlite3.connect(
        name, timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )
    db = sqlite_utils.Database(conn)
    try:
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        if name != ":memory:":
            db.enable_wal()
        # NORMAL is durable across a process crash in WAL mode (only an OS crash can lose the
        # last commits), and a process crash is what intents and cursors guard against.
        db.execute("PRAGMA synchronous = NORMAL")
        migrate(db)
    except BaseException:
        conn.close()
        raise
    return db


class SQLiteFile:
    """An oms SQLite file: one connection shared by threads under a lock, explicit writes.

    Subclasses (the order cache, the history and funding stores) add their tables' methods;
    what every one of them needs, and the same way, lives here.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float,
        migrate: Callable[[sqlite_utils.Database], None],
    ):
        self.path = str(path)
        self._db = open_database(self.path, busy_timeout=busy_timeout, migrate=migrate)
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self: _F) -> _F:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def _write(self) -> Iterator[sqlite_utils.Database]:
        """One write transaction (BEGIN IMMEDIATE): all of it commits, or none of it."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._db.query(sql, params))


_F = TypeVar("_F", bound=SQLiteFile)


def apply_migrations(
    db: sqlite_utils.Database,
    migrations: Sequence[Callable[[sqlite_utils.Database], None]],
    *,
    what: str,
) -> None:
    """Run the migrations ``db`` has not had yet (``PRAGMA user_version`` counts them).

    Call inside the caller's write transaction, so an upgrade is all or nothing. A file from a
    newer oms is refused rather than written with an older schema's assumptions.
    """
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > len(migrations):
        raise ValidationError(
            f"the {what} schema is version {version}, newer than this oms "
            f"({len(migrations)}); upgrade oms",
            field="path",
            rule="schema-version",
        )
    for number in range(version, len(migrations)):
        migrations[number](db)
    if version != len(migrations):
        db.execute(f"PRAGMA user_version = {len(migrations)}")


def migrator(
    migrations: Sequence[Callable[[sqlite_utils.Database], None]],
    *,
    what: str,
    before: Callable[[sqlite_utils.Database], None] | None = None,
) -> Callable[[sqlite_utils.Database], None]:
    """The ``migrate`` for :func:`open_database`: :func:`apply_migrations` in one write
    transaction, so an upgrade is all or nothing; ``before`` may refuse the file first."""

    def migrate(db: sqlite_utils.Database) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            if before is not None:
                before(db)
            apply_migrations(db, migrations, what=what)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    return migrate


def advance_sequence(
    db: sqlite_utils.Database,
    key: Sequence[Any],
    step: Callable[[int | None], int],
    *,
    in_use: Callable[[int], bool] | None = None,
) -> int:
    """Replace the ``userref_sequences`` row ``key`` (kind, name, lo, hi) holds, ``v``, with
    ``step(v)`` and return it; call inside the caller's write transaction.

    ``step`` gets ``None`` for a new sequence and may raise to refuse. A value ``in_use``
    reports is stepped over in the same transaction.
    """
    row = db.execute(
        "SELECT last FROM userref_sequences WHERE kind = ? AND name = ? AND lo = ? AND hi = ?",
        list(key),
    ).fetchone()
    value = step(None if row is None else int(row[0]))
    while in_use is not None and in_use(value):
        value = step(value)
    db.execute(
        "INSERT INTO userref_sequences (kind, name, lo, hi, last) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (kind, name, lo, hi) DO UPDATE SET last = excluded.last",
        [*key, value],
    )
    return value


class SequenceFile(SQLiteFile):
    """An oms SQLite file that keeps userref sequences (a ``userref_sequences`` table) and a
    ``meta`` table: the order cache and an account's allocation state."""

    def _in_use(self, db: sqlite_utils.Database, userref: int) -> bool:
        """Whether ``userref`` must be stepped over (inside the caller's transaction)."""
        raise NotImplementedError

    def advance_sequence(
        self,
        name: str,
        lo: int,
        hi: int,
        step: Callable[[int | None], int],
        *,
        kind: str = "counter",
        skip_in_use: bool = False,
    ) -> int:
        """Atomically replace the sequence's last value ``v`` with ``step(v)`` and return it.

        ``step`` gets ``None`` for a new sequence and may raise to refuse; the read and the
        write are one ``BEGIN IMMEDIATE`` transaction, so no two callers, in any process,
        see the same ``v``. A sequence is keyed by ``kind`` (the allocator's), ``name`` and
        range. With ``skip_in_use`` a value in use in this file is stepped over within the
        same transaction.
        """
        with self._write() as db:
            in_use = (lambda v: self._in_use(db, v)) if skip_in_use else None
            return advance_sequence(db, (kind, name, lo, hi), step, in_use=in_use)

    def sequence_last(self, name: str, lo: int, hi: int, *, kind: str = "counter") -> int | None:
        rows = self._query(
            "SELECT last FROM userref_sequences WHERE kind = ? AND name = ? AND lo = ? AND hi = ?",
            [kind, name, lo, hi],
        )
        return int(rows[0]["last"]) if rows else None

    def get_meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", [key])
        return rows[0]["value"] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as db:
            db.table("meta").upsert({"key": key, "value": value}, pk="key")

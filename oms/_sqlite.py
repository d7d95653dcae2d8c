"""Opening an oms SQLite file: one recipe for the order cache and the history database.

Both are shared by threads (under the owner's lock) and by processes (WAL, busy timeout), and
write only inside explicit ``BEGIN IMMEDIATE`` transactions.

Plain :mod:`sqlite3`, not sqlite-utils: sqlite-utils imports pandas and numpy whenever they
are installed (650 ms at ``import oms``), and its per-call table introspection cost more than
the statements themselves on the placement path. The few statements these files need are
written out; :func:`insert_sql` and :func:`upsert_sql` build the repetitive ones once.

This is the boundary that owns :mod:`sqlite3`: every way into a file (``_read()``,
``_write()``, opening it) turns its exceptions into :class:`~oms.errors.CacheError`
(:class:`~oms.errors.CacheBusy` for a lock held past the busy timeout, see
:func:`translated`), so nothing above it ever sees a ``sqlite3`` exception.
"""

from __future__ import annotations

import functools
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from oms.errors import CacheBusy, CacheError, ValidationError

__all__ = [
    "Database",
    "SQLiteFile",
    "SequenceFile",
    "advance_sequence",
    "apply_migrations",
    "insert_sql",
    "migrator",
    "open_database",
    "rows",
    "translated",
    "upsert_sql",
]

#: The connection every helper here takes (a plain :class:`sqlite3.Connection`).
Database = sqlite3.Connection
Migration = Callable[[Database], None]


def _is_busy(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` is SQLite saying another connection holds the lock it needs."""
    text = str(exc)
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def translated(exc: sqlite3.Error, path: str) -> CacheError:
    """The :class:`~oms.errors.CacheError` for SQLite's ``exc`` on the file ``path``."""
    kind = CacheBusy if _is_busy(exc) else CacheError
    return kind(f"{path}: {exc}", path=path)


def rows(db: Database, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """The rows of a query as dicts keyed by column name."""
    cursor = db.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


@functools.lru_cache(maxsize=64)
def insert_sql(table: str, columns: tuple[str, ...], *, or_ignore: bool = False) -> str:
    """``INSERT INTO table (columns) VALUES (?, ...)`` (``OR IGNORE`` on request)."""
    verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
    names = ", ".join(f'"{c}"' for c in columns)
    return f'{verb} INTO "{table}" ({names}) VALUES ({", ".join("?" * len(columns))})'


@functools.lru_cache(maxsize=64)
def upsert_sql(
    table: str, columns: tuple[str, ...], pk: tuple[str, ...], *, keep: tuple[str, ...] = ()
) -> str:
    """An insert that updates the given columns of an existing row (others stay as they are);
    ``keep`` names columns an existing row keeps too (written only when the row is new)."""
    keys = ", ".join(f'"{c}"' for c in pk)
    sets = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in pk + keep)
    action = f"DO UPDATE SET {sets}" if sets else "DO NOTHING"
    return f"{insert_sql(table, columns)} ON CONFLICT ({keys}) {action}"


def open_database(
    path: str | os.PathLike[str],
    *,
    busy_timeout: float,
    migrate: Migration,
) -> Database:
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
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        if name != ":memory:":
            _use_wal(conn, busy_timeout)
        # NORMAL is durable across a process crash in WAL mode (only an OS crash can lose the
        # last commits), and a process crash is what intents and cursors guard against.
        conn.execute("PRAGMA synchronous = NORMAL")
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _use_wal(conn: Database, busy_timeout: float) -> None:
    """Put the file in WAL mode, waiting up to ``busy_timeout`` for the right to switch.

    Switched only when not yet WAL (a persistent property of the file): the switch needs the
    file to itself, and a reopened file must not contend for that. SQLite answers "database
    is locked" at once, without its busy handler, when another connection holds the write
    lock of a file still in rollback mode (two processes creating one file at the same moment
    meet exactly that), so the wait is done here: jittered, short sleeps until the deadline,
    then the last error as it is (a :class:`~oms.errors.CacheBusy` once translated).
    """
    deadline = time.monotonic() + busy_timeout
    pause = 0.001
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = wal")
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(random.uniform(pause / 2, pause))
        pause = min(pause * 2, 0.05)


class SQLiteFile:
    """An oms SQLite file: one connection shared by threads under a lock, explicit writes.

    Subclasses (the order cache, the history and funding stores) add their tables' methods;
    what every one of them needs, and the same way, lives here. Every way in (:meth:`_read`,
    :meth:`_write`, :meth:`_query`) translates SQLite's exceptions (see :func:`translate`).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float,
        migrate: Migration,
    ):
        self.path = str(path)
        try:
            self._db = open_database(self.path, busy_timeout=busy_timeout, migrate=migrate)
        except sqlite3.Error as exc:
            failure = translated(exc, self.path)
            raise (failure if isinstance(failure, CacheBusy) else self._unusable(exc)) from exc
        self._lock = threading.RLock()

    def _unusable(self, exc: sqlite3.Error) -> Exception:
        """What to raise when SQLite cannot open or migrate the file (a lock held too long
        is always :class:`~oms.errors.CacheBusy`); subclasses may call it a wrong argument."""
        return translated(exc, self.path)

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
        with self._read() as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    def _read(self) -> _Access:
        """The connection, under the lock, with SQLite's exceptions translated."""
        return _Access(self, write=False)

    def _write(self) -> _Access:
        """One write transaction (BEGIN IMMEDIATE): all of it commits, or none of it."""
        return _Access(self, write=True)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._read() as db:
            return rows(db, sql, params)


_F = TypeVar("_F", bound=SQLiteFile)


class _Access:
    """``with file._read() as db`` / ``with file._write() as db``: the lock, the transaction
    and the translation of SQLite's exceptions in one object (a class rather than a
    generator-based context manager: it is on every call of the placement path)."""

    __slots__ = ("_file", "_write")

    def __init__(self, file: SQLiteFile, *, write: bool):
        self._file = file
        self._write = write

    def __enter__(self) -> Database:
        file = self._file
        file._lock.acquire()
        if self._write:
            try:
                file._db.execute("BEGIN IMMEDIATE")
            except BaseException as exc:
                file._lock.release()
                if isinstance(exc, sqlite3.Error):
                    raise translated(exc, file.path) from exc
                raise
        return file._db

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        db = self._file._db
        try:
            if self._write:
                if exc is None:
                    db.execute("COMMIT")
                elif db.in_transaction:
                    db.execute("ROLLBACK")
        except sqlite3.Error as failed:
            # A failed COMMIT (disk full, I/O error) rolls back: nothing was written.
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise translated(failed, self._file.path) from failed
        finally:
            self._file._lock.release()
        if isinstance(exc, sqlite3.Error):
            raise translated(exc, self._file.path) from exc


def apply_migrations(db: Database, migrations: Sequence[Migration], *, what: str) -> None:
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
    migrations: Sequence[Migration],
    *,
    what: str,
    before: Migration | None = None,
) -> Migration:
    """The ``migrate`` for :func:`open_database`: :func:`apply_migrations` in one write
    transaction, so an upgrade is all or nothing; ``before`` may refuse the file first."""

    def migrate(db: Database) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            if before is not None:
                before(db)
            apply_migrations(db, migrations, what=what)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    return migrate


def script(*statements: str) -> Migration:
    """A migration that runs ``statements`` in order (inside the caller's transaction)."""

    def run(db: Database) -> None:
        for statement in statements:
            db.execute(statement)

    return run


def advance_sequence(
    db: Database,
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


_SET_META = upsert_sql("meta", ("key", "value"), ("key",))


def set_meta(db: Database, key: str, value: str) -> None:
    """Write one ``meta`` row (inside the caller's write transaction)."""
    db.execute(_SET_META, (key, value))


class SequenceFile(SQLiteFile):
    """An oms SQLite file that keeps userref sequences (a ``userref_sequences`` table) and a
    ``meta`` table: the order cache and an account's allocation state."""

    def _in_use(self, db: Database, userref: int) -> bool:
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
        with self._read() as db:
            row = db.execute(
                "SELECT last FROM userref_sequences "
                "WHERE kind = ? AND name = ? AND lo = ? AND hi = ?",
                (kind, name, lo, hi),
            ).fetchone()
        return None if row is None else int(row[0])

    def get_meta(self, key: str) -> str | None:
        with self._read() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as db:
            set_meta(db, key, value)

"""Opening an oms SQLite file: one recipe for the order cache and the history database.

Both are shared by threads (under the owner's lock) and by processes (WAL, busy timeout), and
write only inside explicit ``BEGIN IMMEDIATE`` transactions.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from oms.errors import ValidationError

__all__ = ["open_database"]


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

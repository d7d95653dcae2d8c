"""oms._sqlite: opening a file that other connections and processes are using at that moment."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from oms._sqlite import open_database
from oms.account import AccountState
from oms.errors import CacheBusy


def _rollback_file_with_writer(path: Path) -> sqlite3.Connection:
    """A file still in rollback-journal mode whose write lock another connection holds."""
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE t (x)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (1)")
    return writer


def test_opening_waits_for_a_writer_before_switching_to_wal(tmp_path: Path) -> None:
    # SQLite refuses the switch at once while another connection holds the write lock of a
    # rollback-mode file; the opener must wait for it like for any other lock.
    path = tmp_path / "f.sqlite"
    writer = _rollback_file_with_writer(path)
    release = threading.Timer(0.3, lambda: writer.execute("COMMIT"))
    release.start()
    try:
        db = open_database(path, busy_timeout=30, migrate=lambda db: None)
    finally:
        release.join()
        writer.close()
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT x FROM t").fetchall() == [(1,)]
    db.close()


def test_a_writer_that_never_lets_go_is_cache_busy(tmp_path: Path) -> None:
    path = tmp_path / "accounts.sqlite"
    writer = _rollback_file_with_writer(path)
    try:
        with pytest.raises(CacheBusy) as caught:
            AccountState(path, busy_timeout=0.2)
    finally:
        writer.close()
    assert caught.value.path == str(path)


_OPEN_AT = """
import sys, time
from oms.account import AccountState
path, start = sys.argv[1], float(sys.argv[2])
while time.time() < start:
    pass
AccountState(path, busy_timeout=30).close()
print("opened")
"""


@pytest.mark.parametrize("round_", range(3))
def test_processes_creating_one_file_at_the_same_moment_all_open_it(
    tmp_path: Path, round_: int
) -> None:
    path = tmp_path / f"shared-{round_}.sqlite"
    start = time.time() + 1.5  # every child has imported oms and spins by then
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_AT, str(path), repr(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    results = [child.communicate(timeout=120) for child in children]
    assert [err.strip().splitlines()[-1:] for _, err in results] == [[]] * len(children)
    assert [out.strip() for out, _ in results] == ["opened"] * len(children)
    # (sqlite3's own context manager commits but does not close: closing() does.)
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

"""Who may act on what: intents of live managers, userrefs in use by a placement, calls that
:meth:`~oms.manager.OrderManager.close` must wait for."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from oms.errors import ValidationError

__all__ = ["Activity", "Ownership", "Turns"]

# Tokens of managers alive in this process (the only liveness test for an in-memory cache).
_LIVE: set[str] = set()
_LIVE_LOCK = threading.Lock()

_POSIX = os.name == "posix"
if _POSIX:
    import fcntl


class _FileLock:
    """An exclusive OS lock on one file, held while this object holds it open: ``flock``
    where there is ``fcntl`` (what filelock itself uses there, so older oms processes and this
    one see each other's locks), filelock elsewhere (imported only there)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._other: Any = None

    def try_acquire(self) -> bool:
        if _POSIX:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
            self._fd = fd
            return True
        import filelock

        lock = filelock.FileLock(str(self.path))
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            return False
        self._other = lock
        return True

    @property
    def held(self) -> bool:
        return self._fd is not None or self._other is not None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._other is not None:
            self._other.release()
            self._other = None


class Ownership:
    """Tells intents of a live manager (in flight: hands off) from a dead one's (recover).

    Each manager holds an OS file lock named after its token for as long as it lives; the OS
    drops the lock when the process dies, even by SIGKILL. A lock that can be taken therefore
    belongs to a manager that is gone. The lock folder is named after the database's real
    path (symlinks and relative paths resolved, as SQLite itself does), so every manager of
    one file looks in the same place however it was opened.
    """

    def __init__(self, cache_path: str) -> None:
        self.token = uuid.uuid4().hex
        self._folder = (
            None if cache_path == ":memory:" else Path(os.path.realpath(cache_path) + ".owners")
        )
        self._lock: _FileLock | None = None
        if self._folder is not None:
            self._folder.mkdir(parents=True, exist_ok=True)
            self._lock = _FileLock(self._folder / f"{self.token}.lock")
            if not self._lock.try_acquire():  # a fresh random token: nobody else has it
                raise OSError(f"could not lock {self._lock.path}")
        with _LIVE_LOCK:
            _LIVE.add(self.token)

    def alive(self, token: str | None) -> bool:
        if token is None:
            return False
        with _LIVE_LOCK:
            if token in _LIVE:
                return True
        if self._folder is None:
            return False
        probe = _FileLock(self._folder / f"{token}.lock")
        if not probe.try_acquire():
            return True
        probe.release()
        return False

    def forget(self, token: str) -> None:
        if self._folder is not None:
            (self._folder / f"{token}.lock").unlink(missing_ok=True)

    def release(self) -> None:
        with _LIVE_LOCK:
            _LIVE.discard(self.token)
        if self._lock is not None and self._lock.held:
            self._lock.release()
            self.forget(self.token)


class _Turn:
    """The lock placements with one userref take turns on, and how many want it."""

    __slots__ = ("lock", "waiting")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting = 0


class Turns:
    """One turn per userref: a lookup by userref never runs while another placement with the
    same userref is between Kraken's answer and the cache (it could adopt that order), and a
    group cancel never runs while one of the group's placements is being recorded."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._turns: dict[int, _Turn] = {}

    @contextmanager
    def of(self, userref: int) -> Iterator[None]:
        with self._guard:
            turn = self._turns.setdefault(userref, _Turn())
            turn.waiting += 1
        try:
            with turn.lock:
                yield
        finally:
            with self._guard:
                turn.waiting -= 1
                if turn.waiting == 0:
                    # Unique-id userrefs are used once: drop their lock, keep the dict small.
                    del self._turns[userref]


class Activity:
    """Calls in progress, by thread (with nesting depth): closing waits for other threads'."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active: dict[int, int] = {}
        self.closing = False

    @contextmanager
    def working(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self.closing and me not in self._active:
                raise ValidationError("this OrderManager is closed", field="manager", rule="closed")
            self._active[me] = self._active.get(me, 0) + 1
        try:
            yield
        finally:
            with self._cond:
                self._active[me] -= 1
                if not self._active[me]:
                    del self._active[me]
                self._cond.notify_all()

    def close(self) -> None:
        """Refuse new calls, and wait for those running in other threads to finish."""
        with self._cond:
            self.closing = True
            me = threading.get_ident()
            while any(t != me for t in self._active):
                self._cond.wait()

"""One nonce source per API key, shared by every thread and process on this machine.

Kraken rejects a nonce that is not larger than the last one it saw for the key, and it never
forgets (a key that once saw a nanosecond nonce refuses millisecond ones forever). So the
high-water mark is persisted in a small file, keyed by a hash of the API key (never the key
itself), and updated under an exclusive file lock. The lock (and an in-process lock) is held
for the whole ``with reserve()`` block, so a signed request leaves before any later nonce is
handed out: requests for one key reach Kraken in nonce order.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from oms.errors import NonceLockTimeout, ValidationError
from oms.paths import nonce_dir as default_directory

_POSIX = os.name == "posix"
if _POSIX:
    import fcntl

__all__ = ["SCALES", "NonceSource", "default_directory"]

#: Divisors applied to ``time.time_ns()`` for each supported nonce scale.
SCALES = {"ns": 1, "us": 1_000, "ms": 1_000_000}

_registry_lock = threading.Lock()
_thread_locks: dict[str, threading.Lock] = {}


def _thread_lock_for(path: str) -> threading.Lock:
    with _registry_lock:
        return _thread_locks.setdefault(path, threading.Lock())


# The mark is written in place, zero-padded to one width, so a write replaces all of it: a
# crash leaves the old or the new number, never half of one (a write this small is one
# page). Twenty digits hold every 64-bit nonce.
_MARK_WIDTH = 20
_HOLDER_WIDTH = 40
# Weak: the files close when the last source for the key is gone (tests make thousands).
_open_files: weakref.WeakValueDictionary[str, _KeyFiles] = weakref.WeakValueDictionary()


class _KeyFiles:
    """One key's lock and mark files, opened once per process and kept open (POSIX).

    Profiling showed the portable path (open, write, rename and a holder file per nonce, and
    filelock's bookkeeping) at ~0.6 ms of a ~1.8 ms call; here a nonce costs a lock, a stat,
    a read and two writes on open descriptors. The lock is ``flock`` on the same ``.lock``
    file filelock uses, so processes on either path still exclude each other; the mark is
    re-opened whenever the file was replaced (by an older oms, which renames).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = Path(f"{path}.lock")
        self._lock_fd = self._mark_fd = self._mark_ino = -1
        self._pid = -1
        self.held = False

    def __del__(self) -> None:
        self._close()

    def _close(self) -> None:
        for fd in (self._lock_fd, self._mark_fd):
            if fd >= 0:
                os.close(fd)
        self._lock_fd = self._mark_fd = self._mark_ino = -1

    def _open(self) -> None:
        # Once per process: a forked child must not share its parent's open lock file
        # (flock locks belong to the open file, so the two would not exclude each other).
        if self._pid != os.getpid():
            self._close()
            self._lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()

    def _reopen_mark(self) -> None:
        try:
            if os.stat(self.path).st_ino == self._mark_ino:
                return
        except FileNotFoundError:
            pass
        if self._mark_fd >= 0:
            os.close(self._mark_fd)
        self._mark_fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        self._mark_ino = os.fstat(self._mark_fd).st_ino
        value = self.read()
        if os.fstat(self._mark_fd).st_size != _MARK_WIDTH + 1:
            os.ftruncate(self._mark_fd, 0)
            self.write(value)

    def read(self) -> int:
        text = os.pread(self._mark_fd, 64, 0).strip()
        return int(text) if text else 0

    def write(self, nonce: int) -> None:
        os.pwrite(self._mark_fd, f"{nonce:0{_MARK_WIDTH}d}\n".encode(), 0)

    def _acquire(self, timeout: float, holder_message: Callable[[], str]) -> None:
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        give_up = time.monotonic() + timeout
        pause = 0.001
        while True:
            time.sleep(pause)
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= give_up:
                    raise NonceLockTimeout(holder_message()) from None
            pause = min(pause * 2, 0.05)

    @contextmanager
    def locked(self, timeout: float, holder_message: Callable[[], str]) -> Iterator[_KeyFiles]:
        self._open()
        self._acquire(timeout, holder_message)
        try:
            # Who holds the lock and since when, for a process that waits too long.
            holder = f"{os.getpid()} {time.time():.3f}".ljust(_HOLDER_WIDTH) + "\n"
            os.pwrite(self._lock_fd, holder.encode(), 0)
            self._reopen_mark()
            self.held = True
            yield self
        finally:
            self.held = False
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)


def _shared_files(path: str) -> _KeyFiles:
    with _registry_lock:
        files = _open_files.get(path)
        if files is None:
            files = _open_files[path] = _KeyFiles(Path(path))
        return files


class NonceSource:
    """Strictly increasing nonces for one API key, across threads and processes.

    ``fingerprint`` is :func:`oms.auth.key_fingerprint` of the key. ``scale`` is the unit of
    the clock part; keep one scale for the life of a key (nanoseconds by default, the largest
    scale in common use, so a key used by oms can later be used by nothing that sends more).
    """

    def __init__(
        self,
        fingerprint: str,
        *,
        directory: str | os.PathLike[str] | None = None,
        scale: str = "ns",
        clock_ns: Callable[[], int] = time.time_ns,
        lock_timeout: float = 60.0,
    ):
        if scale not in SCALES:
            raise ValidationError(f"scale must be one of {sorted(SCALES)}", field="scale")
        if not fingerprint or any(c in fingerprint for c in "/\\."):
            raise ValidationError("fingerprint must be a plain hash string", field="fingerprint")
        folder = Path(directory) if directory is not None else default_directory()
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{fingerprint[:40]}.nonce"
        self._divisor = SCALES[scale]
        self._clock_ns = clock_ns
        self._key = str(self.path.resolve())
        self._thread_lock = _thread_lock_for(self._key)
        self._lock_timeout = lock_timeout
        self._files: _KeyFiles | None = None
        self._file_lock: Any = None  # filelock's, where fcntl is missing (made on first use)

    def __repr__(self) -> str:
        return f"NonceSource(path={str(self.path)!r})"

    @property
    def _holder(self) -> Path:
        # Who holds the lock and since when ("pid unix-time"), for the process that waits:
        # written into the lock file itself on POSIX, a file of its own elsewhere.
        return Path(f"{self.path}.lock") if _POSIX else self.path.with_suffix(".holder")

    def _holder_message(self) -> str:
        waited = self._lock_timeout
        try:
            pid_text, since_text = self._holder.read_text().split()
            pid, since = int(pid_text), float(since_text)
        except (OSError, ValueError):
            who = "another process holds it"
        else:
            who = f"process {pid} has held it for {max(0.0, time.time() - since):.1f} s"
        return (
            f"could not take this API key's nonce lock within {waited:g} s: {who}. A request "
            "holds the lock until it is answered, at most its overall deadline (20 s by "
            f"default); a process holding it longer is stuck. Lock file: {self.path}.lock"
        )

    @property
    def held(self) -> bool:
        """Whether this process holds the key's lock (inside a :meth:`reserve` block)."""
        if _POSIX:
            return self._files is not None and self._files.held
        return self._file_lock is not None and bool(self._file_lock.is_locked)

    def last(self) -> int:
        """The largest nonce handed out so far for this key on this machine (0 if none)."""
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            return 0
        return int(text) if text else 0

    @contextmanager
    def reserve(self) -> Iterator[int]:
        """Hand out the next nonce and hold the key's lock until the block ends.

        Send the signed request inside the block.
        """
        with self._thread_lock:
            if _POSIX:
                if self._files is None:
                    self._files = _shared_files(self._key)
                with self._files.locked(self._lock_timeout, self._holder_message) as files:
                    nonce = max(self._clock_ns() // self._divisor, files.read() + 1)
                    files.write(nonce)
                    yield nonce
                return
            with self._portable_lock():
                nonce = max(self._clock_ns() // self._divisor, self.last() + 1)
                tmp = self.path.with_suffix(f".tmp{os.getpid()}")
                tmp.write_text(str(nonce))
                # Atomic replace: a crash leaves the old or the new mark, never half a number.
                os.replace(tmp, self.path)
                yield nonce

    @contextmanager
    def _portable_lock(self) -> Iterator[None]:
        # Where fcntl is missing (Windows): filelock, and the holder in a file of its own.
        # Imported here: 60 ms of `import oms` that POSIX never needs.
        import filelock

        if self._file_lock is None:
            self._file_lock = filelock.FileLock(f"{self.path}.lock", timeout=self._lock_timeout)
        try:
            self._file_lock.acquire()
        except filelock.Timeout:
            raise NonceLockTimeout(self._holder_message()) from None
        try:
            self._holder.write_text(f"{os.getpid()} {time.time():.3f}")
            yield
        finally:
            # Gone with the lock: a stale name would blame a process that left.
            self._holder.unlink(missing_ok=True)
            self._file_lock.release()

    def next(self) -> int:
        """A nonce without holding the lock afterwards (for callers that sign and send later)."""
        with self.reserve() as nonce:
            return nonce

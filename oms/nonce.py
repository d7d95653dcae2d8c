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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock

from oms.errors import NonceLockTimeout, ValidationError
from oms.paths import nonce_dir as default_directory

__all__ = ["SCALES", "NonceSource", "default_directory"]

#: Divisors applied to ``time.time_ns()`` for each supported nonce scale.
SCALES = {"ns": 1, "us": 1_000, "ms": 1_000_000}

_registry_lock = threading.Lock()
_thread_locks: dict[str, threading.Lock] = {}


def _thread_lock_for(path: str) -> threading.Lock:
    with _registry_lock:
        return _thread_locks.setdefault(path, threading.Lock())


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
        self._thread_lock = _thread_lock_for(str(self.path.resolve()))
        self._file_lock = filelock.FileLock(str(self.path) + ".lock", timeout=lock_timeout)

    def __repr__(self) -> str:
        return f"NonceSource(path={str(self.path)!r})"

    @property
    def _holder(self) -> Path:
        # Who holds the lock and since when ("pid unix-time"), for the process that waits.
        return self.path.with_suffix(".holder")

    def _holder_message(self) -> str:
        waited = self._file_lock.timeout
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
            try:
                self._file_lock.acquire()
            except filelock.Timeout:
                raise NonceLockTimeout(self._holder_message()) from None
            try:
                self._holder.write_text(f"{os.getpid()} {time.time():.3f}")
                nonce = max(self._clock_ns() // self._divisor, self.last() + 1)
                tmp = self.path.with_suffix(f".tmp{os.getpid()}")
                tmp.write_text(str(nonce))
                # Atomic replace: a crash leaves the old or the new mark, never half a number.
                os.replace(tmp, self.path)
                yield nonce
            finally:
                # Gone with the lock: a stale name would blame a process that left.
                self._holder.unlink(missing_ok=True)
                self._file_lock.release()

    def next(self) -> int:
        """A nonce without holding the lock afterwards (for callers that sign and send later)."""
        with self.reserve() as nonce:
            return nonce

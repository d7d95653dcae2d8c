"""Nonces for one key strictly increase across threads and processes, and survive restarts."""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms.auth import key_fingerprint
from oms.errors import ValidationError
from oms.nonce import NonceSource

FP = key_fingerprint("test-key")


def test_strictly_increasing_even_if_clock_stands_still(tmp_path: Path) -> None:
    source = NonceSource(FP, directory=tmp_path, clock_ns=lambda: 1_000)
    nonces = [source.next() for _ in range(50)]
    assert nonces == list(range(1_000, 1_050))


@given(st.lists(st.integers(min_value=0, max_value=2**62), min_size=1, max_size=40))
def test_clock_going_backwards_never_lowers_nonce(readings: list[int]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        it = iter(readings)
        source = NonceSource(FP, directory=folder, clock_ns=lambda: next(it))
        nonces = [source.next() for _ in readings]
    assert all(a < b for a, b in itertools.pairwise(nonces))
    assert all(n >= r for n, r in zip(nonces, readings, strict=False))


def test_nanosecond_scale_by_default(tmp_path: Path) -> None:
    import time

    nonce = NonceSource(FP, directory=tmp_path).next()
    assert abs(nonce - time.time_ns()) < 60 * 10**9


def test_millisecond_scale(tmp_path: Path) -> None:
    source = NonceSource(FP, directory=tmp_path, scale="ms", clock_ns=lambda: 5_000_000_123)
    assert source.next() == 5_000


def test_survives_restart(tmp_path: Path) -> None:
    first = NonceSource(FP, directory=tmp_path, clock_ns=lambda: 10**18).next()
    # A new source (a restarted program) whose clock is behind still goes forward.
    second = NonceSource(FP, directory=tmp_path, clock_ns=lambda: 5).next()
    assert second == first + 1


def test_file_is_named_by_hash_not_key(tmp_path: Path) -> None:
    source = NonceSource(key_fingerprint("SECRETISHKEY"), directory=tmp_path)
    source.next()
    names = " ".join(p.name for p in tmp_path.iterdir())
    assert "SECRETISHKEY" not in names


def test_keys_are_independent(tmp_path: Path) -> None:
    a = NonceSource(key_fingerprint("a"), directory=tmp_path, clock_ns=lambda: 100)
    b = NonceSource(key_fingerprint("b"), directory=tmp_path, clock_ns=lambda: 100)
    assert a.next() == 100
    assert b.next() == 100


def test_threads_never_share_a_nonce_and_requests_leave_in_order(tmp_path: Path) -> None:
    sources = [NonceSource(FP, directory=tmp_path) for _ in range(4)]
    sent: list[int] = []

    def worker(source: NonceSource) -> None:
        for _ in range(100):
            with source.reserve() as nonce:
                sent.append(nonce)  # "sending" happens under the key's lock

    threads = [threading.Thread(target=worker, args=(s,)) for s in sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sent) == 400
    assert sent == sorted(sent)
    assert len(set(sent)) == 400


_CHILD = """
import sys
from oms.nonce import NonceSource
source = NonceSource(sys.argv[1], directory=sys.argv[2])
out = []
for _ in range(int(sys.argv[3])):
    with source.reserve() as nonce:
        out.append(nonce)
print(" ".join(map(str, out)))
"""


def test_processes_never_share_a_nonce(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, FP, str(tmp_path), "200"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [list(map(int, p.communicate(timeout=120)[0].split())) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    every = [n for r in results for n in r]
    assert len(every) == 800
    assert len(set(every)) == 800
    for r in results:
        assert r == sorted(r)


@pytest.mark.parametrize("bad", ["", "../etc", "a/b"])
def test_bad_fingerprint_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValidationError):
        NonceSource(bad, directory=tmp_path)


def test_unknown_scale_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        NonceSource(FP, directory=tmp_path, scale="s")


def test_default_directory_follows_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_DATA_DIR", str(tmp_path))
    source = NonceSource(FP)
    assert source.path.parent == tmp_path / "nonces"


def test_the_mark_is_one_fixed_width_number(tmp_path: Path) -> None:
    source = NonceSource(FP, directory=tmp_path, clock_ns=lambda: 1_234)
    source.next()
    text = source.path.read_text()
    assert text == f"{1_234:020d}\n"
    assert source.last() == 1_234


def test_a_mark_replaced_by_another_writer_is_read_again(tmp_path: Path) -> None:
    # An older oms (or anything else) writes a temporary file and renames it over the mark.
    source = NonceSource(FP, directory=tmp_path, clock_ns=lambda: 10)
    assert source.next() == 10
    tmp = tmp_path / "replacement"
    tmp.write_text("5000")
    tmp.replace(source.path)
    assert source.next() == 5001
    assert source.last() == 5001


def test_a_mark_from_an_earlier_version_is_continued(tmp_path: Path) -> None:
    first = NonceSource(FP, directory=tmp_path)
    first.path.write_text("1700000000000000000")  # unpadded, as rename-based versions wrote
    assert NonceSource(FP, directory=tmp_path, clock_ns=lambda: 5).next() == 1700000000000000001


def test_held_only_inside_reserve(tmp_path: Path) -> None:
    source = NonceSource(FP, directory=tmp_path)
    assert not source.held
    with source.reserve():
        assert source.held
    assert not source.held


_FORKED = """
import os, sys
from oms.nonce import NonceSource
source = NonceSource(sys.argv[1], directory=sys.argv[2])
source.next()  # the parent has the key's files open before it forks
pid = os.fork()
out = [source.next() for _ in range(100)]
if pid == 0:
    print(" ".join(map(str, out)), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
print(" ".join(map(str, out)), flush=True)
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_and_its_parent_never_share_a_nonce(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _FORKED, FP, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    assert len(out) == 200
    assert len(set(out)) == 200


def test_the_portable_path_where_fcntl_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import oms.nonce

    monkeypatch.setattr(oms.nonce, "_POSIX", False)
    source = NonceSource(FP, directory=tmp_path, clock_ns=lambda: 7)
    assert [source.next() for _ in range(3)] == [7, 8, 9]
    with source.reserve() as nonce:
        assert source.held
        assert nonce == 10
    assert not source.held
    assert source.last() == 10

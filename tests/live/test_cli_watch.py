"""`oms watch`: events printed as they happen, from a real process, until Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import IO

import pytest
from cli_support import cli_env

from oms.cache import OrderCache
from oms.manager import OrderManager
from oms.orders import OrderRequest
from oms.sandbox import Sandbox

BUY = OrderRequest(pair="XBTUSD", side="buy", ordertype="limit", volume="0.01", price=Decimal(1000))


def _lines(stream: IO[str]) -> Iterator[dict[str, object]]:
    for line in stream:
        yield json.loads(line)


def _next(lines: Iterator[dict[str, object]], timeout: float = 30.0) -> dict[str, object]:
    """The next printed event; fails (instead of hanging) if none comes."""
    box: list[dict[str, object]] = []
    reader = threading.Thread(target=lambda: box.append(next(lines)), daemon=True)
    reader.start()
    reader.join(timeout)
    assert box, "oms watch printed nothing"
    return box[0]


@pytest.fixture
def served() -> Iterator[Sandbox]:
    with Sandbox.serve(seed=11) as sb:
        yield sb


@contextmanager
def running(
    sb: Sandbox, folder: Path, *args: str
) -> Iterator[tuple[subprocess.Popen[str], Iterator[dict[str, object]]]]:
    """``oms *args`` in its own process, and the JSON lines it prints; killed if still
    running at the end."""
    env = {**os.environ, **cli_env(sb, folder), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "oms", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc, _lines(proc.stdout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def test_watch_prints_each_event_of_a_group_and_ctrl_c_exits_cleanly(
    served: Sandbox, tmp_path: Path
) -> None:
    db = tmp_path / "orders.db"
    with OrderManager.on_sandbox(served, db) as manager:
        group = manager.new_group("ladder")
        other = manager.new_group("other")
    with running(served, tmp_path, "watch", "--group", "ladder") as (proc, lines):
        with OrderManager.on_sandbox(served, db) as manager:
            # Placed before or after the watcher is live, the order shows: in the snapshot
            # the subscription starts with, or as it happens.
            manager.place(BUY, group=other)  # filtered out
            placed = manager.place(BUY, group=group)
            first = _next(lines)
            assert first["txid"] == placed.txid
            assert first["userref"] == group.userref
            assert first["exec_type"] in ("pending_new", "new")
            manager.cancel(placed.txid)
            seen = [first]
            while seen[-1]["exec_type"] != "canceled":
                seen.append(_next(lines))
            assert {e["txid"] for e in seen} == {placed.txid}
            assert seen[-1]["status"] == "canceled"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    # What it printed, it wrote to the cache first.
    with OrderCache(db) as cache:
        order = cache.order(placed.txid)
        assert order is not None
        assert order.status.value == "canceled"


def test_orders_follow_lists_the_cache_then_streams(served: Sandbox, tmp_path: Path) -> None:
    db = tmp_path / "orders.db"
    with OrderManager.on_sandbox(served, db) as manager:
        group = manager.new_group("ladder")
        before = manager.place(BUY, group=group)
    args = ("orders", "--userref", str(group.userref), "--format", "nl", "--follow")
    with running(served, tmp_path, *args) as (proc, lines):
        listed = _next(lines)
        assert listed["txid"] == before.txid  # the cached order, listed first
        with OrderManager.on_sandbox(served, db) as manager:
            after = manager.place(BUY, group=group)
            seen = [_next(lines)]
            while after.txid not in {e["txid"] for e in seen}:
                seen.append(_next(lines))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0

"""`oms watch`: events printed as they happen, from a real process, until Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
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


def _watch(sb: Sandbox, folder: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, **cli_env(sb, folder), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "oms", "watch", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_watch_prints_each_event_of_a_group_and_ctrl_c_exits_cleanly(
    served: Sandbox, tmp_path: Path
) -> None:
    db = tmp_path / "orders.db"
    with OrderManager.on_sandbox(served, db) as manager:
        group = manager.new_group("ladder")
        other = manager.new_group("other")
    proc = _watch(served, tmp_path, "--group", "ladder")
    try:
        assert proc.stdout is not None
        lines = _lines(proc.stdout)
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
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    # What it printed, it wrote to the cache first.
    with OrderCache(db) as cache:
        order = cache.order(placed.txid)
        assert order is not None
        assert order.status.value == "canceled"

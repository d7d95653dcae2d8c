"""Fixtures of the order manager's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import OPENED, START, manager

from oms.manager import OrderManager
from oms.sandbox import ManualClock, Sandbox


@pytest.fixture(autouse=True)
def _nonce_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OMS_DATA_DIR", str(tmp_path / "data"))
    yield
    while OPENED:  # close every manager a test made (their SQLite connections with them)
        OPENED.pop().close()


@pytest.fixture
def sb() -> Sandbox:
    return Sandbox.in_process(seed=3, clock=ManualClock(START))


@pytest.fixture
def mgr(sb: Sandbox, tmp_path: Path) -> Iterator[OrderManager]:
    m = manager(sb, tmp_path / "oms.db")
    yield m
    m.close()

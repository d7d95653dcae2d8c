"""Shared fixtures: sandboxes (real HTTP on 127.0.0.1, and in-process) and a private data dir."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from oms.sandbox import ManualClock, Sandbox

# CI runs on a loaded 2-core machine: no per-example deadline (tests never assert time), and
# derandomized so a red CI run is reproducible locally with HYPOTHESIS_PROFILE=ci.
settings.register_profile(
    "ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

#: Where ManualClock sandboxes start (2023-11-14T22:13:20Z).
T0 = 1_700_000_000.0


@pytest.fixture(autouse=True)
def oms_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Nonce files and caches of every test go to a fresh directory, never the user's."""
    path = tmp_path / "oms-data"
    monkeypatch.setenv("OMS_DATA_DIR", str(path))
    return path


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A sandbox exchange served over real HTTP on a free 127.0.0.1 port (system clock)."""
    with Sandbox.serve() as sb:
        yield sb


@pytest.fixture
def sandbox_inproc() -> Sandbox:
    """The same exchange answered in-process through a requests adapter (system clock)."""
    return Sandbox.in_process()


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def sandbox_manual(manual_clock: ManualClock) -> Sandbox:
    """An in-process sandbox on a ManualClock: time moves only when a test moves it."""
    return Sandbox.in_process(clock=manual_clock)

"""Every example runs to completion against the built-in sandbox and reports success."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("group_cancel.py", ["cancelled 3 (expected 3); group empty on the exchange: True"]),
        ("grid_two_groups.py", ["cancelled the bids: 2 (ok: True)", "(expected 2, ok: True)"]),
        ("unique_ids.py", ["found by userref 1:", "cancel userref 3: count 1"]),
        (
            "follow_group.py",
            ["stream live: True", "cancelled 3 ", "ok: True", "cache equals the exchange: True"],
        ),
        (
            "crash_recovery.py",
            ["killed with SIGKILL", "intent is placed", "on the exchange: 1", "trading goes on"],
        ),
    ],
)
def test_example_runs(script: str, expected: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "OMS_DATA_DIR": str(tmp_path)}
    env.pop("KRAKEN_API_KEY", None)
    env.pop("KRAKEN_API_SECRET", None)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for line in expected:
        assert line in done.stdout


def test_every_example_is_tested() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == {
        "group_cancel.py",
        "grid_two_groups.py",
        "unique_ids.py",
        "crash_recovery.py",
        "follow_group.py",
    }

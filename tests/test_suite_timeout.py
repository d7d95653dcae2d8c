"""A test that hangs fails fast with pytest-timeout's message, under the project's pytest config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SETUP_CFG = Path(__file__).resolve().parents[1] / "setup.cfg"

HANGING = """
import threading


def test_waits_forever() -> None:
    threading.Event().wait()
"""


def test_a_hanging_test_fails_with_the_timeout_message(tmp_path: Path) -> None:
    (tmp_path / "test_hang.py").write_text(HANGING)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            # The project's configuration (plugin, method), with a short limit for the proof.
            "-c",
            str(SETUP_CFG),
            "--rootdir",
            str(tmp_path),
            "-p",
            "no:cacheprovider",
            "-o",
            "timeout=1",
            str(tmp_path / "test_hang.py"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert "Timeout" in output, output
    assert "test_waits_forever" in output, output


def test_the_suite_has_a_per_test_timeout() -> None:
    text = SETUP_CFG.read_text()
    assert "\ntimeout = 300\n" in text
    assert "\ntimeout_method = thread\n" in text

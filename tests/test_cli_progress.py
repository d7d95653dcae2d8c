"""Progress shows on stderr when it is a terminal (a pseudo-terminal here) and nothing extra
is printed when stderr is a pipe; stdout is the same either way."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from history_support import short_history_sandbox

from oms.cli.progress import waiting_sleep
from oms.sandbox import Sandbox
from oms.sandbox.config import SandboxConfig


def oms(args: list[str], env: dict[str, str], *, terminal: bool) -> tuple[int, str, str]:
    """Run ``python -m oms ARGS`` with stderr on a pseudo-terminal or a pipe."""
    full_env = {**os.environ, **env, "COLUMNS": "200"}
    if not terminal:
        done = subprocess.run(
            [sys.executable, "-m", "oms", *args],
            capture_output=True,
            text=True,
            env=full_env,
            check=False,
            timeout=120,
        )
        return done.returncode, done.stdout, done.stderr
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "oms", *args],
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
        env=full_env,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    proc.stdout.close()
    code = proc.wait(timeout=120)
    return code, out, b"".join(chunks).decode(errors="replace")


@pytest.fixture(scope="module")
def hist() -> Iterator[Sandbox]:
    with short_history_sandbox(http=True, hours=2) as sandbox:
        yield sandbox


@pytest.mark.parametrize("terminal", [True, False])
def test_trades_sync_shows_a_bar_only_on_a_terminal(
    terminal: bool, hist: Sandbox, tmp_path: Path
) -> None:
    args = ["trades", "sync", "--pair", "XBTUSD", "--pace", "0", "--count", "200",
            "--base-url", hist.base_url, "--db", str(tmp_path / "h.db")]  # fmt: skip
    code, out, err = oms(args, {"OMS_DATA_DIR": str(tmp_path)}, terminal=terminal)
    assert code == 0, err
    assert '"reason": "caught_up"' in out
    if terminal:
        assert "XBTUSD trades" in err
        assert "pages" in err
        assert "trades (" in err  # the rate
        assert "at 20" in err  # the time covered so far, in UTC
    else:
        assert err == ""


def test_quiet_hides_the_bar_on_a_terminal(hist: Sandbox, tmp_path: Path) -> None:
    args = ["-q", "trades", "sync", "--pair", "XBTUSD", "--pace", "0", "--max-pages", "2",
            "--base-url", hist.base_url, "--db", str(tmp_path / "h.db")]  # fmt: skip
    code, _, err = oms(args, {"OMS_DATA_DIR": str(tmp_path)}, terminal=True)
    assert code == 0, err
    assert err == ""


@pytest.mark.parametrize("terminal", [True, False])
def test_funding_sync_counts_on_a_terminal(terminal: bool, tmp_path: Path) -> None:
    with Sandbox.serve(seed=2) as sb:
        env = {
            "KRAKEN_API_KEY": sb.key,
            "KRAKEN_API_SECRET": sb.secret,
            "KRAKEN_BASE_URL": sb.base_url,
            "OMS_DATA_DIR": str(tmp_path),
            "OMS_HISTORY_DB": str(tmp_path / "h.db"),
        }
        code, out, err = oms(["funding", "sync"], env, terminal=terminal)
    assert code == 0, err
    assert '"transitions"' in out
    if terminal:
        assert "funding sync:" in err
        assert "deposits read" in err
    else:
        assert err == ""


@pytest.mark.parametrize("terminal", [True, False])
def test_a_deadline_wait_says_what_it_waits_for(terminal: bool, tmp_path: Path) -> None:
    with Sandbox.serve(seed=4, config=SandboxConfig().without_limits()) as sb:
        price = str(round(sb.market.last_price("XBTUSD") / 2))
        # The order is taken but its answer is lost: oms waits past the deadline, then looks.
        sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
        env = {
            "KRAKEN_API_KEY": sb.key,
            "KRAKEN_API_SECRET": sb.secret,
            "KRAKEN_BASE_URL": sb.base_url,
            "OMS_DATA_DIR": str(tmp_path),
            "OMS_DB": str(tmp_path / "o.db"),
        }
        args = ["place", "XBTUSD", "buy", "0.001", "--price", price, "--deadline", "3"]
        code, out, err = oms(args, env, terminal=terminal)
    assert code == 0, err
    assert '"reconciled": true' in out
    if terminal:
        assert "waiting" in err
        assert "ended ambiguously" in err  # what it waits for
    else:
        assert err == ""


def test_short_waits_pass_silently(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("oms.cli.progress.show_progress", lambda: True)
    wait = waiting_sleep(sleep=slept.append, clock=lambda: 0.0)
    wait(1.5)
    assert slept == [1.5]

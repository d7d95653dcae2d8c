"""`--plot FILE.png` draws a PNG of the documented size for `trades ohlc` (any interval and
range) and for the demo; without matplotlib it says how to install the extra, and neither
`import oms` nor a command that draws nothing loads matplotlib."""

from __future__ import annotations

import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from history_support import short_history_sandbox

from oms.cli import main


@pytest.fixture
def matplotlib() -> None:
    # tox installs the plot extra, so these run in CI; a bare `pip install -e .[test]` skips.
    pytest.importorskip("matplotlib", reason="the plot extra: pip install 'oms[plot]'")


#: oms.plot.SIZE at oms.plot.DPI.
WIDTH, HEIGHT = 1200, 750


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture(scope="module")
def history_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    db = tmp_path_factory.mktemp("plot") / "h.db"
    with short_history_sandbox(http=True, hours=3) as sb:
        result = CliRunner().invoke(
            main,
            ["trades", "sync", "--pair", "XBTUSD", "--pace", "0", "--base-url", sb.base_url,
             "--db", str(db)],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    return db


def oms(args: list[str], code: int = 0, **env: str) -> Result:
    result = CliRunner().invoke(main, args, env=env or None, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


@pytest.mark.parametrize(
    "window",
    [
        ["--interval", "1m"],
        ["--interval", "15m", "--carry-forward"],
        ["--interval", "4h"],
        ["--interval", "90s", "--start", "2023-11-14T20:30:00Z", "--end", "2023-11-14T21:00Z"],
        ["--interval", "1h", "--start", "2030-01-01"],  # nothing in range: still a picture
    ],
)
def test_ohlc_plot_is_a_png_of_the_documented_size(
    window: list[str], history_db: Path, tmp_path: Path, matplotlib: None
) -> None:
    png = tmp_path / "bars.png"
    result = oms(["trades", "ohlc", "--pair", "XBTUSD", *window, "--db", str(history_db),
                  "--plot", str(png)])  # fmt: skip
    assert result.stdout.startswith("[")  # the bars are still printed
    assert png_size(png) == (WIDTH, HEIGHT)


def test_demo_draws_its_story(tmp_path: Path, matplotlib: None) -> None:
    png = tmp_path / "demo.png"
    result = oms(["demo", "--plot", str(png)], OMS_DATA_DIR=str(tmp_path))
    assert "the group cancel checks out" in result.stdout
    assert png_size(png) == (WIDTH, HEIGHT)


@pytest.mark.parametrize(
    "args",
    [
        ["trades", "ohlc", "--pair", "XBTUSD", "--interval", "1h", "--plot", "x.png"],
        ["demo", "--plot", "x.png"],
    ],
)
def test_without_matplotlib_the_message_says_how_to_install(
    args: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    words = [*args[:-1], str(tmp_path / "x.png")]
    result = oms(words, 2, OMS_DATA_DIR=str(tmp_path), OMS_HISTORY_DB=str(tmp_path / "h.db"))
    assert "pip install 'oms[plot]'" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "x.png").exists()


def test_matplotlib_loads_only_when_asked(history_db: Path) -> None:
    code = (
        "import sys, oms, oms.cli.history, oms.cli.demo\n"
        "from click.testing import CliRunner\n"
        "from oms.cli import main\n"
        f"r = CliRunner().invoke(main, ['trades', 'ohlc', '--pair', 'XBTUSD', '--interval', "
        f"'1h', '--db', {str(history_db)!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "print('matplotlib' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

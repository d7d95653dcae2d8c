"""Every list command speaks json, table, csv and nl alike; times are UTC and say so; decimals
print plainly; -v logs one line per request without secrets and -q keeps stderr empty."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from cli_support import cli_env
from click.testing import CliRunner, Result
from history_support import short_history_sandbox

from oms.cli import main
from oms.cli.options import parse_time
from oms.cli.output import cell, iso
from oms.sandbox import ManualClock, Sandbox
from oms.sandbox.config import SandboxConfig


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    # A manual clock started at the real time: the market stands still between the calls
    # that print the same rows in several formats (on the system clock the ticker moved
    # between two of them). Without rate limits: every command is a new process-like
    # client with a fresh limiter.
    clock = ManualClock(time.time())
    with Sandbox.serve(seed=5, clock=clock, config=SandboxConfig().without_limits()) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def hist() -> Iterator[Sandbox]:
    with short_history_sandbox(http=True, hours=2) as sandbox:
        yield sandbox


@pytest.fixture
def env(sb: Sandbox, tmp_path: Path) -> dict[str, str]:
    return cli_env(sb, tmp_path)


def oms(args: list[str], env: dict[str, str]) -> Result:
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def far(sb: Sandbox) -> str:
    return str((sb.market.last_price("XBTUSD") * Decimal("0.5")).quantize(Decimal("0.1")))


@pytest.fixture
def filled(sb: Sandbox, hist: Sandbox, env: dict[str, str]) -> dict[str, str]:
    """An order cache with two orders, a trade history and a funding record."""
    oms(["place", "XBTUSD", "buy", "0.001", "--price", far(sb), "--new-group", "g"], env)
    oms(["place", "XBTUSD", "buy", "0.002", "--price", far(sb)], env)
    oms(["sync"], env)
    oms(["trades", "sync", "--pair", "XBTUSD", "--pace", "0", "--base-url", hist.base_url], env)
    oms(["funding", "sync"], env)
    return env


LIST_COMMANDS = [
    ["orders"],
    ["groups"],
    ["trades", "ohlc", "--pair", "XBTUSD", "--interval", "15m"],
    ["funding", "status"],
    ["balance"],
    ["ticker", "XBTUSD"],
]


@pytest.mark.parametrize("words", LIST_COMMANDS, ids=lambda w: " ".join(w[:2]))
def test_every_format_shows_the_same_rows(words: list[str], filled: dict[str, str]) -> None:
    as_json = json.loads(oms(words, filled).stdout)
    records = as_json if isinstance(as_json, list) else None
    nl = oms([*words, "--format", "nl"], filled).stdout
    lines = [json.loads(line) for line in nl.splitlines()]
    if records is not None:
        assert lines == records
    rows = list(csv.reader(io.StringIO(oms([*words, "--format", "csv"], filled).stdout)))
    table = oms([*words, "--format", "table"], filled).stdout
    assert oms([*words, "--table"], filled).stdout == table
    header, body = rows[0], rows[1:]
    assert table.splitlines()[0].split() == [c.upper() for c in header]
    assert len(body) == len(table.splitlines()) - 2 or (body == [] and "(none)" in table)
    if records is not None:
        assert len(body) == len(records)
    for text in (table, *(c for r in body for c in r)):
        # No Python reprs, no exponents.
        assert "True" not in text
        assert "False" not in text
        assert "['" not in text
        assert not re.search(r"\dE[-+]?\d", text)


def test_table_and_format_exclude_each_other(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["orders", "--table", "--format", "csv"], env=env)
    assert result.exit_code == 2


def test_times_are_utc_and_labelled(filled: dict[str, str]) -> None:
    records = json.loads(oms(["orders"], filled).stdout)
    rows = list(csv.DictReader(io.StringIO(oms(["orders", "--format", "csv"], filled).stdout)))
    assert [r["opened"] for r in rows] == [iso(o["opentm"]) for o in records]
    assert all(r["opened"].endswith("Z") for r in rows)


@pytest.mark.parametrize(
    ("text", "unix"),
    [
        ("1700000000", 1_700_000_000),
        ("2023-11-14T22:13:20Z", 1_700_000_000),
        ("2023-11-14T22:13:20", 1_700_000_000),
        ("2023-11-14T23:13:20+01:00", 1_700_000_000),
    ],
)
def test_time_options_take_iso_or_unix(text: str, unix: int) -> None:
    assert parse_time(text) == unix


def test_orders_since_takes_iso_and_unix_alike(filled: dict[str, str]) -> None:
    opened = min(o["opentm"] for o in json.loads(oms(["orders"], filled).stdout))
    after = int(opened) + 3600
    by_unix = oms(["orders", "--since", str(after)], filled).stdout
    by_iso = oms(["orders", "--since", iso(after)], filled).stdout
    assert by_unix == by_iso
    assert json.loads(oms(["orders", "--until", iso(after)], filled).stdout)


@pytest.mark.parametrize(
    ("value", "text"),
    [(Decimal("0E-8"), "0.00000000"), (Decimal("1E+3"), "1000"), (True, "yes"), (None, "")],
)
def test_cells_are_plain(value: object, text: str) -> None:
    assert cell(value) == text
    assert cell(["OABC", "ODEF"]) == "OABC,ODEF"


def test_ticker_vwap_has_the_pairs_price_decimals(sb: Sandbox, env: dict[str, str]) -> None:
    (row,) = json.loads(oms(["ticker", "XBTUSD"], env).stdout)
    decimals = sb.client().pair("XBTUSD").pair_decimals
    assert len(row["vwap_24h"].partition(".")[2]) == decimals


def test_verbose_logs_one_line_per_request_and_no_secret(sb: Sandbox, env: dict[str, str]) -> None:
    result = oms(["-v", "balance"], env)
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert "Balance" in lines[0]
    assert "ms" in lines[0]
    assert "ok" in lines[0]
    assert sb.key not in result.stderr
    assert sb.secret not in result.stderr


def test_quiet_and_default_keep_stderr_empty(env: dict[str, str]) -> None:
    assert oms(["balance"], env).stderr == ""
    assert oms(["-q", "-v", "balance"], env).stderr == ""


def test_funding_watch_prints_each_transition_as_a_line(tmp_path: Path) -> None:
    clock = ManualClock(1_700_000_000.0)
    with Sandbox.serve(clock=clock) as sb:
        refid = sb.client().withdraw("XXDG", "sandbox", "100")
        env = {
            "KRAKEN_API_KEY": sb.key,
            "KRAKEN_API_SECRET": sb.secret,
            "KRAKEN_BASE_URL": sb.base_url,
            "OMS_HISTORY_DB": str(tmp_path / "h.db"),
        }
        out = oms(["funding", "watch", "--count", "2", "--every", "0"], env).stdout
    seen = [json.loads(line) for line in out.splitlines()]
    assert (refid, "Initial") in [(t["refid"], t["to_status"]) for t in seen]
    # The second poll found nothing new: each transition is printed once.
    assert len({(t["refid"], t["to_status"]) for t in seen}) == len(seen)


def test_sandbox_subcommands_follow_kraken_base_url(sb: Sandbox, env: dict[str, str]) -> None:
    sb.faults.add(kind="busy", method="Depth", count=1)
    try:
        assert "Depth" in oms(["sandbox", "fault", "list"], env).stdout
    finally:
        sb.faults.clear()
    clock = json.loads(oms(["sandbox", "clock"], env).stdout)
    assert clock["time"] == pytest.approx(sb.exchange.clock.time(), abs=5)


@pytest.mark.parametrize("text", ["2023-11-15T00:00:00Z", "1700006400"])
def test_sandbox_clock_set_takes_iso_or_unix(text: str) -> None:
    clock = ManualClock(1_700_000_000.0)
    with Sandbox.serve(clock=clock) as sb:
        oms(["sandbox", "clock", "--url", sb.base_url, "--set", text], {})
        assert clock.time() == 1_700_006_400

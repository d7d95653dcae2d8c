"""`oms trades` and `oms funding` print, as JSON or a table, exactly what the library computes
from a sandbox reached over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from history_support import market_tape, short_history_sandbox

from oms._decimal import fmt
from oms.cli import main
from oms.cli.history import funding, parse_interval, parse_time, trades
from oms.history import ohlc_from_trades
from oms.history_store import HistoryStore
from oms.sandbox import ManualClock, Sandbox


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with short_history_sandbox(http=True, hours=2) as sandbox:
        yield sandbox


def run(command: object, args: list[str], **env: str) -> Result:
    result = CliRunner().invoke(command, args, env=env or None)  # type: ignore[arg-type]
    return result


def synced(sb: Sandbox, db: Path) -> dict[str, object]:
    result = run(trades, ["sync", "--pair", "XBTUSD", "--db", str(db), "--pace", "0",
                          "--base-url", sb.base_url])  # fmt: skip
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.output)
    return data


# --- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("7m", 420), ("7", 420), ("4h", 14400), ("1d", 86400), ("1w", 604800),
     (" 15 M ", 900)],
)  # fmt: skip
def test_interval_words(text: str, seconds: int) -> None:
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["0m", "7x", "", "-5m", "1.5h"])
def test_bad_intervals_are_usage_errors(text: str, tmp_path: Path) -> None:
    result = run(trades, ["ohlc", "--pair", "XBTUSD", "--interval", text, "--db",
                          str(tmp_path / "h.db")])  # fmt: skip
    assert result.exit_code == 2
    assert "interval" in result.output.lower()


@pytest.mark.parametrize(
    "text",
    ["1700000000", "2023-11-14T22:13:20Z", "2023-11-14T22:13:20", "2023-11-14T23:13:20+01:00"],
)
def test_times_as_unix_seconds_or_iso(text: str) -> None:
    assert parse_time(text) == 1_700_000_000


# --- oms trades -------------------------------------------------------------------------------


def test_sync_stores_the_whole_tape(sb: Sandbox, tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    report = synced(sb, db)
    tape = market_tape(sb.market, "XXBTZUSD")
    assert report["reason"] == "caught_up"
    assert report["inserted"] == len(tape)
    assert report["cursor"] == str(tape[-1].time_ns)
    again = synced(sb, db)
    assert (again["inserted"], again["start_cursor"]) == (0, report["cursor"])


def test_ohlc_prints_the_librarys_bars(sb: Sandbox, tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    synced(sb, db)
    result = run(trades, ["ohlc", "--pair", "XBTUSD", "--interval", "7m", "--db", str(db)])
    assert result.exit_code == 0, result.output
    with HistoryStore(db) as store:
        expected = ohlc_from_trades(store.trades("XBTUSD"), 420)
    printed = json.loads(result.output)
    assert [b["time"] for b in printed] == [b.time for b in expected]
    assert [(b["open"], b["volume"], b["count"]) for b in printed] == [
        (fmt(b.open), fmt(b.volume), b.count) for b in expected
    ]
    # VWAP to the decimals the pair's prices carry, not 28 significant digits.
    places = [-b.close.as_tuple().exponent for b in expected]
    assert [b["vwap"] for b in printed] == [
        fmt(round(b.vwap, n)) for b, n in zip(expected, places, strict=True)
    ]
    assert all(len(b["vwap"].partition(".")[2]) == n for b, n in zip(printed, places, strict=True))

    table = run(trades, ["ohlc", "--pair", "XBTUSD", "--interval", "7m", "--db", str(db),
                         "--table", "--vwap-places", "1"])  # fmt: skip
    assert table.exit_code == 0, table.output
    lines = table.output.strip().splitlines()
    assert lines[0].split() == ["TIME", "OPEN", "HIGH", "LOW", "CLOSE", "VWAP", "VOLUME", "COUNT"]
    assert len(lines) == len(expected) + 2


def test_ohlc_window_with_carry_forward(sb: Sandbox, tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    synced(sb, db)
    start, end = 1_699_996_000, 1_699_997_000
    result = run(trades, ["ohlc", "--pair", "XBTUSD", "--interval", "10s", "--db", str(db),
                          "--start", str(start), "--end", str(end), "--carry-forward"])  # fmt: skip
    assert result.exit_code == 0, result.output
    with HistoryStore(db) as store:
        expected = ohlc_from_trades(store.trades("XBTUSD"), 10, start=start, end=end,
                                    carry_forward=True)  # fmt: skip
    assert [b["time"] for b in json.loads(result.output)] == [b.time for b in expected]
    assert len(expected) == (end - start) // 10


def test_check_agrees_with_the_sandbox(sb: Sandbox, tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    synced(sb, db)
    result = run(trades, ["check", "--pair", "XBTUSD", "--interval", "5", "--db", str(db),
                          "--base-url", sb.base_url])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] is True
    assert data["compared"] > 0


def test_check_without_stored_trades_fails(sb: Sandbox, tmp_path: Path) -> None:
    result = run(trades, ["check", "--pair", "XBTUSD", "--db", str(tmp_path / "h.db"),
                          "--base-url", sb.base_url])  # fmt: skip
    assert result.exit_code == 1
    assert json.loads(result.stdout)["compared"] == 0
    assert "oms trades sync" in result.stderr


def test_a_file_that_is_not_a_history_database_is_a_clean_error(tmp_path: Path) -> None:
    bad = tmp_path / "not.db"
    bad.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    result = run(trades, ["ohlc", "--pair", "XBTUSD", "--interval", "1m", "--db", str(bad)])
    assert result.exit_code == 2
    assert "Error" in result.output
    assert "Traceback" not in result.output


# --- oms funding ------------------------------------------------------------------------------


def test_funding_sync_and_status(tmp_path: Path) -> None:
    clock = ManualClock(1_700_000_000.0)
    db = str(tmp_path / "h.db")
    with Sandbox.serve(clock=clock) as sb:
        env = {"KRAKEN_API_KEY": sb.key, "KRAKEN_API_SECRET": sb.secret}
        refid = sb.client().withdraw("XXDG", "sandbox", "100")
        args = ["sync", "--db", db, "--base-url", sb.base_url]
        first = run(funding, args, **env)
        assert first.exit_code == 0, first.output
        assert refid in {t["refid"] for t in json.loads(first.output)["transitions"]}
        clock.advance(sb.exchange.config.withdraw_pending_after)
        second = run(funding, [*args, "--table"], **env)
        assert second.exit_code == 0, second.output
        assert refid in second.output
        assert "Pending" in second.output

    status = run(funding, ["status", "--db", db, "--refid", refid])
    assert status.exit_code == 0, status.output
    data = json.loads(status.output)
    assert data["transaction"]["status"] == "Pending"
    assert [(h["from_status"], h["to_status"]) for h in data["history"]] == [
        (None, "Initial"),
        ("Initial", "Pending"),
    ]
    pending = run(funding, ["status", "--db", db, "--pending"])
    assert [t["refid"] for t in json.loads(pending.output)] == [refid]
    table = run(funding, ["status", "--db", db, "--status", "success", "--table"])
    assert table.exit_code == 0, table.output
    assert "Success" in table.output
    assert refid not in table.output


def test_funding_sync_needs_keys(tmp_path: Path) -> None:
    args = ["sync", "--db", str(tmp_path / "h.db"), "--base-url", "http://127.0.0.1:9"]
    result = run(funding, args, KRAKEN_API_KEY="", KRAKEN_API_SECRET="")
    assert result.exit_code == 2
    assert "KRAKEN_API_KEY" in result.output


def test_unknown_refid(tmp_path: Path) -> None:
    result = run(funding, ["status", "--db", str(tmp_path / "h.db"), "--refid", "NOPE"])
    assert result.exit_code == 1
    assert "not tracked" in result.output


def test_default_database_follows_the_environment(tmp_path: Path) -> None:
    db = tmp_path / "elsewhere" / "mine.db"
    result = run(funding, ["status"], OMS_HISTORY_DB=str(db))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == []
    assert db.exists()


@pytest.mark.parametrize("words", [["trades", "sync"], ["trades", "ohlc"], ["trades", "check"],
                                   ["funding", "sync"], ["funding", "status"]])  # fmt: skip
def test_commands_are_reachable_from_oms(words: list[str]) -> None:
    result = CliRunner().invoke(main, [*words, "--help"])
    assert result.exit_code == 0, result.output
    assert "--db" in result.output

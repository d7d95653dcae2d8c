"""Every command follows one exit-status table (0 done, 1 refused, 2 usage, 3 unknown) and
speaks in one clean line, never a traceback."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cli_support import cli_env
from click.testing import CliRunner, Result

from oms.cli import main
from oms.errors import OutcomeUnknownError
from oms.history_store import HistoryStore
from oms.manager import OrderManager
from oms.sandbox import Sandbox
from oms.sandbox.config import SandboxConfig


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    # Without rate limits: every command is a new process-like client with a fresh limiter.
    with Sandbox.serve(seed=5, config=SandboxConfig().without_limits()) as sandbox:
        yield sandbox


@pytest.fixture
def env(sb: Sandbox, tmp_path: Path) -> dict[str, str]:
    return cli_env(sb, tmp_path)


def oms(args: list[str], env: dict[str, str], code: int, **kwargs: Any) -> Result:
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False, **kwargs)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    if code:
        # One message, said once.
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
        assert len(errors) == 1, result.stderr
    return result


def far(sb: Sandbox) -> str:
    return str((sb.market.last_price("XBTUSD") * Decimal("0.5")).quantize(Decimal("0.1")))


def history_file(tmp_path: Path) -> str:
    path = tmp_path / "history.db"
    HistoryStore(path).close()
    return str(path)


NO_KEYS = {"KRAKEN_API_KEY": "", "KRAKEN_API_SECRET": ""}


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["place", "XBTUSD", "buy", "0.001", "--price", "{far}"], 0),
        (["place", "XBTUSD", "buy", "lots", "--price", "{far}"], 2),
        (["place", "XBTUSD", "buy", "0.001", "--price", "{far}5"], 2),  # beyond pair_decimals
        (["place", "NOSUCHPAIR", "buy", "0.001", "--price", "1"], 2),
        (["place", "XBTUSD", "buy", "0.001", "--price", "{far}", "--userref", "0"], 2),
        (["place", "XBTUSD", "buy", "0.001", "--price", "{far}", "--group", "999"], 2),
        (
            [
                "place",
                "XBTUSD",
                "buy",
                "0.001",
                "--price",
                "{far}",
                "--group",
                "999",
                "--create-group",
            ],
            0,
        ),
        (["place", "XBTUSD", "buy", "5000", "--price", "{far}"], 1),  # insufficient funds
        (["place", "XBTUSD", "buy", "0.001", "--price", "{far}", "--db", "{history}"], 2),
        (["cancel", "--userref", "0"], 2),
        (["cancel", "--txid", "OABCDE-FGHIJ-KLMNOP"], 1),
        (["cancel", "--userref", "12345"], 0),
        (["cancel", "--userref", "1", "--db", "{history}"], 2),
        (["orders", "--since", "yesterday"], 2),
        (["orders", "--since", "2026-01-01T00:00:00Z", "--format", "csv"], 0),
        (["orders", "--db", "{history}"], 2),
        (["groups", "--format", "nl"], 0),
        (["sync"], 0),
        (["sync", "--base-url", "http://127.0.0.1:9"], 1),  # nothing listens: nothing sent
        (["balance"], 0),
        (["ticker", "XBTUSD"], 0),
        (["ticker", "NOSUCHPAIR"], 2),
        (["trades", "sync", "--pair", "XBTUSD", "--max-pages", "1", "--pace", "0"], 0),
        (["trades", "sync", "--pair", "XBTUSD", "--since", "soon"], 2),
        (["trades", "ohlc", "--pair", "XBTUSD", "--interval", "1h", "--start", "2026-01-01"], 0),
        (["trades", "check", "--pair", "XBTUSD"], 1),  # nothing stored: nothing compared
        (["funding", "sync"], 0),
        (["funding", "status", "--refid", "NOPE"], 1),
        (["funding", "watch", "--count", "1", "--every", "0"], 0),
        (["call", "Balance"], 0),
        (["call", "AddOrder", "pair=XBTUSD"], 1),
        (["sandbox", "clock"], 0),
        (["sandbox", "fault", "list"], 0),
        (["sandbox", "advance"], 0),
        (["sandbox", "fault", "remove", "999"], 1),
        (["sandbox", "--host", "192.0.2.1"], 2),  # not loopback without --allow-remote
        (["sign", "--example"], 0),
        (["sign", "--example", "--expect", "AAAA"], 1),
        (["sign", "--path", "/0/private/Balance"], 2),
        (["check"], 0),
        (["check", "--live"], 2),  # needs the confirmation flag
        # A file that cannot be written: one line, no traceback.
        (["call", "--transcript", "/nonexistent/dir/t.txt", "Time"], 1),
    ],
)
def test_exit_status_table(
    args: list[str], code: int, sb: Sandbox, env: dict[str, str], tmp_path: Path
) -> None:
    words = [a.format(far=far(sb), history=history_file(tmp_path)) for a in args]
    oms(words, env, code)


@pytest.mark.parametrize(
    "args",
    [
        ["place", "XBTUSD", "buy", "0.001", "--price", "1"],
        ["cancel", "--userref", "5"],
        ["sync"],
        ["balance"],
        ["funding", "sync"],
        ["funding", "watch", "--count", "1"],
    ],
)
def test_missing_keys_are_a_usage_error(args: list[str], env: dict[str, str]) -> None:
    result = oms(args, {**env, **NO_KEYS}, 2)
    assert "KRAKEN_API_KEY" in result.stderr
    assert "from_env" not in result.stderr


def test_a_group_cancel_that_does_not_check_out_exits_1(
    sb: Sandbox, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    placed = json.loads(
        oms(
            ["place", "XBTUSD", "buy", "0.001", "--price", far(sb), "--new-group", "g"], env, 0
        ).stdout
    )
    ref = placed["userref"]
    # Kraken reports a cancel that did not happen: the member stays open.
    from oms.client import KrakenClient
    from oms.models import CancelResult

    monkeypatch.setattr(KrakenClient, "cancel_order", lambda self, **kw: CancelResult(1))
    monkeypatch.setattr(KrakenClient, "cancel_order_batch", lambda self, **kw: CancelResult(1))
    result = oms(["cancel", "--userref", str(ref)], env, 1)
    assert json.loads(result.stdout)["ok"] is False
    assert "did not check out" in result.stderr


def test_outcome_unknown_exits_3_and_names_the_command(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unknown(self: OrderManager, *args: object, **kwargs: object) -> None:
        raise OutcomeUnknownError(
            "could not tell whether intent I1 was placed; recover() resolves it",
            intent_id="I1",
            userref=7,
        )

    monkeypatch.setattr(OrderManager, "place", unknown)
    result = oms(["place", "XBTUSD", "buy", "0.001", "--price", "1"], env, 3)
    assert "`oms recover`" in result.stderr
    assert "recover()" not in result.stderr


def test_ctrl_c_during_placement_says_what_became_of_the_intent(
    sb: Sandbox, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from oms.client import KrakenClient

    def interrupted(self: KrakenClient, *args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(KrakenClient, "add_order", interrupted)
    result = oms(["place", "XBTUSD", "buy", "0.001", "--price", far(sb)], env, 3)
    assert "interrupted during the placement" in result.stderr
    assert "oms recover" in result.stderr
    with contextlib.closing(sqlite3.connect(env["OMS_DB"])) as conn:
        (intent_id,) = conn.execute("SELECT id FROM intents").fetchone()
    assert intent_id in result.stderr


def test_ctrl_c_before_anything_was_sent_exits_130(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(self: OrderManager, name: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(OrderManager, "pair", interrupted)
    result = oms(["place", "XBTUSD", "buy", "0.001", "--price", "1"], env, 130)
    assert "nothing was sent" in result.stderr


def test_market_order_to_an_exchange_needs_yes(env: dict[str, str]) -> None:
    # A TEST-NET address: refused before any connection is tried.
    url = "http://192.0.2.1:9"
    result = oms(["place", "XBTUSD", "buy", "0.001", "--base-url", url], env, 2)
    assert "--yes" in result.stderr


def test_market_order_to_the_sandbox_needs_no_question(env: dict[str, str]) -> None:
    placed = json.loads(oms(["place", "XBTUSD", "buy", "0.001"], env, 0).stdout)
    assert placed["state"] == "placed"


def test_a_just_placed_order_is_sent_not_pending(sb: Sandbox, env: dict[str, str]) -> None:
    placed = json.loads(oms(["place", "XBTUSD", "buy", "0.001", "--price", far(sb)], env, 0).stdout)
    listed = json.loads(oms(["orders", "--txid", placed["txid"]], env, 0).stdout)
    assert listed[0]["status"] == "sent"
    oms(["sync"], env, 0)
    listed = json.loads(oms(["orders", "--txid", placed["txid"]], env, 0).stdout)
    assert listed[0]["status"] == "open"


def test_busy_port_is_a_clean_error(sb: Sandbox, env: dict[str, str]) -> None:
    port = sb.base_url.rsplit(":", 1)[1]
    result = oms(["sandbox", "--port", port], env, 2)
    assert port in result.stderr or "in use" in result.stderr


def test_help_documents_the_table() -> None:
    text = CliRunner().invoke(main, ["--help"]).output
    for line in ("0    done as asked", "2    a usage", "3    the outcome is unknown"):
        assert line in text

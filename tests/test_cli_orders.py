"""The order commands print JSON by default and tables on request, and act on the exchange given."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from oms.cli.demo import demo
from oms.cli.orders import cancel, groups, orders, place, render_table, sync
from oms.sandbox import ManualClock, Sandbox


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    # Near real time: the commands use the server's clock for deadlines and the local clock
    # to check them, as against Kraken.
    with Sandbox.serve(seed=9, clock=ManualClock(time.time())) as sandbox:
        yield sandbox


@pytest.fixture
def env(sb: Sandbox, tmp_path: Path) -> dict[str, str]:
    return {
        "KRAKEN_API_KEY": sb.key,
        "KRAKEN_API_SECRET": sb.secret,
        "OMS_DATA_DIR": str(tmp_path),
        "OMS_DB": str(tmp_path / "cli.db"),
    }


def far(sb: Sandbox) -> str:
    return str((sb.market.last_price("XBTUSD") * Decimal("0.5")).quantize(Decimal("0.1")))


def run(command: object, args: list[str], env: dict[str, str], code: int = 0) -> str:
    result = CliRunner().invoke(command, args, env=env, catch_exceptions=False)  # type: ignore[arg-type]
    assert result.exit_code == code, result.output
    return result.output


def test_place_then_query_then_cancel_a_group(sb: Sandbox, env: dict[str, str]) -> None:
    url = ["--base-url", sb.base_url]
    first = json.loads(
        run(
            place,
            ["XBTUSD", "buy", "0.001", "--price", far(sb), "--new-group", "ladder", *url],
            env,
        )
    )
    assert first["state"] == "placed"
    assert first["txid"]
    ref = first["userref"]
    second = json.loads(
        run(place, ["XBTUSD", "buy", "0.002", "--price", far(sb), "--group", str(ref), *url], env)
    )
    assert second["userref"] == ref

    listed = json.loads(run(orders, ["--userref", str(ref)], env))
    assert {o["txid"] for o in listed} == {first["txid"], second["txid"]}
    assert {o["volume"] for o in listed} == {"0.001", "0.002"}

    table = run(groups, ["--table"], env)
    assert "ladder" in table
    assert str(ref) in table

    cancelled = json.loads(run(cancel, ["--userref", str(ref), *url], env))
    assert cancelled["count"] == 2
    assert cancelled["expected"] == 2
    assert cancelled["ok"] is True
    assert cancelled["confirmed_empty"] is True

    synced = json.loads(run(sync, url, env))
    assert synced["open"] == 0
    closed = json.loads(run(orders, ["--status", "closed"], env))
    assert {o["status"] for o in closed} == {"canceled"}


def test_validate_places_nothing(sb: Sandbox, env: dict[str, str]) -> None:
    out = json.loads(
        run(place, ["XBTUSD", "sell", "0.001", "--price", "99999.0", "--validate",
                    "--base-url", sb.base_url], env)
    )  # fmt: skip
    assert out["state"] == "validated"
    assert out["txid"] is None
    assert json.loads(run(orders, [], env)) == []


def test_orders_table_for_people(sb: Sandbox, env: dict[str, str]) -> None:
    run(place, ["XBTUSD", "buy", "0.001", "--price", far(sb), "--base-url", sb.base_url], env)
    table = run(orders, ["--table", "--status", "open"], env)
    header, rule, row = table.splitlines()[:3]
    assert header.split()[:4] == ["TXID", "USERREF", "STATUS", "SIDE"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert "XBTUSD" in row


def test_cancel_by_txid(sb: Sandbox, env: dict[str, str]) -> None:
    url = ["--base-url", sb.base_url]
    placed = json.loads(run(place, ["XBTUSD", "buy", "0.001", "--price", far(sb), *url], env))
    out = json.loads(run(cancel, ["--txid", placed["txid"], *url], env))
    assert out["count"] == 1


@pytest.mark.parametrize(
    ("command", "args"),
    [
        (cancel, []),
        (cancel, ["--userref", "1", "--txid", "OX"]),
        (place, ["XBTUSD", "buy", "0.001", "--group", "1", "--new-group", "x"]),
        (place, ["XBTUSD", "buy", "0.1", "--price", "1.05"]),  # a float-ish price is fine...
    ],
)
def test_usage_errors_exit_2(command: object, args: list[str], env: dict[str, str]) -> None:
    if command is place and "--group" not in args:
        # ...but a market order with a price is not: refused before any I/O.
        args = [*args, "--ordertype", "market"]
    run(command, args, env, code=2)


def test_missing_keys_is_a_clear_error(sb: Sandbox, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        sync, ["--base-url", sb.base_url, "--db", str(tmp_path / "x.db")],
        env={"KRAKEN_API_KEY": "", "KRAKEN_API_SECRET": ""},
    )  # fmt: skip
    assert result.exit_code == 2
    assert "KRAKEN_API_KEY" in result.output
    assert "Traceback" not in result.output


def test_demo_needs_no_keys_and_checks_out(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        demo, [], env={"KRAKEN_API_KEY": "", "OMS_DATA_DIR": str(tmp_path)}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "answer lost on the way" in result.output
    assert "the group cancel checks out" in result.output
    assert "identical to the exchange's" in result.output


def test_render_table_aligns_numbers_right() -> None:
    text = render_table([{"a": "x", "n": "1.5"}, {"a": "long", "n": "10.25"}], ("a", "n"))
    lines = text.splitlines()
    assert lines[2].endswith("  1.5")
    assert lines[3].endswith("10.25")
    assert render_table([], ("a",)) == "(none)"


def test_cancel_leaves_strangers_open_and_exits_1_when_the_result_does_not_check_out(
    sb: Sandbox, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = ["--base-url", sb.base_url]
    mine = json.loads(
        run(place, ["XBTUSD", "buy", "0.001", "--price", far(sb), "--userref", "4242", *url], env)
    )
    stranger = sb.client().add_order(
        pair="XBTUSD", side="buy", ordertype="limit", volume="0.001", price=far(sb), userref=4242
    )
    result = CliRunner().invoke(cancel, ["--userref", "4242", *url], env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert data["cancelled"] == [mine["txid"]]
    assert data["outsiders"] == list(stranger.txids)
    assert "left open" in result.stderr
    # A cancel that reports more than it did: not as expected, so not 0.
    from oms.client import KrakenClient
    from oms.models import CancelResult

    run(place, ["XBTUSD", "buy", "0.001", "--price", far(sb), "--userref", "4243", *url], env)
    monkeypatch.setattr(KrakenClient, "cancel_order", lambda self, **kw: CancelResult(3))
    again = CliRunner().invoke(cancel, ["--userref", "4243", *url], env=env)
    assert again.exit_code == 1, again.output
    assert json.loads(again.stdout)["ok"] is False


def test_recover_prints_what_became_of_each_intent(sb: Sandbox, env: dict[str, str]) -> None:
    from oms.cli.orders import recover

    url = ["--base-url", sb.base_url]
    run(place, ["XBTUSD", "buy", "0.001", "--price", far(sb), *url], env)
    report = json.loads(run(recover, url, env))
    assert report == {"resolved": 0, "intents": []}


def test_an_order_database_of_another_exchange_is_refused_until_rebound(
    sb: Sandbox, env: dict[str, str]
) -> None:
    url = ["--base-url", sb.base_url]
    run(place, ["XBTUSD", "buy", "0.001", "--price", far(sb), *url], env)
    with Sandbox.serve(seed=10, clock=ManualClock(time.time())) as other:
        moved = {**env, "KRAKEN_API_KEY": other.key, "KRAKEN_API_SECRET": other.secret}
        refused = CliRunner().invoke(sync, ["--base-url", other.base_url], env=moved)
        assert refused.exit_code == 2  # found before anything was sent
        assert other.base_url in refused.output
        assert "--rebind" in refused.output
        assert "OrderManager(" not in refused.output  # the CLI's words, not Python's
        run(sync, ["--base-url", other.base_url, "--rebind"], moved)


def test_a_userref_range_and_an_account_name_reach_the_allocator(
    sb: Sandbox, env: dict[str, str]
) -> None:
    url = ["--base-url", sb.base_url]
    placed = json.loads(
        run(
            place,
            ["XBTUSD", "buy", "0.001", "--price", far(sb), "--userref-range", "7000-7010", *url],
            env,
        )
    )
    assert placed["userref"] == 7000
    again = json.loads(
        run(
            place,
            ["XBTUSD", "buy", "0.001", "--price", far(sb), *url],
            {**env, "OMS_USERREF_RANGE": "7000-7010"},
        )
    )
    assert again["userref"] == 7001
    named = json.loads(
        run(
            place,
            ["XBTUSD", "buy", "0.001", "--price", far(sb), "--account", "desk", *url],
            {**env, "OMS_USERREF_RANGE": "7000-7010"},
        )
    )
    assert named["userref"] == 7002  # 7000/7001 are in the database; a new sequence skips them
    assert list((Path(env["OMS_DATA_DIR"]) / "accounts").glob("*.sqlite"))

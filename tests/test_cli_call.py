"""`oms call` sends exactly what was typed, signed, prints Kraken's JSON as it came, exits
non-zero on failure, and writes a support transcript with no credential in it."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fakehttp import KEY, SECRET, Answer, LoopbackServer, cloudflare, fail, free_port, ok

from oms import auth
from oms._version import USER_AGENT
from oms.cli.call import call, parse_params

FIXTURES = Path(__file__).parent / "fixtures"
JSON_HEADERS = {"Content-Type": "application/json"}


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    loopback = LoopbackServer()
    with loopback.running():
        yield loopback


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KRAKEN_API_KEY", KEY)
    monkeypatch.setenv("KRAKEN_API_SECRET", SECRET)
    monkeypatch.setenv("OMS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("KRAKEN_BASE_URL", raising=False)


def run(server: LoopbackServer, *args: str) -> Result:
    return CliRunner().invoke(call, ["--base-url", server.url, *args])


def test_seed_example_add_order(server: LoopbackServer) -> None:
    answer = (FIXTURES / "seed_add_order.json").read_bytes()
    server.answers.append(Answer(200, answer, JSON_HEADERS))
    args = "AddOrder pair=xdgusd type=buy ordertype=limit price=0.1 volume=50 userref=27649653"
    result = run(server, *args.split())
    assert result.exit_code == 0, result.output
    assert result.stdout == answer.decode().rstrip("\n") + "\n"
    (seen,) = server.seen
    assert (seen.method, seen.path) == ("POST", "/0/private/AddOrder")
    body = seen.body.decode()
    nonce, rest = body.split("&", 1)
    assert rest == "pair=xdgusd&type=buy&ordertype=limit&price=0.1&volume=50&userref=27649653"
    assert seen.headers["API-Key"] == KEY
    expected = auth.sign(SECRET, seen.path, nonce.removeprefix("nonce="), body)
    assert seen.headers["API-Sign"] == expected
    assert seen.headers["User-Agent"] == USER_AGENT


def test_public_method_needs_no_credentials(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KRAKEN_API_KEY")
    monkeypatch.delenv("KRAKEN_API_SECRET")
    server.answers.append(ok({"unixtime": 1616336594, "rfc1123": "Sun, 21 Mar 21 14:23:14 +0000"}))
    result = run(server, "Time")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["result"]["unixtime"] == 1616336594
    assert (server.seen[0].method, server.seen[0].path) == ("GET", "/0/public/Time")
    assert "API-Key" not in server.seen[0].headers


def test_public_parameters_go_in_the_query(server: LoopbackServer) -> None:
    server.answers.append(ok({"XXBTZUSD": [], "last": "0"}))
    assert run(server, "Trades", "pair=xbtusd", "since=1559347200000000000").exit_code == 0
    assert server.seen[0].path == "/0/public/Trades?pair=xbtusd&since=1559347200000000000"


def test_private_method_without_credentials_is_usage_error(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KRAKEN_API_KEY")
    monkeypatch.delenv("KRAKEN_API_SECRET")
    result = run(server, "Balance")
    assert result.exit_code == 2
    assert "KRAKEN_API_KEY" in result.stderr
    assert server.seen == []


def test_kraken_error_prints_envelope_and_exits_1(server: LoopbackServer) -> None:
    server.answers.append(fail("EOrder:Insufficient funds"))
    result = run(server, "AddOrder", "pair=xdgusd", "type=buy", "ordertype=market", "volume=1")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"error": ["EOrder:Insufficient funds"]}
    assert "Error: Kraken refused: EOrder:Insufficient funds" in result.stderr


def test_cloudflare_page_exits_3_without_parsing(server: LoopbackServer) -> None:
    server.answers.append(cloudflare(502, "502: Bad gateway", "Bad Gateway"))
    result = run(server, "--no-retry", "Balance")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert "HTTP 502" in result.stderr
    assert len(server.seen) == 1


def test_no_server_exits_3() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(call, ["--base-url", url, "--no-retry", "Time"])
    assert result.exit_code == 3
    assert "could not connect" in result.stderr


def test_transcript_for_a_403(server: LoopbackServer, tmp_path: Path) -> None:
    server.answers.append(cloudflare(403, "Attention Required! | Cloudflare", "Forbidden"))
    path = tmp_path / "transcript.txt"
    result = run(server, "--transcript", str(path), "Balance")
    assert result.exit_code == 3
    assert "oms call --transcript" in result.stderr
    text = path.read_text()
    assert f"POST {server.url}/0/private/Balance" in text
    assert f"User-Agent: {USER_AGENT}" in text
    assert f"API-Key: {KEY[:4]}…" in text
    assert "API-Sign: <redacted>" in text
    assert "Content-Type: application/x-www-form-urlencoded" in text
    assert "nonce=" in text
    assert "HTTP 403 Forbidden" in text
    assert "CF-RAY: 1-X" in text
    assert "Attention Required!" in text
    sign = server.seen[0].headers["API-Sign"]
    for leaked in (SECRET, KEY, sign):
        assert leaked not in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_json_values_for_batch_endpoints(server: LoopbackServer) -> None:
    server.answers.append(ok({"count": 2}))
    result = run(server, "CancelOrderBatch", 'orders=["OP5V2Y-RYKVL-ET3V3B",7]')
    assert result.exit_code == 0, result.output
    seen = server.seen[0]
    assert seen.headers["Content-Type"] == "application/json"
    body = json.loads(seen.body)
    assert body["orders"] == ["OP5V2Y-RYKVL-ET3V3B", 7]
    assert seen.headers["API-Sign"] == auth.sign(SECRET, seen.path, body["nonce"], seen.body)


@pytest.mark.parametrize(
    "args",
    [
        ["Balance", "asset"],
        ["Balance", "=x"],
        ["Balance", "asset=a", "asset=b"],
        ["Balance", "orders=[1,"],
        ["../Balance"],
        ["Balance", "nonce=1"],
        ["Balance", "--timeout", "0", "1"],
    ],
)
def test_usage_errors_exit_2_before_sending(server: LoopbackServer, args: list[str]) -> None:
    result = run(server, *args)
    assert result.exit_code == 2
    assert server.seen == []


def test_parse_params_keeps_text_and_order() -> None:
    assert parse_params(("b=0.10", "a=", "close[ordertype]=limit")) == {
        "b": "0.10",
        "a": "",
        "close[ordertype]": "limit",
    }

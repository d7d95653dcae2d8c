"""The sandbox engine speaks Kraken's protocol: envelope, routing, 403 page, public data."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest
import sandbox_engine_support as support

from oms.sandbox.accounts import AccountConfig
from oms.sandbox.clock import ManualClock
from oms.sandbox.config import SandboxConfig
from oms.sandbox.engine import Exchange, SandboxRequest
from oms.sandbox.market import Market

T0 = support.T0
make = support.make
limit = support.limit


def test_answers_are_the_kraken_envelope_with_http_200_for_errors() -> None:
    _exchange, caller, _, _ = make()
    ok = caller.request("Balance")
    assert ok.status == 200
    assert ok.headers["content-type"].startswith("application/json")
    body = ok.json()
    assert body["error"] == []
    assert body["result"]["ZUSD"] == "100000.0000"
    bad = caller.request("AddOrder", {"pair": "NOPE", "type": "buy"})
    assert bad.status == 200
    assert bad.json() == {"error": ["EQuery:Unknown asset pair"]}


@pytest.mark.parametrize("headers", [{}, {"user-agent": ""}, {"user-agent": "   "}])
def test_a_request_without_user_agent_gets_cloudflares_html_403(headers: dict[str, str]) -> None:
    exchange, _, _, _ = make()
    response = exchange.handle(SandboxRequest("GET", "/0/public/Time", "", headers))
    assert response.status == 403
    assert response.headers["content-type"].startswith("text/html")
    assert b"Cloudflare" in response.body
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_the_user_agent_check_can_be_switched_off() -> None:
    exchange, _, _, _ = make(config=SandboxConfig(require_user_agent=False))
    assert exchange.handle(SandboxRequest("GET", "/0/public/Time")).status == 200


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/0/public/Nope", 200, "EGeneral:Unknown method"),
        ("/0/private/Nope", 200, "EGeneral:Unknown method"),
        ("/1/public/Time", 404, None),
        ("/", 404, None),
    ],
)
def test_unknown_methods_and_paths(path: str, status: int, error: str | None) -> None:
    exchange, _, _, _ = make()
    response = exchange.handle(SandboxRequest("POST", path, "", {"user-agent": "x"}))
    assert response.status == status
    if error is not None:
        assert response.json() == {"error": [error]}


def test_engine_bugs_become_internal_error_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    exchange, caller, _, _ = make()
    exchange.propagate_errors = False

    def boom(*args: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setitem(exchange.private.methods, "Balance", boom)
    assert caller.err("Balance") == "EGeneral:Internal error"


# -- public endpoints over the real market -----------------------------------------------


@pytest.fixture
def real() -> tuple[Exchange, support.Caller, ManualClock, Market]:
    clock = ManualClock(T0)
    market = Market(seed=3, genesis=T0)
    exchange, caller, _, _ = make(market=market)
    exchange.clock = clock
    return exchange, caller, clock, market


def test_time_has_kraken_rfc1123_format(
    real: tuple[Exchange, support.Caller, ManualClock, Market],
) -> None:
    _, caller, _, _ = real
    result = caller.public("Time")["result"]
    assert result == {"unixtime": int(T0), "rfc1123": "Tue, 14 Nov 23 22:13:20 +0000"}


def test_public_results_are_keyed_by_pair_id_even_when_asked_by_altname(
    real: tuple[Exchange, support.Caller, ManualClock, Market],
) -> None:
    _, caller, clock, _ = real
    clock.advance(600)
    for method, query in [
        ("Ticker", "pair=XBTUSD"),
        ("Depth", "pair=xbtusd&count=5"),
        ("OHLC", "pair=XBT/USD&interval=5"),
        ("Trades", "pair=XBTUSD&count=10"),
        ("AssetPairs", "pair=XBTUSD"),
        ("Spread", "pair=XBTUSD"),
    ]:
        answer = caller.public(method, query)
        assert answer["error"] == [], (method, answer)
        assert "XXBTZUSD" in answer["result"], method
    trades = caller.public("Trades", "pair=XBTUSD&count=10")["result"]
    assert len(trades["XXBTZUSD"]) == 10
    assert isinstance(trades["last"], str)
    assert trades["last"].isdigit()
    depth = caller.public("Depth", "pair=XBTUSD&count=5")["result"]["XXBTZUSD"]
    assert len(depth["asks"]) == 5


@pytest.mark.parametrize("method", ["Ticker", "Time", "Trades"])
def test_public_endpoints_answer_post_as_an_unknown_method(
    real: tuple[Exchange, support.Caller, ManualClock, Market], method: str
) -> None:
    # Kraken serves /0/public/* to GET only: a POST there is "EGeneral:Unknown method".
    exchange, _, _, _ = real
    response = exchange.handle(
        SandboxRequest("POST", f"/0/public/{method}", "", {"user-agent": "x"}, b"pair=ETHUSD")
    )
    assert response.status == 200
    assert response.json() == {"error": ["EGeneral:Unknown method"]}
    got = exchange.handle(
        SandboxRequest("GET", "/0/public/Ticker", "pair=ETHUSD", {"user-agent": "x"})
    )
    assert list(got.json()["result"]) == ["XETHZUSD"]


@pytest.mark.parametrize(
    ("method", "query", "error"),
    [
        ("Ticker", "pair=NOPE", "EQuery:Unknown asset pair"),
        ("OHLC", "pair=XBTUSD&interval=7", "EGeneral:Invalid arguments:interval"),
        ("Trades", "pair=XBTUSD&count=0", "EGeneral:Invalid arguments:count"),
        ("Depth", "pair=XBTUSD&count=501", "EGeneral:Invalid arguments:count"),
        ("Assets", "asset=NOPE", "EQuery:Unknown asset"),
        ("OHLC", "", "EGeneral:Invalid arguments:pair"),
    ],
)
def test_public_errors(
    real: tuple[Exchange, support.Caller, ManualClock, Market], method: str, query: str, error: str
) -> None:
    _, caller, _, _ = real
    assert caller.public(method, query) == {"error": [error]}


def test_asset_pairs_and_assets_use_kraken_field_names(
    real: tuple[Exchange, support.Caller, ManualClock, Market],
) -> None:
    _, caller, _, _ = real
    pairs = caller.public("AssetPairs")["result"]
    assert set(pairs) == {"XXBTZUSD", "XETHZUSD", "XDGUSD"}
    xbt = pairs["XXBTZUSD"]
    for field in (
        "altname",
        "wsname",
        "base",
        "quote",
        "pair_decimals",
        "lot_decimals",
        "cost_decimals",
        "ordermin",
        "costmin",
        "tick_size",
        "fees",
        "fees_maker",
        "status",
    ):
        assert field in xbt
    fees_only = caller.public("AssetPairs", "pair=XBTUSD&info=fees")["result"]["XXBTZUSD"]
    assert set(fees_only) == {"fees", "fees_maker", "fee_volume_currency"}
    assets = caller.public("Assets", "asset=XBT,doge")["result"]
    assert assets["XXBT"]["altname"] == "XBT"
    assert assets["XXDG"]["decimals"] == 8


def test_system_status_follows_the_exchange_setting() -> None:
    exchange, caller, _, _ = make()
    assert caller.public("SystemStatus")["result"]["status"] == "online"
    exchange.set_system_status("maintenance")
    result = caller.public("SystemStatus")["result"]
    assert result == {"status": "maintenance", "timestamp": "2023-11-14T22:13:20Z"}
    assert caller.err("AddOrder", limit("XBTUSD", "buy", "100", "0.01")) == "EService:Unavailable"


def test_the_balance_shows_asset_precision() -> None:
    _, caller, _, _ = make(balances={"ZUSD": "12.5", "XXDG": "3"})
    assert caller.ok("Balance") == {"ZUSD": "12.5000", "XXDG": "3.00000000"}
    ex = caller.ok("BalanceEx")
    assert ex["ZUSD"]["balance"] == "12.5000"
    assert ex["ZUSD"]["hold_trade"] == "0.0000"


def test_account_config_generation_is_deterministic_and_kraken_shaped() -> None:
    a = AccountConfig.generate(7, balances={"ZUSD": "1"})
    b = AccountConfig.generate(7)
    assert a.key == b.key
    assert a.secret == b.secret
    assert len(a.key) == 56
    assert len(base64.b64decode(a.secret)) == 64
    assert a.balances == {"ZUSD": Decimal(1)}
    assert a.secret not in repr(a)
    with pytest.raises(ValueError, match="tier"):
        AccountConfig("k", a.secret, tier="gold")
    with pytest.raises(ValueError, match=">= 0"):
        AccountConfig("k", a.secret, {"ZUSD": "-1"})


def test_add_account_refuses_a_duplicate_key_and_accepts_a_config() -> None:
    exchange, caller, _, _ = make()
    with pytest.raises(ValueError, match="already exists"):
        exchange.add_account(caller.account)
    extra = exchange.add_account("k2", caller.account.secret, {"ZUSD": "5"}, tier="pro")
    assert extra.tier == "pro"
    assert exchange.balances("k2") == {"ZUSD": Decimal(5)}

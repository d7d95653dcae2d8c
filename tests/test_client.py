"""Every endpoint is encoded, signed and parsed as Kraken documents it, and a call is repeated
only when repeating cannot duplicate an effect."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
import requests
import urllib3.exceptions
from fakehttp import (
    BASE_URL,
    JSON,
    KEY,
    SECRET,
    Answer,
    FakeAdapter,
    body_text,
    cloudflare,
    fail,
    form,
    ok,
    query,
    raw,
    sent_nonce,
    signature_ok,
)
from hypothesis import given, settings
from strategies import asset_pairs, order_requests

from oms.auth import Credentials, key_fingerprint
from oms.client import KrakenClient, PairRulesUnavailable
from oms.errors import (
    HTTPStatusError,
    InvalidNonce,
    InvalidResponse,
    KrakenError,
    OmsError,
    RequestTimeout,
    ResponseShapeError,
    ServiceUnavailable,
    Throttled,
    UnknownAssetPair,
    UnknownOrder,
    ValidationError,
)
from oms.models import (
    AddOrderResult,
    AmendResult,
    AssetPair,
    BatchOrderResult,
    CancelResult,
    DeadMansSwitch,
    FundingStatus,
    OrdersPage,
    SystemState,
)
from oms.nonce import NonceSource
from oms.orders import OrderRequest, check_against_pair, format_deadline
from oms.retry import RetryPolicy
from oms.transport import Transcript, Transport

FIXTURES = Path(__file__).parent / "fixtures"
START = 1_700_000_000.0


def fixture(name: str) -> Answer:
    return Answer(200, (FIXTURES / name).read_bytes(), JSON)


def fixture_result(name: str) -> Answer:
    return ok(json.loads((FIXTURES / name).read_text()))


class Clock:
    """A clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = START
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake() -> FakeAdapter:
    return FakeAdapter()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_client(fake: FakeAdapter, clock: Clock, directory: Path, **kwargs: Any) -> KrakenClient:
    transport = kwargs.pop("transport", None) or Transport()
    transport.mount(BASE_URL, fake)
    kwargs.setdefault("credentials", Credentials(key=KEY, secret=SECRET))
    # The answer queues below script one request per call: no AssetPairs lookups unless a
    # test is about them (see the pair-rules tests).
    kwargs.setdefault("pair_rules", "off")
    return KrakenClient(
        base_url=BASE_URL,
        transport=transport,
        nonce_source=NonceSource(key_fingerprint(KEY), directory=directory),
        clock=clock,
        sleep=clock.sleep,
        random=lambda: 0.5,
        **kwargs,
    )


@pytest.fixture
def client(fake: FakeAdapter, clock: Clock, tmp_path: Path) -> KrakenClient:
    return make_client(fake, clock, tmp_path)


def _deadline(seconds: float) -> datetime:
    return datetime.fromtimestamp(START + seconds, timezone.utc)


def _order(**overrides: Any) -> OrderRequest:
    fields: dict[str, Any] = {
        "pair": "XBTUSD",
        "side": "buy",
        "ordertype": "limit",
        "volume": "1.25",
        "price": "37500",
    }
    fields.update(overrides)
    return OrderRequest(**fields)


def _order_info(txid: str, closetm: float, userref: int | None = None) -> dict[str, Any]:
    return {
        "refid": None,
        "userref": userref,
        "status": "closed",
        "opentm": closetm - 1,
        "closetm": closetm,
        "starttm": 0,
        "expiretm": 0,
        "descr": {
            "pair": "XBTUSD",
            "type": "buy",
            "ordertype": "limit",
            "price": "25000.0",
            "price2": "0",
            "leverage": "none",
            "order": "buy 0.00010000 XBTUSD @ limit 25000.0",
            "close": "",
        },
        "vol": "0.00010000",
        "vol_exec": "0.00010000",
        "cost": "2.5",
        "fee": "0.01",
        "price": "25000.0",
        "misc": "",
        "oflags": "fciq",
    }


TICKER = {
    "XXBTZUSD": {
        "a": ["30300.10000", "1", "1.000"],
        "b": ["30300.00000", "2", "2.000"],
        "c": ["30303.20000", "0.00067643"],
        "v": ["4083.67001100", "4412.73601799"],
        "p": ["30706.77771", "30689.13205"],
        "t": [34619, 38907],
        "l": ["29868.30000", "29868.30000"],
        "h": ["31631.00000", "31631.00000"],
        "o": "30502.80000",
    }
}
PAIR = {
    "XXBTZUSD": {
        "altname": "XBTUSD",
        "wsname": "XBT/USD",
        "aclass_base": "currency",
        "base": "XXBT",
        "aclass_quote": "currency",
        "quote": "ZUSD",
        "pair_decimals": 1,
        "cost_decimals": 5,
        "lot_decimals": 8,
        "lot_multiplier": 1,
        "ordermin": "0.0001",
        "costmin": "0.5",
        "tick_size": "0.1",
        "status": "online",
    }
}


def _batch() -> list[OrderRequest]:
    return [_order(userref=1), _order(side="sell", price="40000", cl_ord_id="leg-2")]


# Each row: what to call, Kraken's answer, then what must have been sent and what comes back.
ENDPOINTS: list[tuple[str, Callable[[KrakenClient], Any], Answer, str, str, dict[str, Any]]] = [
    (
        "Time",
        lambda c: c.time(),
        ok({"unixtime": 1591502873, "rfc1123": "Sun,  7 Jun 20 04:07:53 +0000"}),
        "GET",
        "/0/public/Time",
        {},
    ),
    (
        "SystemStatus",
        lambda c: c.system_status(),
        ok({"status": "online", "timestamp": "2023-03-24T17:41:56Z"}),
        "GET",
        "/0/public/SystemStatus",
        {},
    ),
    (
        "Assets",
        lambda c: c.assets(["XBT", "ETH"], aclass="currency"),
        ok(
            {
                "XXBT": {
                    "aclass": "currency",
                    "altname": "XBT",
                    "decimals": 10,
                    "display_decimals": 5,
                    "collateral_value": 1.0,
                    "status": "enabled",
                }
            }
        ),
        "GET",
        "/0/public/Assets",
        {"asset": "XBT,ETH", "aclass": "currency"},
    ),
    (
        "AssetPairs",
        lambda c: c.asset_pairs("XBTUSD", info="info"),
        ok(PAIR),
        "GET",
        "/0/public/AssetPairs",
        {"pair": "XBTUSD", "info": "info"},
    ),
    (
        "Ticker",
        lambda c: c.ticker("XBTUSD"),
        ok(TICKER),
        "GET",
        "/0/public/Ticker",
        {"pair": "XBTUSD"},
    ),
    (
        "OHLC",
        lambda c: c.ohlc("XBTUSD", interval=60, since=1688671200),
        ok(
            {
                "XXBTZUSD": [
                    [1688671200, "30306.1", "30306.2", "30305.7", "30305.7", "30306.1", "3.4", 23]
                ],
                "last": 1688672160,
            }
        ),
        "GET",
        "/0/public/OHLC",
        {"pair": "XBTUSD", "interval": "60", "since": "1688671200"},
    ),
    (
        "Trades",
        lambda c: c.trades("xbtusd", since=1559347200000000000, count=1000),
        fixture("seed_trades.json"),
        "GET",
        "/0/public/Trades",
        {"pair": "xbtusd", "since": "1559347200000000000", "count": "1000"},
    ),
    (
        "Depth",
        lambda c: c.depth("XBTUSD", count=2),
        ok({"XXBTZUSD": {"asks": [["30384.1", "2.059", 1688671659]], "bids": []}}),
        "GET",
        "/0/public/Depth",
        {"pair": "XBTUSD", "count": "2"},
    ),
    (
        "Balance",
        lambda c: c.balance(),
        ok({"ZUSD": "171288.6158", "XXBT": "0.0011"}),
        "POST",
        "/0/private/Balance",
        {},
    ),
    (
        "AddOrder",
        lambda c: c.add_order(_order(pair="xdgusd", price="0.1", volume="50", userref=27649653)),
        fixture("seed_add_order.json"),
        "POST",
        "/0/private/AddOrder",
        {
            "pair": "xdgusd",
            "type": "buy",
            "ordertype": "limit",
            "volume": "50",
            "price": "0.1",
            "userref": "27649653",
        },
    ),
    (
        "AddOrder-all-parameters",
        lambda c: c.add_order(
            _order(
                userref=7,
                oflags=["post"],
                timeinforce="GTD",
                expiretm="+3600",
                close_ordertype="stop-loss-limit",
                close_price="30000",
                close_price2="29900",
                deadline=_deadline(10),
                validate=True,
                asset_class="tokenized_asset",
            )
        ),
        fixture("seed_add_order_validate.json"),
        "POST",
        "/0/private/AddOrder",
        {
            "pair": "XBTUSD",
            "type": "buy",
            "ordertype": "limit",
            "volume": "1.25",
            "price": "37500",
            "oflags": "post",
            "timeinforce": "GTD",
            "expiretm": "+3600",
            "userref": "7",
            "close[ordertype]": "stop-loss-limit",
            "close[price]": "30000",
            "close[price2]": "29900",
            "asset_class": "tokenized_asset",
            "deadline": format_deadline(_deadline(10)),
            "validate": "true",
        },
    ),
    (
        "AddOrderBatch",
        lambda c: c.add_order_batch(_batch(), deadline=_deadline(30)),
        ok(
            {
                "orders": [
                    {"txid": "OAAAAA-BBBBB-CCCCCC", "descr": {"order": "buy 1.25 XBTUSD"}},
                    {"error": "EOrder:Post only order"},
                ]
            }
        ),
        "POST",
        "/0/private/AddOrderBatch",
        {
            "pair": "XBTUSD",
            "orders": [
                {
                    "type": "buy",
                    "ordertype": "limit",
                    "volume": "1.25",
                    "price": "37500",
                    "userref": 1,
                },
                {
                    "type": "sell",
                    "ordertype": "limit",
                    "volume": "1.25",
                    "price": "40000",
                    "cl_ord_id": "leg-2",
                },
            ],
            "deadline": format_deadline(_deadline(30)),
        },
    ),
    (
        "AmendOrder",
        lambda c: c.amend_order(
            txid="OHYO67-6LP66-HMQ437", order_qty="0.5", limit_price="30000.5", post_only=True
        ),
        fixture("ref_amend_order.json"),
        "POST",
        "/0/private/AmendOrder",
        {
            "txid": "OHYO67-6LP66-HMQ437",
            "order_qty": "0.5",
            "limit_price": "30000.5",
            "post_only": "true",
        },
    ),
    (
        "CancelOrder-txid",
        lambda c: c.cancel_order(txid="OQJSXE-F5FOM-IXHVL4"),
        fixture("seed_cancel_order_count1.json"),
        "POST",
        "/0/private/CancelOrder",
        {"txid": "OQJSXE-F5FOM-IXHVL4"},
    ),
    (
        "CancelOrder-userref",
        lambda c: c.cancel_order(userref=48695624),
        fixture("seed_cancel_order_count3.json"),
        "POST",
        "/0/private/CancelOrder",
        {"txid": "48695624"},
    ),
    (
        "CancelOrder-cl_ord_id",
        lambda c: c.cancel_order(cl_ord_id="my-order-1"),
        ok({"count": "1", "pending": False}),
        "POST",
        "/0/private/CancelOrder",
        {"cl_ord_id": "my-order-1"},
    ),
    (
        "CancelOrderBatch",
        lambda c: c.cancel_order_batch(
            txids=["OP5V2Y-RYKVL-ET3V3B"], userrefs=[7], cl_ord_ids=["leg-2"]
        ),
        fixture("ref_cancel_order_batch.json"),
        "POST",
        "/0/private/CancelOrderBatch",
        {"orders": ["OP5V2Y-RYKVL-ET3V3B", 7], "cl_ord_ids": [{"cl_ord_id": "leg-2"}]},
    ),
    (
        "CancelAll",
        lambda c: c.cancel_all(),
        ok({"count": 4, "pending": False}),
        "POST",
        "/0/private/CancelAll",
        {},
    ),
    (
        "CancelAllOrdersAfter",
        lambda c: c.cancel_all_orders_after(60),
        fixture_result("ref_cancel_all_orders_after_result.json"),
        "POST",
        "/0/private/CancelAllOrdersAfter",
        {"timeout": "60"},
    ),
    (
        "OpenOrders",
        lambda c: c.open_orders(userref=27649653),
        fixture("seed_open_orders.json"),
        "POST",
        "/0/private/OpenOrders",
        {"userref": "27649653"},
    ),
    (
        "OpenOrders-cl_ord_id",
        lambda c: c.open_orders(cl_ord_id="my-order-1", trades=True),
        ok({"open": {}}),
        "POST",
        "/0/private/OpenOrders",
        {"trades": "true", "cl_ord_id": "my-order-1"},
    ),
    (
        "ClosedOrders",
        lambda c: c.closed_orders(userref=38695724, start=1629619000, without_count=True),
        fixture("seed_closed_orders.json"),
        "POST",
        "/0/private/ClosedOrders",
        {"userref": "38695724", "start": "1629619000", "without_count": "true"},
    ),
    (
        "QueryOrders",
        lambda c: c.query_orders(["OQJSXE-F5FOM-IXHVL4", "O7YEFN-3V4RK-FBNSNM"], trades=True),
        ok({"O7YEFN-3V4RK-FBNSNM": _order_info("O7YEFN-3V4RK-FBNSNM", 1629619542.2246)}),
        "POST",
        "/0/private/QueryOrders",
        {"txid": "OQJSXE-F5FOM-IXHVL4,O7YEFN-3V4RK-FBNSNM", "trades": "true"},
    ),
    (
        "DepositMethods",
        lambda c: c.deposit_methods("XBT"),
        ok([{"method": "Bitcoin", "limit": False, "fee": "0", "gen-address": True}]),
        "POST",
        "/0/private/DepositMethods",
        {"asset": "XBT"},
    ),
    (
        "DepositStatus",
        lambda c: c.deposit_status(asset="XDG"),
        fixture("seed_deposit_settled.json"),
        "POST",
        "/0/private/DepositStatus",
        {"asset": "XDG"},
    ),
    (
        "WithdrawStatus",
        lambda c: c.withdraw_status(asset="XDG", cursor=True, limit=10),
        fixture("seed_withdraw_failure.json"),
        "POST",
        "/0/private/WithdrawStatus",
        {"asset": "XDG", "cursor": "true", "limit": "10"},
    ),
    (
        "WithdrawInfo",
        lambda c: c.withdraw_info("XBT", "my key", "0.5"),
        ok({"method": "Bitcoin", "limit": "332.0", "amount": "0.4999", "fee": "0.0001"}),
        "POST",
        "/0/private/WithdrawInfo",
        {"asset": "XBT", "key": "my key", "amount": "0.5"},
    ),
    (
        "Withdraw",
        lambda c: c.withdraw("XBT", "my key", Decimal("0.5"), max_fee="0.001"),
        ok({"refid": "FTQcuak-V6Za8qrWnhzTx67yYHz8Tg"}),
        "POST",
        "/0/private/Withdraw",
        {"asset": "XBT", "key": "my key", "amount": "0.5", "max_fee": "0.001"},
    ),
    (
        "WithdrawCancel",
        lambda c: c.withdraw_cancel("XBT", "FTQcuak-V6Za8qrWnhzTx67yYHz8Tg"),
        ok(True),
        "POST",
        "/0/private/WithdrawCancel",
        {"asset": "XBT", "refid": "FTQcuak-V6Za8qrWnhzTx67yYHz8Tg"},
    ),
    (
        "call-private",
        lambda c: c.call("TradeBalance", asset="ZUSD"),
        ok({"eb": "1.0"}),
        "POST",
        "/0/private/TradeBalance",
        {"asset": "ZUSD"},
    ),
    (
        "call-public",
        lambda c: c.call("Spread", pair="XBTUSD"),
        ok({"XXBTZUSD": [], "last": 1}),
        "GET",
        "/0/public/Spread",
        {"pair": "XBTUSD"},
    ),
]

RESULT_CHECKS: dict[str, Callable[[Any], bool]] = {
    "Time": lambda r: r.unixtime == 1591502873,
    "SystemStatus": lambda r: r.status is SystemState.ONLINE,
    "Assets": lambda r: r["XXBT"].decimals == 10,
    "AssetPairs": lambda r: r["XXBTZUSD"].tick_size == Decimal("0.1"),
    "Ticker": lambda r: r["XXBTZUSD"].ask == Decimal("30300.10000"),
    "OHLC": lambda r: r.last == 1688672160 and r.bars[0].count == 23,
    "Trades": lambda r: r.last == 1559350785297011117 and r.trades[0].price == Decimal("8552.9"),
    "Depth": lambda r: r.asks[0].volume == Decimal("2.059"),
    "Balance": lambda r: r["ZUSD"] == Decimal("171288.6158"),
    "AddOrder": lambda r: isinstance(r, AddOrderResult) and r.txids == ("OQJSXE-F5FOM-IXHVL4",),
    "AddOrder-all-parameters": lambda r: r.validated and r.txids == (),
    "AddOrderBatch": lambda r: (
        isinstance(r, BatchOrderResult) and r.txids == ("OAAAAA-BBBBB-CCCCCC", None)
    ),
    "AmendOrder": lambda r: isinstance(r, AmendResult) and r.amend_id == "TJSMEH-AA67V-YUSQ6O",
    "CancelOrder-txid": lambda r: r == CancelResult(1),
    "CancelOrder-userref": lambda r: r.count == 3,
    "CancelOrder-cl_ord_id": lambda r: r.count == 1,
    "CancelOrderBatch": lambda r: r.count == 2,
    "CancelAll": lambda r: r.count == 4,
    "CancelAllOrdersAfter": lambda r: isinstance(r, DeadMansSwitch) and r.trigger_time is not None,
    "OpenOrders": lambda r: r.orders[0].userref == 27649653,
    "OpenOrders-cl_ord_id": lambda r: isinstance(r, OrdersPage) and len(r) == 0,
    "ClosedOrders": lambda r: r.count == 1 and r.orders[0].closetm == 1629619542.2246,
    "QueryOrders": lambda r: [o.txid for o in r] == ["O7YEFN-3V4RK-FBNSNM"],
    "DepositMethods": lambda r: r[0].method == "Bitcoin" and r[0].limit is None,
    "DepositStatus": lambda r: r.items[0].status is FundingStatus.SETTLED,
    "WithdrawStatus": lambda r: r.items[0].status_prop_raw == "canceled",
    "WithdrawInfo": lambda r: r.amount == Decimal("0.4999"),
    "Withdraw": lambda r: r == "FTQcuak-V6Za8qrWnhzTx67yYHz8Tg",
    "WithdrawCancel": lambda r: r is True,
    "call-private": lambda r: r == {"eb": "1.0"},
    "call-public": lambda r: r == {"XXBTZUSD": [], "last": 1},
}


@pytest.mark.parametrize(
    ("name", "invoke", "answer", "http_method", "path", "params"),
    ENDPOINTS,
    ids=[row[0] for row in ENDPOINTS],
)
def test_endpoint_encoding_signing_and_parsing(
    client: KrakenClient,
    fake: FakeAdapter,
    name: str,
    invoke: Callable[[KrakenClient], Any],
    answer: Answer,
    http_method: str,
    path: str,
    params: dict[str, Any],
) -> None:
    fake.push(answer)
    result = invoke(client)
    assert RESULT_CHECKS[name](result)
    (request,) = fake.requests
    assert request.method == http_method
    assert (request.url or "").split("?")[0] == BASE_URL + path
    if http_method == "GET":
        assert query(request) == params
        assert request.body is None
        assert "API-Key" not in request.headers
        assert "API-Sign" not in request.headers
        return
    assert request.headers["API-Key"] == KEY
    assert signature_ok(request)
    text = body_text(request)
    if path.endswith("Batch"):
        assert request.headers["Content-Type"] == "application/json"
        sent = json.loads(text)
    else:
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        sent = form(request)
    # The nonce leads the body and is the one the signature covers.
    assert text.startswith('{"nonce":' if path.endswith("Batch") else "nonce=")
    assert int(sent.pop("nonce")) == sent_nonce(request)
    assert sent == params


def test_form_body_keeps_the_request_order(client: KrakenClient, fake: FakeAdapter) -> None:
    fake.push(fixture("seed_add_order.json"))
    client.add_order(_order(pair="xdgusd", price="0.1", volume="50", userref=27649653))
    assert body_text(fake.last).split("&", 1)[1] == (
        "pair=xdgusd&type=buy&ordertype=limit&volume=50&price=0.1&userref=27649653"
    )


def test_add_order_from_keyword_arguments(client: KrakenClient, fake: FakeAdapter) -> None:
    fake.push(fixture("seed_add_order.json"))
    result = client.add_order(pair="xdgusd", side="buy", ordertype="limit", price="0.1", volume=50)
    assert result.txid == "OQJSXE-F5FOM-IXHVL4"
    with pytest.raises(ValidationError):
        client.add_order(_order(), pair="x")


def test_validate_answer_with_txid_is_a_shape_error(
    client: KrakenClient, fake: FakeAdapter
) -> None:
    fake.push(fixture("seed_add_order.json"))
    with pytest.raises(ResponseShapeError):
        client.add_order(_order(validate=True))


def test_nonces_increase_and_every_request_is_signed(
    client: KrakenClient, fake: FakeAdapter
) -> None:
    fake.default = ok({})
    for _ in range(5):
        client.call("Balance")
    nonces = [sent_nonce(r) for r in fake.requests]
    assert nonces == sorted(set(nonces))
    assert all(signature_ok(r) for r in fake.requests)


def test_signed_requests_leave_in_nonce_order_across_threads(
    client: KrakenClient, fake: FakeAdapter
) -> None:
    fake.default = ok({})
    threads = [threading.Thread(target=client.call, args=("OpenOrders",)) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    nonces = [sent_nonce(r) for r in fake.requests]
    assert len(nonces) == 12
    assert nonces == sorted(nonces)
    assert len(set(nonces)) == 12


# --- public/private decision and validation before I/O --------------------------------------


def test_public_table_and_overrides(fake: FakeAdapter, clock: Clock, tmp_path: Path) -> None:
    fake.default = ok({})
    client = make_client(fake, clock, tmp_path, public_methods={"Time", "Custom"})
    client.call("Custom")
    client.call("Time", private=True)
    client.call("Balance", private=False)
    assert [(r.method, (r.url or "").removeprefix(BASE_URL)) for r in fake.requests] == [
        ("GET", "/0/public/Custom"),
        ("POST", "/0/private/Time"),
        ("GET", "/0/public/Balance"),
    ]


@pytest.mark.parametrize(
    "invoke",
    [
        lambda c: c.call("../Balance"),
        lambda c: c.call(""),
        lambda c: c.call("Balance", nonce=1),
        lambda c: c.call("AddOrder", price=0.1),
        lambda c: c.cancel_order(txid="O1", userref=5),
        lambda c: c.cancel_order(),
        lambda c: c.cancel_order(userref=0),
        lambda c: c.cancel_order(cl_ord_id="x" * 40),
        lambda c: c.asset_pairs("XBTUSD", info="fees"),
        lambda c: c.cancel_order_batch(),
        lambda c: c.cancel_order_batch(txids=[f"O{i}" for i in range(51)]),
        lambda c: c.cancel_all_orders_after(86400),
        lambda c: c.ohlc("XBTUSD", interval=7),
        lambda c: c.trades("XBTUSD", count=1001),
        lambda c: c.depth("XBTUSD", count=0),
        lambda c: c.amend_order(txid="O1"),
        lambda c: c.amend_order(txid="O1", cl_ord_id="c", order_qty="1"),
        lambda c: c.withdraw("XBT", "k", "-1"),
        lambda c: c.withdraw("XBT", "k", 0.5),
        lambda c: c.open_orders(userref=2**31),
        lambda c: c.closed_orders(closetime="later"),
        lambda c: c.deposit_status(limit=0),
        lambda c: c.withdraw_status(cursor=5),
        lambda c: c.add_order(_order(deadline=_deadline(120))),
        lambda c: c.add_order_batch([_order()]),
    ],
)
def test_bad_arguments_refused_before_any_io(
    client: KrakenClient, fake: FakeAdapter, invoke: Callable[[KrakenClient], Any]
) -> None:
    with pytest.raises(ValidationError):
        invoke(client)
    assert fake.requests == []


def test_private_call_without_credentials_refused_public_allowed(
    fake: FakeAdapter, clock: Clock, tmp_path: Path
) -> None:
    fake.default = ok({"unixtime": 1, "rfc1123": "x"})
    client = make_client(fake, clock, tmp_path, credentials=None)
    with pytest.raises(ValidationError, match="private"):
        client.balance()
    assert fake.requests == []
    assert client.time().unixtime == 1


@pytest.mark.parametrize("url", ["ftp://kraken.test", "https://kraken.test/api", "kraken.test"])
def test_bad_base_url_refused(url: str) -> None:
    with pytest.raises(ValidationError):
        KrakenClient(base_url=url)


def test_envelope_without_error_array_is_invalid(client: KrakenClient, fake: FakeAdapter) -> None:
    fake.default = raw('{"result": {}}')
    with pytest.raises(InvalidResponse):
        client.time()
    assert len(fake.requests) == client.retry.max_attempts


def test_warnings_are_returned_as_success(
    client: KrakenClient, fake: FakeAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    fake.push(ok({"count": 1}, warnings=["WDatabase:No change"]))
    with caplog.at_level(logging.WARNING, logger="oms.client"):
        assert client.cancel_all().count == 1
    assert "WDatabase:No change" in caplog.text


def test_kraken_error_raised_with_table_class(client: KrakenClient, fake: FakeAdapter) -> None:
    fake.push(fail("EOrder:Insufficient funds"))
    with pytest.raises(KrakenError) as info:
        client.add_order(_order())
    assert info.value.code == "EOrder:Insufficient funds"


def test_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KRAKEN_API_KEY", KEY)
    monkeypatch.setenv("KRAKEN_API_SECRET", SECRET)
    monkeypatch.setenv("KRAKEN_BASE_URL", "http://127.0.0.1:9")
    client = KrakenClient.from_env()
    assert client.base_url == "http://127.0.0.1:9"
    assert client.credentials == Credentials(key=KEY, secret=SECRET)
    monkeypatch.delenv("KRAKEN_API_KEY")
    monkeypatch.delenv("KRAKEN_API_SECRET")
    monkeypatch.delenv("KRAKEN_BASE_URL")
    public = KrakenClient.from_env()
    assert public.credentials is None
    assert public.base_url == "https://api.kraken.com"
    monkeypatch.setenv("KRAKEN_API_KEY", KEY)
    with pytest.raises(ValidationError):
        KrakenClient.from_env()


# --- retries ------------------------------------------------------------------------------------


def _reset() -> Exception:
    return requests.exceptions.ConnectionError(
        urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))
    )


def _refused() -> Exception:
    return requests.exceptions.ConnectionError(
        urllib3.exceptions.MaxRetryError(
            None,  # type: ignore[arg-type]
            BASE_URL,
            urllib3.exceptions.NewConnectionError(None, "refused"),  # type: ignore[arg-type]
        )
    )


BAD_GATEWAY = cloudflare(502, "502: Bad gateway", "Bad Gateway")
UNKNOWN_ERROR = cloudflare(520, "520: Web server is returning an unknown error")
HTML_200 = Answer(200, b"<html>maintenance</html>", {"Content-Type": "text/html"})
BALANCE = ok({"ZUSD": "1"})
ADDED = fixture("seed_add_order.json")
CANCELLED = ok({"count": 1})

TIME = ok({"unixtime": 1, "rfc1123": ""})


def _timeout() -> Exception:
    return requests.exceptions.ReadTimeout("read timed out")


def _add(c: KrakenClient) -> Any:
    return c.add_order(_order())


def _batch_add(c: KrakenClient) -> Any:
    return c.add_order_batch(_batch())


def _amend(c: KrakenClient) -> Any:
    return c.amend_order(txid="O1", order_qty="1")


def _withdraw(c: KrakenClient) -> Any:
    return c.withdraw("XBT", "k", "1")


def _transfer(c: KrakenClient) -> Any:
    return c.call("WalletTransfer")


def _cancel(c: KrakenClient) -> Any:
    return c.cancel_order(txid="O1")


def _cancel_group(c: KrakenClient) -> Any:
    return c.cancel_order(userref=5)


_balance, _time, _cancel_all = KrakenClient.balance, KrakenClient.time, KrakenClient.cancel_all
NONCE = fail("EAPI:Invalid nonce")
UNAVAILABLE = fail("EService:Unavailable")
ORDER_RATE = fail("EOrder:Rate limit exceeded")

RETRIES: list[tuple[str, Callable[[KrakenClient], Any], list[Any], int, type | None]] = [
    ("read-502", _balance, [BAD_GATEWAY, BALANCE], 2, None),
    ("read-timeout-reset", _balance, [_timeout(), _reset(), BALANCE], 3, None),
    ("read-520-gives-up", _balance, [UNKNOWN_ERROR] * 4, 4, HTTPStatusError),
    ("read-403-not-repeated", _balance, [cloudflare(403, "Forbidden")], 1, HTTPStatusError),
    ("read-html-200", _time, [HTML_200, TIME], 2, None),
    ("public-throttle", _time, [fail("EGeneral:Too many requests"), TIME], 2, None),
    ("read-unavailable", _balance, [UNAVAILABLE, BALANCE], 2, None),
    ("read-rate-limit", _balance, [fail("EAPI:Rate limit exceeded"), BALANCE], 2, None),
    ("read-nonce", _balance, [NONCE, BALANCE], 2, None),
    ("nonce-once-only", _balance, [NONCE, NONCE], 2, InvalidNonce),
    ("read-definite-error", _balance, [fail("EGeneral:Permission denied")], 1, KrakenError),
    ("add-502", _add, [BAD_GATEWAY], 1, HTTPStatusError),
    ("add-timeout", _add, [_timeout()], 1, RequestTimeout),
    ("add-reset", _add, [_reset()], 1, OmsError),
    ("add-html-200", _add, [HTML_200], 1, InvalidResponse),
    ("add-unavailable", _add, [UNAVAILABLE], 1, ServiceUnavailable),
    ("add-rate-limit", _add, [ORDER_RATE], 1, KrakenError),
    ("add-connect-timeout", _add, [requests.exceptions.ConnectTimeout(), ADDED], 2, None),
    ("add-refused", _add, [_refused(), ADDED], 2, None),
    ("add-nonce", _add, [NONCE, ADDED], 2, None),
    ("batch-timeout", _batch_add, [_timeout()], 1, RequestTimeout),
    ("amend-502", _amend, [BAD_GATEWAY], 1, HTTPStatusError),
    ("withdraw-timeout", _withdraw, [_timeout()], 1, RequestTimeout),
    ("unknown-method-timeout", _transfer, [_timeout()], 1, RequestTimeout),
    ("cancel-timeout", _cancel, [_timeout(), CANCELLED], 2, None),
    ("cancel-502-then-gone", _cancel, [BAD_GATEWAY, fail("EOrder:Unknown order")], 2, UnknownOrder),
    ("cancel-rate-limit", _cancel_group, [ORDER_RATE, CANCELLED], 2, None),
    ("cancel-all-reset", _cancel_all, [_reset(), CANCELLED], 2, None),
]


@pytest.mark.parametrize(
    ("name", "invoke", "answers", "sent", "raises"), RETRIES, ids=[r[0] for r in RETRIES]
)
def test_retry_behaviour(
    client: KrakenClient,
    fake: FakeAdapter,
    name: str,
    invoke: Callable[[KrakenClient], Any],
    answers: list[Any],
    sent: int,
    raises: type | None,
) -> None:
    fake.push(*answers)
    if raises is None:
        invoke(client)
    else:
        with pytest.raises(raises):
            invoke(client)
    assert len(fake.requests) == sent
    private = [r for r in fake.requests if r.method == "POST"]
    # Every attempt is signed afresh with a new nonce.
    assert all(signature_ok(r) for r in private)
    assert len({sent_nonce(r) for r in private}) == len(private)


def test_backoff_is_capped_exponential_with_jitter(
    client: KrakenClient, fake: FakeAdapter, clock: Clock
) -> None:
    fake.push(*[UNKNOWN_ERROR] * 4)
    client.retry = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=3.0)
    with pytest.raises(HTTPStatusError):
        client.time()
    # random() is 0.5: three quarters of 1, 2, then the 3 s cap.
    assert clock.sleeps == [0.75, 1.5, 2.25]


def test_throttled_waits_until_retry_at(
    client: KrakenClient, fake: FakeAdapter, clock: Clock
) -> None:
    fake.push(fail(f"EService:Throttled: {int(START) + 5}"), BALANCE)
    client.balance()
    assert clock.sleeps == [pytest.approx(5 + 0.25)]


def test_throttled_too_far_ahead_is_raised(client: KrakenClient, fake: FakeAdapter) -> None:
    fake.push(fail(f"EService:Throttled: {int(START) + 3600}"))
    with pytest.raises(Throttled) as info:
        client.balance()
    assert info.value.retry_at == int(START) + 3600
    assert len(fake.requests) == 1


def test_rate_limit_error_waits_for_the_counter_to_decay(
    client: KrakenClient, fake: FakeAdapter, clock: Clock
) -> None:
    fake.push(fail("EAPI:Rate limit exceeded"), BALANCE)
    client.balance()
    # Backoff (0.375 s) then the starter counter, assumed full, must fall by one point.
    assert sum(clock.sleeps) >= 1 / 0.33


def test_client_paces_before_exceeding_the_rest_counter(
    client: KrakenClient, fake: FakeAdapter, clock: Clock
) -> None:
    fake.default = BALANCE
    for _ in range(15):
        client.balance()
    assert clock.sleeps == []
    client.balance()
    assert clock.sleeps == [pytest.approx(1 / 0.33)]


def test_client_paces_cancel_of_young_orders(
    fake: FakeAdapter, clock: Clock, tmp_path: Path
) -> None:
    from oms.ratelimit import RateLimiter

    limiter = RateLimiter("starter", order_age=lambda ref: 1.0, order_pair=lambda ref: "XBTUSD")
    client = make_client(fake, clock, tmp_path, rate_limiter=limiter)
    fake.default = CANCELLED
    for i in range(7):
        client.cancel_order(txid=f"O{i}")
    # 7 x 8 = 56 points fit under 60; the 8th waits for 4 points to decay at 1/s.
    assert clock.sleeps == []
    client.cancel_order(txid="O7")
    assert clock.sleeps == [pytest.approx(4.0, abs=0.01)]


def test_history_calls_are_paced_at_four_points(
    client: KrakenClient, fake: FakeAdapter, clock: Clock
) -> None:
    from oms.ratelimit import REST_LIMITS, Tier

    maximum, decay = REST_LIMITS[Tier.STARTER]
    fake.default = ok({"closed": {}, "count": 0})
    fits = int(maximum // 4)
    for _ in range(fits):
        client.closed_orders()
    assert clock.sleeps == []
    assert client.rate_limiter.rest_level(clock.now) == fits * 4
    client.closed_orders()
    assert clock.sleeps == [pytest.approx((fits * 4 + 4 - maximum) / decay)]


# --- iterators ----------------------------------------------------------------------------------


def test_iter_closed_orders_pins_end_and_skips_nothing(
    client: KrakenClient, fake: FakeAdapter
) -> None:
    book = [(f"O{i:04d}", 1_600_000_000.0 + i) for i in range(120)]

    def closed_orders(request: requests.PreparedRequest) -> Answer:
        params = form(request)
        if len(fake.requests) == 2:
            # An order closes while we page: it must not shift the offsets.
            book.append(("ONEW", 1_700_000_000.0))
        end = float(params.get("end", "inf"))
        rows = sorted((o for o in book if o[1] <= end), key=lambda o: -o[1])
        ofs = int(params.get("ofs", "0"))
        page = rows[ofs : ofs + 50]
        return ok({"closed": {t: _order_info(t, c) for t, c in page}, "count": len(rows)})

    fake.default = closed_orders
    txids = [o.txid for o in client.iter_closed_orders(userref=9)]
    assert txids == [f"O{i:04d}" for i in reversed(range(120))]
    sent = [form(r) for r in fake.requests]
    assert [s.get("ofs") for s in sent] == ["0", "50", "100"]
    assert "end" not in sent[0]
    assert {s.get("end") for s in sent[1:]} == {"1600000119"}
    assert all(s["userref"] == "9" for s in sent)


def test_iter_closed_orders_sends_whole_seconds_and_still_skips_nothing(
    client: KrakenClient, fake: FakeAdapter
) -> None:
    # The spec types start/end as integers. Close times are fractional: the pinned `end` is
    # rounded up, so an order closing later within that second can enter the window; it
    # may only repeat orders (dropped by txid), never hide one.
    book = [(f"O{i:04d}", 1_600_000_000.25 + i) for i in range(120)]

    def closed_orders(request: requests.PreparedRequest) -> Answer:
        params = form(request)
        if len(fake.requests) == 2:
            book.append(("ONEW", 1_600_000_119.75))  # after the pin, before the whole second
        end = float(params.get("end", "inf"))
        start = float(params.get("start", "-inf"))
        rows = sorted((o for o in book if start < o[1] <= end), key=lambda o: -o[1])
        ofs = int(params.get("ofs", "0"))
        page = rows[ofs : ofs + 50]
        return ok({"closed": {t: _order_info(t, c) for t, c in page}, "count": len(rows)})

    fake.default = closed_orders
    txids = [o.txid for o in client.iter_closed_orders(start=1_600_000_000.5)]
    assert len(txids) == len(set(txids))
    assert set(txids) - {"ONEW"} == {f"O{i:04d}" for i in range(1, 120)} | {"O0000"}
    sent = [form(r) for r in fake.requests]
    assert all(re.fullmatch(r"[0-9]+", s[k]) for s in sent for k in ("start", "end") if k in s)
    assert {s["start"] for s in sent} == {"1600000000"}  # widened down: O0000 is included
    assert {s.get("end") for s in sent[1:]} == {"1600000120"}


@pytest.mark.parametrize(
    ("start", "end", "sent_start", "sent_end"),
    [
        (1_600_000_000, 1_600_000_100, "1600000000", "1600000100"),
        (1_600_000_000.9, 1_600_000_100.1, "1600000000", "1600000101"),
        (Decimal("1600000000.5"), Decimal("1600000100.5"), "1600000000", "1600000101"),
        (
            "OABCDE-FGHIJ-KLMNOP",
            "OQRSTU-VWXYZ-ABCDEF",
            "OABCDE-FGHIJ-KLMNOP",
            "OQRSTU-VWXYZ-ABCDEF",
        ),
    ],
)
def test_closed_orders_start_end_go_out_as_integers_or_txids(
    client: KrakenClient, fake: FakeAdapter, start: Any, end: Any, sent_start: str, sent_end: str
) -> None:
    fake.push(ok({"closed": {}, "count": 0}))
    client.closed_orders(start=start, end=end)
    sent = form(fake.last)
    assert (sent["start"], sent["end"]) == (sent_start, sent_end)


def test_iter_closed_orders_pins_by_close_time(client: KrakenClient, fake: FakeAdapter) -> None:
    # (txid, opentm, closetm); 100 orders opened long ago are still open when paging starts.
    book = [(f"O{i:04d}", 1_600_000_000.0 + i - 1, 1_600_000_000.0 + i) for i in range(60)]
    still_open = [(f"L{i:03d}", 1_500_000_000.0 + i) for i in range(100)]

    def closed_orders(request: requests.PreparedRequest) -> Answer:
        params = form(request)
        if len(fake.requests) == 2:
            book.extend((t, opened, 1_700_000_000.0) for t, opened in still_open)
        end = float(params.get("end", "inf"))
        # Kraken's default closetime "both": in the window by open *or* close time.
        by_close = params.get("closetime") == "close"
        rows = [o for o in book if o[2] <= end or (not by_close and o[1] <= end)]
        rows.sort(key=lambda o: -o[2])
        ofs = int(params.get("ofs", "0"))
        page = rows[ofs : ofs + 50]
        return ok({"closed": {t: _order_info(t, c) for t, _, c in page}, "count": len(rows)})

    fake.default = closed_orders
    txids = [o.txid for o in client.iter_closed_orders()]
    assert txids == [f"O{i:04d}" for i in reversed(range(60))]
    sent = [form(r) for r in fake.requests]
    assert [s.get("closetime") for s in sent] == [None, "close"]


def test_iter_closed_orders_goes_on_past_a_page_of_repeats(
    client: KrakenClient, fake: FakeAdapter
) -> None:
    book = [(f"O{i:03d}", 1_600_000_000.0 + i) for i in range(70)]

    def shifting(request: requests.PreparedRequest) -> Answer:
        if len(fake.requests) == 2:
            # A server that ignores `end`: 50 new orders push the second page onto the first.
            book.extend((f"N{i:02d}", 1_700_000_000.0 + i) for i in range(50))
        rows = sorted(book, key=lambda o: -o[1])
        ofs = int(form(request).get("ofs", "0"))
        page = rows[ofs : ofs + 50]
        return ok({"closed": {t: _order_info(t, c) for t, c in page}, "count": len(rows)})

    fake.default = shifting
    txids = [o.txid for o in client.iter_closed_orders()]
    assert len(txids) == len(set(txids))
    assert {f"O{i:03d}" for i in range(70)} <= set(txids)


def test_iter_closed_orders_drops_duplicates_when_offsets_shift(
    client: KrakenClient, fake: FakeAdapter
) -> None:
    book = [(f"O{i:03d}", 1_600_000_000.0 + i) for i in range(60)]

    def shifting(request: requests.PreparedRequest) -> Answer:
        if len(fake.requests) == 2:
            # A server that ignores `end`: a new order shifts everything by one.
            book.append(("ONEW", 1_700_000_000.0))
        rows = sorted(book, key=lambda o: -o[1])
        ofs = int(form(request).get("ofs", "0"))
        return ok({"closed": {t: _order_info(t, c) for t, c in rows[ofs : ofs + 50]}})

    fake.default = shifting
    txids = [o.txid for o in client.iter_closed_orders()]
    assert len(txids) == len(set(txids)) == 60


def test_iter_trades_follows_the_nanosecond_cursor(client: KrakenClient, fake: FakeAdapter) -> None:
    tape = [(1_559_347_200_000_000_000 + i * 333_333_333, i) for i in range(25)]

    def trades(request: requests.PreparedRequest) -> Answer:
        since = int(query(request)["since"])
        # Kraken's boundary: the trade at `since` itself comes again.
        rows = [t for t in tape if t[0] >= since][:10]
        last = rows[-1][0] if rows else since
        cells = [[f"{100 + i}.0", "1.0", ns / 1e9, "b", "l", "", i] for ns, i in rows]
        return ok({"XXBTZUSD": cells, "last": str(last)})

    fake.default = trades
    got = [t.trade_id for t in client.iter_trades("XBTUSD", since=tape[0][0])]
    assert got == list(range(25))
    sinces = [query(r)["since"] for r in fake.requests]
    # Each page asks from the exact previous `last`, never a rounded time.
    assert sinces[1] == str(tape[9][0])
    # The last page only repeats the boundary trade: `last` did not advance, so it stopped.
    assert sinces[-1] == str(tape[-1][0])
    assert len(sinces) == 4


def test_iter_trades_stops_on_empty_page(client: KrakenClient, fake: FakeAdapter) -> None:
    fake.push(ok({"XXBTZUSD": [], "last": "0"}))
    assert list(client.iter_trades("XBTUSD")) == []
    assert query(fake.last)["since"] == "0"


def test_iter_trades_ends_at_an_empty_last(client: KrakenClient, fake: FakeAdapter) -> None:
    # Kraken's official SDK: an empty `last` is the end of pagination (wire-quirks.md).
    spec = json.loads((FIXTURES / "spec_trades.json").read_text())["result"]
    fake.push(
        ok(spec),
        ok(
            {
                **spec,
                "XXBTZUSD": [
                    spec["XXBTZUSD"][-1],
                    ["30250.0", "0.1", 1688669700.5, "b", "l", "", 61044990],
                ],
                "last": "",
            }
        ),
    )
    got = [t.trade_id for t in client.iter_trades("XBTUSD")]
    assert got == [61044952, 61044953, 61044956, 61044990]
    assert len(fake.requests) == 2


def test_iter_withdraw_status_follows_next_cursor(client: KrakenClient, fake: FakeAdapter) -> None:
    entry = json.loads((FIXTURES / "seed_withdraw_initial.json").read_text())["result"][0]
    fake.push(
        ok({"withdrawals": [entry], "next_cursor": "CURSOR2"}),
        ok({"withdrawals": [dict(entry, refid="OTHER")], "next_cursor": None}),
    )
    refids = [item.refid for item in client.iter_withdraw_status(asset="XDG")]
    assert refids == ["ASBCMYC-F5ETQT-34NMWT", "OTHER"]
    assert [form(r)["cursor"] for r in fake.requests] == ["true", "CURSOR2"]


def test_iter_deposit_status_with_unpaged_answer(client: KrakenClient, fake: FakeAdapter) -> None:
    fake.push(fixture("seed_deposit_success.json"))
    assert [d.status for d in client.iter_deposit_status(asset="XDG")] == [FundingStatus.SUCCESS]


def test_query_orders_asks_at_most_fifty_at_a_time(client: KrakenClient, fake: FakeAdapter) -> None:
    wanted = [f"O{i:03d}" for i in range(120)]
    fake.default = lambda r: ok(
        {t: _order_info(t, 1_600_000_000.0) for t in form(r)["txid"].split(",")}
    )
    page = client.query_orders(wanted + wanted[:5])
    assert [len(form(r)["txid"].split(",")) for r in fake.requests] == [50, 50, 20]
    assert [o.txid for o in page] == wanted


# --- pair rules, before any byte of the order ----------------------------------------------------

#: XBTUSD with a tick (0.5) coarser than its decimals (0.1), so every rule can break alone.
RULES = {"XXBTZUSD": {**PAIR["XXBTZUSD"], "tick_size": "0.5"}}
XBTUSD = AssetPair.from_api("XXBTZUSD", RULES["XXBTZUSD"])
VALIDATED = fixture("seed_add_order_validate.json")

#: (what breaks, the fields that break it, the rule the error must name)
BROKEN: list[tuple[str, dict[str, Any], str]] = [
    ("price-decimals", {"price": "37500.25"}, "pair_decimals"),
    ("price-off-tick", {"price": "37500.3"}, "tick_size"),
    ("volume-decimals", {"volume": "0.123456789"}, "lot_decimals"),
    ("below-ordermin", {"volume": "0.00005"}, "ordermin"),
    ("below-costmin", {"price": "1000", "volume": "0.0001"}, "costmin"),
    ("close-price-off-tick", {"close_ordertype": "limit", "close_price": "40000.2"}, "tick_size"),
]


def _path(request: requests.PreparedRequest) -> str:
    return (request.url or "").split("?")[0].removeprefix(BASE_URL)


def _paths(fake: FakeAdapter) -> list[str]:
    return [_path(r) for r in fake.requests]


def _exchange(fake: FakeAdapter, pairs: Any = RULES) -> None:
    """Answer AssetPairs with ``pairs`` and every order call with a success."""

    def answer(request: requests.PreparedRequest) -> Answer:
        path = _path(request)
        if path == "/0/public/AssetPairs":
            return ok(pairs)
        if path == "/0/private/AmendOrder":
            return fixture("ref_amend_order.json")
        if path == "/0/private/AddOrderBatch":
            sent = json.loads(body_text(request))
            items = [{"txid": f"OB{i}-AAAAA-BBBBBB"} for i in range(len(sent["orders"]))]
            return ok({"orders": [{} for _ in items] if sent.get("validate") else items})
        return VALIDATED if form(request).get("validate") == "true" else ADDED

    fake.default = answer


@pytest.fixture
def fetching(fake: FakeAdapter, clock: Clock, tmp_path: Path) -> KrakenClient:
    _exchange(fake)
    return make_client(fake, clock, tmp_path, pair_rules="fetch")


@pytest.mark.parametrize("validate", [False, True], ids=["live", "validate"])
@pytest.mark.parametrize(("case", "fields", "rule"), BROKEN, ids=[b[0] for b in BROKEN])
def test_an_order_breaking_a_pair_rule_is_refused_before_add_order(
    fetching: KrakenClient,
    fake: FakeAdapter,
    case: str,
    fields: dict[str, Any],
    rule: str,
    validate: bool,
) -> None:
    request = _order(validate=validate, **fields)
    with pytest.raises(ValidationError) as refused:
        fetching.add_order(request)
    assert refused.value.rule == rule
    assert rule in str(refused.value)
    # The rules were asked once; AddOrder was never sent.
    assert _paths(fake) == ["/0/public/AssetPairs"]
    assert query(fake.last) == {"pair": "XBTUSD"}
    # The same verdict as the pure check, on the same rules.
    with pytest.raises(ValidationError) as pure:
        check_against_pair(request, XBTUSD)
    assert pure.value.rule == rule


@pytest.mark.parametrize(("case", "fields", "rule"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_batch_with_one_broken_order_is_refused_whole(
    fetching: KrakenClient, fake: FakeAdapter, case: str, fields: dict[str, Any], rule: str
) -> None:
    orders = [_order(userref=1), _order(**{"side": "sell", "price": "40000", **fields})]
    with pytest.raises(ValidationError) as refused:
        fetching.add_order_batch(orders, validate=True)
    assert refused.value.rule == rule
    assert str(refused.value).startswith("orders[1]: ")
    assert _paths(fake) == ["/0/public/AssetPairs"]


def test_a_good_order_is_sent_unchanged_after_one_lookup(
    fetching: KrakenClient, fake: FakeAdapter
) -> None:
    request = _order(userref=5)
    assert fetching.add_order(request).txids == ("OQJSXE-F5FOM-IXHVL4",)
    assert _paths(fake) == ["/0/public/AssetPairs", "/0/private/AddOrder"]
    sent = form(fake.last)
    del sent["nonce"]
    assert sent == {k: str(v) for k, v in request.to_params().items()}


def test_rules_are_fetched_once_per_pair_whatever_the_spelling(
    fetching: KrakenClient, fake: FakeAdapter
) -> None:
    for name in ("XBTUSD", "xbtusd", "XBT/USD", "XXBTZUSD", " xbt/usd "):
        fetching.add_order(_order(pair=name.strip(), validate=True))
    fetching.add_order_batch([_order(), _order(side="sell", price="40000")], validate=True)
    assert _paths(fake).count("/0/public/AssetPairs") == 1
    # A pair Kraken resolves under a name none of the entry's own (e.g. an alias) is asked once.
    for _ in range(3):
        fetching.add_order(_order(pair="BTCUSD", validate=True))
    assert _paths(fake).count("/0/public/AssetPairs") == 2
    assert fetching.known_pair("btcusd") == XBTUSD


def test_every_asset_pairs_answer_is_remembered(
    fake: FakeAdapter, clock: Clock, tmp_path: Path
) -> None:
    _exchange(fake)
    client = make_client(fake, clock, tmp_path, pair_rules="fetch")
    assert client.known_pair("XBTUSD") is None
    client.asset_pairs()
    assert client.known_pair("xbt/usd") == client.known_pair("XXBTZUSD") == XBTUSD
    with pytest.raises(ValidationError):
        client.add_order(_order(price="37500.3"))
    client.add_order(_order())
    assert _paths(fake) == ["/0/public/AssetPairs", "/0/private/AddOrder"]


def test_concurrent_orders_on_a_new_pair_share_one_lookup(
    fake: FakeAdapter, clock: Clock, tmp_path: Path
) -> None:
    _exchange(fake)
    answer = fake.default
    assert callable(answer)
    placing = 8
    arrived: list[int] = []
    all_in = threading.Event()

    def slow(request: requests.PreparedRequest) -> Any:
        if _path(request) == "/0/public/AssetPairs":
            # Answer only once every thread is inside add_order (and a moment more, for them
            # to reach the lookup): a client without one lookup per pair would ask again.
            all_in.wait(1.0)
            threading.Event().wait(0.05)
        return answer(request)

    fake.default = slow
    client = make_client(fake, clock, tmp_path, pair_rules="fetch")
    errors: list[BaseException] = []
    results: list[AddOrderResult] = []

    def place(price: str) -> None:
        arrived.append(1)
        if len(arrived) == placing:
            all_in.set()
        try:
            results.append(client.add_order(_order(price=price)))
        except BaseException as exc:
            errors.append(exc)

    prices = ["37500", "37500.3"] * (placing // 2)
    threads = [threading.Thread(target=place, args=(p,)) for p in prices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _paths(fake).count("/0/public/AssetPairs") == 1
    assert len(results) == placing // 2
    assert all(isinstance(e, ValidationError) and e.rule == "tick_size" for e in errors)
    assert len(errors) == placing // 2
    assert _paths(fake).count("/0/private/AddOrder") == placing // 2


def test_an_unknown_pair_surfaces_krakens_error_before_add_order(
    fake: FakeAdapter, clock: Clock, tmp_path: Path
) -> None:
    client = make_client(fake, clock, tmp_path, pair_rules="fetch")
    fake.default = fail("EQuery:Unknown asset pair")
    with pytest.raises(UnknownAssetPair) as unknown:
        client.add_order(_order(pair="NOPEUSD"))
    assert unknown.value.outcome_known
    with pytest.raises(UnknownAssetPair):
        client.add_order_batch([_order(pair="NOPEUSD"), _order(pair="NOPEUSD", side="sell")])
    # Asked each time (nothing to remember), never retried, and no order call at all.
    assert _paths(fake) == ["/0/public/AssetPairs"] * 2


def test_a_failed_lookup_sends_no_order_and_says_a_retry_is_safe(
    fake: FakeAdapter, clock: Clock, tmp_path: Path
) -> None:
    client = make_client(fake, clock, tmp_path, pair_rules="fetch")
    fake.default = BAD_GATEWAY
    with pytest.raises(PairRulesUnavailable) as unavailable:
        client.add_order(_order())
    # AssetPairs was retried as a read; the error is about the order, which was never sent.
    assert _paths(fake) == ["/0/public/AssetPairs"] * client.retry.max_attempts
    assert isinstance(unavailable.value.__cause__, HTTPStatusError)
    assert unavailable.value.outcome_known
    assert unavailable.value.retry_safe
    _exchange(fake)
    client.add_order(_order())
    assert _paths(fake)[-2:] == ["/0/public/AssetPairs", "/0/private/AddOrder"]


def test_known_mode_checks_only_learned_pairs(
    fake: FakeAdapter, clock: Clock, tmp_path: Path
) -> None:
    _exchange(fake)
    client = make_client(fake, clock, tmp_path, pair_rules="known")
    client.add_order(_order(price="37500.3"))  # not learned: sent as it is
    assert _paths(fake) == ["/0/private/AddOrder"]
    client.asset_pairs("XBTUSD")
    with pytest.raises(ValidationError) as refused:
        client.add_order(_order(price="37500.3"))
    assert refused.value.rule == "tick_size"
    assert _paths(fake) == ["/0/private/AddOrder", "/0/public/AssetPairs"]


def test_off_mode_never_checks_unless_given_the_rules(
    fake: FakeAdapter, clock: Clock, tmp_path: Path
) -> None:
    _exchange(fake)
    client = make_client(fake, clock, tmp_path, pair_rules="off")
    client.asset_pairs("XBTUSD")
    client.add_order(_order(price="37500.3"))
    assert _paths(fake) == ["/0/public/AssetPairs", "/0/private/AddOrder"]
    with pytest.raises(ValidationError) as refused:
        client.add_order(_order(price="37500.3"), pair=XBTUSD)
    assert refused.value.rule == "tick_size"
    with pytest.raises(ValidationError):
        client.add_order_batch([_order(), _order(volume="0.00005")], pair=XBTUSD)
    assert len(fake.requests) == 2


def test_explicit_rules_need_no_lookup_and_must_be_the_orders_pair(
    fetching: KrakenClient, fake: FakeAdapter
) -> None:
    fetching.add_order(_order(), pair=XBTUSD)
    # With keyword arguments the order is for the rules' pair.
    fetching.add_order(pair=XBTUSD, side="buy", ordertype="limit", price="37500", volume="1")
    assert _paths(fake) == ["/0/private/AddOrder"] * 2
    assert form(fake.last)["pair"] == "XBTUSD"
    with pytest.raises(ValidationError) as mismatch:
        fetching.add_order(_order(pair="ETHUSD"), pair=XBTUSD)
    assert mismatch.value.rule == "pair-mismatch"
    with pytest.raises(ValidationError) as wrong_type:
        fetching.add_order_batch([_order(), _order()], pair=PAIR)  # type: ignore[arg-type]
    assert wrong_type.value.rule == "type"
    assert len(fake.requests) == 2


#: (amend arguments, the rule it breaks, or None when it must be sent)
AMENDS: list[tuple[dict[str, Any], str | None]] = [
    ({"limit_price": "37500.25"}, "pair_decimals"),
    ({"limit_price": "37500.3"}, "tick_size"),
    ({"trigger_price": "36000.1"}, "tick_size"),
    ({"order_qty": "0.123456789"}, "lot_decimals"),
    ({"display_qty": "0.000000001"}, "lot_decimals"),
    ({"limit_price": "37501.5", "order_qty": "0.5"}, None),
    ({"limit_price": "+0.3"}, None),  # relative: Kraken resolves it
    ({"order_qty": "0.00001"}, None),  # below ordermin: the way to cancel the unfilled rest
]


@pytest.mark.parametrize(("changes", "rule"), AMENDS)
def test_an_amend_of_an_order_placed_here_is_checked_against_its_pair(
    fetching: KrakenClient, fake: FakeAdapter, changes: dict[str, Any], rule: str | None
) -> None:
    txid = fetching.add_order(_order()).txids[0]
    before = len(fake.requests)
    if rule is None:
        assert fetching.amend_order(txid=txid, **changes).amend_id
        assert _paths(fake)[before:] == ["/0/private/AmendOrder"]
        return
    with pytest.raises(ValidationError) as refused:
        fetching.amend_order(txid=txid, **changes)
    assert refused.value.rule == rule
    assert refused.value.field in changes
    assert len(fake.requests) == before


def test_an_amend_names_its_pair_to_be_checked(fetching: KrakenClient, fake: FakeAdapter) -> None:
    # Not placed through this client: unchecked, unless the pair is named.
    fetching.amend_order(txid="OTHER-AAAAA-BBBBBB", limit_price="37500.3")
    assert _paths(fake) == ["/0/private/AmendOrder"]
    with pytest.raises(ValidationError) as by_name:
        fetching.amend_order(txid="OTHER-AAAAA-BBBBBB", limit_price="37500.3", pair="XBTUSD")
    with pytest.raises(ValidationError) as by_rules:
        fetching.amend_order(cl_ord_id="other", limit_price="37500.3", pair=XBTUSD)
    assert by_name.value.rule == by_rules.value.rule == "tick_size"
    assert _paths(fake) == ["/0/private/AmendOrder", "/0/public/AssetPairs"]
    # An AssetPair only supplies the rules; a name is also sent (Kraken needs it for xStocks).
    fetching.amend_order(txid="OTHER-AAAAA-BBBBBB", limit_price="37500.5", pair=XBTUSD)
    assert "pair" not in form(fake.last)
    fetching.amend_order(txid="OTHER-AAAAA-BBBBBB", limit_price="37500.5", pair="XBTUSD")
    assert form(fake.last)["pair"] == "XBTUSD"


def test_pair_rules_mode_is_checked(fake: FakeAdapter, clock: Clock, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as refused:
        make_client(fake, clock, tmp_path, pair_rules="sometimes")
    assert refused.value.field == "pair_rules"


def _verdict(request: OrderRequest, pair: AssetPair) -> tuple[str | None, str | None] | None:
    try:
        check_against_pair(request, pair)
    except ValidationError as exc:
        return exc.rule, exc.field
    return None


@settings(max_examples=60, deadline=None)
@given(pair=asset_pairs(), request=order_requests())
def test_the_client_refuses_exactly_what_check_against_pair_refuses(
    tmp_path_factory: pytest.TempPathFactory, pair: AssetPair, request: OrderRequest
) -> None:
    request = attrs.evolve(request, pair=pair.altname)
    fake = FakeAdapter()
    _exchange(fake, {pair.pair_id: {}})  # never asked: the rules are given
    client = make_client(fake, Clock(), tmp_path_factory.mktemp("nonce"), pair_rules="fetch")
    expected = _verdict(request, pair)
    if expected is None:
        client.add_order(request, pair=pair)
        assert _paths(fake) == ["/0/private/AddOrder"]
        return
    with pytest.raises(ValidationError) as refused:
        client.add_order(request, pair=pair)
    assert (refused.value.rule, refused.value.field) == expected
    assert fake.requests == []


# --- secrets ------------------------------------------------------------------------------------


def test_secret_never_in_repr_logs_errors_or_transcript(
    fake: FakeAdapter, clock: Clock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import io

    stream = io.StringIO()
    transport = Transport(transcript=Transcript(stream, redact=(SECRET, KEY)))
    client = make_client(fake, clock, tmp_path, transport=transport)
    fake.push(
        BAD_GATEWAY,
        BALANCE,
        fail("EAPI:Invalid signature"),
        requests.exceptions.ReadTimeout(),
        cloudflare(403, "Forbidden"),
    )
    messages: list[str] = []
    with caplog.at_level(logging.DEBUG):
        client.balance()
        for invoke in (client.balance, lambda: client.add_order(_order()), client.cancel_all):
            try:
                invoke()
            except OmsError as exc:
                messages.append(f"{exc!s} {exc!r}")
    assert len(messages) == 3
    texts = [
        repr(client),
        repr(client.credentials),
        repr(client.transport),
        repr(client.nonce_source),
        caplog.text,
        stream.getvalue(),
        *messages,
    ]
    for text in texts:
        assert SECRET not in text
    assert KEY not in stream.getvalue()
    assert KEY[:4] + "…" in repr(client)


@pytest.mark.parametrize("txid", ["123", " 42 ", "2147483647"])
def test_a_numeric_txid_is_refused_before_sending(
    client: KrakenClient, fake: FakeAdapter, txid: str
) -> None:
    # Kraken reads a digit-only txid as a userref and cancels the whole group carrying it.
    with pytest.raises(ValidationError) as info:
        client.cancel_order(txid=txid)
    assert info.value.rule == "txid-is-userref"
    with pytest.raises(ValidationError):
        client.cancel_order_batch(txids=["OABCDE-FGHIJ-KLMNOP", txid])
    assert fake.requests == []


@pytest.mark.parametrize(
    ("call", "method"),
    [
        (lambda c: c.ohlc("AAPLxUSD", asset_class="tokenized_asset"), "OHLC"),
        (lambda c: c.trades("AAPLxUSD", asset_class="tokenized_asset"), "Trades"),
        (lambda c: c.depth("AAPLxUSD", asset_class="tokenized_asset"), "Depth"),
        (lambda c: c.ticker("AAPLxUSD", asset_class="tokenized_asset"), "Ticker"),
    ],
)
def test_public_market_data_takes_asset_class(
    client: KrakenClient, fake: FakeAdapter, call: Callable[[KrakenClient], Any], method: str
) -> None:
    # Required by Kraken for non-crypto pairs (spec partials/parameters/query/asset_class.yaml).
    fake.push(fail("EQuery:Unknown asset pair"))
    with pytest.raises(OmsError):
        call(client)
    assert fake.last.url is not None
    assert f"/0/public/{method}?" in fake.last.url
    assert query(fake.last)["asset_class"] == "tokenized_asset"


def test_add_order_batch_sends_asset_class_beside_pair(
    client: KrakenClient, fake: FakeAdapter
) -> None:
    fake.push(ok({"orders": [{"txid": "OA-1"}, {"txid": "OA-2"}]}))
    orders = [_order(asset_class="tokenized_asset"), _order(asset_class="tokenized_asset")]
    client.add_order_batch(orders)
    body = json.loads(body_text(fake.last))
    assert body["asset_class"] == "tokenized_asset"
    assert body["pair"] == "XBTUSD"


def test_fok_market_and_cl_ord_id_with_close_are_refused_before_sending(
    client: KrakenClient, fake: FakeAdapter
) -> None:
    with pytest.raises(ValidationError):
        client.add_order(
            pair="XBTUSD", side="buy", ordertype="market", volume="1", timeinforce="FOK"
        )
    with pytest.raises(ValidationError):
        client.add_order(_order(close_ordertype="limit", close_price="1", cl_ord_id="abc"))
    assert fake.requests == []

"""AddOrder parameters are refused with Kraken's error string for the first broken rule."""

from __future__ import annotations

from typing import Any

import pytest
import sandbox_engine_support as support

from oms.sandbox.market import DEFAULT_PAIRS
from oms.sandbox.protocol import format_rfc3339

T0 = support.T0
limit = support.limit
TICK_PAIR = support.TICK_PAIR
make = support.make_orders
place = support.place
info = support.info


BASE = support.BASE


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"pair": "NOPE"}, "EQuery:Unknown asset pair"),
        ({"type": "hold"}, "EGeneral:Invalid arguments:type"),
        ({"ordertype": "foo"}, "EGeneral:Invalid arguments:ordertype"),
        ({"ordertype": "trailing-stop"}, "EGeneral:Invalid arguments:ordertype"),
        ({"volume": "abc"}, "EGeneral:Invalid arguments:volume"),
        ({"volume": "0"}, "EGeneral:Invalid arguments:volume"),
        ({"volume": "1e-2"}, "EGeneral:Invalid arguments:volume"),
        ({"volume": "0.000000001"}, "EGeneral:Invalid arguments:volume"),
        ({"volume": "0.00001"}, "EOrder:Order minimum not met"),
        ({"price": "abc"}, "EOrder:Invalid price:Invalid price argument"),
        ({"price": "6.4e-7"}, "EOrder:Invalid price:Invalid price argument"),
        (
            {"price": "40000.05"},
            "EOrder:Invalid price:XXBTZUSD price can only be specified up to 1 decimals.",
        ),
        ({"price": "0"}, "EGeneral:Invalid arguments:price"),
        ({"price": ""}, "EGeneral:Invalid arguments:price"),
        ({"price": "10", "volume": "0.0001"}, "EOrder:Cost minimum not met"),
        ({"userref": "abc"}, "EGeneral:Invalid arguments:userref"),
        ({"userref": str(2**31)}, "EGeneral:Invalid arguments:userref"),
        ({"cl_ord_id": "x" * 19}, "EGeneral:Invalid arguments:cl_ord_id"),
        ({"cl_ord_id": "has space"}, "EGeneral:Invalid arguments:cl_ord_id"),
        (
            {"cl_ord_id": "abc", "userref": 5},
            "EGeneral:Invalid arguments:cl_ord_id and userref are exclusive",
        ),
        ({"oflags": "bogus"}, "EGeneral:Invalid arguments:oflags"),
        ({"oflags": "fcib,fciq"}, "EGeneral:Invalid arguments:oflags"),
        ({"oflags": "viqc"}, "EGeneral:Invalid arguments:viqc"),
        ({"ordertype": "market", "oflags": "post"}, "EGeneral:Invalid arguments:oflags"),
        ({"timeinforce": "XYZ"}, "EGeneral:Invalid arguments:timeinforce"),
        ({"timeinforce": "GTD"}, "EGeneral:Invalid arguments:expiretm"),
        ({"timeinforce": "IOC", "oflags": "post"}, "EGeneral:Invalid arguments:timeinforce"),
        ({"expiretm": "+3"}, "EGeneral:Invalid arguments:expiretm"),
        ({"expiretm": " 30"}, "EGeneral:Invalid arguments:expiretm"),
        ({"expiretm": str(int(T0) - 1)}, "EGeneral:Invalid arguments:expiretm"),
        ({"expiretm": "+99999999"}, "EGeneral:Invalid arguments:expiretm"),
        ({"starttm": "soon"}, "EGeneral:Invalid arguments:starttm"),
        ({"leverage": "2"}, "EOrder:Cannot open position"),
        # reduce_only needs leverage (Kraken's official SDK); with it, there is no position.
        ({"reduce_only": "true"}, "EGeneral:Invalid arguments:reduce_only"),
        ({"reduce_only": "true", "leverage": "2"}, "EOrder:Reduce only:No position exists"),
        # FOK only on limit-priced types (the official SDK, placing-orders.md).
        ({"ordertype": "market", "timeinforce": "FOK"}, "EGeneral:Invalid arguments:timeinforce"),
        (
            {"ordertype": "stop-loss", "price": "39000", "timeinforce": "FOK"},
            "EGeneral:Invalid arguments:timeinforce",
        ),
        # post-only is for limit orders only, not iceberg or the stop/take-profit limits.
        (
            {"ordertype": "iceberg", "displayvol": "0.01", "oflags": "post"},
            "EGeneral:Invalid arguments:oflags",
        ),
        (
            {"ordertype": "stop-loss-limit", "price": "39000", "price2": "38900", "oflags": "post"},
            "EGeneral:Invalid arguments:oflags",
        ),
        (
            {
                "ordertype": "take-profit-limit",
                "price": "51000",
                "price2": "51100",
                "oflags": "post",
            },
            "EGeneral:Invalid arguments:oflags",
        ),
        # cl_ord_id with a conditional close: rejected (the official SDK).
        (
            {"cl_ord_id": "with-close", "close[ordertype]": "limit", "close[price]": "45000"},
            "EGeneral:Invalid arguments:cl_ord_id",
        ),
        ({"cl_ord_id": "abc\n"}, "EGeneral:Invalid arguments:cl_ord_id"),
        # ASCII digits only, bounded.
        ({"userref": "\u0661\u0662"}, "EGeneral:Invalid arguments:userref"),
        ({"volume": "\uff11"}, "EGeneral:Invalid arguments:volume"),
        ({"volume": "1" * 400}, "EGeneral:Invalid arguments:volume"),
        ({"price": "4" * 100}, "EOrder:Invalid price:Invalid price argument"),
        # deadline: now + 2 s at the earliest (spec: "min now() + 2 seconds").
        ({"deadline": format_rfc3339(T0 + 1)}, "EGeneral:Invalid arguments:deadline"),
        ({"trigger": "mark"}, "EGeneral:Invalid arguments:trigger"),
        ({"stptype": "none"}, "EGeneral:Invalid arguments:stptype"),
        ({"deadline": "not a time"}, "EGeneral:Invalid arguments:deadline"),
        ({"deadline": format_rfc3339(T0 - 1)}, "EGeneral:Invalid arguments:deadline"),
        ({"deadline": format_rfc3339(T0 + 61)}, "EGeneral:Invalid arguments:deadline"),
        ({"volume": "100"}, "EOrder:Insufficient funds"),
        ({"type": "sell", "volume": "10"}, "EOrder:Insufficient funds"),
        ({"ordertype": "stop-loss-limit", "price": "51000"}, "EGeneral:Invalid arguments:price2"),
        ({"ordertype": "iceberg"}, "EGeneral:Invalid arguments:displayvol"),
    ],
)
def test_add_order_rejections(change: dict[str, Any], error: str) -> None:
    exchange, caller, _, _ = make()
    before = exchange.balances(caller.account.key)
    assert caller.err("AddOrder", {**BASE, **change}) == error
    assert caller.ok("OpenOrders")["open"] == {}
    assert exchange.balances(caller.account.key) == before


def test_tick_size_is_checked_apart_from_decimals() -> None:
    market = support.StubMarket(pairs=(*DEFAULT_PAIRS, TICK_PAIR))
    _, caller, _, _ = make(market=market)
    assert caller.err("AddOrder", limit("TICKUSD", "buy", "9.03", "1")) == (
        "EOrder:Tick size check failed"
    )
    assert caller.ok("AddOrder", limit("TICKUSD", "buy", "9.05", "1"))["txid"]


def test_relative_prices_are_taken_from_the_last_trade() -> None:
    _, caller, _, _ = make()
    txid = place(caller, limit("XBTUSD", "buy", "-1000", "0.01"))
    assert info(caller, txid)["descr"]["price"] == "49000.0"
    txid = place(caller, limit("XBTUSD", "buy", "-1.5%", "0.01"))
    assert info(caller, txid)["descr"]["price"] == "49250.0"


@pytest.mark.parametrize("flag", ["true", "1", "anything", "yes"])
def test_validate_answers_descr_without_txid_and_changes_nothing(flag: str) -> None:
    exchange, caller, _, market = make()
    before = exchange.snapshot()
    result = caller.ok("AddOrder", {**BASE, "validate": flag})
    assert result == {"descr": {"order": "buy 0.01000000 XBTUSD @ limit 40000.0"}}
    after = exchange.snapshot()
    for snap in (before, after):
        for acct in snap["accounts"]:
            acct.pop("last_nonce")
    assert after["accounts"] == before["accounts"]
    assert market.fills == []


def test_validate_false_places_the_order() -> None:
    _, caller, _, _ = make()
    assert caller.ok("AddOrder", {**BASE, "validate": "false"})["txid"]

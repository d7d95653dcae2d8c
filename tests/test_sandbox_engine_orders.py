"""Orders in the sandbox behave like Kraken's: validation strings, fills, fees, holds, lifecycle."""

from __future__ import annotations

import re
from decimal import ROUND_UP, Decimal
from typing import Any

import pytest
import sandbox_engine_support as support

from oms.sandbox.config import SandboxConfig
from oms.sandbox.market import DEFAULT_PAIRS, PairSpec
from oms.sandbox.protocol import format_rfc3339

T0 = support.T0
limit = support.limit
TXID = re.compile(r"^O[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{6}$")
XBT = DEFAULT_PAIRS[0]
TICK_PAIR = PairSpec(
    pair_id="XTICKZUSD",
    altname="TICKUSD",
    wsname="TICK/USD",
    base="XETH",
    quote="ZUSD",
    pair_decimals=2,
    lot_decimals=8,
    cost_decimals=5,
    ordermin="0.01",
    costmin="0.5",
    tick_size="0.05",
    start_price="10.00",
)


def make(**kw: Any) -> tuple[Any, support.Caller, Any, support.StubMarket]:
    kw.setdefault("prices", {"XXBTZUSD": "50000.0"})
    kw.setdefault("config", SandboxConfig(trading_rate_limit=False, rest_rate_limit=False))
    return support.make(**kw)


def place(caller: support.Caller, params: dict[str, Any], **kw: Any) -> str:
    txid: str = caller.ok("AddOrder", params, **kw)["txid"][0]
    return txid


def info(caller: support.Caller, txid: str) -> dict[str, Any]:
    result: dict[str, Any] = caller.ok("QueryOrders", {"txid": txid, "trades": True})[txid]
    return result


def fee(cost: Decimal, percent: Decimal, places: int) -> Decimal:
    return (cost * percent / 100).quantize(Decimal(1).scaleb(-places), rounding=ROUND_UP)


# -- the seed's userref walk-through -------------------------------------------------------


def test_seed_example_add_view_and_cancel_by_userref() -> None:
    exchange, caller, _, _ = make()
    result = caller.ok(
        "AddOrder",
        {
            "pair": "xdgusd",
            "type": "buy",
            "ordertype": "limit",
            "price": "0.1",
            "volume": "50",
            "userref": 27649653,
        },
    )
    assert result["descr"] == {"order": "buy 50.00000000 XDGUSD @ limit 0.1000000"}
    assert len(result["txid"]) == 1
    txid = result["txid"][0]
    assert TXID.match(txid)
    opened = caller.ok("OpenOrders", {"userref": 27649653})["open"]
    assert list(opened) == [txid]
    order = opened[txid]
    assert list(order) == [
        "refid",
        "userref",
        "status",
        "opentm",
        "starttm",
        "expiretm",
        "descr",
        "vol",
        "vol_exec",
        "cost",
        "fee",
        "price",
        "stopprice",
        "limitprice",
        "misc",
        "oflags",
    ]
    assert order["descr"] == {
        "pair": "XDGUSD",
        "type": "buy",
        "ordertype": "limit",
        "price": "0.1000000",
        "price2": "0",
        "leverage": "none",
        "order": "buy 50.00000000 XDGUSD @ limit 0.1000000",
        "close": "",
    }
    assert (order["refid"], order["userref"], order["status"]) == (None, 27649653, "open")
    assert (order["starttm"], order["expiretm"], order["misc"], order["oflags"]) == (
        0,
        0,
        "",
        "fciq",
    )
    assert (order["vol"], order["vol_exec"]) == ("50.00000000", "0.00000000")
    assert order["cost"] == order["fee"] == order["price"] == "0.000000000"
    assert caller.ok("CancelOrder", {"txid": "27649653"}) == {"count": 1, "pending": False}
    closed = caller.ok("ClosedOrders", {"userref": 27649653})
    assert closed["count"] == 1
    gone = closed["closed"][txid]
    assert (gone["status"], gone["reason"]) == ("canceled", "User requested")
    assert list(gone)[:6] == ["refid", "userref", "status", "reason", "opentm", "closetm"]
    assert exchange.holds(caller.account.key) == {}


def test_txids_are_deterministic_from_the_seed() -> None:
    first = [place(make()[1], limit("XBTUSD", "buy", "100", "0.01")) for _ in range(2)]
    assert first[0] == first[1]
    other = make(config=SandboxConfig(seed=9))[1]
    assert place(other, limit("XBTUSD", "buy", "100", "0.01")) != first[0]


# -- validation --------------------------------------------------------------------------

BASE = limit("XBTUSD", "buy", "40000", "0.01")


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


# -- fills, fees and holds ---------------------------------------------------------------


def test_market_buy_fills_at_once_at_the_last_price_with_the_taker_fee() -> None:
    exchange, caller, _, market = make()
    txid = place(caller, {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "0.5"})
    order = info(caller, txid)
    cost = Decimal("0.5") * Decimal("50000.0")
    charged = fee(cost, XBT.fees_taker, XBT.cost_decimals)
    assert order["status"] == "closed"
    assert Decimal(order["cost"]) == cost
    assert Decimal(order["fee"]) == charged
    assert Decimal(order["price"]) == Decimal("50000.0")
    assert order["descr"]["order"] == "buy 0.50000000 XBTUSD @ market"
    assert len(order["trades"]) == 1
    balances = exchange.balances(caller.account.key)
    assert balances["ZUSD"] == Decimal(100000) - cost - charged
    assert balances["XXBT"] == Decimal("10.5")
    assert exchange.holds(caller.account.key) == {}
    (fill,) = market.fills
    assert (fill.price, fill.volume, fill.side, fill.ordertype) == (
        Decimal("50000.0"),
        Decimal("0.5"),
        "buy",
        "market",
    )


def test_a_marketable_limit_fills_at_the_last_price_as_taker() -> None:
    _exchange, caller, _, _ = make()
    txid = place(caller, limit("XBTUSD", "buy", "55000", "0.1"))
    order = info(caller, txid)
    assert order["status"] == "closed"
    assert Decimal(order["price"]) == Decimal("50000.0")
    assert Decimal(order["fee"]) == fee(Decimal(5000), XBT.fees_taker, 5)


def test_a_sell_defaults_to_fee_in_base() -> None:
    exchange, caller, _, _ = make()
    txid = place(caller, {"pair": "XBTUSD", "type": "sell", "ordertype": "market", "volume": "1"})
    order = info(caller, txid)
    assert order["oflags"] == "fcib"
    balances = exchange.balances(caller.account.key)
    base_fee = fee(Decimal(1), XBT.fees_taker, XBT.lot_decimals)
    assert balances["XXBT"] == Decimal(10) - 1 - base_fee
    assert balances["ZUSD"] == Decimal(100000) + Decimal(50000)
    txid = place(
        caller,
        {"pair": "XBTUSD", "type": "sell", "ordertype": "market", "volume": "1", "oflags": "fciq"},
    )
    assert exchange.balances(caller.account.key)["ZUSD"] == (
        Decimal(150000) + 50000 - fee(Decimal(50000), XBT.fees_taker, 5)
    )


def test_a_resting_buy_reserves_quote_with_fee_and_fills_as_maker_when_crossed() -> None:
    exchange, caller, clock, market = make()
    txid = place(caller, limit("XBTUSD", "buy", "49000", "0.5", userref=7))
    cost = Decimal("0.5") * 49000
    held = cost + fee(cost, XBT.fees_taker, 5)
    assert exchange.holds(caller.account.key) == {"ZUSD": held}
    assert caller.ok("Balance")["ZUSD"] == "100000.0000"  # holds stay in the balance
    market.trade("XXBTZUSD", "49500.0", at=T0 + 1)  # above the limit: no fill
    market.trade("XXBTZUSD", "48900.0", "0.2", at=T0 + 2)  # through it: partial fill
    clock.advance(3)
    order = info(caller, txid)
    assert (order["status"], order["vol_exec"]) == ("open", "0.20000000")
    assert Decimal(order["price"]) == Decimal(49000)
    part = Decimal("0.2") * 49000
    assert Decimal(order["fee"]) == fee(part, XBT.fees_maker, 5)
    market.trade("XXBTZUSD", "49000.0", "5", at=T0 + 4)  # touching it completes the order
    clock.advance(2)
    order = info(caller, txid)
    assert order["status"] == "closed"
    assert order["closetm"] == T0 + 4
    assert order["reason"] is None
    assert len(order["trades"]) == 2
    assert Decimal(order["fee"]) == fee(cost, XBT.fees_maker, 5)
    balances = exchange.balances(caller.account.key)
    assert balances["ZUSD"] == Decimal(100000) - cost - Decimal(order["fee"])
    assert balances["XXBT"] == Decimal("10.5")
    assert exchange.holds(caller.account.key) == {}
    history = caller.ok("TradesHistory")
    assert history["count"] == 2
    assert {t["ordertxid"] for t in history["trades"].values()} == {txid}
    tid = order["trades"][0]
    assert caller.ok("QueryTrades", {"txid": tid})[tid]["maker"] is True


def test_orders_at_one_price_share_a_trade_in_arrival_order() -> None:
    _, caller, clock, market = make()
    first = place(caller, limit("XBTUSD", "buy", "49000", "0.3"))
    second = place(caller, limit("XBTUSD", "buy", "49000", "0.3"))
    better = place(caller, limit("XBTUSD", "buy", "49100", "0.3"))
    market.trade("XXBTZUSD", "48000.0", "0.5", at=T0 + 1)
    clock.advance(1)
    assert info(caller, better)["vol_exec"] == "0.30000000"
    assert info(caller, first)["vol_exec"] == "0.20000000"
    assert info(caller, second)["vol_exec"] == "0.00000000"


def test_partial_fills_can_be_switched_off() -> None:
    _, caller, clock, market = make(
        config=SandboxConfig(partial_fills=False, trading_rate_limit=False)
    )
    txid = place(caller, limit("XBTUSD", "sell", "51000", "2", oflags="fciq"))
    market.trade("XXBTZUSD", "51000.0", "0.001", at=T0 + 1)
    clock.advance(1)
    assert info(caller, txid)["status"] == "closed"


def test_post_only_refuses_to_take_and_rests_otherwise() -> None:
    _, caller, _, _ = make()
    assert caller.err("AddOrder", limit("XBTUSD", "buy", "50000", "0.01", oflags="post")) == (
        "EOrder:Post only order"
    )
    txid = place(caller, limit("XBTUSD", "buy", "49999.9", "0.01", oflags="post"))
    assert info(caller, txid)["oflags"] == "post,fciq"


@pytest.mark.parametrize(
    ("tif", "reason"), [("IOC", "Immediate or cancel"), ("FOK", "Fill or kill")]
)
def test_ioc_and_fok_cancel_what_cannot_execute_at_once(tif: str, reason: str) -> None:
    exchange, caller, _, _ = make()
    txid = place(caller, limit("XBTUSD", "buy", "40000", "0.01", timeinforce=tif))
    order = info(caller, txid)
    assert (order["status"], order["reason"]) == ("canceled", reason)
    assert exchange.holds(caller.account.key) == {}
    filled = place(caller, limit("XBTUSD", "buy", "60000", "0.01", timeinforce=tif))
    assert info(caller, filled)["status"] == "closed"


def test_gtd_orders_expire_before_later_trades() -> None:
    exchange, caller, clock, market = make()
    txid = place(caller, limit("XBTUSD", "buy", "49000", "0.1", timeinforce="GTD", expiretm="+60"))
    assert info(caller, txid)["expiretm"] == T0 + 60
    market.trade("XXBTZUSD", "48000.0", at=T0 + 90)
    clock.advance(100)
    order = info(caller, txid)
    assert (order["status"], order["closetm"], order["vol_exec"]) == (
        "expired",
        T0 + 60,
        "0.00000000",
    )
    assert exchange.holds(caller.account.key) == {}


def test_scheduled_orders_are_pending_until_starttm() -> None:
    _, caller, clock, market = make()
    txid = place(caller, limit("XBTUSD", "buy", "49000", "0.1", starttm="+30"))
    assert info(caller, txid)["status"] == "pending"
    market.trade("XXBTZUSD", "48000.0", at=T0 + 10)
    market.trade("XXBTZUSD", "48500.0", at=T0 + 40)
    clock.advance(20)
    order = info(caller, txid)
    assert (order["status"], order["vol_exec"]) == ("pending", "0.00000000")
    clock.advance(30)
    order = info(caller, txid)
    assert order["status"] == "closed"
    assert order["starttm"] == T0 + 30


def test_stop_loss_triggers_on_the_trade_price_and_takes() -> None:
    _exchange, caller, clock, market = make()
    txid = place(
        caller,
        {
            "pair": "XBTUSD",
            "type": "sell",
            "ordertype": "stop-loss",
            "price": "45000",
            "volume": "1",
            "oflags": "fciq",
        },
    )
    assert info(caller, txid)["descr"]["order"] == "sell 1.00000000 XBTUSD @ stop loss 45000.0"
    market.trade("XXBTZUSD", "46000.0", at=T0 + 1)
    market.trade("XXBTZUSD", "44900.0", at=T0 + 2)
    clock.advance(3)
    order = info(caller, txid)
    assert order["status"] == "closed"
    assert order["misc"] == "stopped"
    assert Decimal(order["price"]) == Decimal(44900)


def test_take_profit_limit_becomes_a_resting_limit_when_touched() -> None:
    _, caller, clock, market = make()
    txid = place(
        caller,
        {
            "pair": "XBTUSD",
            "type": "sell",
            "ordertype": "take-profit-limit",
            "price": "52000",
            "price2": "53000",
            "volume": "0.1",
        },
    )
    assert info(caller, txid)["descr"]["order"] == (
        "sell 0.10000000 XBTUSD @ take profit 52000.0 -> limit 53000.0"
    )
    market.trade("XXBTZUSD", "52100.0", at=T0 + 1)
    clock.advance(1)
    order = info(caller, txid)
    assert (order["status"], order["misc"], order["vol_exec"]) == ("open", "touched", "0.00000000")
    market.trade("XXBTZUSD", "53000.0", at=T0 + 2)
    clock.advance(1)
    assert info(caller, txid)["status"] == "closed"


def test_a_stop_buy_that_cannot_be_paid_is_cancelled_out_of_funds() -> None:
    exchange, caller, clock, market = make(balances={"ZUSD": "5100"})
    txid = place(
        caller,
        {
            "pair": "XBTUSD",
            "type": "buy",
            "ordertype": "stop-loss",
            "price": "50500",
            "volume": "0.1",
        },
    )
    market.trade("XXBTZUSD", "60000.0", at=T0 + 1)
    clock.advance(1)
    order = info(caller, txid)
    assert (order["status"], order["reason"]) == ("canceled", "Out of funds")
    assert exchange.balances(caller.account.key)["ZUSD"] == Decimal(5100)


def test_a_conditional_close_is_placed_when_the_order_fills() -> None:
    _, caller, clock, market = make()
    result = caller.ok(
        "AddOrder",
        {
            **limit("XBTUSD", "buy", "49000", "0.1", userref=3),
            "close[ordertype]": "limit",
            "close[price]": "55000",
        },
    )
    assert result["descr"]["close"] == "close position @ limit 55000.0"
    market.trade("XXBTZUSD", "48000.0", at=T0 + 1)
    clock.advance(1)
    (child,) = caller.ok("OpenOrders")["open"].values()
    assert child["refid"] == result["txid"][0]
    assert child["descr"]["order"] == "sell 0.10000000 XBTUSD @ limit 55000.0"
    assert child["userref"] == 3


# -- userref and cl_ord_id ---------------------------------------------------------------


def test_cancel_by_userref_cancels_the_whole_group() -> None:
    _exchange, caller, _, _ = make()
    group = [
        place(caller, limit("XBTUSD", "buy", str(40000 + i), "0.01", userref=77)) for i in range(3)
    ]
    other = place(caller, limit("XBTUSD", "buy", "40000", "0.01", userref=78))
    assert caller.ok("CancelOrder", {"txid": "77"}) == {"count": 3, "pending": False}
    assert caller.ok("OpenOrders", {"userref": 77})["open"] == {}
    assert list(caller.ok("OpenOrders")["open"]) == [other]
    closed = caller.ok("ClosedOrders", {"userref": 77})
    assert set(closed["closed"]) == set(group)
    assert caller.err("CancelOrder", {"txid": "77"}) == "EOrder:Unknown order"
    queried = caller.ok("QueryOrders", {"txid": ",".join([*group, other]), "userref": 78})
    assert list(queried) == [other]


def test_json_cancel_takes_an_integer_userref_and_a_string_txid() -> None:
    _, caller, _, _ = make()
    place(caller, limit("XBTUSD", "buy", "40000", "0.01", userref=5))
    txid = place(caller, limit("XBTUSD", "buy", "40000", "0.01"))
    assert caller.ok("CancelOrder", {"txid": 5}, json_body=True)["count"] == 1
    assert caller.err("CancelOrder", {"txid": "5"}, json_body=True) == "EOrder:Unknown order"
    assert caller.ok("CancelOrder", {"txid": txid}, json_body=True)["count"] == 1
    # A closed order's txid: Kraken's official SDK documents "Invalid order" (error-handling.md).
    assert caller.err("CancelOrder", {"txid": txid}) == "EOrder:Invalid order"
    assert caller.err("CancelOrder", {"txid": "OAAAAA-AAAAA-AAAAAA"}) == "EOrder:Unknown order"


def test_negative_userrefs_are_tags_too() -> None:
    _, caller, _, _ = make()
    place(caller, limit("XBTUSD", "buy", "40000", "0.01", userref=-9))
    assert caller.ok("CancelOrder", {"txid": "-9"})["count"] == 1


def test_cl_ord_id_is_unique_among_open_orders_and_cancels_one_order() -> None:
    _, caller, _, _ = make()
    uuid = "6d1b345e-2821-40e2-ad83-4ecb18a06876"
    txid = place(caller, limit("XBTUSD", "buy", "40000", "0.01", cl_ord_id=uuid))
    assert caller.err("AddOrder", limit("XBTUSD", "buy", "40000", "0.01", cl_ord_id=uuid)) == (
        "EOrder:Duplicate cl_ord_id"
    )
    order = caller.ok("OpenOrders", {"cl_ord_id": uuid})["open"][txid]
    assert (order["cl_ord_id"], order["userref"]) == (uuid, None)
    assert caller.ok("CancelOrder", {"cl_ord_id": uuid})["count"] == 1
    again = place(caller, limit("XBTUSD", "buy", "40000", "0.01", cl_ord_id=uuid))
    assert again != txid
    assert caller.ok("ClosedOrders", {"cl_ord_id": uuid})["count"] == 1


@pytest.mark.parametrize("params", [{}, {"txid": "OAAAAA-AAAAA-AAAAAA", "cl_ord_id": "x"}])
def test_cancel_needs_exactly_one_identifier(params: dict[str, str]) -> None:
    _, caller, _, _ = make()
    assert caller.err("CancelOrder", params) == "EGeneral:Invalid arguments:txid"


def test_cancel_order_batch_mixes_txids_userrefs_and_cl_ord_ids() -> None:
    _, caller, _, _ = make()
    a = place(caller, limit("XBTUSD", "buy", "40000", "0.01"))
    place(caller, limit("XBTUSD", "buy", "40000", "0.01", userref=11))
    place(caller, limit("XBTUSD", "buy", "40000", "0.01", userref=11))
    place(caller, limit("XBTUSD", "buy", "40000", "0.01", cl_ord_id="c-1"))
    keep = place(caller, limit("XBTUSD", "buy", "40000", "0.01"))
    result = caller.ok(
        "CancelOrderBatch",
        {"orders": [a, {"txid": 11}, "OZZZZZ-ZZZZZ-ZZZZZZ"], "cl_ord_ids": ["c-1"]},
        json_body=True,
    )
    assert result == {"count": 4}
    assert list(caller.ok("OpenOrders")["open"]) == [keep]


@pytest.mark.parametrize(
    ("params", "json_body"),
    [
        ({"orders": "OAAAAA-AAAAA-AAAAAA"}, False),
        ({"orders": [f"O{i:05d}-AAAAA-AAAAAA" for i in range(51)]}, True),
        ({"orders": []}, True),
        ({}, True),
    ],
)
def test_cancel_order_batch_rejections(params: dict[str, Any], json_body: bool) -> None:
    _, caller, _, _ = make()
    assert caller.err("CancelOrderBatch", params, json_body=json_body) == (
        "EGeneral:Invalid arguments:orders"
    )


def test_cancel_all() -> None:
    exchange, caller, _, _ = make()
    for _ in range(3):
        place(caller, limit("XBTUSD", "buy", "40000", "0.01"))
    assert caller.ok("CancelAll") == {"count": 3, "pending": False}
    assert caller.ok("CancelAll") == {"count": 0, "pending": False}
    assert exchange.holds(caller.account.key) == {}


def test_dead_mans_switch_fires_as_the_clock_advances() -> None:
    _, caller, clock, _ = make()
    txid = place(caller, limit("XBTUSD", "buy", "40000", "0.01"))
    assert caller.ok("CancelAllOrdersAfter", {"timeout": 60}) == {
        "currentTime": "2023-11-14T22:13:20Z",
        "triggerTime": "2023-11-14T22:14:20Z",
    }
    clock.advance(50)
    caller.ok("CancelAllOrdersAfter", {"timeout": 60})  # re-armed: now fires at +110
    clock.advance(50)
    assert info(caller, txid)["status"] == "open"
    clock.advance(11)
    order = info(caller, txid)
    assert (order["status"], order["reason"], order["closetm"]) == (
        "canceled",
        "Cancel all orders after timeout",
        T0 + 110,
    )
    # The switch is disarmed after it fired.
    later = place(caller, limit("XBTUSD", "buy", "40000", "0.01"))
    clock.advance(500)
    assert info(caller, later)["status"] == "open"


def test_dead_mans_switch_disable_and_range() -> None:
    _, caller, clock, _ = make()
    txid = place(caller, limit("XBTUSD", "buy", "40000", "0.01"))
    caller.ok("CancelAllOrdersAfter", {"timeout": 10})
    assert caller.ok("CancelAllOrdersAfter", {"timeout": 0})["triggerTime"] == "0"
    clock.advance(60)
    assert info(caller, txid)["status"] == "open"
    for bad in (86400, -1, "x"):
        assert caller.err("CancelAllOrdersAfter", {"timeout": bad}) == (
            "EGeneral:Invalid arguments:timeout"
        )


# -- amend -------------------------------------------------------------------------------


def test_amend_keeps_txid_and_userref_and_moves_the_hold() -> None:
    exchange, caller, clock, market = make()
    txid = place(caller, limit("XBTUSD", "buy", "49000", "0.1", userref=4))
    result = caller.ok("AmendOrder", {"txid": txid, "limit_price": "48000", "order_qty": "0.2"})
    assert re.match(r"^T[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{6}$", result["amend_id"])
    order = caller.ok("OpenOrders", {"userref": 4})["open"][txid]
    assert (order["vol"], order["descr"]["price"], order["misc"]) == (
        "0.20000000",
        "48000.0",
        "amended",
    )
    cost = Decimal("0.2") * 48000
    assert exchange.holds(caller.account.key) == {"ZUSD": cost + fee(cost, XBT.fees_taker, 5)}
    market.trade("XXBTZUSD", "48500.0", at=T0 + 1)
    clock.advance(1)
    assert info(caller, txid)["vol_exec"] == "0.00000000"


def test_amend_rejections_and_post_only() -> None:
    _, caller, _, _ = make(balances={"ZUSD": "10000"})
    txid = place(caller, limit("XBTUSD", "buy", "49000", "0.1", oflags="post", cl_ord_id="a1"))
    assert caller.err("AmendOrder", {"txid": txid, "order_qty": "5"}) == "EOrder:Insufficient funds"
    assert caller.err("AmendOrder", {"cl_ord_id": "a1", "limit_price": "50000"}) == (
        "EOrder:Post only order"
    )
    assert caller.err("AmendOrder", {"txid": "OAAAAA-AAAAA-AAAAAA", "order_qty": "1"}) == (
        "EOrder:Unknown order"
    )
    assert caller.err("AmendOrder", {"txid": txid}) == "EGeneral:Invalid arguments:order_qty"
    assert caller.err("AmendOrder", {"order_qty": "1"}) == "EGeneral:Invalid arguments:txid"
    assert caller.ok("AmendOrder", {"cl_ord_id": "a1", "limit_price": "49500"})["amend_id"]


def test_amend_to_a_marketable_price_executes() -> None:
    _, caller, _, _ = make()
    txid = place(caller, limit("XBTUSD", "buy", "49000", "0.1"))
    caller.ok("AmendOrder", {"txid": txid, "limit_price": "51000"})
    order = info(caller, txid)
    assert order["status"] == "closed"
    assert Decimal(order["price"]) == Decimal(50000)


# -- batches and deadlines ---------------------------------------------------------------


def test_add_order_batch_places_each_order_and_reports_errors_per_item() -> None:
    _, caller, _, _ = make(balances={"ZUSD": "3000"})
    orders = [
        {"ordertype": "limit", "type": "buy", "volume": "0.05", "price": "40000", "userref": 1},
        {"ordertype": "limit", "type": "buy", "volume": "0.05", "price": "40000", "userref": 2},
    ]
    result = caller.ok("AddOrderBatch", {"pair": "XBT/USD", "orders": orders}, json_body=True)
    first, second = result["orders"]
    assert TXID.match(first["txid"])
    assert first["descr"] == {"order": "buy 0.05000000 XBTUSD @ limit 40000.0"}
    assert second == {"error": "EOrder:Insufficient funds"}


@pytest.mark.parametrize(
    ("params", "json_body", "error"),
    [
        ({"pair": "XBTUSD", "orders": [BASE]}, True, "EGeneral:Invalid arguments:orders"),
        ({"pair": "XBTUSD", "orders": [BASE] * 16}, True, "EGeneral:Invalid arguments:orders"),
        ({"pair": "XBTUSD", "orders": "x"}, False, "EGeneral:Invalid arguments:orders"),
        (
            {"pair": "XBTUSD", "orders": [BASE, {**BASE, "volume": "0.000001"}]},
            True,
            "EOrder:Order minimum not met",
        ),
    ],
)
def test_add_order_batch_rejections_reject_the_whole_batch(
    params: dict[str, Any], json_body: bool, error: str
) -> None:
    _, caller, _, _ = make()
    assert caller.err("AddOrderBatch", params, json_body=json_body) == error
    assert caller.ok("OpenOrders")["open"] == {}


def test_add_order_batch_validate_returns_descr_only() -> None:
    _, caller, _, _ = make()
    result = caller.ok(
        "AddOrderBatch",
        {"pair": "XBTUSD", "orders": [BASE, BASE], "validate": True},
        json_body=True,
    )
    assert result == {"orders": [{"descr": {"order": "buy 0.01000000 XBTUSD @ limit 40000.0"}}] * 2}
    assert caller.ok("OpenOrders")["open"] == {}


def test_a_deadline_that_passed_while_the_request_waited_is_deadline_elapsed() -> None:
    _, caller, clock, _ = make()
    deadline = format_rfc3339(T0 + 5)
    clock.advance(10)  # the request arrived at T0 but reaches the engine at T0 + 10
    error = caller.err("AddOrder", {**BASE, "deadline": deadline}, received_at=T0)
    assert error == "EService:Deadline elapsed"
    assert caller.ok("OpenOrders")["open"] == {}
    assert caller.ok("AddOrder", {**BASE, "deadline": format_rfc3339(T0 + 30)})["txid"]


# -- queries -----------------------------------------------------------------------------


def test_closed_orders_page_fifty_newest_first_with_count() -> None:
    _, caller, clock, _ = make()
    txids = []
    for _ in range(120):
        txid = place(caller, limit("XBTUSD", "buy", "40000", "0.01"))
        clock.advance(1)
        caller.ok("CancelOrder", {"txid": txid})
        txids.append(txid)
    first = caller.ok("ClosedOrders")
    assert first["count"] == 120
    assert list(first["closed"]) == txids[::-1][:50]
    second = caller.ok("ClosedOrders", {"ofs": 50})
    assert list(second["closed"]) == txids[::-1][50:100]
    assert len(caller.ok("ClosedOrders", {"ofs": 100})["closed"]) == 20
    # start exclusive, end inclusive; a txid bound means that order's opentm.
    window = caller.ok(
        "ClosedOrders", {"start": int(T0) + 10, "end": int(T0) + 20, "closetime": "open"}
    )
    assert list(window["closed"]) == txids[11:21][::-1]
    by_txid = caller.ok("ClosedOrders", {"end": txids[4], "closetime": "open"})
    assert list(by_txid["closed"]) == txids[:5][::-1]
    assert "count" not in caller.ok("ClosedOrders", {"without_count": True})
    assert caller.err("ClosedOrders", {"closetime": "never"}) == (
        "EGeneral:Invalid arguments:closetime"
    )


def test_query_orders_limits() -> None:
    _, caller, _, _ = make()
    txid = place(caller, limit("XBTUSD", "buy", "40000", "0.01"))
    assert caller.err("QueryOrders", {"txid": "OAAAAA-AAAAA-AAAAAA"}) == "EOrder:Invalid order"
    assert caller.err("QueryOrders", {"txid": ",".join([txid] * 51)}) == (
        "EGeneral:Invalid arguments:txid"
    )
    assert caller.err("QueryOrders", {}) == "EGeneral:Invalid arguments:txid"


def test_market_modes_refuse_what_they_must() -> None:
    exchange, caller, _, _ = make()
    txid = place(caller, limit("XBTUSD", "buy", "40000", "0.01"))
    exchange.set_system_status("post_only")
    assert caller.err("AddOrder", BASE) == "EService:Market in post_only mode"
    assert caller.ok("AddOrder", {**BASE, "oflags": "post"})["txid"]
    exchange.set_system_status("cancel_only")
    assert caller.err("AddOrder", BASE) == "EService:Market in cancel_only mode"
    assert caller.ok("CancelOrder", {"txid": txid})["count"] == 1


def test_json_add_order_takes_numbers_booleans_and_a_close_object() -> None:
    _, caller, _, _ = make()
    params = {
        "pair": "XBTUSD",
        "type": "buy",
        "ordertype": "limit",
        "price": 40000.5,
        "volume": "0.01",
        "userref": 12,
        "close": {"ordertype": "limit", "price": "45000"},
    }
    result = caller.ok("AddOrder", params, json_body=True)
    assert result["descr"] == {
        "order": "buy 0.01000000 XBTUSD @ limit 40000.5",
        "close": "close position @ limit 45000.0",
    }
    assert caller.ok("AddOrder", {**params, "validate": True}, json_body=True).keys() == {"descr"}
    assert caller.err("AddOrder", {**params, "price": 40000.55}, json_body=True).startswith(
        "EOrder:Invalid price:XXBTZUSD"
    )


@pytest.mark.parametrize("userref", [-(2**31), -1, 1, 2**31 - 1])
def test_userref_is_a_signed_int32_as_the_spec_types_it(userref: int) -> None:
    # spot-rest/schemas/requests/trading/orders/add.yaml: userref "type: integer, format:
    # int32"; Kraken's clordid guide: "+/- integer". (oms's client keeps to 1..2**31-1.)
    _, caller, _, _ = make()
    txid = place(caller, limit("XBTUSD", "buy", "40000", "0.01", userref=userref))
    assert caller.ok("QueryOrders", {"txid": txid})[txid]["userref"] == userref


@pytest.mark.parametrize("userref", [str(2**31), str(-(2**31) - 1), "1.5", "\uff15", " 5 x"])
def test_userref_outside_int32_or_not_ascii_digits_is_refused(userref: str) -> None:
    _, caller, _, _ = make()
    error = caller.err("AddOrder", {**BASE, "userref": userref})
    assert error == "EGeneral:Invalid arguments:userref"

"""Orders execute as on Kraken: at once as taker, resting as maker, on a trigger; fees, holds."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sandbox_engine_support as support

from oms.sandbox.config import SandboxConfig
from oms.sandbox.market import DEFAULT_PAIRS

T0 = support.T0
limit = support.limit
XBT = DEFAULT_PAIRS[0]
make = support.make_orders
place = support.place
info = support.info
fee = support.fee


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

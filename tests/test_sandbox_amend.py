"""AmendOrder changes an order in place as Kraken's does: txid kept, hold moved, post-only kept."""

from __future__ import annotations

import re
from decimal import Decimal

import sandbox_engine_support as support

from oms.sandbox.market import DEFAULT_PAIRS

T0 = support.T0
limit = support.limit
XBT = DEFAULT_PAIRS[0]
make = support.make_orders
place = support.place
info = support.info
fee = support.fee


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

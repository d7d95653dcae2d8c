"""Orders in the sandbox live like Kraken's: placed, tagged by userref or cl_ord_id,
cancelled (one, a group, a batch, all, by the dead man's switch), queried."""

from __future__ import annotations

from typing import Any

import pytest
import sandbox_engine_support as support

from oms.sandbox.config import SandboxConfig
from oms.sandbox.market import DEFAULT_PAIRS
from oms.sandbox.protocol import format_rfc3339

T0 = support.T0
limit = support.limit
TXID = support.TXID
XBT = DEFAULT_PAIRS[0]
make = support.make_orders
place = support.place
info = support.info
fee = support.fee
BASE = support.BASE


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

"""Every JSON example from the seed and the reference parses into the right model, exactly;
answers of the wrong shape raise ResponseShapeError, and unknown funding values are kept."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import order_infos

from oms._decimal import fmt
from oms.errors import ResponseShapeError, ValidationError
from oms.models import (
    AddOrderResult,
    AmendResult,
    Asset,
    AssetPair,
    Balance,
    BatchOrderResult,
    CancelResult,
    DeadMansSwitch,
    DepositMethod,
    FundingPage,
    FundingStatus,
    FundingTransaction,
    OHLCPage,
    Order,
    OrderBook,
    OrdersPage,
    OrderStatus,
    OrderType,
    PublicTrade,
    RelativePrice,
    ServerTime,
    Side,
    StatusProp,
    SystemState,
    SystemStatus,
    Ticker,
    TradesPage,
    WithdrawInfo,
)

FIXTURES = Path(__file__).parent / "fixtures"
SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "kraken-support-notes.txt"

# Both ways a client may decode: exact floats as Decimal, or Python's default.
DECODERS = [
    pytest.param(lambda text: json.loads(text, parse_float=Decimal), id="parse_float=Decimal"),
    pytest.param(json.loads, id="plain"),
]


def raw(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(), parse_float=Decimal)


def result(name: str) -> Any:
    envelope = raw(name)
    assert envelope["error"] == []
    return envelope["result"]


# --- the fixtures are the seed's text -------------------------------------------------------


@pytest.mark.skipif(not SEED.exists(), reason="../shared/seed is not next to the project")
@pytest.mark.parametrize("path", sorted(FIXTURES.glob("seed_*.json")), ids=lambda p: p.name)
def test_fixture_is_verbatim_seed_text(path: Path) -> None:
    seed = SEED.read_text()
    # The Trades example elides rows with "\n...\n"; the fixture joins the two parts with ",".
    for part in path.read_text().rstrip("\n").split('""],["8579.50000"'):
        assert part in seed


def test_every_seed_example_has_a_fixture() -> None:
    if not SEED.exists():
        pytest.skip("../shared/seed is not next to the project")
    fixtures = {p.read_text().rstrip("\n") for p in FIXTURES.glob("seed_*.json")}
    seed = SEED.read_text()
    count = seed.count('{"error":')
    assert count == len(fixtures) == 14


# --- funding ----------------------------------------------------------------------------------

FUNDING = [
    ("seed_deposit_settled.json", FundingStatus.SETTLED, None),
    ("seed_deposit_success.json", FundingStatus.SUCCESS, None),
    ("seed_withdraw_initial.json", FundingStatus.INITIAL, None),
    ("seed_withdraw_pending.json", FundingStatus.PENDING, None),
    ("seed_withdraw_settled.json", FundingStatus.SETTLED, None),
    ("seed_withdraw_success.json", FundingStatus.SUCCESS, None),
    ("seed_withdraw_failure.json", FundingStatus.FAILURE, StatusProp.CANCELED),
]


@pytest.mark.parametrize("decode", DECODERS)
@pytest.mark.parametrize(("name", "status", "prop"), FUNDING)
def test_seed_funding_examples(
    name: str, status: FundingStatus, prop: StatusProp | None, decode: Any
) -> None:
    data = decode((FIXTURES / name).read_text())["result"]
    page = FundingPage.from_api(data)
    (item,) = page.items
    (entry,) = data
    assert page.next_cursor is None
    assert item.status is status
    assert item.status_raw == entry["status"]
    assert item.status_prop is prop
    assert item.status_prop_raw == entry.get("status-prop")
    assert item.amount == Decimal(entry["amount"])
    assert fmt(item.amount) == entry["amount"]  # digits kept, trailing zeros included
    assert item.fee == Decimal(entry["fee"])
    assert item.txid == entry["txid"]
    assert (item.refid, item.asset, item.method, item.info) == (
        entry["refid"],
        entry["asset"],
        entry["method"],
        entry["info"],
    )
    assert item.time == entry["time"]


def test_settled_and_success_stay_distinct() -> None:
    settled = FundingPage.from_api(result("seed_withdraw_settled.json")).items[0]
    success = FundingPage.from_api(result("seed_withdraw_success.json")).items[0]
    assert settled.status is not success.status
    assert not settled.is_final
    assert success.is_final


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("Initial", FundingStatus.INITIAL),
        ("Pending", FundingStatus.PENDING),
        ("EarlyConfirmed", FundingStatus.EARLY_CONFIRMED),
        ("Settled", FundingStatus.SETTLED),
        ("Success", FundingStatus.SUCCESS),
        ("Failure", FundingStatus.FAILURE),
        ("Partial", FundingStatus.PARTIAL),
        ("On hold", FundingStatus.ON_HOLD),
        ("onhold", FundingStatus.ON_HOLD),
        ("on-hold", FundingStatus.ON_HOLD),
        ("Sparkling", FundingStatus.UNKNOWN),
        ("", FundingStatus.UNKNOWN),
    ],
)
def test_every_funding_status_and_unknown_ones(text: str, status: FundingStatus) -> None:
    entry = {**result("seed_withdraw_pending.json")[0], "status": text}
    item = FundingTransaction.from_api(entry)
    assert item.status is status
    assert item.status_raw == text


@pytest.mark.parametrize(
    ("text", "prop"),
    [
        ("cancel-pending", StatusProp.CANCEL_PENDING),
        ("canceled", StatusProp.CANCELED),
        ("cancel-denied", StatusProp.CANCEL_DENIED),
        ("return", StatusProp.RETURN),
        ("onhold", StatusProp.ONHOLD),
        ("on-hold", StatusProp.ONHOLD),
        ("future-thing", StatusProp.UNKNOWN),
    ],
)
def test_every_status_prop_and_unknown_ones(text: str, prop: StatusProp) -> None:
    entry = {**result("seed_withdraw_failure.json")[0], "status-prop": text}
    item = FundingTransaction.from_api(entry)
    assert item.status_prop is prop
    assert item.status_prop_raw == text


@given(st.text())
def test_no_funding_status_text_crashes(text: str) -> None:
    entry = {**result("seed_withdraw_failure.json")[0], "status": text, "status-prop": text}
    item = FundingTransaction.from_api(entry)
    assert (item.status_raw, item.status_prop_raw) == (text, text)


def test_paged_funding_answer_and_cursor() -> None:
    items = result("seed_withdraw_initial.json") + result("seed_withdraw_success.json")
    page = FundingPage.from_api({"withdrawals": items, "next_cursor": "HgAAAA"})
    assert [i.status for i in page.items] == [FundingStatus.INITIAL, FundingStatus.SUCCESS]
    assert page.next_cursor == "HgAAAA"
    for end in (None, False, ""):
        assert FundingPage.from_api({"deposit": items, "next_cursor": end}).next_cursor is None
    with pytest.raises(ResponseShapeError):
        FundingPage.from_api({"something": items})


def test_funding_optional_fields() -> None:
    entry = {
        **result("seed_deposit_settled.json")[0],
        "network": "Dogecoin",
        "key": "my-wallet",
        "originators": ["D7SL"],
    }
    item = FundingTransaction.from_api(entry)
    assert (item.network, item.key, item.originators) == ("Dogecoin", "my-wallet", ("D7SL",))


def test_funding_money_as_float_is_refused() -> None:
    entry = {**result("seed_deposit_settled.json")[0], "amount": 997.0}
    with pytest.raises(ResponseShapeError, match="amount"):
        FundingTransaction.from_api(entry)


# --- trades, OHLC, public ----------------------------------------------------------------------


@pytest.mark.parametrize("decode", DECODERS)
def test_seed_trades_example(decode: Any) -> None:
    data = decode((FIXTURES / "seed_trades.json").read_text())["result"]
    page = TradesPage.from_api(data)
    assert page.pair == "XXBTZUSD"
    assert page.last == int(data["last"])
    assert str(page.last) == data["last"]
    assert len(page.trades) == len(data["XXBTZUSD"])
    for trade, row in zip(page.trades, data["XXBTZUSD"], strict=True):
        assert trade.price == Decimal(row[0])
        assert trade.volume == Decimal(row[1])
        assert trade.time == float(row[2])
        assert trade.side is Side.SELL
        assert trade.ordertype is {"m": OrderType.MARKET, "l": OrderType.LIMIT}[row[4]]
        assert trade.trade_id is None


@given(st.integers(0, 2**64))
def test_trades_cursor_is_exact_for_every_value(cursor: int) -> None:
    page = TradesPage.from_api({"XXBTZUSD": [], "last": str(cursor)})
    assert page.last == cursor


def test_trades_cursor_as_float_is_refused() -> None:
    with pytest.raises(ResponseShapeError, match="last"):
        TradesPage.from_api({"XXBTZUSD": [], "last": 1559350785297011117.0})


def test_trade_row_with_trade_id_and_buy() -> None:
    trade = PublicTrade.from_row(
        ["30243.40000", "0.34507674", 1688669597.8277369, "b", "l", "", 61]
    )
    assert (trade.side, trade.ordertype, trade.trade_id) == (Side.BUY, OrderType.LIMIT, 61)


@pytest.mark.parametrize(
    "row",
    [
        ["1", "1", 1.0, "b"],
        [1.5, "1", 1.0, "b", "m", ""],
        ["1", "1", 1.0, 1, "m", ""],
    ],
)
def test_bad_trade_rows(row: list[object]) -> None:
    with pytest.raises(ResponseShapeError):
        PublicTrade.from_row(row)


@pytest.mark.parametrize(
    ("side", "kind", "expected"),
    [
        ("x", "m", (None, "x", OrderType.MARKET, "m")),
        ("b", "q", (Side.BUY, "b", None, "q")),
        ("?", "?", (None, "?", None, "?")),
        ("s", "l", (Side.SELL, "s", OrderType.LIMIT, "l")),
    ],
)
def test_unknown_trade_side_or_type_is_kept_raw_not_fatal(
    side: str, kind: str, expected: tuple[object, ...]
) -> None:
    spec = json.loads((FIXTURES / "spec_trades.json").read_text())["result"]
    rows = spec["XXBTZUSD"]
    rows[1] = [*rows[1][:3], side, kind, *rows[1][5:]]
    page = TradesPage.from_api(spec)
    assert len(page.trades) == 3
    odd = page.trades[1]
    assert (odd.side, odd.side_raw, odd.ordertype, odd.ordertype_raw) == expected
    assert page.trades[0].side is Side.BUY


def test_spec_trades_example_parses() -> None:
    page = TradesPage.from_api(json.loads((FIXTURES / "spec_trades.json").read_text())["result"])
    assert page.last == 1688671969993150842
    assert [t.trade_id for t in page.trades] == [61044952, 61044953, 61044956]


def test_empty_trades_last_is_the_end_of_pagination() -> None:
    # krakenfx/kraken-api-sdk rust/docs/guides/wire-quirks.md: empty `last` = end of pages.
    spec = json.loads((FIXTURES / "spec_trades.json").read_text())["result"]
    page = TradesPage.from_api({**spec, "last": ""})
    assert page.last is None
    assert len(page.trades) == 3


def test_ohlc_page() -> None:
    rows = [
        [1688671200, "30306.1", "30306.2", "30305.7", "30305.7", "30306.1", "3.39243896", 23],
        [1688671260, "30305.7", "30309.0", "30305.7", "30307.8", "30307.3", "0.01590000", 3],
    ]
    page = OHLCPage.from_api({"XXBTZUSD": rows, "last": 1688671200})
    assert page.pair == "XXBTZUSD"
    assert page.last == rows[0][0]
    assert [b.time for b in page.bars] == [r[0] for r in rows]
    assert page.bars[0].volume == Decimal(str(rows[0][6]))
    assert page.bars[1].count == rows[1][7]
    with pytest.raises(ResponseShapeError):
        OHLCPage.from_api({"XXBTZUSD": [rows[0][:5]], "last": 1})


def test_ref_time_and_system_status() -> None:
    data = raw("ref_time_result.json")
    assert ServerTime.from_api(data) == ServerTime(data["unixtime"], data["rfc1123"])
    status = SystemStatus.from_api({"status": "online", "timestamp": "2023-07-06T18:52:00Z"})
    assert status.status is SystemState.ONLINE
    assert status.timestamp == datetime(2023, 7, 6, 18, 52, tzinfo=timezone.utc)


def test_ticker_and_depth() -> None:
    data: dict[str, Any] = {
        "a": ["30300.10000", "1", "1.000"],
        "b": ["30300.00000", "1", "1.000"],
        "c": ["30303.20000", "0.00067643"],
        "v": ["4083.67001100", "4412.73601799"],
        "p": ["30706.77771", "30689.13205"],
        "t": [34619, 38907],
        "l": ["29868.30000", "29868.30000"],
        "h": ["31631.00000", "31631.00000"],
        "o": "30502.80000",
    }
    ticker = Ticker.map_from_api({"XXBTZUSD": data})["XXBTZUSD"]
    assert ticker.ask == Decimal(data["a"][0])
    assert ticker.last_volume == Decimal(data["c"][1])
    assert ticker.trades_24h == data["t"][1]
    assert ticker.open == Decimal(data["o"])
    book = OrderBook.from_api(
        {"XXBTZUSD": {"asks": [["30384.10000", "2.059", 1688671659]], "bids": []}}
    )
    assert book.asks[0].price == Decimal("30384.10000")
    assert book.asks[0].timestamp == 1688671659
    assert book.bids == ()


ASSET_PAIR: dict[str, Any] = {
    "altname": "XBTUSD",
    "wsname": "XBT/USD",
    "aclass_base": "currency",
    "base": "XXBT",
    "aclass_quote": "currency",
    "quote": "ZUSD",
    "lot": "unit",
    "cost_decimals": 5,
    "pair_decimals": 1,
    "lot_decimals": 8,
    "lot_multiplier": 1,
    "leverage_buy": [2, 3, 4, 5],
    "leverage_sell": [2, 3, 4, 5],
    "fees": [[0, 0.26], [50000, 0.24]],
    "fees_maker": [[0, 0.16], [50000, 0.14]],
    "fee_volume_currency": "ZUSD",
    "margin_call": 80,
    "margin_stop": 40,
    "ordermin": "0.0001",
    "costmin": "0.5",
    "tick_size": "0.1",
    "status": "online",
    "long_position_limit": 270,
    "short_position_limit": 180,
}


@pytest.mark.parametrize("decode", DECODERS)
def test_asset_pair_keeps_every_rule(decode: Any) -> None:
    data = decode(json.dumps({"XXBTZUSD": ASSET_PAIR}))
    pair = AssetPair.map_from_api(data)["XXBTZUSD"]
    assert (pair.pair_id, pair.altname, pair.wsname, pair.base, pair.quote) == (
        "XXBTZUSD",
        "XBTUSD",
        "XBT/USD",
        "XXBT",
        "ZUSD",
    )
    assert (pair.pair_decimals, pair.lot_decimals, pair.cost_decimals) == (1, 8, 5)
    assert pair.ordermin == Decimal(ASSET_PAIR["ordermin"])
    assert pair.costmin == Decimal(ASSET_PAIR["costmin"])
    assert pair.tick_size == Decimal(ASSET_PAIR["tick_size"])
    assert pair.status == "online"
    assert [str(t.percent) for t in pair.fees] == ["0.26", "0.24"]
    assert [str(t.volume) for t in pair.fees_maker] == ["0", "50000"]
    assert pair.leverage_buy == (2, 3, 4, 5)
    assert (pair.margin_call, pair.long_position_limit) == (80, 270)
    assert all(pair.matches(n) for n in ("xbtusd", "XXBTZUSD", "XBT/USD"))
    assert not pair.matches("ETHUSD")


def test_asset_pair_minimal_and_broken() -> None:
    minimal = {k: ASSET_PAIR[k] for k in ("altname", "base", "quote", "pair_decimals")}
    with pytest.raises(ResponseShapeError, match="lot_decimals"):
        AssetPair.from_api("XXBTZUSD", minimal)
    pair = AssetPair.from_api("XXBTZUSD", {**minimal, "lot_decimals": 8})
    assert (pair.ordermin, pair.tick_size, pair.wsname) == (None, None, None)


def test_assets() -> None:
    data = {
        "XXBT": {
            "aclass": "currency",
            "altname": "XBT",
            "decimals": 10,
            "display_decimals": 5,
            "collateral_value": 1.0,
            "status": "enabled",
        }
    }
    asset = Asset.map_from_api(data)["XXBT"]
    assert (asset.altname, asset.decimals, asset.status) == ("XBT", 10, "enabled")
    assert asset.collateral_value == Decimal("1.0")


# --- orders -----------------------------------------------------------------------------------


@pytest.mark.parametrize("decode", DECODERS)
@pytest.mark.parametrize(
    ("name", "key"), [("seed_open_orders.json", "open"), ("seed_closed_orders.json", "closed")]
)
def test_seed_order_examples(name: str, key: str, decode: Any) -> None:
    data = decode((FIXTURES / name).read_text())["result"]
    page = OrdersPage.from_api(data)
    assert page.count == data.get("count")
    (order,) = page
    ((txid, info),) = data[key].items()
    assert order.txid == txid
    assert order.status is OrderStatus(info["status"])
    assert order.userref == info["userref"]
    assert order.refid is None
    for name_ in ("vol", "vol_exec", "cost", "fee", "price", "stopprice", "limitprice"):
        assert getattr(order, name_) == Decimal(info[name_])
        assert fmt(getattr(order, name_)) == info[name_]  # digits kept, zeros included
    assert order.opentm == float(info["opentm"])
    assert order.closetm == (float(info["closetm"]) if "closetm" in info else None)
    assert order.reason == info.get("reason")
    assert (order.starttm, order.expiretm) == (None, None)  # Kraken's 0 means "unset"
    assert order.oflags == tuple(info["oflags"].split(","))
    assert order.misc == ()
    descr = info["descr"]
    assert order.descr.pair == order.pair == descr["pair"]
    assert order.side is Side(descr["type"])
    assert order.descr.ordertype is OrderType(descr["ordertype"])
    assert order.descr.price == Decimal(descr["price"])
    assert order.descr.leverage == descr["leverage"]
    assert order.descr.order == descr["order"]
    assert order.descr.close is None  # "" means no conditional close
    assert order.remaining == Decimal(info["vol"]) - Decimal(info["vol_exec"])
    assert order.is_open is (info["status"] == "open")
    assert not order.is_partially_filled


@given(order_infos())
def test_generated_order_infos_parse(txid_info: tuple[str, dict[str, Any]]) -> None:
    txid, info = txid_info
    order = Order.from_api(txid, info)
    assert order.userref == (info["userref"] or None)
    assert order.vol_exec == Decimal(str(info["vol_exec"]))
    assert order.is_partially_filled is (0 < order.vol_exec < order.vol)
    assert OrdersPage.from_api({txid: info}).by_txid() == {txid: order}


def test_order_optional_fields_and_unknown_legacy_type() -> None:
    ((txid, info),) = result("seed_closed_orders.json")["closed"].items()
    info = {
        **info,
        "userref": 0,
        "cl_ord_id": "my-order-1",
        "trigger": "index",
        "margin": False,
        "misc": "partial,amended",
        "trades": ["TABC-1", "TDEF-2"],
        "closetm": None,
        "sender_sub_id": None,
        "descr": {**info["descr"], "ordertype": "stop-loss-profit", "price": "+5.0000%"},
    }
    order = Order.from_api(txid, info)
    assert order.userref is None  # 0 means "no userref"
    assert order.cl_ord_id == "my-order-1"
    assert order.misc == ("partial", "amended")
    assert order.trades == ("TABC-1", "TDEF-2")
    assert order.closetm is None
    assert order.descr.ordertype is None
    assert order.descr.ordertype_raw == "stop-loss-profit"
    assert order.descr.price == RelativePrice("+", Decimal("5.0000"), percent=True)


@pytest.mark.parametrize(
    "change",
    [
        {"status": "partially_filled"},
        {"vol": 50.0},
        {"vol": None},
        {"userref": "abc"},
        {"userref": 1.5},
        {"opentm": True},
        {"descr": "buy"},
        {"descr": {"pair": "XDGUSD", "type": "hold", "ordertype": "limit"}},
    ],
)
def test_order_of_wrong_shape(change: dict[str, object]) -> None:
    ((txid, info),) = result("seed_open_orders.json")["open"].items()
    with pytest.raises(ResponseShapeError):
        Order.from_api(txid, {**info, **change})


def test_order_without_required_field() -> None:
    ((txid, info),) = result("seed_open_orders.json")["open"].items()
    del info["vol"]
    with pytest.raises(ResponseShapeError, match="vol"):
        Order.from_api(txid, info)


# --- AddOrder and friends -------------------------------------------------------------------


def test_seed_add_order_live() -> None:
    data = result("seed_add_order.json")
    res = AddOrderResult.from_api(data, validate=False)
    assert res.txids == tuple(data["txid"])
    assert res.txid == data["txid"][0]
    assert res.descr_order == data["descr"]["order"]
    assert res.descr_close is None
    assert not res.validated


def test_seed_add_order_validate_has_no_txid() -> None:
    data = result("seed_add_order_validate.json")
    res = AddOrderResult.from_api(data, validate=True)
    assert (res.txids, res.txid, res.validated) == ((), None, True)
    assert res.descr_order == data["descr"]["order"]


def test_ref_add_order_with_close() -> None:
    data = result("ref_add_order_close.json")
    res = AddOrderResult.from_api(data, validate=False)
    assert res.descr_close == data["descr"]["close"]
    assert res.txids == tuple(data["txid"])


@pytest.mark.parametrize(
    ("name", "validate"),
    [("seed_add_order.json", True), ("seed_add_order_validate.json", False)],
    ids=["validate-answer-with-txid", "live-answer-without-txid"],
)
def test_add_order_answer_must_match_the_request(name: str, validate: bool) -> None:
    with pytest.raises(ResponseShapeError):
        AddOrderResult.from_api(result(name), validate=validate)


@pytest.mark.parametrize(
    "txid", ["OQJSXE-F5FOM-IXHVL4", [], [""], [1], None, {"0": "OQJSXE"}, ["A", None]]
)
def test_live_add_order_needs_a_txid_list(txid: object) -> None:
    data = {"descr": {"order": "buy"}, "txid": txid}
    with pytest.raises(ResponseShapeError):
        AddOrderResult.from_api(data, validate=False)


def test_add_order_without_descr() -> None:
    with pytest.raises(ResponseShapeError, match="descr"):
        AddOrderResult.from_api({"txid": ["O1"]}, validate=False)


def test_ref_batch_result() -> None:
    data = raw("ref_add_order_batch_result.json")
    res = BatchOrderResult.from_api(data, validate=False, expected=2)
    assert res.txids == (data["orders"][0]["txid"], None)
    assert res.items[1].error == data["orders"][1]["error"]
    with pytest.raises(ResponseShapeError):
        BatchOrderResult.from_api(data, validate=True)
    with pytest.raises(ResponseShapeError):
        BatchOrderResult.from_api(data, validate=False, expected=3)
    with pytest.raises(ResponseShapeError):
        BatchOrderResult.from_api({"orders": [{"descr": {"order": "x"}}]}, validate=False)
    validated = BatchOrderResult.from_api({"orders": [{"descr": {"order": "x"}}]}, validate=True)
    assert validated.items[0].descr_order == "x"


@pytest.mark.parametrize(
    "name",
    [
        "seed_cancel_order_count1.json",
        "seed_cancel_order_count3.json",
        "ref_cancel_order_batch.json",
    ],
)
def test_cancel_examples(name: str) -> None:
    data = result(name)
    assert CancelResult.from_api(data) == CancelResult(data["count"], pending=False)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"count": "1"}, CancelResult(1)),
        ({"count": 2, "pending": True}, CancelResult(2, pending=True)),
        ({"count": "0", "pending": "false"}, CancelResult(0)),
    ],
)
def test_cancel_count_may_be_a_string(data: dict[str, object], expected: CancelResult) -> None:
    assert CancelResult.from_api(data) == expected


@pytest.mark.parametrize(
    "data", [{}, {"count": "one"}, {"count": 1.0}, {"count": -1}, {"count": True}]
)
def test_cancel_of_wrong_shape(data: dict[str, object]) -> None:
    with pytest.raises(ResponseShapeError):
        CancelResult.from_api(data)


def test_ref_amend_and_dead_mans_switch() -> None:
    data = result("ref_amend_order.json")
    assert AmendResult.from_api(data).amend_id == data["amend_id"]
    dms = DeadMansSwitch.from_api(raw("ref_cancel_all_orders_after_result.json"))
    assert dms.current_time == datetime(2023, 3, 24, 17, 41, 56, tzinfo=timezone.utc)
    assert dms.trigger_time == datetime(2023, 3, 24, 17, 42, 56, tzinfo=timezone.utc)
    off = DeadMansSwitch.from_api({"currentTime": "2023-03-24T17:41:56Z", "triggerTime": "0"})
    assert off.trigger_time is None


# --- balances and funding methods ---------------------------------------------------------


def test_balance_is_a_read_only_mapping() -> None:
    data = {"ZUSD": "171288.6158", "XXBT": "0.0000000000", "XXDG": "1000.00000000"}
    balance = Balance.from_api(data)
    assert dict(balance) == {k: Decimal(v) for k, v in data.items()}
    assert balance["ZUSD"] == Decimal(data["ZUSD"])
    assert balance.get("NOPE") is None
    assert len(balance) == len(data)
    assert hash(balance) == hash(Balance.from_api(dict(reversed(data.items()))))
    with pytest.raises(ResponseShapeError):
        Balance.from_api({"ZUSD": 1.5})


def test_deposit_method_and_withdraw_info() -> None:
    method = DepositMethod.from_api(
        {
            "method": "Bitcoin",
            "limit": False,
            "fee": "0.0000000000",
            "address-setup-fee": "0.00000",
            "gen-address": True,
            "minimum": "0.00010000",
        }
    )
    assert (method.limit, method.gen_address, method.minimum) == (None, True, Decimal("0.00010000"))
    info = WithdrawInfo.from_api(
        {"method": "Bitcoin", "limit": "332.00956139", "amount": "0.72485000", "fee": "0.00015000"}
    )
    assert info.amount == Decimal("0.72485000")


# --- direct construction ------------------------------------------------------------------


def test_models_accept_str_int_decimal_and_refuse_float_for_money() -> None:
    ((txid, info),) = result("seed_open_orders.json")["open"].items()
    order = Order.from_api(txid, info)
    assert attrs.evolve(order, vol="50", cost=0, fee=Decimal("0.1")).vol == Decimal(50)
    assert attrs.evolve(order, opentm=1629618802).opentm == 1629618802
    with pytest.raises(ValidationError) as excinfo:
        attrs.evolve(order, vol=50.0)  # type: ignore[arg-type]
    assert excinfo.value.rule == "type"
    with pytest.raises(ValidationError):
        PublicTrade(price=1.5, volume="1", time=1, side="buy", ordertype="market")  # type: ignore[arg-type]
    assert (
        PublicTrade(
            price="1.5", volume=Decimal(1), time=Decimal("1.25"), side="buy", ordertype="market"
        ).time
        == 1.25
    )


def test_models_are_frozen() -> None:
    res = CancelResult(1)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        res.count = 2  # type: ignore[misc]

"""KrakenClient, over real HTTP on 127.0.0.1, gets from the sandbox exactly what the sandbox holds:
every endpoint's answer matches the exchange's state, and every fault maps to the right error."""

from __future__ import annotations

import io
import itertools
import logging
import re
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

from oms._decimal import fmt
from oms.auth import key_fingerprint
from oms.client import KrakenClient
from oms.errors import (
    APIRateLimitExceeded,
    ConnectionLost,
    CostMinimumNotMet,
    HTTPStatusError,
    InternalError,
    InvalidArguments,
    InvalidNonce,
    InvalidPrice,
    KrakenError,
    MarketCancelOnly,
    MaxFeeExceeded,
    OmsError,
    OrderError,
    OrderMinimumNotMet,
    OrderRateLimitExceeded,
    PostOnlyOrder,
    RequestTimeout,
    ServiceBusy,
    ServiceUnavailable,
    TickSizeCheckFailed,
    TransportError,
    UnknownAsset,
    UnknownOrder,
    UnknownReferenceId,
    UnknownWithdrawKey,
    ValidationError,
)
from oms.models import AssetPair, FundingStatus, Order, OrderStatus, Side, StatusProp
from oms.nonce import NonceSource
from oms.orders import OrderRequest, check_against_pair, quantize_price
from oms.sandbox import DEFAULT_PAIRS, ManualClock, Market, PairSpec, Sandbox
from oms.transport import Transcript, Transport

#: Seconds of market history before genesis: several Trades pages, yet quick to page through.
HISTORY = 4 * 3600.0
#: A pair whose tick (0.25) is coarser than its decimals (0.01): the one case where the
#: tick_size rule differs from pair_decimals (the default pairs tick at 10**-pair_decimals).
COARSE = PairSpec(
    pair_id="XTSTZUSD",
    altname="TSTUSD",
    wsname="TST/USD",
    base="XTST",
    quote="ZUSD",
    pair_decimals=2,
    lot_decimals=4,
    cost_decimals=4,
    ordermin="0.5",
    costmin="5",
    tick_size="0.25",
    start_price="100.00",
)
PAIRS = (*DEFAULT_PAIRS, COARSE)

_USERREFS = itertools.count(7_000)


def new_userref() -> int:
    return next(_USERREFS)


@pytest.fixture
def sb(manual_clock: ManualClock) -> Iterator[Sandbox]:
    market = Market(seed=0, pairs=PAIRS, genesis=manual_clock.time(), history=HISTORY)
    exchange = Sandbox.build_exchange(clock=manual_clock, market=market)
    with Sandbox.serve(exchange=exchange) as served:
        yield served


@pytest.fixture
def client(sb: Sandbox) -> Iterator[KrakenClient]:
    with sb.client() as made:
        yield made


# -- helpers ---------------------------------------------------------------------------------


def pair_info(client: KrakenClient, name: str) -> AssetPair:
    (pair,) = client.asset_pairs(name).values()
    return pair


def far_below(client: KrakenClient, pair: AssetPair) -> Decimal:
    """A buy price that rests (half the last trade), on the pair's tick."""
    last = client.ticker(pair.altname)[pair.pair_id].last
    return quantize_price(pair, last / 2, rounding=ROUND_DOWN)


def resting_buy(pair: AssetPair, price: Decimal, **fields: Any) -> OrderRequest:
    """A limit buy at ``price`` for the smallest volume the pair's minimums allow."""
    step = Decimal(1).scaleb(-pair.lot_decimals)
    assert pair.ordermin is not None
    assert pair.costmin is not None
    volume = max(pair.ordermin, (pair.costmin / price).quantize(step, rounding=ROUND_UP))
    return OrderRequest(
        pair=pair.altname, side="buy", ordertype="limit", price=price, volume=volume, **fields
    )


def order(client: KrakenClient, txid: str) -> Order:
    return client.query_orders(txid).by_txid()[txid]


def at(clock: ManualClock, seconds: float) -> datetime:
    return datetime.fromtimestamp(clock.time() + seconds, timezone.utc)


# -- public endpoints ------------------------------------------------------------------------


def test_time_and_system_status_follow_the_sandbox_clock(
    client: KrakenClient, sb: Sandbox, manual_clock: ManualClock
) -> None:
    first = client.time()
    assert first.unixtime == int(manual_clock.time())
    manual_clock.advance(3600)
    assert client.time().unixtime == first.unixtime + 3600
    status = client.system_status()
    assert status.status.value == "online"
    assert status.timestamp.timestamp() == int(manual_clock.time())
    sb.exchange.set_system_status("cancel_only")
    assert client.system_status().status.value == "cancel_only"
    pair = pair_info(client, "XBTUSD")
    with pytest.raises(MarketCancelOnly):
        client.add_order(resting_buy(pair, far_below(client, pair)))
    assert client.open_orders().orders == ()


def test_assets_are_the_sandbox_asset_table(client: KrakenClient, sb: Sandbox) -> None:
    assets = client.assets()
    table = {spec.asset_id: spec for spec in sb.exchange.assets.all()}
    assert set(assets) == set(table)
    for asset_id, asset in assets.items():
        assert asset.altname == table[asset_id].altname
        assert asset.decimals == table[asset_id].decimals
        assert asset.display_decimals == table[asset_id].display_decimals
    (only,) = client.assets("XBT").values()
    assert only.asset_id == "XXBT"
    with pytest.raises(UnknownAsset):
        client.assets("NOPE")


def test_asset_pairs_carry_the_rules_the_sandbox_enforces(client: KrakenClient) -> None:
    pairs = client.asset_pairs()
    assert set(pairs) == {spec.pair_id for spec in PAIRS}
    for spec in PAIRS:
        pair = pairs[spec.pair_id]
        assert (pair.altname, pair.wsname, pair.base, pair.quote) == (
            spec.altname,
            spec.wsname,
            spec.base,
            spec.quote,
        )
        assert (pair.pair_decimals, pair.lot_decimals, pair.cost_decimals) == (
            spec.pair_decimals,
            spec.lot_decimals,
            spec.cost_decimals,
        )
        assert (pair.ordermin, pair.costmin, pair.tick_size) == (
            spec.ordermin,
            spec.costmin,
            spec.tick_size,
        )
        # Any of the pair's names finds the same entry, keyed by the pair id.
        assert client.asset_pairs(spec.wsname) == {spec.pair_id: pair}
    # The partial views are a subset of the whole entry: raw only, never a broken AssetPair.
    fees = client.call("AssetPairs", pair="XBTUSD", info="fees")["XXBTZUSD"]
    whole = pairs["XXBTZUSD"]
    assert [(t.volume, t.percent) for t in whole.fees] == [tuple(row) for row in fees["fees"]]
    with pytest.raises(ValidationError):
        client.asset_pairs("XBTUSD", info="fees")


def _breaking(pair: AssetPair, rule: str, base: Decimal) -> tuple[Decimal, Decimal]:
    """(price, volume) of a buy that breaks ``rule`` of ``pair`` and nothing before it."""
    assert pair.ordermin is not None
    assert pair.costmin is not None
    assert pair.tick_size is not None
    lot = Decimal(1).scaleb(-pair.lot_decimals)
    places = Decimal(1).scaleb(-pair.pair_decimals)
    volume = max(pair.ordermin, (pair.costmin / base).quantize(lot, rounding=ROUND_UP))
    if rule == "ok":
        # The smallest order both minimums allow, at the smallest price that reaches costmin.
        floor = quantize_price(pair, pair.costmin / pair.ordermin, rounding=ROUND_UP)
        return floor, pair.ordermin
    if rule == "pair_decimals":
        return base + places / 10, volume
    if rule == "tick_size":
        return base + places, volume
    if rule == "lot_decimals":
        return base, volume + lot / 10
    if rule == "ordermin":
        return base, pair.ordermin - lot
    if rule == "costmin":
        price = quantize_price(pair, pair.costmin / pair.ordermin, rounding=ROUND_DOWN)
        if price * pair.ordermin >= pair.costmin:
            price -= pair.tick_size
        return price, pair.ordermin
    raise AssertionError(rule)


#: rule -> the error class the sandbox answers with when the rule is broken.
PAIR_RULES: dict[str, type[KrakenError] | None] = {
    "ok": None,
    "pair_decimals": InvalidPrice,
    "tick_size": TickSizeCheckFailed,
    "lot_decimals": InvalidArguments,
    "ordermin": OrderMinimumNotMet,
    "costmin": CostMinimumNotMet,
}
# The tick rule is distinct from pair_decimals only where the tick is coarser than the decimals.
PAIR_CASES = [
    (spec.altname, rule)
    for spec in PAIRS
    for rule in PAIR_RULES
    if rule != "tick_size" or spec.tick_size > Decimal(1).scaleb(-spec.pair_decimals)
]


@pytest.mark.parametrize(("name", "rule"), PAIR_CASES)
def test_pair_rules_refused_locally_and_by_the_sandbox_alike(
    client: KrakenClient, name: str, rule: str
) -> None:
    pair = pair_info(client, name)
    price, volume = _breaking(pair, rule, far_below(client, pair))
    request = OrderRequest(
        pair=name, side="buy", ordertype="limit", price=price, volume=volume, validate=True
    )
    raw: dict[str, Any] = {"pair": name, "type": "buy", "ordertype": "limit"}
    raw.update(price=fmt(price), volume=fmt(volume))
    expected = PAIR_RULES[rule]
    if expected is None:
        check_against_pair(request, pair)
        answer = client.call("AddOrder", **raw, validate=True)
        assert "txid" not in answer
        assert client.add_order(request).validated
        return
    with pytest.raises(ValidationError) as local:
        check_against_pair(request, pair)
    assert local.value.rule == rule
    # Sent anyway, without validate: the sandbox refuses it with the matching Kraken error.
    with pytest.raises(expected):
        client.call("AddOrder", **raw)
    assert client.open_orders().orders == ()


_SENT = re.compile(r"^(?:GET|POST) \S+/0/(?:public|private)/(\w+)", re.MULTILINE)


@pytest.mark.parametrize(("name", "rule"), PAIR_CASES)
def test_a_new_client_learns_the_rules_once_and_sends_no_order_that_breaks_them(
    client: KrakenClient, sb: Sandbox, name: str, rule: str
) -> None:
    pair = pair_info(client, name)
    price, volume = _breaking(pair, rule, far_below(client, pair))
    stream = io.StringIO()
    fresh = sb.client(transport=Transport(transcript=Transcript(stream)))  # pair_rules="fetch"
    assert pair.wsname is not None
    attempts = [
        OrderRequest(pair=alias, side="buy", ordertype="limit", price=price, volume=volume)
        for alias in (pair.altname, pair.wsname, pair.pair_id.lower())
    ]
    with fresh:
        for request in attempts:
            if PAIR_RULES[rule] is None:
                fresh.add_order(attrs.evolve(request, validate=True))
                continue
            with pytest.raises(ValidationError) as refused:
                fresh.add_order(request)
            assert refused.value.rule == rule
    sent = Counter(_SENT.findall(stream.getvalue()))
    assert sent["AssetPairs"] == 1
    assert sent["AddOrder"] == (len(attempts) if PAIR_RULES[rule] is None else 0)
    assert client.open_orders().orders == ()


def test_the_order_managers_pair_lookup_is_the_clients_only_one(
    client: KrakenClient, sb: Sandbox, manual_clock: ManualClock, tmp_path: Path
) -> None:
    from oms.manager import OrderManager

    pair = pair_info(client, COARSE.altname)
    price = far_below(client, pair)
    off_tick = price + Decimal(1).scaleb(-pair.pair_decimals)
    stream = io.StringIO()
    fresh = sb.client(transport=Transport(transcript=Transcript(stream)))  # pair_rules="fetch"
    manager = OrderManager(
        fresh, tmp_path / "oms.db", clock=manual_clock.time, sleep=manual_clock.advance
    )
    try:
        for _ in range(2):
            assert manager.place(resting_buy(pair, price)).txid
        with pytest.raises(ValidationError) as refused:
            manager.place(resting_buy(pair, off_tick))
    finally:
        manager.close()
        fresh.close()
    assert refused.value.rule == "tick_size"
    sent = Counter(_SENT.findall(stream.getvalue()))
    assert sent["AssetPairs"] == 1
    assert sent["AddOrder"] == 2


def test_ticker_ohlc_and_depth_agree_with_the_tape(
    client: KrakenClient, manual_clock: ManualClock
) -> None:
    trades = list(client.iter_trades("XBTUSD"))
    ticker = client.ticker("XBTUSD")["XXBTZUSD"]
    # The whole tape is younger than a day, so the 24-hour figures cover every trade.
    assert ticker.last == trades[-1].price
    assert ticker.last_volume == trades[-1].volume
    assert ticker.trades_24h == len(trades)
    assert ticker.volume_24h == sum(t.volume for t in trades)
    assert ticker.low_24h == min(t.price for t in trades)
    assert ticker.high_24h == max(t.price for t in trades)
    assert ticker.bid < ticker.last < ticker.ask
    ohlc = client.ohlc("XBTUSD", interval=1)
    assert 1 < len(ohlc.bars) <= 720
    times = [bar.time for bar in ohlc.bars]
    assert times == sorted(set(times))
    assert all(b - a == 60 for a, b in itertools.pairwise(times))
    assert times[-1] == int(manual_clock.time()) // 60 * 60  # the current, uncommitted bar
    assert ohlc.last == times[-1] - 60
    # 720 one-minute bars reach further back than the tape: every trade is in one bar.
    assert sum(bar.count for bar in ohlc.bars) == len(trades)
    assert sum(bar.volume for bar in ohlc.bars) == sum(t.volume for t in trades)
    assert ohlc.bars[-1].close == trades[-1].price
    for bar in ohlc.bars:
        inside = [t for t in trades if bar.time <= t.time < bar.time + 60]
        if inside:
            assert (bar.open, bar.high, bar.low, bar.close) == (
                inside[0].price,
                max(t.price for t in inside),
                min(t.price for t in inside),
                inside[-1].price,
            )
    newer = client.ohlc("XBTUSD", interval=1, since=ohlc.last)
    assert [bar.time for bar in newer.bars] == [times[-1]]
    hourly = client.ohlc("XBTUSD", interval=60)
    assert sum(bar.count for bar in hourly.bars) == len(trades)
    book = client.depth("XBTUSD", count=7)
    assert book.pair == "XXBTZUSD"
    assert len(book.asks) == len(book.bids) == 7
    assert [lvl.price for lvl in book.asks] == sorted(lvl.price for lvl in book.asks)
    assert [lvl.price for lvl in book.bids] == sorted(
        (lvl.price for lvl in book.bids), reverse=True
    )
    assert (book.bids[0].price, book.asks[0].price) == (ticker.bid, ticker.ask)


def test_iter_trades_pages_the_whole_tape_without_gaps_or_duplicates(
    client: KrakenClient, sb: Sandbox, manual_clock: ManualClock
) -> None:
    pages = client.iter_trades("XBTUSD", since=0, count=500)
    first = list(itertools.islice(pages, 500))
    # While the iterator is between pages: our own fill enters the tape, and time passes.
    placed = client.add_order(pair="XBTUSD", side="buy", ordertype="market", volume="0.001")
    manual_clock.advance(1800)
    rest = list(pages)
    seen = first + rest
    ids = [t.trade_id for t in seen]
    assert ids == list(range(1, len(seen) + 1))
    assert [t.time for t in seen] == sorted(t.time for t in seen)
    newest = client.trades("XBTUSD", count=1)
    assert newest.trades[-1] == seen[-1]
    assert len(seen) > 3 * 500  # several pages, some fetched after the clock moved
    assert seen[-1].time > manual_clock.time() - 1800
    fill = order(client, placed.txids[0])
    fills = client.call("TradesHistory")["trades"]
    (fill_id,) = [info["trade_id"] for info in fills.values() if info["ordertxid"] == fill.txid]
    mine = seen[fill_id - 1]
    assert (mine.price, mine.volume, mine.side) == (fill.price, fill.vol_exec, Side.BUY)
    # The same tape page by page, from a nanosecond cursor taken in the middle.
    cursor = client.trades("XBTUSD", since=0, count=800).last
    tail = list(client.iter_trades("XBTUSD", since=cursor))
    assert [t.trade_id for t in tail] == ids[800:]


# -- balances and orders ---------------------------------------------------------------------


def test_balance_moves_by_exactly_what_the_fills_report(
    client: KrakenClient, manual_clock: ManualClock
) -> None:
    assets = client.assets()

    def moved_by(asset: str, delta: Decimal, *amounts: Decimal) -> bool:
        # Balances sit on the asset's decimals (ledger entries), an order's cost and fee on
        # the pair's: each ledger amount is the order's rounded to the asset, off by less
        # than one unit of its last decimal.
        unit = Decimal(1).scaleb(-assets[asset].decimals)
        return abs(delta - sum(amounts, Decimal(0))) < unit * len(amounts)

    before = client.balance()
    buy = client.add_order(pair="XBTUSD", side="buy", ordertype="market", volume="0.002")
    bought = order(client, buy.txids[0])
    assert bought.status is OrderStatus.CLOSED
    assert bought.vol_exec == Decimal("0.002")
    after_buy = client.balance()
    assert moved_by("XXBT", after_buy["XXBT"] - before["XXBT"], bought.vol_exec)
    assert moved_by("ZUSD", before["ZUSD"] - after_buy["ZUSD"], bought.cost, bought.fee)
    sell = client.add_order(pair="ETHUSD", side="sell", ordertype="market", volume="0.01")
    sold = order(client, sell.txids[0])
    after_sell = client.balance()
    # A sell pays its fee in the base asset by default (fcib) ...
    assert "fcib" in sold.oflags
    assert moved_by("ZUSD", after_sell["ZUSD"] - after_buy["ZUSD"], sold.cost)
    assert after_buy["XETH"] - after_sell["XETH"] > sold.vol_exec
    # ... a resting buy fills as maker when the market trades through its price.
    pair = pair_info(client, "XBTUSD")
    last = client.ticker("XBTUSD")["XXBTZUSD"].last
    maker = client.add_order(
        pair="XBTUSD",
        side="buy",
        ordertype="limit",
        price=quantize_price(pair, last * Decimal("0.999"), rounding=ROUND_DOWN),
        volume="0.001",
    )
    for _ in range(48):
        if order(client, maker.txids[0]).vol_exec > 0:
            break
        manual_clock.advance(600)
    filled = order(client, maker.txids[0])
    assert filled.vol_exec > 0
    assert filled.price == filled.descr.price  # a maker fills at its own limit
    after_fill = client.balance()
    assert moved_by("XXBT", after_fill["XXBT"] - after_sell["XXBT"], filled.vol_exec)
    assert moved_by("ZUSD", after_sell["ZUSD"] - after_fill["ZUSD"], filled.cost, filled.fee)


def test_add_order_with_userref_and_cl_ord_id(client: KrakenClient) -> None:
    pair = pair_info(client, "XBTUSD")
    price = far_below(client, pair)
    ref = new_userref()
    tagged = client.add_order(resting_buy(pair, price, userref=ref))
    named = client.add_order(resting_buy(pair, price, cl_ord_id="my-order-1"))
    assert tagged.descr_order.startswith("buy ")
    (by_ref,) = client.open_orders(userref=ref)
    (by_id,) = client.open_orders(cl_ord_id="my-order-1")
    assert (by_ref.txid, by_ref.userref, by_ref.cl_ord_id) == (tagged.txid, ref, None)
    assert (by_id.txid, by_id.userref, by_id.cl_ord_id) == (named.txid, None, "my-order-1")
    assert by_ref.descr.price == price
    assert by_ref.status is OrderStatus.OPEN
    # cl_ord_id is unique among open orders only.
    with pytest.raises(OrderError):
        client.add_order(resting_buy(pair, price, cl_ord_id="my-order-1"))
    assert len(client.open_orders()) == 2


def test_validate_places_nothing_and_answers_no_txid(client: KrakenClient, sb: Sandbox) -> None:
    pair = pair_info(client, "ETHUSD")
    holds = sb.exchange.holds(sb.key)
    result = client.add_order(resting_buy(pair, far_below(client, pair), validate=True))
    assert result.validated
    assert (result.txid, result.txids) == (None, ())
    assert result.descr_order.startswith("buy ")
    assert client.open_orders().orders == ()
    assert client.closed_orders().orders == ()
    assert sb.exchange.holds(sb.key) == holds


def test_deadline_is_sent_and_checked_before_any_io(
    client: KrakenClient, sb: Sandbox, manual_clock: ManualClock
) -> None:
    pair = pair_info(client, "XBTUSD")
    price = far_below(client, pair)
    deadline = at(manual_clock, 30)
    placed = client.add_order(resting_buy(pair, price, deadline=deadline))
    assert order(client, placed.txids[0]).status is OrderStatus.OPEN
    # The sandbox read the deadline the client sent (RFC3339, milliseconds).
    held = sb.exchange.accounts[sb.key].orders[placed.txids[0]]
    assert held.deadline == pytest.approx(deadline.timestamp(), abs=1e-3)
    with pytest.raises(ValidationError) as caught:
        client.add_order(resting_buy(pair, price, deadline=at(manual_clock, -1)))
    assert caught.value.rule == "deadline-range"
    # A deadline already past when the sandbox reads it is an invalid argument there.
    stale = at(manual_clock, -5).strftime("%Y-%m-%dT%H:%M:%SZ")
    raw: dict[str, Any] = resting_buy(pair, price).to_params()
    with pytest.raises(InvalidArguments):
        client.call("AddOrder", **raw, deadline=stale)
    assert len(client.open_orders()) == 1


def test_oflags(client: KrakenClient) -> None:
    pair = pair_info(client, "XBTUSD")
    price = far_below(client, pair)
    post = client.add_order(resting_buy(pair, price, oflags="post"))
    assert "post" in order(client, post.txids[0]).oflags
    fee_in_base = client.add_order(resting_buy(pair, price, oflags=["fcib"]))
    flags = order(client, fee_in_base.txids[0]).oflags
    assert "fcib" in flags
    assert "fciq" not in flags
    last = client.ticker("XBTUSD")["XXBTZUSD"].last
    crossing = quantize_price(pair, last * 2)
    with pytest.raises(PostOnlyOrder):
        client.add_order(resting_buy(pair, crossing, oflags="post"))
    assert len(client.open_orders()) == 2


def test_timeinforce_and_start_and_expiry_follow_the_clock(
    client: KrakenClient, manual_clock: ManualClock
) -> None:
    pair = pair_info(client, "XBTUSD")
    price = far_below(client, pair)
    ioc = client.add_order(resting_buy(pair, price, timeinforce="IOC"))
    gone = order(client, ioc.txids[0])
    assert gone.status is OrderStatus.CANCELED
    assert gone.vol_exec == 0
    expiry = int(manual_clock.time()) + 3600
    gtd = client.add_order(resting_buy(pair, price, timeinforce="GTD", expiretm=expiry))
    later = client.add_order(resting_buy(pair, price, starttm="+600"))
    assert order(client, gtd.txids[0]).status is OrderStatus.OPEN
    assert order(client, later.txids[0]).status is OrderStatus.PENDING
    manual_clock.advance(601)
    assert order(client, later.txids[0]).status is OrderStatus.OPEN
    manual_clock.set(expiry + 1)
    expired = order(client, gtd.txids[0])
    assert expired.status is OrderStatus.EXPIRED
    assert expired.closetm == expiry
    assert expired.expiretm == expiry


def test_conditional_close_is_placed_when_the_order_fills(client: KrakenClient) -> None:
    pair = pair_info(client, "XBTUSD")
    last = client.ticker("XBTUSD")["XXBTZUSD"].last
    target = quantize_price(pair, last * Decimal("1.5"))
    result = client.add_order(
        pair="XBTUSD",
        side="buy",
        ordertype="limit",
        price=quantize_price(pair, last * Decimal("1.01")),  # crosses: fills at once
        volume="0.001",
        close_ordertype="limit",
        close_price=target,
    )
    assert result.descr_close is not None
    parent = order(client, result.txids[0])
    assert parent.status is OrderStatus.CLOSED
    (child,) = client.open_orders()
    assert child.refid == parent.txid
    assert child.side is Side.SELL
    assert child.descr.price == target
    assert child.vol == parent.vol_exec


def test_add_order_batch(client: KrakenClient, manual_clock: ManualClock) -> None:
    pair = pair_info(client, "XBTUSD")
    price = far_below(client, pair)
    step = pair.tick_size
    assert step is not None
    requests = [resting_buy(pair, price - i * step, cl_ord_id=f"batch-{i}") for i in range(3)]
    checked = client.add_order_batch(requests, validate=True)
    assert checked.validated
    assert checked.txids == (None, None, None)
    assert client.open_orders().orders == ()
    placed = client.add_order_batch(requests, deadline=at(manual_clock, 20))
    assert all(placed.txids)
    for i, txid in enumerate(placed.txids):
        (found,) = client.open_orders(cl_ord_id=f"batch-{i}")
        assert found.txid == txid
        assert found.descr.price == price - i * step
    # One order the account cannot pay for fails alone; the rest of the batch goes in.
    rich = OrderRequest(pair="XBTUSD", side="buy", ordertype="limit", price=price, volume="1000")
    mixed = client.add_order_batch([resting_buy(pair, price, userref=new_userref()), rich])
    assert mixed.items[0].txid is not None
    assert mixed.items[1].txid is None
    assert mixed.items[1].error is not None
    assert mixed.items[1].error.startswith("EOrder:Insufficient funds")
    assert len(client.open_orders()) == 4


def test_amend_order_keeps_the_ids(client: KrakenClient) -> None:
    pair = pair_info(client, "XBTUSD")
    price = far_below(client, pair)
    ref = new_userref()
    first = client.add_order(resting_buy(pair, price, userref=ref)).txids[0]
    second = client.add_order(resting_buy(pair, price, cl_ord_id="amend-me")).txids[0]
    assert pair.tick_size is not None
    new_price = price - 10 * pair.tick_size
    amended = client.amend_order(txid=first, limit_price=new_price, order_qty="0.01")
    assert amended.amend_id
    changed = order(client, first)
    assert (changed.txid, changed.userref) == (first, ref)
    assert (changed.descr.price, changed.vol) == (new_price, Decimal("0.01"))
    assert "amended" in changed.misc
    client.amend_order(cl_ord_id="amend-me", order_qty="0.02")
    assert order(client, second).vol == Decimal("0.02")
    assert order(client, second).cl_ord_id == "amend-me"
    # A relative price goes through as Kraken defines it: 1 % under the last trade.
    last = client.ticker("XBTUSD")["XXBTZUSD"].last
    client.amend_order(cl_ord_id="amend-me", limit_price="-1%")
    relative = order(client, second)
    assert relative.descr.price == quantize_price(pair, last - last / 100, rounding=ROUND_DOWN)
    assert relative.status is OrderStatus.OPEN
    with pytest.raises(UnknownOrder):
        client.amend_order(txid="OAAAAA-BBBBB-CCCCCC", order_qty="0.01")


def test_cancel_by_txid_userref_and_cl_ord_id(client: KrakenClient) -> None:
    pair = pair_info(client, "XBTUSD")
    price = far_below(client, pair)
    group = new_userref()
    grouped = [client.add_order(resting_buy(pair, price, userref=group)).txids[0] for _ in range(3)]
    single = client.add_order(resting_buy(pair, price)).txids[0]
    named = client.add_order(resting_buy(pair, price, cl_ord_id="cancel-me")).txids[0]
    # The seed: one userref on three orders, one CancelOrder, count 3.
    assert client.cancel_order(userref=group).count == 3
    assert client.cancel_order(txid=single).count == 1
    assert client.cancel_order(cl_ord_id="cancel-me").count == 1
    assert client.open_orders().orders == ()
    closed = client.query_orders([*grouped, single, named]).by_txid()
    assert {o.status for o in closed.values()} == {OrderStatus.CANCELED}
    assert [o.userref for o in closed.values()].count(group) == 3
    with pytest.raises(UnknownOrder):
        client.cancel_order(userref=group)
    with pytest.raises(UnknownOrder):
        client.cancel_order(txid=single)


def test_cancel_order_batch_and_cancel_all(client: KrakenClient) -> None:
    pair = pair_info(client, "ETHUSD")
    price = far_below(client, pair)
    group = new_userref()
    by_txid = client.add_order(resting_buy(pair, price)).txids[0]
    grouped = [client.add_order(resting_buy(pair, price, userref=group)).txids[0] for _ in range(2)]
    client.add_order(resting_buy(pair, price, cl_ord_id="batch-cancel"))
    survivors = [client.add_order(resting_buy(pair, price)).txids[0] for _ in range(3)]
    result = client.cancel_order_batch(
        txids=[by_txid], userrefs=[group], cl_ord_ids=["batch-cancel"]
    )
    assert result.count == 4
    assert {o.txid for o in client.open_orders()} == set(survivors)
    assert order(client, grouped[0]).status is OrderStatus.CANCELED
    assert client.cancel_all().count == 3
    assert client.open_orders().orders == ()
    assert client.cancel_all().count == 0


def test_cancel_order_batch_cl_ord_ids_in_either_shape(client: KrakenClient) -> None:
    # The spec's schema: objects ({"cl_ord_id": ...}), which the client sends; WebSocket and
    # other clients use plain strings. The sandbox takes both.
    pair = pair_info(client, "ETHUSD")
    price = far_below(client, pair)
    for name in ("obj-1", "str-1"):
        client.add_order(resting_buy(pair, price, cl_ord_id=name))
    assert client.cancel_order_batch(cl_ord_ids=["obj-1"]).count == 1
    assert client.call("CancelOrderBatch", cl_ord_ids=["str-1"])["count"] == 1
    assert client.open_orders().orders == ()


def test_dead_mans_switch_fires_when_the_clock_passes_it(
    client: KrakenClient, manual_clock: ManualClock
) -> None:
    pair = pair_info(client, "XBTUSD")
    placed = [client.add_order(resting_buy(pair, far_below(client, pair))).txids[0] for _ in "ab"]
    armed = client.cancel_all_orders_after(60)
    now = armed.current_time.timestamp()
    assert now == manual_clock.time()
    assert armed.trigger_time is not None
    assert armed.trigger_time.timestamp() == now + 60
    manual_clock.advance(40)
    # Calling again moves the trigger: 40 s in, it is now 60 s from here.
    rearmed = client.cancel_all_orders_after(60)
    assert rearmed.trigger_time is not None
    trigger = rearmed.trigger_time.timestamp()
    assert trigger == manual_clock.time() + 60
    manual_clock.set(now + 61)  # past the first trigger, before the second
    assert len(client.open_orders()) == 2
    assert manual_clock.time() < trigger
    manual_clock.set(trigger + 1)
    assert client.open_orders().orders == ()
    for txid in placed:
        cancelled = order(client, txid)
        assert cancelled.status is OrderStatus.CANCELED
        assert cancelled.closetm == trigger
    # Disarmed: no trigger time, and new orders stay.
    off = client.cancel_all_orders_after(0)
    assert off.trigger_time is None
    client.add_order(resting_buy(pair, far_below(client, pair)))
    manual_clock.advance(3600)
    assert len(client.open_orders()) == 1


def test_order_queries_filter_by_userref_and_cl_ord_id(client: KrakenClient) -> None:
    pair = pair_info(client, "XBTUSD")
    price = far_below(client, pair)
    group, other = new_userref(), new_userref()
    mine = [client.add_order(resting_buy(pair, price, userref=group)).txids[0] for _ in range(2)]
    theirs = client.add_order(resting_buy(pair, price, userref=other)).txids[0]
    assert {o.txid for o in client.open_orders(userref=group)} == set(mine)
    assert client.cancel_order(txid=mine[0]).count == 1
    closed = client.closed_orders(userref=group)
    assert [o.txid for o in closed] == [mine[0]]
    assert closed.count == 1
    assert client.closed_orders(userref=other).orders == ()
    # QueryOrders: open and closed alike; userref filters on top of the txids.
    every = client.query_orders([*mine, theirs]).by_txid()
    assert [every[t].status for t in (*mine, theirs)] == [
        OrderStatus.CANCELED,
        OrderStatus.OPEN,
        OrderStatus.OPEN,
    ]
    assert set(client.query_orders([*mine, theirs], userref=group).by_txid()) == set(mine)
    # A cl_ord_id is free again once its order closed: ClosedOrders finds both uses.
    for _ in range(2):
        client.add_order(resting_buy(pair, price, cl_ord_id="reused"))
        client.cancel_order(cl_ord_id="reused")
    reused = client.closed_orders(cl_ord_id="reused")
    assert reused.count == 2
    assert {o.cl_ord_id for o in reused} == {"reused"}
    assert client.open_orders(cl_ord_id="reused").orders == ()
    with_trades = client.open_orders(trades=True, userref=other)
    assert [o.txid for o in with_trades] == [theirs]


def test_iter_closed_orders_with_orders_closing_mid_iteration(
    client: KrakenClient, manual_clock: ManualClock
) -> None:
    xbt, eth = pair_info(client, "XBTUSD"), pair_info(client, "ETHUSD")
    xbt_price, eth_price = far_below(client, xbt), far_below(client, eth)
    # Long-lived open orders first: opened before everything the iterator will see ...
    still_open = [
        client.add_order(resting_buy(p, price)).txids[0]
        for p, price in ((xbt, xbt_price), (eth, eth_price))
        for _ in range(50)
    ]
    # ... then more than a page of closed history (IOC orders close at once).
    closed_before = []
    for i in range(60):
        manual_clock.advance(1)
        p, price = (xbt, xbt_price) if i % 2 else (eth, eth_price)
        closed_before.append(client.add_order(resting_buy(p, price, timeinforce="IOC")).txids[0])
    pages = client.iter_closed_orders()
    seen = [o.txid for o in itertools.islice(pages, 50)]
    # While the iterator holds one page, 100 orders opened earlier close.
    manual_clock.advance(1)
    assert client.cancel_all().count == len(still_open)
    seen += [o.txid for o in pages]
    assert [txid for txid, n in Counter(seen).items() if n > 1] == []
    assert set(seen) == set(closed_before)
    assert seen == list(reversed(closed_before))  # newest first
    # Afterwards everything is there, and QueryOrders asks 50 at a time. (A minute first, so
    # the REST counter has room: pacing to its exact edge trips a sandbox bug, see below.)
    manual_clock.advance(60)
    everything = [o.txid for o in client.iter_closed_orders()]
    assert set(everything) == set(closed_before) | set(still_open)
    assert len(everything) == len(set(everything))
    statuses = client.query_orders(still_open + closed_before).by_txid()
    assert len(statuses) == 160
    assert {o.status for o in statuses.values()} == {OrderStatus.CANCELED}


# -- funding ---------------------------------------------------------------------------------


def test_deposit_methods(client: KrakenClient, sb: Sandbox) -> None:
    for asset in ("XBT", "XXDG", "ZUSD"):
        spec = sb.exchange.assets.get(asset)
        assert spec is not None
        (method,) = client.deposit_methods(asset)
        assert method.method == spec.method
        assert method.limit is None  # Kraken's "false": no limit
        assert method.gen_address is spec.crypto
        assert method.minimum == spec.deposit_minimum
    with pytest.raises(UnknownAsset):
        client.deposit_methods("NOPE")


def test_deposit_statuses_advance_with_the_clock_and_page_by_cursor(
    client: KrakenClient, sb: Sandbox, manual_clock: ManualClock
) -> None:
    config = sb.exchange.config
    seeded = client.deposit_status()
    assert [d.status for d in seeded.items] == [FundingStatus.FAILURE, FundingStatus.SUCCESS]
    before = client.balance()["XXDG"]
    refids = []
    for amount in ("500", "600", "700"):
        manual_clock.advance(1)
        refids.append(sb.exchange.deposit(sb.key, "XXDG", amount))
    newest = client.deposit_status(asset="XDG").items[0]
    assert (newest.refid, newest.status, newest.amount) == (
        refids[-1],
        FundingStatus.SETTLED,
        Decimal("700"),
    )
    assert newest.txid is not None
    assert client.balance()["XXDG"] == before  # credited only on Success
    manual_clock.advance(config.deposit_success_after)
    statuses = {d.refid: d.status for d in client.deposit_status().items}
    assert {statuses[r] for r in refids} == {FundingStatus.SUCCESS}
    assert client.balance()["XXDG"] == before + 1800
    # Paged one at a time by cursor: the same list as unpaged, newest first, each once.
    unpaged = [d.refid for d in client.deposit_status().items]
    assert [d.refid for d in client.iter_deposit_status(limit=1)] == unpaged
    page = client.deposit_status(cursor=True, limit=2)
    assert [d.refid for d in page.items] == unpaged[:2]
    assert page.next_cursor is not None
    page = client.deposit_status(cursor=page.next_cursor, limit=2)
    assert [d.refid for d in page.items] == unpaged[2:4]
    page = client.deposit_status(cursor=page.next_cursor, limit=2)
    assert [d.refid for d in page.items] == unpaged[4:]
    assert page.next_cursor is None


def test_withdrawal_goes_through_the_seed_statuses(
    client: KrakenClient, sb: Sandbox, manual_clock: ManualClock
) -> None:
    config = sb.exchange.config
    spec = sb.exchange.assets.get("XXDG")
    assert spec is not None
    before = client.balance()["XXDG"]
    info = client.withdraw_info("XDG", "sandbox", "100")
    assert (info.method, info.fee) == (spec.method, spec.withdraw_fee)
    assert info.amount == 100 - spec.withdraw_fee
    assert info.limit == before
    refid = client.withdraw("XDG", "sandbox", "100")
    assert client.balance()["XXDG"] == before - 100  # net of pending withdrawals
    seen = []
    for wait in (
        0,
        config.withdraw_pending_after,
        config.withdraw_settled_after,
        config.withdraw_success_after,
    ):
        manual_clock.advance(wait)
        (entry,) = [w for w in client.withdraw_status(asset="XDG").items if w.refid == refid]
        seen.append(entry)
    assert [w.status for w in seen] == [
        FundingStatus.INITIAL,
        FundingStatus.PENDING,
        FundingStatus.SETTLED,
        FundingStatus.SUCCESS,
    ]
    # The blockchain txid appears at Settled, as in the seed's examples.
    assert [w.txid is not None for w in seen] == [False, False, True, True]
    assert {(w.amount, w.fee) for w in seen} == {(100 - spec.withdraw_fee, spec.withdraw_fee)}
    assert client.balance()["XXDG"] == before - 100


def test_withdraw_status_pages_by_cursor(
    client: KrakenClient, sb: Sandbox, manual_clock: ManualClock
) -> None:
    made = []
    for amount in ("30", "40", "50", "60", "70"):
        manual_clock.advance(1)
        made.append(client.withdraw("XDG", "sandbox", amount))
    unpaged = client.withdraw_status()
    assert unpaged.next_cursor is None
    refids = [w.refid for w in unpaged.items]
    assert refids[:5] == list(reversed(made))
    assert len(refids) == 7  # and the two the seed history holds
    assert [w.refid for w in client.iter_withdraw_status(limit=2)] == refids
    page = client.withdraw_status(cursor=True, limit=3)
    assert [w.refid for w in page.items] == refids[:3]
    assert page.next_cursor is not None
    manual_clock.advance(1)
    late = client.withdraw("XDG", "sandbox", "80")
    # A cursor continues where it was, unmoved by withdrawals made since.
    page = client.withdraw_status(cursor=page.next_cursor, limit=3)
    assert [w.refid for w in page.items] == refids[3:6]
    assert client.withdraw_status().items[0].refid == late


def test_withdraw_cancel_and_refusals(
    client: KrakenClient, sb: Sandbox, manual_clock: ManualClock
) -> None:
    before = client.balance()["XXDG"]
    refid = client.withdraw("XDG", "sandbox", "100")
    assert client.withdraw_cancel("XDG", refid) is True
    (entry,) = [w for w in client.withdraw_status().items if w.refid == refid]
    assert entry.status_prop is StatusProp.CANCEL_PENDING
    assert client.withdraw_cancel("XDG", refid) is False  # already asked
    manual_clock.advance(sb.exchange.config.withdraw_cancel_after)
    (entry,) = [w for w in client.withdraw_status().items if w.refid == refid]
    assert (entry.status, entry.status_prop) == (FundingStatus.FAILURE, StatusProp.CANCELED)
    assert client.balance()["XXDG"] == before
    with pytest.raises(UnknownReferenceId):
        client.withdraw_cancel("XDG", "AAAAAAA-BBBBBB-CCCCCC")
    with pytest.raises(UnknownWithdrawKey):
        client.withdraw("XDG", "no-such-key", "100")
    with pytest.raises(MaxFeeExceeded):
        client.withdraw("XDG", "sandbox", "100", max_fee="0.5")
    sb.exchange.next_withdrawal_outcome(sb.key, "failure")
    failing = client.withdraw("XDG", "sandbox", "100")
    manual_clock.advance(3600)
    (entry,) = [w for w in client.withdraw_status().items if w.refid == failing]
    assert entry.status is FundingStatus.FAILURE
    assert client.balance()["XXDG"] == before


def test_a_withdraw_cancel_whose_answer_was_lost_is_not_repeated(
    client: KrakenClient, sb: Sandbox
) -> None:
    refid = client.withdraw("XDG", "sandbox", "100")
    sb.faults.add(method="WithdrawCancel", kind="drop_after_commit")
    # A repeat would answer false ("already asked"), which reads as "too late to cancel":
    # the caller gets the ambiguity instead, and WithdrawStatus tells what happened.
    with pytest.raises(ConnectionLost) as caught:
        client.withdraw_cancel("XDG", refid)
    assert caught.value.may_have_reached
    assert len(sb.faults.fired) == 1
    (entry,) = [w for w in client.withdraw_status().items if w.refid == refid]
    assert entry.status_prop is StatusProp.CANCEL_PENDING


def test_withdrawal_on_hold_waits_for_release(
    client: KrakenClient, sb: Sandbox, manual_clock: ManualClock
) -> None:
    config = sb.exchange.config
    sb.exchange.next_withdrawal_outcome(sb.key, "onhold")
    refid = client.withdraw("XDG", "sandbox", "100")

    def entry() -> Any:
        (found,) = [w for w in client.withdraw_status().items if w.refid == refid]
        return found

    manual_clock.advance(config.withdraw_pending_after)
    held = entry()
    assert (held.status, held.status_prop) == (FundingStatus.ON_HOLD, StatusProp.ONHOLD)
    assert held.status_raw == "On hold"
    manual_clock.advance(3600)
    assert entry().status_prop is StatusProp.ONHOLD
    sb.exchange.release_funding(sb.key, refid)  # the funding team's manual check
    manual_clock.advance(config.withdraw_settled_after)
    settled = entry()
    assert (settled.status, settled.status_prop) == (FundingStatus.SETTLED, None)
    assert settled.txid is not None
    manual_clock.advance(config.withdraw_success_after)
    assert entry().status is FundingStatus.SUCCESS


def test_withdraw_status_names_the_withdrawal_key(client: KrakenClient) -> None:
    refid = client.withdraw("XDG", "sandbox", "100")
    (entry,) = [w for w in client.withdraw_status().items if w.refid == refid]
    assert entry.key == "sandbox"


# -- credentials and nonces ------------------------------------------------------------------


def test_secret_never_in_logs_errors_or_transcript(
    sb: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    stream = io.StringIO()
    # Nothing to scrub: the secret only signs, it never goes on the wire.
    transport = Transport(transcript=Transcript(stream))
    client = sb.client(transport=transport)
    texts: list[str] = []
    sb.faults.add(method="Balance", kind="drop_after_commit")
    sb.faults.add(method="AddOrder", kind="html", status=403)
    sb.faults.add(method="OpenOrders", kind="unavailable", count=4)
    with caplog.at_level(logging.DEBUG):
        client.balance()  # retried after the lost answer
        pair = pair_info(client, "XBTUSD")
        for call in (
            lambda: client.add_order(resting_buy(pair, far_below(client, pair))),
            lambda: client.cancel_order(txid="OAAAAA-BBBBB-CCCCCC"),
            client.open_orders,
            lambda: client.withdraw("XDG", "nope", "100"),
        ):
            with pytest.raises(OmsError) as caught:
                call()
            texts += [str(caught.value), repr(caught.value)]
    client.close()
    transcript = stream.getvalue()
    assert len(texts) == 8
    assert "API-Sign: <redacted>" in transcript
    assert sb.key not in transcript  # API-Key is cut to its first characters
    assert sb.key[:4] + "…" in transcript
    logged = [caplog.text, *(r.getMessage() for r in caplog.records)]
    for text in (*texts, *logged, transcript, repr(client), repr(client.credentials)):
        assert sb.secret not in text


def test_nonce_file_lives_under_the_data_dir(
    client: KrakenClient, sb: Sandbox, oms_data_dir: Path
) -> None:
    client.balance()
    path = client.nonce_source.path
    assert path.is_relative_to(oms_data_dir)
    assert path.name.startswith(key_fingerprint(sb.key)[:40])
    assert sb.key not in str(path)
    # The mark on disk is the last nonce the sandbox accepted for the key.
    assert int(path.read_text()) == sb.exchange.accounts[sb.key].last_nonce


def test_invalid_nonce_after_a_larger_scale_nonce(
    sb: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fingerprint = key_fingerprint(sb.key)
    millis = sb.client(nonce_source=NonceSource(fingerprint, scale="ms"))
    # Another program on the same key, with its own nonce file and nanosecond nonces.
    nanos = sb.client(nonce_source=NonceSource(fingerprint, directory=tmp_path / "other"))
    with millis, nanos:
        millis.balance()
        nanos.balance()
        with caplog.at_level(logging.WARNING), pytest.raises(InvalidNonce) as caught:
            millis.balance()
        # The key itself is fine: the program with the larger nonces goes on working.
        assert dict(nanos.balance()) == sb.exchange.balances(sb.key)
    assert caught.value.retry_safe
    assert "not larger than the last one" in str(caught.value)
    assert "nanoseconds" in str(caught.value)
    # Retried once with a fresh nonce (which cannot help here), then raised.
    assert sum("InvalidNonce" in r.getMessage() for r in caplog.records) == 1


# -- faults through the real HTTP client -----------------------------------------------------

# (fault, error class, may_have_reached (None: a Kraken answer), outcome_known, order exists)
ADD_ORDER_FAULTS: list[tuple[dict[str, Any], type[OmsError], bool | None, bool, bool]] = [
    ({"kind": "drop_after_commit"}, ConnectionLost, True, False, True),
    ({"kind": "drop_before_commit"}, ConnectionLost, True, False, False),
    ({"kind": "html", "status": 502, "when": "before"}, HTTPStatusError, True, False, False),
    ({"kind": "html", "status": 520}, HTTPStatusError, True, False, True),
    ({"kind": "html", "status": 403}, HTTPStatusError, True, False, False),
    ({"kind": "delay", "delay": 5.0}, RequestTimeout, True, False, True),
    ({"kind": "unavailable"}, ServiceUnavailable, None, False, False),
    ({"kind": "unavailable", "when": "after"}, ServiceUnavailable, None, False, True),
    ({"kind": "busy"}, ServiceBusy, None, False, False),
    ({"kind": "rate_limit"}, OrderRateLimitExceeded, None, True, False),
    (
        {"kind": "error", "error": "EGeneral:Internal error", "when": "after"},
        InternalError,
        None,
        False,
        True,
    ),
]


def faulted_client(sb: Sandbox, fault: dict[str, Any]) -> KrakenClient:
    """A client for the call that meets ``fault``: with a short read timeout when the fault is
    a delay (0.2 s of real time), the default otherwise (a slow machine is no fault)."""
    return sb.client(timeout=(1.0, 0.2)) if fault["kind"] == "delay" else sb.client()


@pytest.mark.parametrize(
    ("fault", "error", "reached", "known", "exists"),
    ADD_ORDER_FAULTS,
    ids=[f"{f['kind']}-{f.get('status', '')}{f.get('when', '')}" for f, *_ in ADD_ORDER_FAULTS],
)
def test_add_order_faults_map_to_errors(
    client: KrakenClient,
    sb: Sandbox,
    fault: dict[str, Any],
    error: type[OmsError],
    reached: bool | None,
    known: bool,
    exists: bool,
) -> None:
    pair = pair_info(client, "XBTUSD")
    price = far_below(client, pair)
    ref = new_userref()
    sb.faults.add(method="AddOrder", **fault)
    with faulted_client(sb, fault) as placing, pytest.raises(error) as caught:
        placing.add_order(resting_buy(pair, price, userref=ref))
    raised = caught.value
    assert raised.outcome_known is known
    if reached is None:
        assert isinstance(raised, KrakenError)
    else:
        assert isinstance(raised, TransportError)
        assert raised.may_have_reached is reached
    if isinstance(raised, HTTPStatusError):
        assert raised.status_code == fault["status"]
        assert raised.cloudflare
    # Never repeated: at most the one order, and only when the fault struck after commit.
    assert len(sb.faults.fired) == 1
    assert len(client.open_orders(userref=ref)) == int(exists)


READ_FAULTS: list[dict[str, Any]] = [
    {"kind": "drop_after_commit"},
    {"kind": "drop_before_commit"},
    {"kind": "delay", "delay": 5.0},
    {"kind": "delay", "delay": 0.25, "when": "before"},
    {"kind": "html", "status": 502},
    {"kind": "html", "status": 520, "when": "before"},
    {"kind": "unavailable"},
    {"kind": "busy"},
    {"kind": "rate_limit"},
    {"kind": "error", "error": "EGeneral:Internal error"},
]


@pytest.mark.parametrize(
    "fault", READ_FAULTS, ids=lambda f: f"{f['kind']}-{f.get('status', '')}{f.get('when', '')}"
)
def test_reads_are_retried_through_faults(
    client: KrakenClient, sb: Sandbox, manual_clock: ManualClock, fault: dict[str, Any]
) -> None:
    expected = client.balance()
    start = manual_clock.time()
    sb.faults.add(method="Balance", **fault)
    with faulted_client(sb, fault) as reading:
        assert reading.balance() == expected
    assert len(sb.faults.fired) == 1
    assert manual_clock.time() > start  # the back-off moved the sandbox clock, not real time


def test_a_rate_limited_read_gives_up_after_max_attempts(client: KrakenClient, sb: Sandbox) -> None:
    sb.faults.add(method="Balance", kind="rate_limit", count=10)
    with pytest.raises(APIRateLimitExceeded):
        client.balance()
    assert len(sb.faults.fired) == client.retry.max_attempts


def test_a_call_paced_to_the_edge_of_the_rest_counter_is_accepted(
    client: KrakenClient, sb: Sandbox, manual_clock: ManualClock
) -> None:
    # Minimal repro without HTTP: DecayingCounter(15.0, T0).would_exceed(T0 + 1 / 0.33, 0.33,
    # 1, 15) is True with T0 = 1.7e9, since level() gives 14.0000000095 instead of 14.
    limits = sb.exchange.accounts[sb.key].limits
    start = manual_clock.time()
    for _ in range(int(limits.rest_max)):
        client.balance()  # fills the counter, no wait needed
    assert manual_clock.time() == start
    # The client waits until one point has decayed, then sends: that call must be accepted.
    client.balance()
    assert manual_clock.time() == pytest.approx(start + 1 / limits.rest_decay)


def test_a_cancel_whose_answer_was_lost_is_retried_and_finds_nothing(
    client: KrakenClient, sb: Sandbox
) -> None:
    pair = pair_info(client, "XBTUSD")
    txid = client.add_order(resting_buy(pair, far_below(client, pair))).txids[0]
    sb.faults.add(method="CancelOrder", kind="drop_after_commit")
    with pytest.raises(UnknownOrder):
        client.cancel_order(txid=txid)
    assert order(client, txid).status is OrderStatus.CANCELED


def test_a_deadline_is_checked_again_after_the_pair_rules_are_fetched(
    sb: Sandbox, manual_clock: ManualClock
) -> None:
    # Fetching AssetPairs takes time: a deadline still 20 s ahead when add_order starts is
    # past once the rules are in, and the order must not leave with it.
    sent: list[str] = []

    def slow_rules(method: str, private: bool, error: Exception | None) -> None:
        sent.append(method)
        if method == "AssetPairs":
            manual_clock.advance(30)

    with sb.client() as reader:
        pair = pair_info(reader, "XBTUSD")
        price = far_below(reader, pair)
    with sb.client(hooks=[slow_rules]) as client:
        with pytest.raises(ValidationError) as caught:
            client.add_order(resting_buy(pair, price, deadline=at(manual_clock, 20)))
        assert caught.value.rule == "deadline-range"
        assert sent == ["AssetPairs"]
        # With the rules known, the same order with a fresh deadline leaves at once.
        placed = client.add_order(resting_buy(pair, price, deadline=at(manual_clock, 20)))
        assert sent == ["AssetPairs", "AddOrder"]
        assert order(client, placed.txids[0]).status is OrderStatus.OPEN

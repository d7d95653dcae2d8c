"""The sandbox market's tape is deterministic, pages like Kraken's Trades, and OHLC agrees."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oms.sandbox.market import (
    DEFAULT_PAIRS,
    OHLC_INTERVALS,
    OHLC_MAX_BARS,
    Market,
    MarketTrade,
    PairSpec,
)

GENESIS = 1_700_000_000.0
NS = 1_000_000_000

_HYPO = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def small_market(seed: int = 0, **kw: object) -> Market:
    """A market with a short, thin history so whole-tape checks stay fast."""
    params: dict[str, object] = {"history": 3 * 3600, "trades_per_hour": 120}
    params.update(kw)
    return Market(seed=seed, genesis=GENESIS, **params)  # type: ignore[arg-type]


def whole_tape(market: Market, pair: str, count: int = 1000) -> list[MarketTrade]:
    out: list[MarketTrade] = []
    since = 0
    while True:
        page, last = market.trades(pair, since, count)
        if not page:
            assert last == since
            return out
        assert last == page[-1].time_ns
        out.extend(page)
        since = last


# -- pairs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "pair_id"),
    [
        ("XXBTZUSD", "XXBTZUSD"),
        ("xbtusd", "XXBTZUSD"),
        ("XBT/USD", "XXBTZUSD"),
        ("btc/usd", "XXBTZUSD"),
        ("ETHUSD", "XETHZUSD"),
        ("eth/usd", "XETHZUSD"),
        ("XDGUSD", "XDGUSD"),
        ("DOGE/USD", "XDGUSD"),
        ("NOTAPAIR", None),
    ],
)
def test_pair_lookup_by_any_name(name: str, pair_id: str | None) -> None:
    spec = small_market().pair(name)
    assert (spec.pair_id if spec else None) == pair_id


@pytest.mark.parametrize("spec", DEFAULT_PAIRS, ids=lambda s: s.altname)
def test_default_pairs_are_consistent(spec: PairSpec) -> None:
    assert spec.tick_size == Decimal(1).scaleb(-spec.pair_decimals)
    assert spec.start_price % spec.tick_size == 0
    info = spec.asset_pair_info()
    assert info["altname"] == spec.altname
    assert Decimal(info["ordermin"]) == spec.ordermin
    assert PairSpec.from_dict(spec.to_dict()) == spec


def test_pair_spec_refuses_off_tick_start_price() -> None:
    base = DEFAULT_PAIRS[0].to_dict()
    base["start_price"] = "65000.05"
    with pytest.raises(ValueError, match="tick_size"):
        PairSpec.from_dict(base)


# -- determinism -----------------------------------------------------------------------------


@_HYPO
@given(
    seed=st.integers(0, 2**32),
    cuts=st.lists(st.floats(0, 4 * 3600, allow_nan=False), max_size=6),
)
def test_price_path_does_not_depend_on_how_time_is_advanced(seed: int, cuts: list[float]) -> None:
    end = GENESIS + 4 * 3600
    one = small_market(seed)
    many = small_market(seed)
    all_at_once = one.advance_to(end)
    stepwise: list[MarketTrade] = []
    for cut in sorted(cuts):
        stepwise.extend(many.advance_to(GENESIS + cut))
    stepwise.extend(many.advance_to(end))
    assert stepwise == all_at_once
    for spec in DEFAULT_PAIRS:
        assert one.last_price(spec.pair_id) == many.last_price(spec.pair_id)
        assert one.trades(spec.pair_id, None, 50) == many.trades(spec.pair_id, None, 50)


def test_seed_changes_the_path_and_genesis_price_is_start_price() -> None:
    a, b = small_market(1), small_market(2)
    assert a.trades("XBTUSD", 0, 100) != b.trades("XBTUSD", 0, 100)
    for spec in DEFAULT_PAIRS:
        # Within a few percent of the start price around genesis (the walk starts there).
        ratio = a.last_price(spec.pair_id) / spec.start_price
        assert Decimal("0.9") < ratio < Decimal("1.1")


def test_advance_returns_only_new_trades_in_time_order() -> None:
    m = small_market()
    assert m.advance_to(GENESIS) == []
    first = m.advance_to(GENESIS + 600)
    assert first
    assert all(GENESIS * NS < t.time_ns <= (GENESIS + 600) * NS for t in first)
    assert [t.time_ns for t in first] == sorted(t.time_ns for t in first)
    assert m.advance_to(GENESIS + 300) == []  # backwards: nothing
    second = m.advance_to(GENESIS + 1200)
    assert min(t.time_ns for t in second) > max(t.time_ns for t in first)


# -- Trades: since / last ------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 7, 1000])
def test_paging_from_zero_visits_every_trade_once_in_order(count: int) -> None:
    m = small_market(history=3600 if count == 1 else 3 * 3600)
    m.advance_to(GENESIS + 900)
    tape = whole_tape(m, "XBTUSD", count)
    assert tape[0].time_ns >= m.first_trade_ns
    assert [t.trade_id for t in tape] == list(range(1, len(tape) + 1))
    times = [t.time_ns for t in tape]
    assert times == sorted(set(times))  # strictly increasing: the cursor is unambiguous
    assert times[-1] <= (GENESIS + 900) * NS


def test_since_is_strictly_after_and_last_is_a_nanosecond_cursor() -> None:
    m = small_market()
    tape = whole_tape(m, "ETHUSD")
    k = len(tape) // 2
    page, last = m.trades("ETHUSD", tape[k].time_ns, 5)
    assert page == tape[k + 1 : k + 6]
    assert last == tape[k + 5].time_ns
    # One nanosecond before a trade still includes it.
    page, _ = m.trades("ETHUSD", tape[k].time_ns - 1, 1)
    assert page == [tape[k]]


def test_without_since_gives_the_latest_trades() -> None:
    m = small_market()
    tape = whole_tape(m, "XDGUSD")
    page, last = m.trades("XDGUSD", None, 10)
    assert page == tape[-10:]
    assert last == tape[-1].time_ns


def test_count_is_capped_at_1000() -> None:
    m = Market(seed=3, genesis=GENESIS, history=86400)
    page, _ = m.trades("XBTUSD", 0, 5000)
    assert len(page) == 1000


def test_trade_rows_have_krakens_shape() -> None:
    m = small_market()
    trade = m.trades("XBTUSD", 0, 1)[0][0]
    price, volume, when, side, otype, misc, trade_id = trade.to_row()
    assert Decimal(str(price)) == trade.price
    assert Decimal(str(volume)) == trade.volume
    assert str(price).split(".")[1].__len__() == 5  # "65000.00000", as Kraken shows it
    assert when == pytest.approx(trade.time_ns / NS)
    assert side in ("b", "s")
    assert otype in ("m", "l")
    assert misc == ""
    assert trade_id == 1


# -- user fills ----------------------------------------------------------------------------


def test_fills_join_the_tape_after_everything_visible() -> None:
    m = small_market()
    m.advance_to(GENESIS + 60)
    before = whole_tape(m, "XBTUSD")
    early = int((GENESIS - 3600) * NS)  # asks for a time in the past
    fill = m.record_fill("XBTUSD", Decimal("64000.0"), Decimal("0.5"), "buy", "limit", early)
    assert fill.time_ns > before[-1].time_ns
    assert fill.trade_id == before[-1].trade_id + 1
    assert (fill.price, fill.volume, fill.side, fill.ordertype) == (
        Decimal("64000.0"),
        Decimal("0.5"),
        "buy",
        "limit",
    )
    page, last = m.trades("XBTUSD", before[-1].time_ns, 1000)
    assert page == [fill]
    assert last == fill.time_ns
    assert m.last_price("XBTUSD") == Decimal("64000.0")
    # Market trades after the fill keep consecutive ids.
    m.advance_to(GENESIS + 1800)
    tape = whole_tape(m, "XBTUSD")
    assert [t.trade_id for t in tape] == list(range(1, len(tape) + 1))
    assert fill in tape


def test_fills_recorded_while_replaying_keep_their_trade_time() -> None:
    """The exchange matches advance_to's trades before anyone reads: fills keep their times."""
    m = small_market()
    new = m.advance_to(GENESIS + 600)
    trigger = new[len(new) // 2]
    fill = m.record_fill(
        trigger.pair_id, trigger.price, trigger.volume, "sell", "limit", trigger.time_ns
    )
    assert trigger.time_ns < fill.time_ns <= trigger.time_ns + 2
    tape = whole_tape(m, trigger.pair_id)
    assert [t.trade_id for t in tape] == list(range(1, len(tape) + 1))
    assert tape[tape.index(fill) - 1].time_ns == trigger.time_ns
    assert tape[-1].time_ns <= (GENESIS + 600) * NS


def test_snapshot_restore_keeps_the_tape() -> None:
    m = small_market(seed=9)
    m.advance_to(GENESIS + 120)
    m.record_fill(
        "ETHUSD", Decimal("3400.00"), Decimal("1.25"), "s", "m", int((GENESIS + 120) * NS)
    )
    m.advance_to(GENESIS + 240)
    restored = Market.restore(m.snapshot())
    assert whole_tape(restored, "ETHUSD") == whole_tape(m, "ETHUSD")
    assert restored.advance_to(GENESIS + 900) == m.advance_to(GENESIS + 900)
    assert restored.ohlc("ETHUSD", 5) == m.ohlc("ETHUSD", 5)


# -- OHLC ----------------------------------------------------------------------------------


def test_ohlc_returns_the_latest_720_bars_at_most() -> None:
    m = Market(seed=1, genesis=GENESIS, history=86400)
    now = GENESIS + 45
    rows, last = m.ohlc("XBTUSD", 1, None, now)
    assert len(rows) == OHLC_MAX_BARS
    current = int(now) - int(now) % 60
    assert rows[-1][0] == current  # the current, uncommitted bar is last
    assert last == current - 60
    assert [r[0] for r in rows] == list(range(current - 719 * 60, current + 60, 60))


def test_ohlc_since_filters_committed_bars_but_keeps_the_current_one() -> None:
    m = small_market()
    now = GENESIS + 3000
    rows, last = m.ohlc("XBTUSD", 5, None, now)
    newer, last2 = m.ohlc("XBTUSD", 5, rows[-4][0], now)
    assert newer == rows[-3:]
    assert last2 == last
    only_current, _ = m.ohlc("XBTUSD", 5, int(now), now)
    assert only_current == rows[-1:]


@pytest.mark.parametrize("bad", [0, 2, 3, 61])
def test_ohlc_refuses_unknown_intervals(bad: int) -> None:
    with pytest.raises(ValueError, match="interval"):
        small_market().ohlc("XBTUSD", bad)


@_HYPO
@given(
    seed=st.integers(0, 1000),
    interval=st.sampled_from(OHLC_INTERVALS[:5]),
    pair=st.sampled_from([p.pair_id for p in DEFAULT_PAIRS]),
    minutes=st.integers(0, 180),
    fill=st.booleans(),
)
def test_ohlc_bars_aggregate_the_trades(
    seed: int, interval: int, pair: str, minutes: int, fill: bool
) -> None:
    m = small_market(seed)
    now = GENESIS + minutes * 60 + 17
    m.advance_to(now)
    spec = m.pair(pair)
    assert spec is not None
    if fill:
        m.record_fill(pair, spec.start_price, spec.ordermin, "sell", "market", int(now * NS))
    rows, last = m.ohlc(pair, interval, None, now)
    tape = whole_tape(m, pair)
    step = interval * 60
    assert last == rows[-1][0] - step
    places = Decimal(1).scaleb(-spec.pair_decimals)
    prev_close: Decimal | None = None
    for bar, o, h, low, c, vwap, volume, count in rows:
        inside = [t for t in tape if bar * NS <= t.time_ns < (bar + step) * NS]
        assert count == len(inside)
        if not inside:
            assert Decimal(volume) == 0
            assert Decimal(o) == Decimal(c) == prev_close
            continue
        prices = [t.price for t in inside]
        assert Decimal(o) == prices[0]
        assert Decimal(c) == prices[-1]
        assert Decimal(h) == max(prices)
        assert Decimal(low) == min(prices)
        total = sum(t.volume for t in inside)
        assert Decimal(volume) == total
        exact = sum(t.price * t.volume for t in inside) / total
        assert abs(Decimal(vwap) - exact) <= places
        prev_close = Decimal(c)


# -- ticker and depth ----------------------------------------------------------------------


def test_ticker_agrees_with_tape_and_book() -> None:
    m = Market(seed=5, genesis=GENESIS, history=2 * 86400, trades_per_hour=60)
    now = GENESIS + 3600
    ticker = m.ticker("XBTUSD", now)
    tape = whole_tape(m, "XBTUSD")
    assert Decimal(ticker["c"][0]) == tape[-1].price
    assert Decimal(ticker["c"][1]) == tape[-1].volume
    day = [t for t in tape if t.time_ns >= int(now * NS) + 1 - 86400 * NS]
    assert ticker["t"][1] == len(day)
    assert Decimal(ticker["v"][1]) == sum(t.volume for t in day)
    assert Decimal(ticker["h"][1]) == max(t.price for t in day)
    assert Decimal(ticker["l"][1]) == min(t.price for t in day)
    midnight = int(now) - int(now) % 86400
    today = [t for t in tape if t.time_ns >= midnight * NS]
    assert ticker["t"][0] == len(today)
    assert Decimal(ticker["o"]) == today[0].price
    book = m.depth("XBTUSD", 3)
    assert ticker["a"][0] == book["asks"][0][0]
    assert ticker["b"][0] == book["bids"][0][0]


@pytest.mark.parametrize("count", [1, 10, 500])
def test_depth_is_a_sorted_book_around_the_last_price(count: int) -> None:
    m = small_market()
    book = m.depth("ETHUSD", count)
    asks = [Decimal(str(a[0])) for a in book["asks"]]
    bids = [Decimal(str(b[0])) for b in book["bids"]]
    assert len(asks) == len(bids) == count
    assert asks == sorted(asks)
    assert bids == sorted(bids, reverse=True)
    assert bids[0] < m.last_price("ETHUSD") < asks[0]
    assert m.depth("ETHUSD", count) == book  # stable between trades
    assert m.quote("ETHUSD") == (bids[0], asks[0])

"""Trade history syncs to exactly the market's tape (no gap, no duplicate) on the nanosecond
cursor, survives interruptions, never loops on a stalled cursor, and OHLC built from it
partitions the trades and agrees with Kraken's committed bars."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from decimal import Decimal

import attrs
import pytest
from history_support import NS, T0, market_tape, short_history_sandbox
from hypothesis import given
from hypothesis import strategies as st
from strategies import positive_decimals

from oms.errors import ConnectError, ValidationError
from oms.history import (
    OHLCCheck,
    StopReason,
    check_recent_ohlc,
    ohlc_from_trades,
    sync_trades,
)
from oms.history_store import HistoryStore
from oms.models import OHLCBar, OHLCPage, OrderType, PublicTrade, Side, TradesPage
from oms.sandbox import Sandbox


@pytest.fixture
def store() -> Iterator[HistoryStore]:
    with HistoryStore(":memory:") as s:
        yield s


def assert_same_as_tape(sb: Sandbox, store: HistoryStore, pair_id: str) -> None:
    tape = market_tape(sb.market, pair_id)
    stored = store.trades(pair_id)
    assert len(stored) == len(tape)
    assert [s.trade_id for s in stored] == [t.trade_id for t in tape]
    for s, t in zip(stored, tape, strict=True):
        assert (s.price, s.volume, s.side.value, s.ordertype.value) == (
            t.price,
            t.volume,
            t.side,
            t.ordertype,
        )
        assert s.time == t.time


# --- paging against the sandbox -------------------------------------------------------------


def test_full_history_over_real_http_has_no_gap_and_no_duplicate(store: HistoryStore) -> None:
    with short_history_sandbox(http=True) as sb:
        assert sb.base_url.startswith("http://127.0.0.1:")
        report = sync_trades(sb.client(), store, "XBTUSD", since=0, pace=0)
        assert report.reason is StopReason.CAUGHT_UP
        assert report.pair == "XXBTZUSD"
        assert_same_as_tape(sb, store, "XXBTZUSD")
        position = store.position("XBTUSD")
        assert position is not None
        assert position.cursor == market_tape(sb.market, "XXBTZUSD")[-1].time_ns


@pytest.mark.parametrize("count", [1000, 317])
def test_small_pages_and_new_trades_later(store: HistoryStore, count: int) -> None:
    with short_history_sandbox(hours=2) as sb:
        client = sb.client()
        first = sync_trades(client, store, "ETHUSD", count=count, pace=0)
        assert first.pages >= 2
        assert first.inserted == first.received - first.duplicates
        sb.clock.advance(1800)  # type: ignore[attr-defined]
        again = sync_trades(client, store, "ETHUSD", count=count, pace=0)
        assert again.start_cursor == first.cursor
        assert again.inserted > 0
        assert_same_as_tape(sb, store, "XETHZUSD")


def test_crash_between_pages_resumes_without_gap_or_duplicate(store: HistoryStore) -> None:
    @attrs.define
    class Flaky:
        """The client, failing on its n-th request as a network loss would."""

        inner: object
        fail_on: int
        calls: int = 0

        def trades(
            self, pair: str, *, since: int | None = None, count: int | None = None
        ) -> TradesPage:
            self.calls += 1
            if self.calls == self.fail_on:
                raise ConnectError("unplugged")
            return self.inner.trades(pair, since=since, count=count)  # type: ignore[attr-defined,no-any-return]

    with short_history_sandbox() as sb:
        flaky = Flaky(sb.client(), fail_on=3)
        with pytest.raises(ConnectError):
            sync_trades(flaky, store, "XBTUSD", count=500, pace=0)
        # Two pages were stored, each with its cursor; nothing after them.
        position = store.position("XBTUSD")
        assert position is not None
        assert store.count("XBTUSD") == 1000
        assert position.cursor == market_tape(sb.market, "XXBTZUSD")[999].time_ns
        report = sync_trades(flaky, store, "XBTUSD", count=500, pace=0)
        assert report.start_cursor == position.cursor
        assert_same_as_tape(sb, store, "XXBTZUSD")


def test_a_cursor_stored_under_the_pair_id_is_found_from_another_name(
    store: HistoryStore,
) -> None:
    with short_history_sandbox(hours=1) as sb:
        client = sb.client()
        first = sync_trades(client, store, "XXBTZUSD", pace=0)
        again = sync_trades(client, store, "xbt/usd", pace=0)
        assert again.start_cursor == first.cursor
        assert again.inserted == 0
        assert store.resolve("XBT/USD") == "XXBTZUSD"


def test_max_pages_and_stop_at_bound_the_run(store: HistoryStore) -> None:
    with short_history_sandbox(hours=3) as sb:
        client = sb.client()
        bounded = sync_trades(client, store, "XBTUSD", count=200, max_pages=2, pace=0)
        assert (bounded.pages, bounded.reason) == (2, StopReason.MAX_PAGES)
        stop = bounded.cursor + 1800 * NS
        until = sync_trades(client, store, "XBTUSD", count=200, stop_at_ns=stop, pace=0)
        assert until.reason is StopReason.STOP_AT
        assert until.cursor >= stop
        # Already past it: no request at all.
        none = sync_trades(client, store, "XBTUSD", stop_at_ns=stop, pace=0)
        assert (none.pages, none.reason) == (0, StopReason.STOP_AT)


# --- stalls, with a fake page source --------------------------------------------------------


def row_trade(i: int) -> PublicTrade:
    return PublicTrade(
        price=Decimal("100.0"),
        volume=Decimal("0.5"),
        time=T0 + i,
        side=Side.SELL,
        ordertype=OrderType.MARKET,
        trade_id=i,
    )


@attrs.define
class FakeTape:
    """Serves pages from a function of (since, call number)."""

    page: Callable[[int, int], TradesPage]
    calls: list[int] = attrs.field(factory=list)

    def trades(
        self, pair: str, *, since: int | None = None, count: int | None = None
    ) -> TradesPage:
        assert since is not None
        self.calls.append(since)
        return self.page(since, len(self.calls))


def test_a_page_whose_last_does_not_advance_stops_the_run(store: HistoryStore) -> None:
    # Every call returns new trades but the same `last`: a loop without a stall check
    # would never end.
    fake = FakeTape(lambda since, n: TradesPage("P", (row_trade(n),), 5 * NS))
    report = sync_trades(fake, store, "P", since=5 * NS, pace=0)
    assert report.reason is StopReason.STALLED
    assert report.stalled
    assert report.stalled_last == 5 * NS
    assert fake.calls == [5 * NS]
    assert store.count("P") == 1


def test_an_empty_last_ends_the_run_with_the_page_stored(store: HistoryStore) -> None:
    # An empty `last` is Kraken's end of pagination: it used to raise ResponseShapeError.
    def page(since: int, n: int) -> TradesPage:
        return TradesPage("P", (row_trade(n),), 4 * NS if n == 1 else None)

    report = sync_trades(FakeTape(page), store, "P", pace=0)
    assert (report.reason, report.pages, report.inserted) == (StopReason.CAUGHT_UP, 2, 2)
    position = store.position("P")
    assert position is not None
    assert position.cursor == 4 * NS


def test_a_cursor_going_backwards_is_a_stall_and_is_not_stored(store: HistoryStore) -> None:
    def page(since: int, n: int) -> TradesPage:
        return TradesPage("P", (row_trade(n),), 10 * NS if n == 1 else 3 * NS)

    report = sync_trades(FakeTape(page), store, "P", pace=0)
    assert report.reason is StopReason.STALLED
    position = store.position("P")
    assert position is not None
    assert position.cursor == 10 * NS


def test_a_page_repeating_only_stored_trades_is_the_present(store: HistoryStore) -> None:
    # Kraken may include the trade at `since`: an unchanged `last` with nothing new is
    # "caught up", not a stall.
    def page(since: int, n: int) -> TradesPage:
        return TradesPage("P", (row_trade(1),), 7 * NS)

    report = sync_trades(FakeTape(page), store, "P", pace=0)
    assert (report.reason, report.pages, report.inserted) == (StopReason.CAUGHT_UP, 2, 1)


def test_requests_are_paced_without_real_sleep(store: HistoryStore) -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    def page(since: int, n: int) -> TradesPage:
        now[0] += 0.25  # the request itself takes a quarter second
        trades = (row_trade(n),) if n <= 3 else ()
        return TradesPage("P", trades, since + NS if trades else since)

    report = sync_trades(FakeTape(page), store, "P", pace=1.0, sleep=sleep, clock=lambda: now[0])
    assert report.pages == 4
    assert slept == [0.75, 0.75, 0.75]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"since": -1}, "since"),
        ({"since": 1.5}, "since"),
        ({"max_pages": 0}, "max_pages"),
        ({"count": 1001}, "count"),
        ({"stop_at_ns": True}, "stop_at_ns"),
        ({"pace": -1.0}, "pace"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(
    store: HistoryStore, kwargs: dict[str, object], field: str
) -> None:
    fake = FakeTape(lambda since, n: TradesPage("P", (), since))
    with pytest.raises(ValidationError) as info:
        sync_trades(fake, store, "P", **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert fake.calls == []


# --- OHLC from trades: properties -------------------------------------------------------------


@st.composite
def tapes(draw: st.DrawFn) -> list[PublicTrade]:
    """Trades within a few hours, times with microseconds, in time order."""
    offsets = draw(st.lists(st.integers(0, 4 * 3600 * 10**6), max_size=60))
    return [
        PublicTrade(
            price=draw(positive_decimals(max_places=5, max_value=10**5)),
            volume=draw(positive_decimals(max_places=8, max_value=10**3)),
            time=T0 + off / 10**6,
            side=draw(st.sampled_from(Side)),
            ordertype=draw(st.sampled_from([OrderType.MARKET, OrderType.LIMIT])),
        )
        for off in sorted(offsets)
    ]


intervals = st.integers(1, 3 * 3600)


@given(trades=tapes(), interval=intervals)
def test_bars_partition_the_trades(trades: list[PublicTrade], interval: int) -> None:
    bars = ohlc_from_trades(trades, interval)
    assert sum(b.count for b in bars) == len(trades)
    assert sum((b.volume for b in bars), Decimal(0)) == sum((t.volume for t in trades), Decimal(0))
    assert [b.time for b in bars] == sorted({b.time for b in bars})
    for bar in bars:
        assert bar.time % interval == 0
        inside = [t for t in trades if bar.time <= t.time < bar.time + interval]
        assert len(inside) == bar.count
        assert (bar.open, bar.close) == (inside[0].price, inside[-1].price)
        assert bar.high >= max(bar.open, bar.close) >= min(bar.open, bar.close) >= bar.low
        assert bar.low <= bar.vwap <= bar.high


@given(trades=tapes(), fine=st.integers(1, 900), factor=st.integers(1, 12))
def test_a_multiple_interval_aggregates_the_finer_bars(
    trades: list[PublicTrade], fine: int, factor: int
) -> None:
    coarse = ohlc_from_trades(trades, fine * factor)
    small = ohlc_from_trades(trades, fine)
    for bar in coarse:
        parts = [b for b in small if bar.time <= b.time < bar.time + fine * factor]
        assert parts
        assert bar.open == parts[0].open
        assert bar.close == parts[-1].close
        assert bar.high == max(b.high for b in parts)
        assert bar.low == min(b.low for b in parts)
        assert bar.count == sum(b.count for b in parts)
        assert bar.volume == sum((b.volume for b in parts), Decimal(0))
        weighted = sum((b.vwap * b.volume for b in parts), Decimal(0)) / bar.volume
        assert abs(weighted - bar.vwap) <= bar.vwap * Decimal("1e-20")
    assert sum(b.count for b in coarse) == sum(b.count for b in small)


@given(trades=tapes(), interval=intervals, shuffle=st.randoms(use_true_random=False))
def test_input_order_does_not_matter_for_distinct_times(
    trades: list[PublicTrade], interval: int, shuffle: object
) -> None:
    distinct = list({t.time: t for t in trades}.values())
    mixed = list(distinct)
    shuffle.shuffle(mixed)  # type: ignore[attr-defined]
    assert ohlc_from_trades(mixed, interval) == ohlc_from_trades(distinct, interval)


@given(trades=tapes(), interval=intervals)
def test_carry_forward_fills_every_gap_at_the_previous_close(
    trades: list[PublicTrade], interval: int
) -> None:
    plain = ohlc_from_trades(trades, interval)
    filled = ohlc_from_trades(trades, interval, carry_forward=True)
    assert [b for b in filled if b.count] == plain
    if plain:
        assert [b.time for b in filled] == list(
            range(plain[0].time, plain[-1].time + interval, interval)
        )
    for prev, bar in itertools.pairwise(filled):
        if bar.count == 0:
            assert bar.open == bar.high == bar.low == bar.close == prev.close
            assert bar.volume == 0


def test_start_and_end_select_whole_bars_and_carry_the_close_in() -> None:
    t0 = int(T0) - int(T0) % 60
    trades = [attrs.evolve(row_trade(i), time=float(t0 + i)) for i in (0, 10, 130, 250)]
    bars = ohlc_from_trades(trades, 60, start=t0 + 60, end=t0 + 240, carry_forward=True)
    assert [b.time - t0 for b in bars] == [60, 120, 180]
    assert [b.count for b in bars] == [0, 1, 0]
    assert bars[0].close == trades[1].price
    assert ohlc_from_trades(trades, 60, start=t0 + 30) == ohlc_from_trades(trades[2:], 60)


def test_vwap_is_sum_of_price_times_volume_over_volume() -> None:
    def t(price: str, volume: str, at: float) -> PublicTrade:
        return attrs.evolve(row_trade(0), price=Decimal(price), volume=Decimal(volume), time=at)

    trades = [t("100", "1", T0), t("200", "3", T0 + 1), t("150", "0.5", T0 + 2)]
    (bar,) = ohlc_from_trades(trades, 60, vwap_places=4)
    expected = (Decimal(100) * 1 + Decimal(200) * 3 + Decimal(150) * Decimal("0.5")) / Decimal(
        "4.5"
    )
    assert bar.vwap == expected.quantize(Decimal("0.0001"))
    assert (bar.open, bar.high, bar.low, bar.close) == (100, 200, 100, 150)


@pytest.mark.parametrize("bad", [0, -60, 1.5, True])
def test_interval_must_be_a_positive_whole_number_of_seconds(bad: object) -> None:
    with pytest.raises(ValidationError):
        ohlc_from_trades([], bad)  # type: ignore[arg-type]


# --- checking against Kraken's OHLC -----------------------------------------------------------


@pytest.mark.parametrize("minutes", [1, 5, 15, 60])
def test_bars_from_stored_trades_match_the_sandboxs_committed_bars(
    store: HistoryStore, minutes: int
) -> None:
    with short_history_sandbox(hours=5) as sb:
        client = sb.client()
        sync_trades(client, store, "XBTUSD", pace=0)
        check = check_recent_ohlc(client, store, "XBTUSD", minutes)
        assert check.mismatches == ()
        assert check.compared >= (4 * 60) // minutes
        assert check.ok


@attrs.define
class Doctored:
    """Kraken's OHLC answer with one committed bar changed."""

    inner: object
    change: Callable[[OHLCBar], OHLCBar]

    def ohlc(self, pair: str, *, interval: int = 1, since: int | None = None) -> OHLCPage:
        page: OHLCPage = self.inner.ohlc(pair, interval=interval, since=since)  # type: ignore[attr-defined]
        bars = list(page.bars)
        bars[-5] = self.change(bars[-5])
        return attrs.evolve(page, bars=tuple(bars))


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        (lambda b: attrs.evolve(b, high=b.high + 1), ("high",)),
        (lambda b: attrs.evolve(b, count=b.count + 1, volume=b.volume * 2), ("volume", "count")),
        (lambda b: attrs.evolve(b, vwap=b.vwap + 5), ("vwap",)),
    ],
)
def test_a_differing_bar_is_reported(
    store: HistoryStore, change: Callable[[OHLCBar], OHLCBar], fields: tuple[str, ...]
) -> None:
    with short_history_sandbox(hours=2) as sb:
        client = sb.client()
        sync_trades(client, store, "XBTUSD", pace=0)
        check = check_recent_ohlc(Doctored(client, change), store, "XBTUSD", 5)
        assert not check.ok
        (mismatch,) = check.mismatches
        assert mismatch.fields == fields
        assert mismatch.theirs is not None
        assert mismatch.ours is not None
        assert mismatch.theirs.time == mismatch.ours.time


def test_nothing_to_compare_without_stored_trades(store: HistoryStore) -> None:
    with short_history_sandbox(hours=1) as sb:
        check = check_recent_ohlc(sb.client(), store, "XBTUSD", 1)
    assert check == OHLCCheck(pair="XXBTZUSD", interval=1, compared=0, mismatches=())
    assert not check.ok


def test_only_bars_the_stored_run_covers_are_compared(store: HistoryStore) -> None:
    with short_history_sandbox(hours=3) as sb:
        client = sb.client()
        since = int((T0 - 3600) * NS)
        sync_trades(client, store, "XBTUSD", since=since, pace=0)
        check = check_recent_ohlc(client, store, "XBTUSD", 5)
        assert check.ok
        assert check.start is not None
        assert check.start * NS > since
        assert check.compared == (int(T0) - check.start) // 300

"""Kraken's whole public trade history, stored without gaps, and OHLC of any interval from it.

Kraken's OHLC endpoint returns only the latest 720 bars of nine fixed intervals. Its Trades
endpoint, paged with the nanosecond ``since``/``last`` cursor, reaches back to each market's
first trade (``since=0``). So:

* :func:`sync_trades` pages Trades strictly on the exact ``last`` cursor (never a rounded
  time, which loses trades), stores each page and its cursor in one SQLite transaction
  (:class:`~oms.history_store.HistoryStore`), skips trades a page repeats at its boundary,
  and stops, saying why, when it has caught up, when a page's ``last`` does not advance (a
  stall: it never loops), after ``max_pages``, or at ``stop_at_ns``;
* :func:`ohlc_from_trades` builds bars of any interval (seconds granularity) from trades,
  exactly as Kraken defines them;
* :func:`check_recent_ohlc` compares the bars built from stored trades with Kraken's own
  committed OHLC bars where both exist, and lists every difference.
"""

from __future__ import annotations

import enum
import math
import time as _time
from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Protocol

import attrs

from oms.errors import ValidationError
from oms.history_store import HistoryStore, TradeCursor
from oms.models import OHLCBar, OHLCPage, TradesPage

__all__ = [
    "OHLCCheck",
    "OHLCMismatch",
    "OHLCSource",
    "StopReason",
    "SyncReport",
    "TradeLike",
    "TradesSource",
    "check_recent_ohlc",
    "ohlc_from_trades",
    "sync_trades",
]

_NS = 10**9
# Sums of price*volume are exact at this precision for any realistic tape; only the vwap
# division rounds, to _VWAP_CONTEXT.
_SUM_CONTEXT = Context(prec=100)
_VWAP_CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN)


class TradesSource(Protocol):
    """What :func:`sync_trades` needs (a :class:`~oms.client.KrakenClient` is one)."""

    def trades(
        self, pair: str, *, since: int | None = None, count: int | None = None
    ) -> TradesPage: ...


class OHLCSource(Protocol):
    """What :func:`check_recent_ohlc` needs (a :class:`~oms.client.KrakenClient` is one)."""

    def ohlc(self, pair: str, *, interval: int = 1, since: int | None = None) -> OHLCPage: ...


class TradeLike(Protocol):
    """A trade as :func:`ohlc_from_trades` reads it (``PublicTrade``, ``StoredTrade``)."""

    @property
    def price(self) -> Decimal: ...

    @property
    def volume(self) -> Decimal: ...

    @property
    def time(self) -> float: ...


# --- syncing ------------------------------------------------------------------------------


class StopReason(str, enum.Enum):
    """Why :func:`sync_trades` stopped."""

    CAUGHT_UP = "caught_up"  # an empty page, or one with nothing new: the present is reached
    STALLED = "stalled"  # a page with new trades whose `last` did not advance
    MAX_PAGES = "max_pages"
    STOP_AT = "stop_at"  # the cursor reached stop_at_ns


@attrs.frozen(kw_only=True)
class SyncReport:
    """What one :func:`sync_trades` run did.

    ``cursor`` is the stored cursor at the end (every trade up to it is stored);
    ``stalled_last`` is the ``last`` of the page that did not advance, if one stopped the run.
    """

    pair: str
    start_cursor: int
    cursor: int
    pages: int
    received: int
    inserted: int
    reason: StopReason
    stalled_last: int | None = None

    @property
    def duplicates(self) -> int:
        return self.received - self.inserted

    @property
    def stalled(self) -> bool:
        return self.reason is StopReason.STALLED


def _check_int(value: object, field: str, *, low: int, optional: bool = True) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValidationError(f"{field} must be an int >= {low}", field=field, rule="range")


def _origin(start: int, stored: TradeCursor | None) -> int:
    """Where the complete stretch of stored trades begins once a run starts at ``start``."""
    if stored is None or start > stored.cursor:
        # Nothing stored yet, or the run skips ahead: what lies before it may have gaps.
        return start
    return min(stored.origin, start)


def _check_sync_args(
    pair: object,
    since: int | None,
    max_pages: int | None,
    stop_at_ns: int | None,
    count: int | None,
    pace: float,
) -> None:
    if not isinstance(pair, str) or not pair.strip():
        raise ValidationError("pair must be a non-empty string", field="pair")
    _check_int(since, "since", low=0)
    _check_int(max_pages, "max_pages", low=1)
    _check_int(stop_at_ns, "stop_at_ns", low=0)
    _check_int(count, "count", low=1)
    if count is not None and count > 1000:
        raise ValidationError("count must be 1..1000", field="count", rule="range")
    if not pace >= 0:
        raise ValidationError("pace must be >= 0 seconds", field="pace", rule="range")


def _pacer(
    pace: float, sleep: Callable[[float], object], clock: Callable[[], float]
) -> Callable[[], None]:
    """A function to call before each request: it sleeps until ``pace`` seconds have passed
    since the previous one (the first goes at once)."""
    next_request = clock()

    def wait_turn() -> None:
        nonlocal next_request
        wait = next_request - clock()
        if wait > 0:
            sleep(wait)
        next_request = clock() + pace

    return wait_turn


def _limit_reached(
    cursor: int, pages: int, stop_at_ns: int | None, max_pages: int | None
) -> StopReason | None:
    if stop_at_ns is not None and cursor >= stop_at_ns:
        return StopReason.STOP_AT
    if max_pages is not None and pages >= max_pages:
        return StopReason.MAX_PAGES
    return None


def _page_end(
    has_trades: bool, last: int | None, advances: bool, inserted: int
) -> tuple[StopReason, int | None] | None:
    """Why paging ends after this page (and the ``last`` of a stall), or None to go on."""
    if not has_trades or last is None:
        # An empty page, or an empty `last`: Kraken's end of pagination.
        return StopReason.CAUGHT_UP, None
    if not advances:
        # A page that only repeats what is stored is the present (Kraken may include
        # the trade at `since`); new trades without a new cursor would loop forever.
        if inserted:
            return StopReason.STALLED, last
        return StopReason.CAUGHT_UP, None
    return None


def sync_trades(
    client: TradesSource,
    store: HistoryStore,
    pair: str,
    *,
    since: int | None = None,
    max_pages: int | None = None,
    stop_at_ns: int | None = None,
    count: int | None = None,
    pace: float = 1.0,
    sleep: Callable[[float], object] = _time.sleep,
    clock: Callable[[], float] = _time.time,
    on_page: Callable[[int, int, int, int], object] | None = None,
) -> SyncReport:
    """Fetch ``pair``'s public trades into ``store``, page by page, and return what happened.

    Paging starts at ``since`` (nanoseconds; 0 = the market's very first trade) or, without
    it, at the stored cursor (0 for a pair never synced), and follows Kraken's exact ``last``.
    Every page and the cursor it earns are written in one transaction, so an interruption
    at any point loses at most the page in flight and the next run resumes where the stored
    trades end. ``pace`` is the least number of seconds between two Trades requests (Kraken
    allows about one public call a second; the sandbox's ``ManualClock`` sleep makes it
    free in tests); ``clock`` (unix seconds) and ``sleep`` are injectable. ``count`` is
    Kraken's page size (1..1000; Kraken's default 1000). ``on_page(pages, received,
    inserted, cursor)`` is called after each page is stored (the CLI draws progress with it).
    """
    _check_sync_args(pair, since, max_pages, stop_at_ns, count, pace)
    pair_id = store.resolve(pair)
    stored = store.position(pair_id) if pair_id is not None else None
    start = since if since is not None else (stored.cursor if stored is not None else 0)
    origin = _origin(start, stored)
    cursor = start
    pages = received = inserted = 0
    stalled_last: int | None = None
    wait_turn = _pacer(pace, sleep, clock)
    while True:
        limit = _limit_reached(cursor, pages, stop_at_ns, max_pages)
        if limit is not None:
            reason = limit
            break
        wait_turn()
        page = client.trades(pair, since=cursor, count=count)
        pages += 1
        if pair_id is None:
            # First contact: Kraken names the pair by its id; a cursor stored under that id
            # (synced by another name) wins over starting from scratch.
            pair_id = page.pair
            stored = store.position(pair_id)
            if since is None and stored is not None and stored.cursor > cursor:
                start = cursor = stored.cursor
                origin = stored.origin
                continue
            origin = _origin(start, stored)
        last = page.last
        advances = last is not None and last > cursor
        write = store.commit_page(
            page.pair,
            page.trades,
            cursor=last if advances else None,
            origin=origin,
            now=clock(),
            alias=pair,
        )
        received += write.received
        inserted += write.inserted
        if on_page is not None:
            on_page(pages, received, inserted, last if advances and last is not None else cursor)
        end = _page_end(bool(page.trades), last, advances, write.inserted)
        if end is not None:
            reason, stalled_last = end
            break
        assert last is not None  # advances
        cursor = last
    return SyncReport(
        pair=pair_id or pair,
        start_cursor=start,
        cursor=cursor,
        pages=pages,
        received=received,
        inserted=inserted,
        reason=reason,
        stalled_last=stalled_last,
    )


# --- OHLC from trades -----------------------------------------------------------------------


class _Bucket:
    """Running OHLC figures of one interval; open/close by time, ties in input order."""

    __slots__ = ("close", "close_t", "count", "high", "low", "open", "open_t", "pv", "volume")

    def __init__(self, trade: TradeLike) -> None:
        self.open = self.close = self.high = self.low = trade.price
        self.open_t = self.close_t = trade.time
        self.volume = trade.volume
        self.pv = _SUM_CONTEXT.multiply(trade.price, trade.volume)
        self.count = 1

    def add(self, trade: TradeLike) -> None:
        price, t = trade.price, trade.time
        if t < self.open_t:
            self.open, self.open_t = price, t
        if t >= self.close_t:
            self.close, self.close_t = price, t
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.volume = _SUM_CONTEXT.add(self.volume, trade.volume)
        self.pv = _SUM_CONTEXT.add(self.pv, _SUM_CONTEXT.multiply(price, trade.volume))
        self.count += 1

    def bar(self, start: int, vwap_places: int | None) -> OHLCBar:
        # Zero-volume trades have no weights; the close is as good a price as any.
        vwap = _VWAP_CONTEXT.divide(self.pv, self.volume) if self.volume else self.close
        if vwap_places is not None:
            vwap = vwap.quantize(Decimal(1).scaleb(-vwap_places), rounding=ROUND_HALF_EVEN)
        return OHLCBar(
            time=start,
            open=self.open,
            high=self.high,
            low=self.low,
            close=self.close,
            vwap=vwap,
            volume=self.volume,
            count=self.count,
        )


def _empty_bar(start: int, close: Decimal, volume_zero: Decimal) -> OHLCBar:
    return OHLCBar(
        time=start,
        open=close,
        high=close,
        low=close,
        close=close,
        vwap=close,
        volume=volume_zero,
        count=0,
    )


def ohlc_from_trades(
    trades: Iterable[TradeLike],
    interval_seconds: int,
    *,
    start: int | None = None,
    end: int | None = None,
    carry_forward: bool = False,
    vwap_places: int | None = None,
) -> list[OHLCBar]:
    """OHLC bars of ``interval_seconds`` (any whole number of seconds) from ``trades``.

    As Kraken defines a bar: ``time`` is the interval's start, aligned to multiples of the
    interval since the unix epoch (as Kraken's nine intervals are); ``open``/``close`` are
    the first/last trade's price in time order, ``high``/``low`` the extremes, ``volume``
    the sum of volumes, ``count`` the number of trades and ``vwap`` = sum(price * volume) /
    sum(volume) (28 significant digits, or rounded half-even to ``vwap_places`` decimals).
    Trades need not be sorted; trades with equal times keep their input order.

    Only bars whose start lies in ``[start, end)`` (unix seconds) are returned; never a
    partial bar. Intervals without trades are omitted, or with ``carry_forward`` filled
    (from the first bar, or ``start``, up to the last bar, or ``end``) with Kraken's
    convention: every price the previous close, volume 0, count 0.
    """
    _check_int(interval_seconds, "interval_seconds", low=1, optional=False)
    _check_int(start, "start", low=0)
    _check_int(end, "end", low=0)
    _check_int(vwap_places, "vwap_places", low=0)
    step = interval_seconds
    buckets: dict[int, _Bucket] = {}
    # The last trade before the first bar, for a carried-forward opening bar.
    before: tuple[float, Decimal] | None = None
    zero: Decimal | None = None
    for trade in trades:
        second = math.floor(trade.time)
        bar_start = second - second % step
        if zero is None:
            zero = trade.volume * 0
        if start is not None and bar_start < start:
            if before is None or trade.time >= before[0]:
                before = (trade.time, trade.price)
            continue
        if end is not None and bar_start >= end:
            continue
        bucket = buckets.get(bar_start)
        if bucket is None:
            buckets[bar_start] = _Bucket(trade)
        else:
            bucket.add(trade)
    bars = [buckets[t].bar(t, vwap_places) for t in sorted(buckets)]
    if not carry_forward or zero is None:
        return bars
    return _carry_forward(bars, step, start=start, end=end, before=before, zero=zero)


def _carry_forward(
    bars: list[OHLCBar],
    step: int,
    *,
    start: int | None,
    end: int | None,
    before: tuple[float, Decimal] | None,
    zero: Decimal,
) -> list[OHLCBar]:
    first = bars[0].time if bars else None
    if start is not None and before is not None:
        first = -(-start // step) * step  # the first aligned bar start >= start
    if first is None:
        return bars
    last = bars[-1].time if bars else first
    if end is not None:
        last = max(last, (end - 1) // step * step)
    by_time = {b.time: b for b in bars}
    close = before[1] if before is not None else None
    out: list[OHLCBar] = []
    for t in range(first, last + step, step):
        bar = by_time.get(t)
        if bar is not None:
            close = bar.close
            out.append(bar)
        elif close is not None:
            out.append(_empty_bar(t, close, zero))
    return out


# --- checking against Kraken's OHLC -----------------------------------------------------------

_FIELDS = ("open", "high", "low", "close", "volume", "count")


@attrs.frozen(kw_only=True)
class OHLCMismatch:
    """One bar that differs: ``fields`` names what differs; a side is None where it has no
    bar (an interval with trades that Kraken lacks, or the reverse)."""

    time: int
    fields: tuple[str, ...]
    ours: OHLCBar | None
    theirs: OHLCBar | None


@attrs.frozen(kw_only=True)
class OHLCCheck:
    """The result of :func:`check_recent_ohlc`.

    ``compared`` bars were checked, from ``start`` to ``end`` (unix seconds, end exclusive);
    0 means the stored trades do not cover any committed bar Kraken still returns (sync
    first). ``ok`` is True when something was compared and nothing differs.
    """

    pair: str
    interval: int
    compared: int
    mismatches: tuple[OHLCMismatch, ...]
    start: int | None = None
    end: int | None = None

    @property
    def ok(self) -> bool:
        return self.compared > 0 and not self.mismatches


def _differences(ours: OHLCBar | None, theirs: OHLCBar) -> tuple[str, ...]:
    if ours is None:
        # Kraken reports an interval without trades as a zero-volume bar at the last close.
        return () if theirs.count == 0 and not theirs.volume else ("count", "volume")
    if theirs.count == 0:
        return ("count", "volume")
    diff = [f for f in _FIELDS if getattr(ours, f) != getattr(theirs, f)]
    # Kraken shows vwap rounded to the pair's price decimals: compare to within one unit of
    # the last decimal it shows (its rounding mode is not documented).
    exponent = theirs.vwap.as_tuple().exponent
    unit = Decimal(1).scaleb(exponent) if isinstance(exponent, int) else Decimal(0)
    if abs(ours.vwap - theirs.vwap) > unit:
        diff.append("vwap")
    return tuple(diff)


def check_recent_ohlc(
    client: OHLCSource, store: HistoryStore, pair: str, interval_minutes: int
) -> OHLCCheck:
    """Compare bars built from ``store``'s trades with Kraken's OHLC for ``interval_minutes``.

    Only Kraken's committed bars count (its last row is the bar still forming) and only
    those whose whole interval the stored trades cover (between the stored run's origin
    and its cursor). Prices, volume and count must be equal; vwap within one unit of the
    last decimal Kraken shows. One OHLC request; the trades are read from the store.
    """
    page = client.ohlc(pair, interval=interval_minutes)
    step = interval_minutes * 60
    position = store.position(pair) or store.position(page.pair)
    committed = page.bars[:-1]
    covered = [
        bar
        for bar in committed
        if position is not None and position.covers(bar.time * _NS, (bar.time + step) * _NS)
    ]
    if position is None or not covered:
        return OHLCCheck(pair=page.pair, interval=interval_minutes, compared=0, mismatches=())
    lo, hi = covered[0].time, covered[-1].time + step
    trades = store.iter_trades(position.pair, start_ns=lo * _NS, end_ns=hi * _NS)
    ours = {bar.time: bar for bar in ohlc_from_trades(trades, step, start=lo, end=hi)}
    mismatches = []
    for theirs in covered:
        mine = ours.pop(theirs.time, None)
        fields = _differences(mine, theirs)
        if fields:
            mismatches.append(
                OHLCMismatch(time=theirs.time, fields=fields, ours=mine, theirs=theirs)
            )
    for t, mine in sorted(ours.items()):
        mismatches.append(OHLCMismatch(time=t, fields=_FIELDS, ours=mine, theirs=None))
    mismatches.sort(key=lambda m: m.time)
    return OHLCCheck(
        pair=page.pair,
        interval=interval_minutes,
        compared=len(covered),
        mismatches=tuple(mismatches),
        start=lo,
        end=hi,
    )

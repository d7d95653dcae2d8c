"""The sandbox's market: the public views (Trades, OHLC, Ticker, Depth) over one tape per pair.

Each pair's tape (:mod:`oms.sandbox.tape`) holds the market's own trades, a pure function of
``(seed, pair, time)`` generated on demand, so the price at time *t* never depends on how
often :meth:`Market.advance_to` was called and days of history cost nothing until somebody
pages through them; and the sandbox users' fills (:meth:`Market.record_fill`).

The tape only grows at its end: trades become *visible* as time advances, and a fill is always
stamped after every trade a reader may already have seen. A client paging ``Trades`` with
Kraken's strictly-after ``since`` cursor therefore never misses a trade, which is the property
real pagination clients rely on.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterable, Mapping
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any

from oms._decimal import fmt, to_decimal
from oms.sandbox.pairs import DEFAULT_PAIRS, PairSpec
from oms.sandbox.tape import (
    BLOCK_NS,
    NS,
    TAPE_PRICE_DECIMALS,
    Agg,
    MarketTrade,
    PathParams,
    Tape,
    side_code,
)
from oms.sandbox.views import book_levels, ohlc_rows, vwap

__all__ = [
    "DEFAULT_PAIRS",
    "DEPTH_MAX_COUNT",
    "OHLC_INTERVALS",
    "OHLC_MAX_BARS",
    "TRADES_MAX_COUNT",
    "Market",
    "MarketTrade",
    "PairSpec",
]

#: The intervals (minutes) Kraken's OHLC endpoint accepts.
OHLC_INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
#: OHLC returns at most this many of the most recent bars, whatever ``since`` says.
OHLC_MAX_BARS = 720
#: Trades returns at most this many trades per call.
TRADES_MAX_COUNT = 1000
#: Depth returns at most this many levels per side.
DEPTH_MAX_COUNT = 500


def _to_ns(t: float) -> int:
    return round(t * NS)


class Market:
    """The sandbox's public market: a deterministic tape per pair, and views over it.

    ``genesis`` (unix seconds) is the time at which each pair's price is its ``start_price``;
    the tape starts ``history`` seconds before it (rounded down to the hour), which is what
    ``Trades?since=0`` pages through. ``trades_per_hour`` and ``volatility`` (log-price
    standard deviation per hour) shape the path. All methods are thread-safe.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        pairs: Iterable[PairSpec] = DEFAULT_PAIRS,
        genesis: float,
        history: float = 3 * 86400,
        trades_per_hour: int = 900,
        volatility: float = 0.006,
        block_cache_size: int = 96,
    ):
        if history < 0:
            raise ValueError("history must not be negative")
        if trades_per_hour < 3:
            raise ValueError("trades_per_hour must be at least 3")
        self.seed = seed
        self.genesis = genesis
        self.history = history
        self.trades_per_hour = trades_per_hour
        self.volatility = volatility
        genesis_ns = _to_ns(genesis)
        self.first_block = _to_ns(genesis - history) // BLOCK_NS
        self._params = PathParams(
            seed=seed,
            first_block=self.first_block,
            genesis_block=genesis_ns // BLOCK_NS,
            volatility=volatility,
            count_range=(trades_per_hour * 2 // 3, trades_per_hour * 4 // 3),
            # Median trade notional ~ 250 quote units: realistic sizes for USD pairs.
            log_notional=math.log(250.0),
            block_cache_size=max(4, block_cache_size),
        )
        #: Market trades with time <= visible_ns are on the public tape.
        self.visible_ns = genesis_ns
        #: Market trades with time <= emitted_ns have been returned by advance_to.
        self.emitted_ns = genesis_ns
        #: The market's time: the tape is shown up to here at the next read. Kept apart from
        #: visible_ns so that fills the exchange records while it replays advance_to's trades
        #: keep their own times (they can only be stamped after what a reader has seen).
        self.horizon_ns = genesis_ns
        # Time of the first market trade after emitted_ns (0: not known yet).
        self._next_trade_ns = 0
        self._lock = threading.RLock()
        self._specs: dict[str, PairSpec] = {}
        self._by_name: dict[str, PairSpec] = {}
        self._tapes: dict[str, Tape] = {}
        for spec in pairs:
            if spec.pair_id in self._specs:
                raise ValueError(f"duplicate pair {spec.pair_id}")
            self._specs[spec.pair_id] = spec
            for name in spec.names:
                self._by_name.setdefault(name.upper(), spec)
            self._tapes[spec.pair_id] = Tape(spec, self._params)

    def __repr__(self) -> str:
        return f"Market(seed={self.seed}, pairs={list(self._specs)}, genesis={self.genesis})"

    # -- pairs ---------------------------------------------------------------------------

    @property
    def pairs(self) -> tuple[PairSpec, ...]:
        return tuple(self._specs.values())

    def pair(self, name: str) -> PairSpec | None:
        """The pair called ``name`` (id, altname, wsname or alias; any case), or None."""
        return self._by_name.get(name.strip().upper())

    def _tape(self, pair_id: str) -> Tape:
        spec = self.pair(pair_id)
        if spec is None:
            raise KeyError(f"unknown pair {pair_id!r}")
        return self._tapes[spec.pair_id]

    @property
    def first_trade_ns(self) -> int:
        """The start of the tape (``since=0`` begins here)."""
        return self.first_block * BLOCK_NS

    @property
    def now(self) -> float:
        """The market's time: the end of the visible tape."""
        return self.horizon_ns / NS

    # -- time ----------------------------------------------------------------------------

    def advance_to(self, now: float) -> list[MarketTrade]:
        """Bring the market up to ``now``; return its new trades (all pairs, in time order).

        Deterministic: the trades up to any time are the same however the calls are split.
        Moving backwards is a no-op.
        """
        now_ns = _to_ns(now)
        with self._lock:
            if now_ns <= self.emitted_ns:
                return []
            out: list[MarketTrade] = []
            # The exchange calls this on every request, mostly between two market trades:
            # the time of the next one answers that case without touching the tapes.
            if now_ns >= self._next_trade_ns:
                for tape in self._tapes.values():
                    found = tape.market_after(self.emitted_ns, 1 << 62, now_ns)
                    out.extend(tape.make_market_trade(b, i) for _, b, i in found)
                self._next_trade_ns = min(
                    (
                        t
                        for tape in self._tapes.values()
                        for t, _, _ in tape.market_after(now_ns, 1, 1 << 62)
                    ),
                    default=1 << 62,
                )
            self.emitted_ns = now_ns
            self.horizon_ns = max(self.horizon_ns, now_ns)
        out.sort(key=lambda t: (t.time_ns, t.pair_id))
        return out

    def _show(self, now: float | None = None) -> None:
        """Put the tape up to the market's time (or ``now``) in public view."""
        if now is not None:
            self.horizon_ns = max(self.horizon_ns, _to_ns(now))
        self.visible_ns = max(self.visible_ns, self.horizon_ns)

    # -- the tape ------------------------------------------------------------------------

    def record_fill(
        self,
        pair_id: str,
        price: Decimal,
        volume: Decimal,
        side: str,
        ordertype: str,
        time_ns: int,
    ) -> MarketTrade:
        """Put a sandbox user's fill on the public tape and return it as it appears there.

        ``side``/``ordertype`` are the taker's (``buy``/``sell`` or ``b``/``s``;
        ``market``/``limit`` or ``m``/``l``; any other order type counts as ``limit``). The
        price is rounded to the tick and the volume down to the lot. The time is moved, by
        the fewest nanoseconds needed, after every trade already on the tape, so paging
        clients never miss it.
        """
        side_byte = side_code(side)
        type_byte = 109 if ordertype in ("m", "market") else 108
        with self._lock:
            tape = self._tape(pair_id)
            spec = tape.spec
            ticks = int((to_decimal(price) / spec.tick_size).to_integral_value(ROUND_HALF_EVEN))
            lots = int((to_decimal(volume) * tape.lot_scale).to_integral_value(ROUND_DOWN))
            if ticks <= 0 or lots <= 0:
                raise ValueError("a fill needs a positive price and volume")
            t = max(time_ns, self.visible_ns + 1)
            if tape.f_times:
                t = max(t, tape.f_times[-1] + 1)
            b = t // BLOCK_NS
            if b >= self.first_block:
                times = tape.block(b).times
                k = bisect.bisect_left(times, t)
                # Equal times would make the strictly-after cursor ambiguous.
                while k < len(times) and times[k] == t:
                    t += 1
                    k += 1
            self.visible_ns = t
            self.horizon_ns = max(self.horizon_ns, t)
            tape.f_times.append(t)
            tape.f_prices.append(ticks)
            tape.f_vols.append(lots)
            tape.f_sides.append(side_byte)
            tape.f_types.append(type_byte)
            return tape.make_fill_trade(len(tape.f_times) - 1)

    def trades(
        self, pair_id: str, since_ns: int | None, count: int = TRADES_MAX_COUNT
    ) -> tuple[list[MarketTrade], int]:
        """Kraken's Trades: up to ``count`` (1..1000) trades strictly after ``since_ns``.

        Returns the trades (oldest first) and ``last``, the nanosecond time of the last one
        (``since_ns`` when there are none), to pass back as the next ``since``. ``since_ns=0``
        starts from the very first trade; ``None`` gives the most recent ``count`` trades.
        """
        count = max(1, min(TRADES_MAX_COUNT, count))
        with self._lock:
            tape = self._tape(pair_id)
            self._show()
            upto = self.visible_ns
            if since_ns is None:
                market = tape.market_before(upto, count)
                j = len(tape.f_times)
                fills = list(range(max(0, j - count), j))
            else:
                market = tape.market_after(since_ns, count, upto)
                i = bisect.bisect_right(tape.f_times, since_ns)
                fills = list(range(i, min(len(tape.f_times), i + count)))
            merged: list[tuple[int, int, int]] = [(t, b, k) for t, b, k in market]
            merged.extend((tape.f_times[j], -1, j) for j in fills)
            merged.sort()
            merged = merged[-count:] if since_ns is None else merged[:count]
            out = [
                tape.make_fill_trade(k) if b == -1 else tape.make_market_trade(b, k)
                for _, b, k in merged
            ]
        last = out[-1].time_ns if out else (since_ns or 0)
        return out, last

    def last_price(self, pair_id: str) -> Decimal:
        """The price of the last trade on the tape (pair precision)."""
        with self._lock:
            tape = self._tape(pair_id)
            self._show()
            last = tape.last_trade(self.visible_ns)
            if last is None:
                return tape.spec.start_price
            return tape.price_dec(last[1])

    def price_range(self, pair_id: str, start: float, end: float) -> tuple[Decimal, Decimal] | None:
        """The lowest and highest price of the trades in ``[start, end)``, the future
        included: the market's path is a pure function of the seed, so a demo can plan a
        ladder on it. None if nothing trades then."""
        with self._lock:
            tape = self._tape(pair_id)
            hi_ns = _to_ns(end)
            agg = tape.aggregate(_to_ns(start), hi_ns, hi_ns)
            if agg is None:
                return None
            return tape.price_dec(agg[6]), tape.price_dec(agg[5])

    # -- views ---------------------------------------------------------------------------

    def ohlc(
        self, pair_id: str, interval: int = 1, since: int | None = None, now: float | None = None
    ) -> tuple[list[list[object]], int]:
        """Kraken's OHLC rows and ``last`` for ``interval`` minutes.

        Rows ``[time, open, high, low, close, vwap, volume, count]`` cover at most the latest
        720 intervals, one row per interval (an interval without trades repeats the previous
        close with volume 0). The last row is the current, uncommitted bar and is always
        present; the others are those with ``time > since``. ``last`` is the time of the last
        committed bar.
        """
        if interval not in OHLC_INTERVALS:
            raise ValueError(f"interval must be one of {OHLC_INTERVALS}")
        step = interval * 60
        with self._lock:
            self._show(now)
            tape = self._tape(pair_id)
            now_s = self.visible_ns // NS
            current = now_s - now_s % step
            first = self.first_trade_ns // NS
            first -= first % step
            start = max(first, current - (OHLC_MAX_BARS - 1) * step)
            rows = ohlc_rows(
                tape,
                start=start,
                first=first,
                current=current,
                step=step,
                since=since,
                visible_ns=self.visible_ns,
            )
        return rows, current - step

    def ticker(self, pair_id: str, now: float | None = None) -> dict[str, Any]:
        """Kraken's Ticker value for one pair (``a b c v p t l h o``), JSON-ready."""
        with self._lock:
            self._show(now)
            tape = self._tape(pair_id)
            end = self.visible_ns + 1
            midnight = (self.visible_ns // (86400 * NS)) * 86400 * NS
            today = tape.aggregate(midnight, end, self.visible_ns)
            day = tape.aggregate(end - 86400 * NS, end, self.visible_ns)
            last = tape.last_trade(self.visible_ns)
            last_ticks = last[1] if last is not None else self._start_ticks(tape)
            last_lots = last[2] if last is not None else 0
            book = self._book(tape, 1)
        ask, bid = book["asks"][0], book["bids"][0]

        def px(ticks: int) -> str:
            return fmt(tape.price_dec(ticks, TAPE_PRICE_DECIMALS))

        def stats(agg: Agg | None) -> tuple[str, str, int, str, str]:
            if agg is None:
                p = px(last_ticks)
                return fmt(tape.vol_dec(0)), p, 0, p, p
            average = fmt(vwap(tape, agg, TAPE_PRICE_DECIMALS))
            return fmt(tape.vol_dec(agg[7])), average, agg[0], px(agg[6]), px(agg[5])

        t_vol, t_vwap, t_n, t_low, t_high = stats(today)
        d_vol, d_vwap, d_n, d_low, d_high = stats(day)
        return {
            "a": [ask[0], str(max(1, int(to_decimal(ask[1])))), ask[1]],
            "b": [bid[0], str(max(1, int(to_decimal(bid[1])))), bid[1]],
            "c": [px(last_ticks), fmt(tape.vol_dec(last_lots))],
            "v": [t_vol, d_vol],
            "p": [t_vwap, d_vwap],
            "t": [t_n, d_n],
            "l": [t_low, d_low],
            "h": [t_high, d_high],
            "o": px(today[2]) if today is not None else px(last_ticks),
        }

    def depth(self, pair_id: str, count: int = 100) -> dict[str, list[list[object]]]:
        """A synthetic order book around the last price: ``{"asks": ..., "bids": ...}``.

        Levels are ``[price, volume, timestamp]``; asks ascend from above the last price and
        bids descend from below it. The book is a function of the tape's last market trade,
        so it is stable between trades.
        """
        count = max(1, min(DEPTH_MAX_COUNT, count))
        with self._lock:
            self._show()
            return self._book(self._tape(pair_id), count)

    def quote(self, pair_id: str) -> tuple[Decimal, Decimal]:
        """Best (bid, ask) of the synthetic book."""
        book = self.depth(pair_id, 1)
        return to_decimal(book["bids"][0][0]), to_decimal(book["asks"][0][0])

    def _start_ticks(self, tape: Tape) -> int:
        return int(tape.spec.start_price / tape.spec.tick_size)

    def _book(self, tape: Tape, count: int) -> dict[str, list[list[object]]]:
        return book_levels(
            tape,
            visible_ns=self.visible_ns,
            count=count,
            start_ticks=self._start_ticks(tape),
            log_notional=self._params.log_notional,
        )

    # -- persistence ---------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state: parameters, horizons and fills (the rest is regenerated)."""
        with self._lock:
            fills: dict[str, list[list[object]]] = {}
            for pair_id, tape in self._tapes.items():
                fills[pair_id] = [
                    [
                        tape.f_times[j],
                        fmt(tape.price_dec(tape.f_prices[j])),
                        fmt(tape.vol_dec(tape.f_vols[j])),
                        chr(tape.f_sides[j]),
                        chr(tape.f_types[j]),
                    ]
                    for j in range(len(tape.f_times))
                ]
            return {
                "version": 1,
                "seed": self.seed,
                "genesis": self.genesis,
                "history": self.history,
                "trades_per_hour": self.trades_per_hour,
                "volatility": self.volatility,
                "pairs": [spec.to_dict() for spec in self._specs.values()],
                "visible_ns": self.visible_ns,
                "emitted_ns": self.emitted_ns,
                "horizon_ns": self.horizon_ns,
                "fills": fills,
            }

    @classmethod
    def restore(cls, data: Mapping[str, Any]) -> Market:
        """Rebuild a market from :meth:`snapshot`'s output."""
        if data.get("version") != 1:
            raise ValueError(f"unsupported market snapshot version {data.get('version')!r}")
        market = cls(
            seed=int(data["seed"]),
            pairs=[PairSpec.from_dict(p) for p in data["pairs"]],
            genesis=float(data["genesis"]),
            history=float(data["history"]),
            trades_per_hour=int(data["trades_per_hour"]),
            volatility=float(data["volatility"]),
        )
        for pair_id, rows in data.get("fills", {}).items():
            tape = market._tapes[pair_id]
            for t, price, volume, side, otype in rows:
                tape.f_times.append(int(t))
                tape.f_prices.append(int(Decimal(price) / tape.spec.tick_size))
                tape.f_vols.append(int(Decimal(volume) * tape.lot_scale))
                tape.f_sides.append(ord(side))
                tape.f_types.append(ord(otype))
        market.visible_ns = int(data["visible_ns"])
        market.emitted_ns = int(data["emitted_ns"])
        market.horizon_ns = int(data.get("horizon_ns", market.visible_ns))
        return market

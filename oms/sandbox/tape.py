"""One pair's public tape: the seeded price path, its market trades, and recorded fills.

The market's own trades are a pure function of ``(seed, pair, hour)``. Each hour ("block") is
generated on demand from its own seeded random source, as a random walk bridged between two
hourly anchors, themselves a seeded random walk in log-price from the pair's ``start_price``
at genesis. Prices are integers in ticks and volumes integers in lots inside, so aggregates
are exact and cheap; each generated hour keeps a summary per minute, so OHLC bars and 24-hour
figures are sums of summaries plus a binary search at the edges.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from collections import OrderedDict
from collections.abc import Sequence
from decimal import Decimal
from typing import Literal

import attrs

from oms._decimal import fmt
from oms.sandbox.pairs import PairSpec

__all__ = [
    "BLOCK_NS",
    "NS",
    "TAPE_PRICE_DECIMALS",
    "Agg",
    "MarketTrade",
    "PathParams",
    "Tape",
    "side_code",
]

NS = 1_000_000_000
_BLOCK_SECONDS = 3600
BLOCK_NS = _BLOCK_SECONDS * NS
_MINUTE_NS = 60 * NS
_MINUTES_PER_BLOCK = _BLOCK_SECONDS // 60
#: Kraken shows tape, ticker and book prices with at least five decimals ("8552.90000" for
#: XBTUSD, whose pair_decimals is 1) but OHLC prices with pair_decimals ("67692.8").
TAPE_PRICE_DECIMALS = 5

Side = Literal["buy", "sell"]
TradeOrderType = Literal["market", "limit"]


@attrs.frozen
class MarketTrade:
    """One trade on the public tape (the market's own, or a sandbox user's fill).

    ``side`` is the taker's side and ``ordertype`` the taker's order type, as in Kraken's
    Trades rows (``"b"``/``"s"``, ``"m"``/``"l"``). ``trade_id`` counts the pair's trades from
    1 in time order.
    """

    pair_id: str
    price: Decimal
    volume: Decimal
    side: Side
    ordertype: TradeOrderType
    time_ns: int
    trade_id: int

    @property
    def time(self) -> float:
        return self.time_ns / NS

    def to_row(self) -> list[object]:
        """The Kraken ``Trades`` row: ``[price, volume, time, "b"|"s", "m"|"l", misc, id]``."""
        return [
            fmt(self.price),
            fmt(self.volume),
            self.time,
            self.side[0],
            self.ordertype[0],
            "",
            self.trade_id,
        ]


# An aggregate of trades: (count, first_ns, open, last_ns, close, high, low, volume, pv),
# prices in ticks, volume in lots, pv = sum(price * volume). None is the empty aggregate.
Agg = tuple[int, int, int, int, int, int, int, int, int]


def _merge(a: Agg | None, b: Agg | None) -> Agg | None:
    if a is None:
        return b
    if b is None:
        return a
    first = a if a[1] <= b[1] else b
    last = a if a[3] >= b[3] else b
    return (
        a[0] + b[0],
        first[1],
        first[2],
        last[3],
        last[4],
        max(a[5], b[5]),
        min(a[6], b[6]),
        a[7] + b[7],
        a[8] + b[8],
    )


def _agg_of(
    times: Sequence[int], prices: Sequence[int], vols: Sequence[int], lo: int, hi: int
) -> Agg | None:
    """Aggregate of entries ``lo:hi`` of parallel time-ordered arrays."""
    if hi <= lo:
        return None
    p = prices[lo:hi]
    v = vols[lo:hi]
    return (
        hi - lo,
        times[lo],
        p[0],
        times[hi - 1],
        p[-1],
        max(p),
        min(p),
        sum(v),
        sum(x * y for x, y in zip(p, v, strict=False)),
    )


class _Block:
    """One generated hour of market trades (parallel arrays) and its per-minute summaries."""

    __slots__ = ("minutes", "prices", "sides", "start_ns", "summary", "times", "types", "vols")

    def __init__(
        self,
        start_ns: int,
        times: list[int],
        prices: list[int],
        vols: list[int],
        sides: bytes,
        types: bytes,
    ):
        self.start_ns = start_ns
        self.times = times
        self.prices = prices
        self.vols = vols
        self.sides = sides
        self.types = types
        self.minutes: list[Agg | None] = []
        edges = [
            bisect.bisect_left(times, start_ns + m * _MINUTE_NS)
            for m in range(_MINUTES_PER_BLOCK + 1)
        ]
        for m in range(_MINUTES_PER_BLOCK):
            self.minutes.append(_agg_of(times, prices, vols, edges[m], edges[m + 1]))
        summary: Agg | None = None
        for agg in self.minutes:
            summary = _merge(summary, agg)
        self.summary = summary


@attrs.frozen
class PathParams:
    """What shapes every pair's price path and tape (fixed for a market's life)."""

    seed: int
    first_block: int
    genesis_block: int
    volatility: float
    count_range: tuple[int, int]
    log_notional: float
    block_cache_size: int


class Tape:
    """The tape of one pair: generated market blocks plus recorded fills."""

    def __init__(self, spec: PairSpec, params: PathParams):
        self.spec = spec
        self.p = params
        self.tick_f = float(spec.tick_size)
        self.lot_scale = 10**spec.lot_decimals
        self.min_lots = max(1, int(spec.ordermin * self.lot_scale))
        # Log-price anchors at block starts, indexed from the first history block.
        self.anchors: list[float] = []
        # prefix[k] = number of market trades in blocks first_block .. first_block + k - 1.
        self.prefix: list[int] = [0]
        self.blocks: OrderedDict[int, _Block] = OrderedDict()
        self.summaries: dict[int, tuple[Agg | None, list[Agg | None]]] = {}
        # Fills: parallel arrays in time order.
        self.f_times: list[int] = []
        self.f_prices: list[int] = []
        self.f_vols: list[int] = []
        self.f_sides = bytearray()
        self.f_types = bytearray()
        self._build_anchors_to(params.genesis_block)

    # -- the seeded price path -----------------------------------------------------------

    def rng(self, tag: str, block: int) -> random.Random:
        digest = hashlib.blake2b(
            f"{self.p.seed}|{self.spec.pair_id}|{tag}|{block}".encode(), digest_size=8
        ).digest()
        return random.Random(int.from_bytes(digest, "big"))

    def _build_anchors_to(self, block: int) -> None:
        first = self.p.first_block
        genesis = self.p.genesis_block
        sigma = self.p.volatility
        if not self.anchors:
            # Anchors before genesis are walked backwards from the start price, so the price
            # at genesis is the pair's start_price whatever the length of the history.
            values = [math.log(float(self.spec.start_price))]
            for b in range(genesis - 1, first - 1, -1):
                values.append(values[-1] - sigma * self.rng("anchor", b).gauss(0.0, 1.0))
            values.reverse()
            self.anchors = values
        while first + len(self.anchors) - 1 < block:
            b = first + len(self.anchors) - 1
            self.anchors.append(self.anchors[-1] + sigma * self.rng("anchor", b).gauss(0.0, 1.0))

    def anchor(self, block: int) -> float:
        self._build_anchors_to(block)
        return self.anchors[block - self.p.first_block]

    def count(self, block: int) -> int:
        lo, hi = self.p.count_range
        digest = hashlib.blake2b(
            f"{self.p.seed}|{self.spec.pair_id}|count|{block}".encode(), digest_size=8
        ).digest()
        return lo + int.from_bytes(digest, "big") % (hi - lo + 1)

    def before_block(self, block: int) -> int:
        """Number of market trades before ``block``."""
        k = block - self.p.first_block
        if k <= 0:
            return 0
        while len(self.prefix) <= k:
            b = self.p.first_block + len(self.prefix) - 1
            self.prefix.append(self.prefix[-1] + self.count(b))
        return self.prefix[k]

    def block(self, b: int) -> _Block:
        cached = self.blocks.get(b)
        if cached is not None:
            self.blocks.move_to_end(b)
            return cached
        made = self._generate(b)
        self.blocks[b] = made
        if len(self.blocks) > self.p.block_cache_size:
            self.blocks.popitem(last=False)
        self.summaries[b] = (made.summary, made.minutes)
        return made

    def _generate(self, b: int) -> _Block:
        n = self.count(b)
        rng = self.rng("block", b)
        start = b * BLOCK_NS
        times = [start + off for off in sorted(rng.sample(range(BLOCK_NS), n))]
        a0 = self.anchor(b)
        a1 = self.anchor(b + 1)
        step = self.p.volatility / math.sqrt(n + 1)
        walk: list[float] = []
        w = 0.0
        for _ in range(n + 1):
            w += rng.gauss(0.0, step)
            walk.append(w)
        end = walk[-1]
        prices: list[int] = []
        vols: list[int] = []
        sides = bytearray()
        types = bytearray()
        mu = self.p.log_notional
        tick = self.tick_f
        lot_scale = self.lot_scale
        min_lots = self.min_lots
        for i in range(n):
            # A Brownian bridge from this hour's anchor to the next one's.
            f = (i + 1) / (n + 1)
            log_price = a0 + walk[i] - f * end + f * (a1 - a0)
            price = max(1, round(math.exp(log_price) / tick))
            prices.append(price)
            notional = math.exp(rng.gauss(mu, 1.1))
            vols.append(max(min_lots, int(notional / (price * tick) * lot_scale)))
            sides.append(98 if rng.random() < 0.5 else 115)  # b / s
            types.append(109 if rng.random() < 0.8 else 108)  # m / l
        return _Block(start, times, prices, vols, bytes(sides), bytes(types))

    # -- reading the tape ------------------------------------------------------------------

    def market_at_or_before(self, t_ns: int) -> tuple[int, int] | None:
        """(block, index) of the last market trade at or before ``t_ns``."""
        b = t_ns // BLOCK_NS
        while b >= self.p.first_block:
            blk = self.block(b)
            i = bisect.bisect_right(blk.times, t_ns)
            if i:
                return b, i - 1
            b -= 1
        return None

    def market_id(self, b: int, i: int, t_ns: int) -> int:
        return self.before_block(b) + i + bisect.bisect_left(self.f_times, t_ns) + 1

    def fill_id(self, j: int) -> int:
        t = self.f_times[j]
        b = t // BLOCK_NS
        before = 0
        if b >= self.p.first_block:
            before = self.before_block(b) + bisect.bisect_left(self.block(b).times, t)
        return before + j + 1

    def make_market_trade(self, b: int, i: int) -> MarketTrade:
        blk = self.block(b)
        t = blk.times[i]
        return MarketTrade(
            pair_id=self.spec.pair_id,
            price=self.price_dec(blk.prices[i], TAPE_PRICE_DECIMALS),
            volume=self.vol_dec(blk.vols[i]),
            side="buy" if blk.sides[i] == 98 else "sell",
            ordertype="market" if blk.types[i] == 109 else "limit",
            time_ns=t,
            trade_id=self.market_id(b, i, t),
        )

    def make_fill_trade(self, j: int) -> MarketTrade:
        return MarketTrade(
            pair_id=self.spec.pair_id,
            price=self.price_dec(self.f_prices[j], TAPE_PRICE_DECIMALS),
            volume=self.vol_dec(self.f_vols[j]),
            side="buy" if self.f_sides[j] == 98 else "sell",
            ordertype="market" if self.f_types[j] == 109 else "limit",
            time_ns=self.f_times[j],
            trade_id=self.fill_id(j),
        )

    def price_dec(self, ticks: int, min_decimals: int = 0) -> Decimal:
        places = max(self.spec.pair_decimals, min_decimals)
        return (ticks * self.spec.tick_size).quantize(Decimal(1).scaleb(-places))

    def vol_dec(self, lots: int) -> Decimal:
        return Decimal(lots).scaleb(-self.spec.lot_decimals)

    def market_after(self, since_ns: int, limit: int, upto_ns: int) -> list[tuple[int, int, int]]:
        """Up to ``limit`` market trades with since < t <= upto, as (time, block, index)."""
        out: list[tuple[int, int, int]] = []
        b = max(self.p.first_block, (since_ns + 1) // BLOCK_NS)
        while len(out) < limit and b * BLOCK_NS <= upto_ns:
            blk = self.block(b)
            i = bisect.bisect_right(blk.times, since_ns)
            j = bisect.bisect_right(blk.times, upto_ns)
            j = min(j, i + limit - len(out))
            out.extend((blk.times[k], b, k) for k in range(i, j))
            b += 1
        return out

    def market_before(self, upto_ns: int, limit: int) -> list[tuple[int, int, int]]:
        """The last ``limit`` market trades with t <= upto, oldest first."""
        out: list[tuple[int, int, int]] = []
        b = upto_ns // BLOCK_NS
        while len(out) < limit and b >= self.p.first_block:
            blk = self.block(b)
            j = bisect.bisect_right(blk.times, upto_ns)
            i = max(0, j - (limit - len(out)))
            out.extend((blk.times[k], b, k) for k in range(j - 1, i - 1, -1))
            b -= 1
        out.reverse()
        return out

    def aggregate(self, lo_ns: int, hi_ns: int, visible_ns: int) -> Agg | None:
        """Aggregate of the trades (market and fills) with lo <= t < hi and t <= visible."""
        hi_ns = min(hi_ns, visible_ns + 1)
        lo_ns = max(lo_ns, self.p.first_block * BLOCK_NS)
        agg: Agg | None = None
        if hi_ns > lo_ns:
            b = lo_ns // BLOCK_NS
            while b * BLOCK_NS < hi_ns:
                agg = _merge(agg, self._block_agg(b, lo_ns, hi_ns))
                b += 1
        i = bisect.bisect_left(self.f_times, lo_ns)
        j = bisect.bisect_left(self.f_times, hi_ns)
        return _merge(agg, _agg_of(self.f_times, self.f_prices, self.f_vols, i, j))

    def _block_agg(self, b: int, lo_ns: int, hi_ns: int) -> Agg | None:
        start = b * BLOCK_NS
        end = start + BLOCK_NS
        cached = self.summaries.get(b)
        if cached is None:
            self.block(b)
            cached = self.summaries[b]
        summary, minutes = cached
        if lo_ns <= start and end <= hi_ns:
            return summary
        agg: Agg | None = None
        first_m = max(0, -(-(lo_ns - start) // _MINUTE_NS))  # first whole minute in range
        last_m = min(_MINUTES_PER_BLOCK, (hi_ns - start) // _MINUTE_NS)
        if first_m < last_m:
            for m in range(first_m, last_m):
                agg = _merge(agg, minutes[m])
            agg = _merge(agg, self._scan(b, lo_ns, start + first_m * _MINUTE_NS))
            agg = _merge(agg, self._scan(b, start + last_m * _MINUTE_NS, hi_ns))
        else:
            agg = self._scan(b, lo_ns, hi_ns)
        return agg

    def _scan(self, b: int, lo_ns: int, hi_ns: int) -> Agg | None:
        if hi_ns <= lo_ns:
            return None
        blk = self.block(b)
        i = bisect.bisect_left(blk.times, lo_ns)
        j = bisect.bisect_left(blk.times, hi_ns)
        return _agg_of(blk.times, blk.prices, blk.vols, i, j)

    def close_before(self, t_ns: int) -> int | None:
        """Price (ticks) of the last trade before ``t_ns``."""
        best: tuple[int, int] | None = None
        found = self.market_at_or_before(t_ns - 1)
        if found is not None:
            blk = self.block(found[0])
            best = (blk.times[found[1]], blk.prices[found[1]])
        j = bisect.bisect_left(self.f_times, t_ns)
        if j and (best is None or self.f_times[j - 1] > best[0]):
            best = (self.f_times[j - 1], self.f_prices[j - 1])
        return best[1] if best is not None else None

    def last_trade(self, visible_ns: int) -> tuple[int, int, int] | None:
        """(time, price ticks, volume lots) of the last trade at or before ``visible_ns``."""
        best: tuple[int, int, int] | None = None
        found = self.market_at_or_before(visible_ns)
        if found is not None:
            blk = self.block(found[0])
            k = found[1]
            best = (blk.times[k], blk.prices[k], blk.vols[k])
        if self.f_times and (best is None or self.f_times[-1] > best[0]):
            best = (self.f_times[-1], self.f_prices[-1], self.f_vols[-1])
        return best


def side_code(side: str) -> int:
    if side in ("b", "buy"):
        return 98
    if side in ("s", "sell"):
        return 115
    raise ValueError(f"side must be buy/sell (or b/s), got {side!r}")

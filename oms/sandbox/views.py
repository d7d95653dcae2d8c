"""The market's public views computed from a tape: OHLC rows and the synthetic order book.

Pure functions of a :class:`~oms.sandbox.tape.Tape` and the visible horizon; the
:class:`~oms.sandbox.market.Market` takes its lock and calls them.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal

from oms._decimal import fmt
from oms.sandbox.tape import NS, TAPE_PRICE_DECIMALS, Agg, Tape

__all__ = ["book_levels", "ohlc_rows", "vwap"]


def vwap(tape: Tape, agg: Agg, min_decimals: int = 0) -> Decimal:
    """The volume-weighted average price of an aggregate, on the pair's decimals."""
    places = max(tape.spec.pair_decimals, min_decimals)
    value = Decimal(agg[8]) * tape.spec.tick_size / Decimal(agg[7])
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def _row(tape: Tape, bar: int, agg: Agg) -> list[object]:
    return [
        bar,
        fmt(tape.price_dec(agg[2])),
        fmt(tape.price_dec(agg[5])),
        fmt(tape.price_dec(agg[6])),
        fmt(tape.price_dec(agg[4])),
        fmt(vwap(tape, agg)),
        fmt(tape.vol_dec(agg[7])),
        agg[0],
    ]


def ohlc_rows(
    tape: Tape,
    *,
    start: int,
    first: int,
    current: int,
    step: int,
    since: int | None,
    visible_ns: int,
) -> list[list[object]]:
    """One row per ``step``-second bar from ``start`` to ``current`` (the current bar always;
    the others after ``since``). A bar without trades repeats the previous close, volume 0."""
    rows: list[list[object]] = []
    prev_close: int | None = None
    if start > first:
        prev_close = tape.close_before(start * NS)
    for bar in range(start, current + step, step):
        shown = since is None or bar > since or bar == current
        agg = tape.aggregate(bar * NS, (bar + step) * NS, visible_ns)
        if agg is not None:
            prev_close = agg[4]
            if shown:
                rows.append(_row(tape, bar, agg))
        elif prev_close is not None and shown:
            text = fmt(tape.price_dec(prev_close))
            rows.append([bar, text, text, text, text, text, fmt(tape.vol_dec(0)), 0])
    return rows


def book_levels(
    tape: Tape, *, visible_ns: int, count: int, start_ticks: int, log_notional: float
) -> dict[str, list[list[object]]]:
    """A synthetic book around the last market trade: ``count`` levels a side, each
    ``[price, volume, timestamp]``, a function of that trade (stable between trades)."""
    found = tape.market_at_or_before(visible_ns)
    if found is None:
        anchor_t, mid = 0, start_ticks
    else:
        blk = tape.block(found[0])
        anchor_t, mid = blk.times[found[1]], blk.prices[found[1]]
    half = max(1, round(mid * 0.00002))
    gap = max(1, round(mid * 0.00001))
    now_s = visible_ns // NS
    sides: dict[str, list[list[object]]] = {}
    for name, sign in (("asks", 1), ("bids", -1)):
        # One source per side, so the top levels do not depend on how many were asked for.
        rng = tape.rng(f"book-{name}", anchor_t)
        levels: list[list[object]] = []
        price = mid + sign * half
        for _ in range(count):
            if price <= 0:
                break
            notional = math.exp(rng.gauss(log_notional + 1.5, 1.0))
            lots = max(tape.min_lots, int(notional / (price * tape.tick_f) * tape.lot_scale))
            levels.append(
                [
                    fmt(tape.price_dec(price, TAPE_PRICE_DECIMALS)),
                    fmt(tape.vol_dec(lots)),
                    now_s - rng.randrange(0, 120),
                ]
            )
            price += sign * gap * rng.randint(1, 4)
        sides[name] = levels
    return sides

"""The sandbox's money arithmetic, pure: what an order must hold, what its fills have moved,
and what one more fill costs. Every rounding rule of the engine is here.

``places`` gives an asset's ``decimals``: balances and holds are always whole multiples of it.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from oms.sandbox.book import PairLike, SandboxOrder, q_even, q_half_up, q_up

__all__ = ["booked", "fill_totals", "hold_for", "hold_price", "marketable"]

Places = Callable[[str], int]


def hold_for(
    pair: PairLike,
    side: str,
    fee_in_base: bool,
    volume: Decimal,
    price: Decimal,
    places: Places,
) -> tuple[str, Decimal]:
    """What an order of ``volume`` at ``price`` must reserve: a buy holds quote (with the
    taker fee unless the fee is taken in base), a sell holds base (plus the fee in base
    when ``fcib``). Each part is rounded up to the asset's decimals, so the hold covers
    whatever :func:`booked` moves for the fills."""
    taker = pair.fees_taker / 100
    if side == "buy":
        qd = places(pair.quote)
        cost = q_even(volume * price, pair.cost_decimals)
        hold = q_up(cost, qd)
        if not fee_in_base:
            hold += q_up(q_up(cost * taker, pair.cost_decimals), qd)
        return pair.quote, hold
    bd = places(pair.base)
    hold = q_up(volume, bd)
    if fee_in_base:
        hold += q_up(q_up(volume * taker, pair.lot_decimals), bd)
    return pair.base, hold


def booked(order: SandboxOrder, pair: PairLike, places: Places) -> tuple[Decimal, Decimal]:
    """What the order's fills so far have taken from and given to the account, in total:
    ``(spent, received)``, each on its asset's decimals.

    Kraken keeps accounts as ledger entries, whose ``amount`` and ``fee`` are on the
    asset's decimals, while an order's ``cost`` and ``fee`` are on the pair's
    ``cost_decimals``. So the ledger amount is the cost rounded half-up to the asset and
    the ledger fee the fee rounded up. A fill moves the difference of these totals before
    and after it, so balances always equal the start plus the rounded totals of the
    orders, however the fills were split, and no digit below the asset's ever appears.
    """
    qd, bd = places(pair.quote), places(pair.base)
    cost = q_half_up(order.cost, qd)
    vol = q_half_up(order.vol_exec, bd)
    if order.fee_in_base:
        fee_base = q_up(order.fee_base, bd)
        if order.side == "buy":
            return cost, vol - fee_base
        return vol + fee_base, cost
    fee = q_up(order.fee, qd)
    if order.side == "buy":
        return cost + fee, vol
    return vol, cost - fee


def hold_price(
    ordertype: str, price: Decimal | None, price2: Decimal | None, ref: Decimal
) -> Decimal:
    """The price an order's hold is computed at: its limit, or the reference price."""
    if ordertype in ("stop-loss-limit", "take-profit-limit") and price2 is not None:
        return price2
    if ordertype == "market" or price is None:
        return ref
    return price


def marketable(side: str, limit: Decimal, ref: Decimal) -> bool:
    """Whether a limit at ``limit`` would execute at once against ``ref``."""
    return limit >= ref if side == "buy" else limit <= ref


def fill_totals(
    order: SandboxOrder, pair: PairLike, volume: Decimal, price: Decimal, *, maker: bool
) -> tuple[Decimal, Decimal, Decimal]:
    """The order's ``(cost, fee, fee_base)`` after one more fill of ``volume`` at ``price``.

    A maker fill is priced over the whole segment resting at one price (so splitting a
    segment into many fills rounds as one fill would); a taker fill on its own.
    """
    cd, ld = pair.cost_decimals, pair.lot_decimals
    rate = (pair.fees_maker if maker else pair.fees_taker) / 100
    fcib = order.fee_in_base
    if maker:
        seg_exec = order.seg_exec + volume
        seg_cost = q_even(seg_exec * order.seg_price, cd)
        return (
            order.seg_cost0 + seg_cost,
            order.seg_fee0 + q_up(seg_cost * rate, cd),
            order.seg_feeb0 + (q_up(seg_exec * rate, ld) if fcib else 0),
        )
    dcost = q_even(volume * price, cd)
    return (
        order.cost + dcost,
        order.fee + q_up(dcost * rate, cd),
        order.fee_base + (q_up(volume * rate, ld) if fcib else 0),
    )

"""AmendOrder: change an open order's quantity and prices in place (txid and userref kept).

As on Kraken: a quantity at or below what has executed closes the order; a changed price or
a larger quantity loses queue priority; a post-only amend that would take is refused; the
hold moves with the new quantity and price, refused if the account cannot cover it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from oms.sandbox.accounts import Account
from oms.sandbox.book import PairLike, SandboxOrder
from oms.sandbox.money import hold_for, hold_price, marketable
from oms.sandbox.protocol import ApiError, Params, invalid, parse_decimal
from oms.sandbox.ratelimit import AMEND_PENALTY, age_penalty
from oms.sandbox.validation import TRIGGERED, parse_price, parse_volume

if TYPE_CHECKING:
    from oms.sandbox.trading import Trading

__all__ = ["REASON_AMEND", "amend"]

REASON_AMEND = "Order quantity amended below executed quantity"

_Prices = tuple[Decimal | None, Decimal | None]


def _new_prices(order: SandboxOrder, p: Params, pair: PairLike, ref: Decimal) -> _Prices:
    """``(price, price2)`` after the amend: ``limit_price`` moves the limit (``price2`` of a
    stop/take-profit limit), ``trigger_price`` the trigger of an untriggered order."""
    new_price, new_price2 = order.price, order.price2
    if "limit_price" in p:
        if order.ordertype in ("limit", "iceberg"):
            new_price = parse_price(p.raw("limit_price"), "limit_price", pair, ref, order.side)
        elif order.ordertype.endswith("-limit"):
            new_price2 = parse_price(p.raw("limit_price"), "price2", pair, ref, order.side)
        else:
            raise invalid("limit_price")
    if "trigger_price" in p:
        if order.ordertype not in TRIGGERED or order.triggered:
            raise invalid("trigger_price")
        new_price = parse_price(p.raw("trigger_price"), "trigger_price", pair, ref, order.side)
    return new_price, new_price2


def _set_display(order: SandboxOrder, p: Params, new_vol: Decimal) -> None:
    if "display_qty" not in p:
        return
    if order.ordertype != "iceberg":
        raise invalid("display_qty")
    shown = parse_decimal(p.raw("display_qty"), "display_qty")
    if shown <= 0 or shown * 15 < new_vol - order.vol_exec:
        raise invalid("display_qty")
    order.displayvol = shown


def _would_take(order: SandboxOrder, p: Params, prices: _Prices, ref: Decimal) -> bool:
    """A post-only order whose amended limit is live and would execute at once."""
    if not (p.flag("post_only") or order.post_only) or order.status != "open":
        return False
    new_price, new_price2 = prices
    limit_after = new_price2 if order.ordertype.endswith("-limit") else new_price
    active_limit = order.ordertype in ("limit", "iceberg") or (
        order.ordertype.endswith("-limit") and order.triggered
    )
    return active_limit and limit_after is not None and marketable(order.side, limit_after, ref)


def amend(trading: Trading, acct: Account, order: SandboxOrder, p: Params, now: float) -> None:
    """AmendOrder on ``order`` (open or pending), charged to the trading counter first."""
    pair = trading.pair(order.pair_id)
    penalty = age_penalty(AMEND_PENALTY, now - order.touched)
    trading.charge(acct, order.pair_id, 1 + penalty, now, force=False)
    ref = trading.ref_price(order.pair_id)
    new_vol = order.vol
    if "order_qty" in p:
        new_vol = parse_volume(p.raw("order_qty"), pair, "order_qty")
    prices = _new_prices(order, p, pair, ref)
    _set_display(order, p, new_vol)
    if _would_take(order, p, prices, ref):
        raise ApiError("EOrder:Post only order")
    if new_vol <= order.vol_exec:
        order.misc.append("amended")
        trading.close(order, "canceled", REASON_AMEND, now)
        return
    at = hold_price(order.ordertype, prices[0], prices[1], ref)
    asset, need = hold_for(
        pair, order.side, order.fee_in_base, new_vol - order.vol_exec, at, trading.places
    )
    if need - order.hold > acct.available(asset):
        raise ApiError("EOrder:Insufficient funds")
    _apply(trading, acct, order, new_vol, prices, (asset, need), now)
    if order.status == "open":
        trading.execution.activate(order, now, ref)


def _apply(
    trading: Trading,
    acct: Account,
    order: SandboxOrder,
    new_vol: Decimal,
    prices: _Prices,
    hold: tuple[str, Decimal],
    now: float,
) -> None:
    """Take the order out of its book, change it and move its hold (it re-enters the book,
    or executes, when the caller activates it again)."""
    asset, need = hold
    trading.execution.unrest(order)
    if prices != (order.price, order.price2) or new_vol > order.vol:
        order.seq = trading.next_seq()  # loses queue priority, as on Kraken
    order.vol = new_vol
    order.price, order.price2 = prices
    if need > order.hold:
        acct.reserve(asset, need - order.hold)
    elif need < order.hold:
        acct.release(asset, order.hold - need)
    order.hold = need
    seg = order.limit_price
    trading.execution.new_segment(order, seg if seg is not None else Decimal(0))
    if "amended" not in order.misc:
        order.misc.append("amended")
    order.touched = now

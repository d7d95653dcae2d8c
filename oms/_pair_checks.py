"""An order request checked against its pair's rules from AssetPairs (see :mod:`oms.orders`)."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, localcontext
from typing import TYPE_CHECKING

from oms._decimal import fmt
from oms.errors import ValidationError
from oms.models import (
    AssetPair,
    OFlag,
    OrderType,
)

if TYPE_CHECKING:
    from oms.orders import OrderRequest


# --- pair rules ---------------------------------------------------------------------------------


def _digits_exponent(value: Decimal) -> tuple[int, int]:
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    number = int("".join(map(str, digits)))
    return (-number if sign else number), exponent


def _places(value: Decimal) -> int:
    """Decimals that carry information (``1.2500`` has 2), computed without a context."""
    number, exponent = _digits_exponent(value)
    if number == 0:
        return 0
    while exponent < 0 and number % 10 == 0:
        number, exponent = number // 10, exponent + 1
    return max(0, -exponent)


def _is_multiple(value: Decimal, step: Decimal) -> bool:
    # Integer arithmetic: Decimal's % would need a context precision large enough.
    v, ve = _digits_exponent(value)
    s, se = _digits_exponent(step)
    e = min(ve, se)
    # int(): mypy types 10**n as Any since a negative n would give a float; n >= 0 here.
    return (v * int(10 ** (ve - e))) % (s * int(10 ** (se - e))) == 0


def _exact_mul(a: Decimal, b: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = len(a.as_tuple().digits) + len(b.as_tuple().digits) + 2
        return a * b


def _round_to_step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    v, ve = _digits_exponent(value)
    s, se = _digits_exponent(step)
    with localcontext() as ctx:
        # Enough digits that the one rounding below is the only one.
        ctx.prec = len(str(abs(v))) + len(str(abs(s))) + abs(ve - se) + 10
        steps = (value / step).to_integral_value(rounding=rounding)
        return (steps * step).quantize(step)


def _check_places(value: Decimal, field: str, allowed: int, rule: str, pair: AssetPair) -> None:
    places = _places(value)
    if places > allowed:
        raise ValidationError(
            f"{field} {fmt(value)} has {places} decimals; {pair.altname} allows {allowed} ({rule})",
            field=field,
            rule=rule,
        )


def check_against_pair(req: OrderRequest, pair: AssetPair) -> None:
    """Raise ``ValidationError`` naming the first of ``pair``'s rules that ``req`` breaks.

    Checked: the pair's trading status (``cancel_only``, ``post_only``, ``limit_only``,
    ``reduce_only``); each absolute price against ``pair_decimals`` and ``tick_size``; the
    volume against ``lot_decimals`` and ``ordermin`` (for ``viqc`` the volume is in the quote
    currency: ``cost_decimals`` and ``costmin``); and price x volume against ``costmin`` when
    the execution price is known (limit, iceberg, and the limit of stop/take-profit-limit).
    The caller passes the AssetPairs entry for ``req.pair``; keep it fresh.
    """
    _check_status(req, pair)
    prices = {
        "price": req.price,
        "price2": req.price2,
        "close_price": req.close_price,
        "close_price2": req.close_price2,
    }
    for field, value in prices.items():
        if not isinstance(value, Decimal):
            continue
        _check_places(value, field, pair.pair_decimals, "pair_decimals", pair)
        if (
            pair.tick_size is not None
            and pair.tick_size > 0
            and not _is_multiple(value, pair.tick_size)
        ):
            raise ValidationError(
                f"{field} {fmt(value)} is not a multiple of {pair.altname}'s tick_size "
                f"{fmt(pair.tick_size)}",
                field=field,
                rule="tick_size",
            )
    if OFlag.VIQC in req.oflags:
        if pair.cost_decimals is not None:
            _check_places(req.volume, "volume", pair.cost_decimals, "cost_decimals", pair)
        _check_costmin(req.volume, pair)
        return
    _check_places(req.volume, "volume", pair.lot_decimals, "lot_decimals", pair)
    if req.displayvol is not None:
        _check_places(req.displayvol, "displayvol", pair.lot_decimals, "lot_decimals", pair)
    if req.volume == 0:
        return  # closing a margin position: Kraken fills the requisite quantity
    if pair.ordermin is not None and req.volume < pair.ordermin:
        raise ValidationError(
            f"volume {fmt(req.volume)} is below {pair.altname}'s ordermin {fmt(pair.ordermin)}",
            field="volume",
            rule="ordermin",
        )
    limit = _execution_price(req)
    if limit is not None:
        _check_costmin(_exact_mul(limit, req.volume), pair)


def _execution_price(req: OrderRequest) -> Decimal | None:
    if req.ordertype in (OrderType.LIMIT, OrderType.ICEBERG) and isinstance(req.price, Decimal):
        return req.price
    if req.ordertype in (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT) and isinstance(
        req.price2, Decimal
    ):
        return req.price2
    return None


def _check_costmin(cost: Decimal, pair: AssetPair) -> None:
    if pair.costmin is not None and cost < pair.costmin:
        raise ValidationError(
            f"order cost {fmt(cost)} is below {pair.altname}'s costmin {fmt(pair.costmin)} "
            f"{pair.quote}",
            field="volume",
            rule="costmin",
        )


def _check_status(req: OrderRequest, pair: AssetPair) -> None:
    status = pair.status
    problem = None
    if status == "cancel_only":
        problem = "accepts no new orders"
    elif status == "post_only" and not (
        req.ordertype is OrderType.LIMIT and OFlag.POST in req.oflags
    ):
        problem = "accepts only post-only limit orders"
    elif status == "limit_only" and req.ordertype is not OrderType.LIMIT:
        problem = "accepts only limit orders"
    elif status == "reduce_only" and not req.reduce_only:
        problem = "accepts only reduce-only orders"
    if problem is not None:
        raise ValidationError(
            f"{pair.altname} is {status}: it {problem}", field="pair", rule="pair-status"
        )


def quantize_price(pair: AssetPair, price: Decimal, *, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """``price`` rounded to the pair's tick (``tick_size``, else ``pair_decimals``)."""
    step = pair.tick_size if pair.tick_size else Decimal(1).scaleb(-pair.pair_decimals)
    return _round_to_step(price, step, rounding)


def quantize_volume(pair: AssetPair, volume: Decimal, *, rounding: str = ROUND_DOWN) -> Decimal:
    """``volume`` rounded to ``lot_decimals``; down by default, so it never exceeds a balance."""
    return _round_to_step(volume, Decimal(1).scaleb(-pair.lot_decimals), rounding)

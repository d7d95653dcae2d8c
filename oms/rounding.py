"""Prices and volumes on a pair's grid: the rounding every strategy needs before it places.

Kraken refuses a price with more decimals than the pair's ``pair_decimals`` or off its
``tick_size``, and a volume with more decimals than ``lot_decimals``;
:func:`oms.orders.check_against_pair` refuses them before anything is sent. These helpers
put a computed value on that grid instead, in ``Decimal`` and exactly (no float, no
context precision to run out of)::

    price = round_price(last * Decimal("0.98"), pair)                 # nearest tick
    volume = round_volume(budget / price, pair)                       # down: never over budget
    volume = max(volume, min_volume(pair, price))                     # ordermin and costmin

``rounding`` is one of :mod:`decimal`'s modes: prices round to the nearest step by default
(``ROUND_HALF_EVEN``), volumes down (``ROUND_DOWN``, so a volume never grows past what was
asked); pass ``ROUND_FLOOR`` / ``ROUND_CEILING`` to stay on one side of the market.
"""

from __future__ import annotations

import math
from decimal import (
    ROUND_05UP,
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Decimal,
    InvalidOperation,
    localcontext,
)

from oms._decimal import fmt as _fmt
from oms.errors import ValidationError
from oms.models import AssetPair

__all__ = [
    "decimal_text",
    "min_volume",
    "price_step",
    "round_price",
    "round_to_step",
    "round_volume",
    "volume_step",
]

_MODES = frozenset(
    {
        ROUND_05UP,
        ROUND_CEILING,
        ROUND_DOWN,
        ROUND_FLOOR,
        ROUND_HALF_DOWN,
        ROUND_HALF_EVEN,
        ROUND_HALF_UP,
        ROUND_UP,
    }
)


def _decimal(value: Decimal | int | str, field: str) -> Decimal:
    # A float already lost the digits a price needs; bool is an int only by accident.
    if isinstance(value, (float, bool)) or not isinstance(value, (Decimal, int, str)):
        raise ValidationError(
            f"{field} must be a Decimal, an int or a decimal string, not {type(value).__name__}",
            field=field,
        )
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValidationError(f"{field} {value!r} is not a number", field=field) from None
    if not number.is_finite():
        raise ValidationError(f"{field} must be finite, got {value!r}", field=field)
    return number


def _integral(value: Decimal) -> tuple[int, int]:
    """``value`` as ``(digits, exponent)``: value == digits * 10**exponent, exactly."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite: checked by the caller
    number = int("".join(map(str, digits)) or "0")
    return (-number if sign else number), exponent


def price_step(pair: AssetPair) -> Decimal:
    """The smallest price step ``pair`` allows: a multiple of ``tick_size`` (when Kraken
    publishes one) with at most ``pair_decimals`` decimals."""
    places = Decimal(1).scaleb(-pair.pair_decimals)
    tick = pair.tick_size
    if tick is None or tick <= 0:
        return places
    t, te = _integral(tick)
    p, pe = _integral(places)
    e = min(te, pe)
    # Both rules hold on the least common multiple (a tick finer than pair_decimals allows
    # is a step of the decimals; a tick of 0.5 on 0 decimals is a step of 1).
    step = math.lcm(t * 10 ** (te - e), p * 10 ** (pe - e))
    return Decimal(step).scaleb(e)


def volume_step(pair: AssetPair) -> Decimal:
    """The smallest volume step ``pair`` allows: one unit of its ``lot_decimals``."""
    return Decimal(1).scaleb(-pair.lot_decimals)


def decimal_text(value: Decimal) -> str:
    """``value`` as Kraken writes amounts: plain notation, never an exponent, its trailing
    zeros kept (``Decimal("1E-8")`` is ``"0.00000001"``)."""
    return _fmt(value)


def round_to_step(
    value: Decimal | int | str, step: Decimal | int | str, *, rounding: str = ROUND_HALF_EVEN
) -> Decimal:
    """``value`` rounded by ``rounding`` to a multiple of a positive ``step``, exactly."""
    size = _decimal(step, "step")
    if size <= 0:
        raise ValidationError(f"step must be positive, got {size}", field="step")
    return _to_step(_decimal(value, "value"), size, rounding)


def _to_step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    if rounding not in _MODES:
        raise ValidationError(f"rounding must be one of decimal's modes, got {rounding!r}")
    v, ve = _integral(value)
    s, se = _integral(step)
    with localcontext() as ctx:
        # Enough digits that the one rounding below is the only one.
        ctx.prec = len(str(abs(v))) + len(str(abs(s))) + abs(ve - se) + 10
        steps = (value / step).to_integral_value(rounding=rounding)
        return (steps * step).quantize(step.normalize() if se < 0 else Decimal(1))


def round_price(
    value: Decimal | int | str, pair: AssetPair, *, rounding: str = ROUND_HALF_EVEN
) -> Decimal:
    """``value`` on ``pair``'s price grid (see :func:`price_step`), rounded by ``rounding``."""
    return _to_step(_decimal(value, "price"), price_step(pair), rounding)


def round_volume(
    value: Decimal | int | str, pair: AssetPair, *, rounding: str = ROUND_DOWN
) -> Decimal:
    """``value`` on ``pair``'s volume grid (``lot_decimals``), rounded by ``rounding``.

    The pair's minimums are not applied: compare with :func:`min_volume`.
    """
    return _to_step(_decimal(value, "volume"), volume_step(pair), rounding)


def min_volume(pair: AssetPair, price: Decimal | int | str | None = None) -> Decimal:
    """The least volume ``pair`` accepts: its ``ordermin`` (or one lot), raised at ``price``
    until price x volume meets ``costmin``; on the volume grid."""
    lot = volume_step(pair)
    least = lot
    if pair.ordermin is not None and pair.ordermin > lot:
        on_grid = round_volume(pair.ordermin, pair, rounding=ROUND_CEILING)
        # As Kraken wrote it when it is on the grid already ("0.0001", not "0.00010000").
        least = pair.ordermin if on_grid == pair.ordermin else on_grid
    if price is None or pair.costmin is None:
        return least
    at = _decimal(price, "price")
    if at <= 0:
        raise ValidationError(f"price must be positive, got {at}", field="price")
    with localcontext() as ctx:
        ctx.prec = 60
        volume = max(least, round_volume(pair.costmin / at, pair, rounding=ROUND_CEILING))
        # The quotient was rounded once at 60 digits: make sure, exactly, that it is enough.
        ctx.prec = len(str(volume)) + len(str(at)) + 10
        while volume * at < pair.costmin:
            volume += lot
    return volume

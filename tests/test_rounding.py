"""Rounded prices and volumes always pass the pair's own check, and land on the nearest step."""

from __future__ import annotations

import decimal
from decimal import Decimal

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import asset_pairs, positive_decimals

from oms.errors import ValidationError
from oms.models import AssetPair
from oms.orders import OrderRequest, check_against_pair
from oms.rounding import (
    decimal_text,
    min_volume,
    price_step,
    round_price,
    round_to_step,
    round_volume,
    volume_step,
)

MODES = [
    decimal.ROUND_HALF_EVEN,
    decimal.ROUND_HALF_UP,
    decimal.ROUND_DOWN,
    decimal.ROUND_UP,
    decimal.ROUND_FLOOR,
    decimal.ROUND_CEILING,
]


@st.composite
def odd_pairs(draw: st.DrawFn) -> AssetPair:
    """Pairs from the shared strategy, some with ticks Kraken could publish but rarely does
    (finer than pair_decimals, or not a power of ten)."""
    pair = draw(asset_pairs())
    tick = draw(
        st.one_of(
            st.just(pair.tick_size),
            st.sampled_from(["0.5", "0.25", "0.005", "3", "0.0000001", "20"]).map(Decimal),
        )
    )
    return attrs.evolve(pair, tick_size=tick)


def _pair(**kw: object) -> AssetPair:
    base: dict[str, object] = {
        "pair_id": "XXBTZUSD",
        "altname": "XBTUSD",
        "base": "XXBT",
        "quote": "ZUSD",
        "pair_decimals": 1,
        "lot_decimals": 8,
        "tick_size": "0.1",
        "ordermin": "0.0001",
        "costmin": "0.5",
    }
    return AssetPair(**{**base, **kw})  # type: ignore[arg-type]


@given(odd_pairs(), positive_decimals(max_places=14), positive_decimals(max_places=14))
def test_rounded_limit_orders_pass_check_against_pair(
    pair: AssetPair, raw_price: Decimal, raw_volume: Decimal
) -> None:
    price = round_price(raw_price, pair, rounding=decimal.ROUND_CEILING)
    volume = max(round_volume(raw_volume, pair), min_volume(pair, price))
    request = OrderRequest(
        pair=pair.altname, side="buy", ordertype="limit", volume=volume, price=price
    )
    check_against_pair(request, pair)


@given(odd_pairs(), positive_decimals(max_places=14), st.sampled_from(MODES))
def test_a_rounded_price_is_the_step_the_mode_asks_for(
    pair: AssetPair, raw: Decimal, mode: str
) -> None:
    step = price_step(pair)
    rounded = round_price(raw, pair, rounding=mode)
    assert abs(rounded - raw) < step
    assert (rounded / step) == (rounded / step).to_integral_value()
    if mode == decimal.ROUND_FLOOR:
        assert rounded <= raw
    elif mode == decimal.ROUND_CEILING:
        assert rounded >= raw


@given(asset_pairs(), positive_decimals(max_places=14))
def test_volumes_round_down_by_default(pair: AssetPair, raw: Decimal) -> None:
    rounded = round_volume(raw, pair)
    assert raw - volume_step(pair) < rounded <= raw


@pytest.mark.parametrize(
    ("kw", "value", "expected"),
    [
        ({}, "50123.456", "50123.5"),
        ({"tick_size": "0.5", "pair_decimals": 1}, "100.26", "100.5"),
        ({"tick_size": "0.25", "pair_decimals": 2}, "1.13", "1.25"),
        ({"tick_size": None, "pair_decimals": 3}, "0.12345", "0.123"),
        ({"tick_size": "5", "pair_decimals": 0}, "12", "10"),
        ({"tick_size": "0.005", "pair_decimals": 2}, "1.234", "1.23"),
    ],
)
def test_round_price_table(kw: dict[str, object], value: str, expected: str) -> None:
    rounded = round_price(Decimal(value), _pair(**kw))
    assert str(rounded) == expected


def test_min_volume_meets_ordermin_and_costmin() -> None:
    pair = _pair()
    assert min_volume(pair) == Decimal("0.0001")
    assert min_volume(pair, Decimal("1000")) == Decimal("0.0005")
    assert min_volume(_pair(ordermin=None, costmin=None)) == Decimal("0.00000001")


@pytest.mark.parametrize("bad", [1.5, True, "abc", "NaN", "Infinity", None])
def test_no_float_no_nonsense(bad: object) -> None:
    with pytest.raises(ValidationError):
        round_price(bad, _pair())  # type: ignore[arg-type]


def test_unknown_rounding_mode_refused() -> None:
    with pytest.raises(ValidationError):
        round_volume(Decimal(1), _pair(), rounding="ROUND_SIDEWAYS")


@given(positive_decimals(max_places=14), st.sampled_from(["0.1", "0.25", "5", "0.00000001"]))
def test_round_to_step_lands_on_the_step(raw: Decimal, step: str) -> None:
    rounded = round_to_step(raw, step, rounding=decimal.ROUND_FLOOR)
    assert raw - Decimal(step) < rounded <= raw
    assert rounded % Decimal(step) == 0


def test_decimal_text_has_no_exponent() -> None:
    assert decimal_text(Decimal("1E-8")) == "0.00000001"
    assert decimal_text(Decimal("50000.00")) == "50000.00"

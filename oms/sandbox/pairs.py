"""The sandbox's pairs: what Kraken's ``AssetPairs`` says about each, and the defaults."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from oms._decimal import fmt

__all__ = ["DEFAULT_PAIRS", "PairSpec"]


def _dec(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        return Decimal(value)
    raise TypeError(f"expected a Decimal, str or int, got {type(value).__name__}")


def _names(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(str(v) for v in value)


@attrs.frozen
class PairSpec:
    """One tradable pair, with the fields Kraken's ``AssetPairs`` reports.

    ``fees_taker``/``fees_maker`` are percentages (``Decimal("0.40")`` is 0.40 %);
    ``start_price`` is the market price at the sandbox's genesis; ``aliases`` are other names
    Kraken answers to (``BTC/USD`` for ``XXBTZUSD``).
    """

    pair_id: str
    altname: str
    wsname: str
    base: str
    quote: str
    pair_decimals: int
    lot_decimals: int
    cost_decimals: int
    ordermin: Decimal = attrs.field(converter=_dec)
    costmin: Decimal = attrs.field(converter=_dec)
    tick_size: Decimal = attrs.field(converter=_dec)
    start_price: Decimal = attrs.field(converter=_dec)
    fees_taker: Decimal = attrs.field(default=Decimal("0.40"), converter=_dec)
    fees_maker: Decimal = attrs.field(default=Decimal("0.25"), converter=_dec)
    status: str = "online"
    aliases: tuple[str, ...] = attrs.field(default=(), converter=_names)

    def __attrs_post_init__(self) -> None:
        if self.tick_size <= 0 or self.start_price <= 0 or self.ordermin <= 0:
            raise ValueError(f"{self.pair_id}: tick_size, start_price and ordermin must be > 0")
        if self.start_price % self.tick_size:
            raise ValueError(f"{self.pair_id}: start_price is not a multiple of tick_size")

    @property
    def names(self) -> tuple[str, ...]:
        """Every name this pair is found by (compared case-insensitively)."""
        return (self.pair_id, self.altname, self.wsname, *self.aliases)

    def asset_pair_info(self) -> dict[str, Any]:
        """This pair as one value of Kraken's ``AssetPairs`` result (JSON-ready)."""
        return {
            "altname": self.altname,
            "wsname": self.wsname,
            "aclass_base": "currency",
            "base": self.base,
            "aclass_quote": "currency",
            "quote": self.quote,
            "lot": "unit",
            "cost_decimals": self.cost_decimals,
            "pair_decimals": self.pair_decimals,
            "lot_decimals": self.lot_decimals,
            "lot_multiplier": 1,
            "leverage_buy": [],
            "leverage_sell": [],
            # Kraken sends fee tiers as JSON numbers; this is display data, not money we count.
            "fees": [[0, float(self.fees_taker)]],
            "fees_maker": [[0, float(self.fees_maker)]],
            "fee_volume_currency": "ZUSD",
            "margin_call": 80,
            "margin_stop": 40,
            "ordermin": fmt(self.ordermin),
            "costmin": fmt(self.costmin),
            "tick_size": fmt(self.tick_size),
            "status": self.status,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (decimals as strings), for snapshots."""
        out: dict[str, Any] = {}
        for field in attrs.fields(PairSpec):
            value = getattr(self, field.name)
            if isinstance(value, Decimal):
                value = fmt(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[field.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PairSpec:
        return cls(**data)


# Values as Kraken's AssetPairs reports them (fixtures recorded from the live venue in 2026:
# ordermin 0.00005 XBT / 0.002 ETH / 50 XDG, costmin 0.5 USD, tick = 10**-pair_decimals).
# Fees are the starter tier of Kraken's current schedule (0.40 % taker, 0.25 % maker); the
# start prices are round, plausible figures, not quotes.
DEFAULT_PAIRS: tuple[PairSpec, ...] = (
    PairSpec(
        pair_id="XXBTZUSD",
        altname="XBTUSD",
        wsname="XBT/USD",
        base="XXBT",
        quote="ZUSD",
        pair_decimals=1,
        lot_decimals=8,
        cost_decimals=5,
        ordermin="0.00005",
        costmin="0.5",
        tick_size="0.1",
        start_price="65000.0",
        aliases=("BTC/USD", "BTCUSD"),
    ),
    PairSpec(
        pair_id="XETHZUSD",
        altname="ETHUSD",
        wsname="ETH/USD",
        base="XETH",
        quote="ZUSD",
        pair_decimals=2,
        lot_decimals=8,
        cost_decimals=5,
        ordermin="0.002",
        costmin="0.5",
        tick_size="0.01",
        start_price="3500.00",
    ),
    PairSpec(
        pair_id="XDGUSD",
        altname="XDGUSD",
        wsname="XDG/USD",
        base="XXDG",
        quote="ZUSD",
        pair_decimals=7,
        lot_decimals=8,
        cost_decimals=9,
        ordermin="50",
        costmin="0.5",
        tick_size="0.0000001",
        start_price="0.1500000",
        aliases=("DOGE/USD", "DOGEUSD"),
    ),
)

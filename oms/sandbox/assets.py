"""Assets the sandbox knows: ids, precision, funding methods and fees.

Kraken names assets by id (``XXBT``, ``ZUSD``, ``XXDG``) and by altname (``XBT``, ``USD``,
``XDG``); people also type ``BTC`` or ``doge`` (Kraken's own support examples do). Balances,
funding amounts and the ``Assets`` endpoint use the asset's ``decimals``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

import attrs

__all__ = ["DEFAULT_ASSETS", "AssetSpec", "AssetTable"]


@attrs.frozen
class AssetSpec:
    """One asset and how money moves in and out of it in the sandbox."""

    asset_id: str
    altname: str
    decimals: int
    display_decimals: int
    method: str  # deposit/withdraw method name shown in funding answers
    withdraw_fee: Decimal
    withdraw_minimum: Decimal
    deposit_minimum: Decimal
    crypto: bool = True
    aliases: tuple[str, ...] = ()
    collateral_value: Decimal | None = None


DEFAULT_ASSETS: tuple[AssetSpec, ...] = (
    AssetSpec(
        "ZUSD",
        "USD",
        4,
        2,
        "Bank Frick (Wire)",
        Decimal("5.00"),
        Decimal("10"),
        Decimal("5"),
        crypto=False,
        collateral_value=Decimal("1.0"),
    ),
    AssetSpec(
        "ZEUR",
        "EUR",
        4,
        2,
        "SEPA (Sandbox)",
        Decimal("0.09"),
        Decimal("1"),
        Decimal("1"),
        crypto=False,
        collateral_value=Decimal("1.0"),
    ),
    AssetSpec(
        "XXBT",
        "XBT",
        10,
        5,
        "Bitcoin",
        Decimal("0.00015"),
        Decimal("0.0005"),
        Decimal("0.0001"),
        aliases=("BTC",),
        collateral_value=Decimal("1.0"),
    ),
    AssetSpec(
        "XETH",
        "ETH",
        10,
        5,
        "Ether (Hex)",
        Decimal("0.0035"),
        Decimal("0.005"),
        Decimal("0.0001"),
        collateral_value=Decimal("1.0"),
    ),
    AssetSpec(
        "XXDG",
        "XDG",
        8,
        2,
        "Dogecoin",
        Decimal("2.00000000"),
        Decimal("20"),
        Decimal("10"),
        aliases=("DOGE",),
    ),
    AssetSpec(
        "USDT", "USDT", 8, 4, "Tether USD (ERC20)", Decimal("2.5"), Decimal("5"), Decimal("1")
    ),
)


class AssetTable:
    """Lookup of :class:`AssetSpec` by id, altname or alias (case-insensitive)."""

    def __init__(self, assets: Iterable[AssetSpec] = DEFAULT_ASSETS) -> None:
        self._by_id: dict[str, AssetSpec] = {}
        self._names: dict[str, AssetSpec] = {}
        for spec in assets:
            self.add(spec)

    def add(self, spec: AssetSpec) -> None:
        self._by_id[spec.asset_id] = spec
        for name in (spec.asset_id, spec.altname, *spec.aliases):
            self._names.setdefault(name.upper(), spec)

    def get(self, name: str) -> AssetSpec | None:
        return self._names.get(name.strip().upper())

    def ensure(self, asset_id: str) -> AssetSpec:
        """The spec for ``asset_id``, inventing a plain crypto asset if it is new."""
        spec = self._by_id.get(asset_id) or self.get(asset_id)
        if spec is None:
            alt = asset_id[1:] if len(asset_id) == 4 and asset_id[0] in "XZ" else asset_id
            spec = AssetSpec(asset_id, alt, 8, 4, alt, Decimal("0"), Decimal("0"), Decimal("0"))
            self.add(spec)
        return spec

    def all(self) -> list[AssetSpec]:
        return list(self._by_id.values())

    def by_id(self) -> Mapping[str, AssetSpec]:
        return dict(self._by_id)

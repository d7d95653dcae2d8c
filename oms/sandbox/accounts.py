"""Sandbox accounts: API credentials, balances, holds for open orders, and counters.

A balance is what the account owns; a *hold* is the part reserved for open orders (a buy
holds quote including the fee, a sell holds base). ``available = balance - hold`` is what a
new order or a withdrawal may use. The engine keeps ``0 <= hold <= balance`` for every asset.
"""

from __future__ import annotations

import base64
import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

import attrs

from oms._decimal import fmt, to_decimal
from oms.sandbox.ratelimit import TIERS, DecayingCounter, TierLimits

if TYPE_CHECKING:
    from oms.sandbox.book import SandboxOrder
    from oms.sandbox.funding import FundingTx

__all__ = ["Account", "AccountConfig"]


def _balances(value: Mapping[str, object] | None) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for asset, amount in (value or {}).items():
        dec = to_decimal(amount, field=f"balances[{asset}]")
        if dec < 0:
            raise ValueError(f"balance of {asset} must be >= 0, got {amount!r}")
        out[str(asset)] = dec
    return out


def _check_tier(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in TIERS:
        raise ValueError(f"tier must be one of {sorted(TIERS)}, got {value!r}")


def _check_secret(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    try:
        base64.b64decode(value, validate=True)
    except ValueError:
        raise ValueError("secret must be base64 (as Kraken hands it out)") from None


@attrs.frozen
class AccountConfig:
    """How a sandbox account starts: its API key pair, balances and verification tier.

    ``balances`` maps Kraken asset ids (``ZUSD``, ``XXBT``, ``XETH``, ``XXDG``) to amounts
    (Decimal, str or int). ``nonce_window`` overrides the exchange-wide default.
    """

    key: str = attrs.field(validator=attrs.validators.min_len(1))
    secret: str = attrs.field(repr=False, validator=_check_secret)
    balances: dict[str, Decimal] = attrs.field(factory=dict, converter=_balances)
    tier: str = attrs.field(default="starter", kw_only=True, validator=_check_tier)
    nonce_window: int | None = attrs.field(default=None, kw_only=True)

    @classmethod
    def generate(
        cls,
        seed: int | str = 0,
        *,
        balances: Mapping[str, object] | None = None,
        tier: str = "starter",
        nonce_window: int | None = None,
    ) -> AccountConfig:
        """A key pair derived from ``seed`` (same seed, same keys), shaped like Kraken's.

        The key is 56 base64 characters and the secret 64 random bytes in base64, as on
        Kraken's API settings page.
        """
        material = hashlib.sha512(f"oms-sandbox-account/{seed}".encode()).digest()
        key = base64.b64encode(hashlib.sha256(material).digest() + material[:10]).decode()[:56]
        secret = base64.b64encode(material).decode()
        return cls(
            key,
            secret,
            _balances(balances) if balances is not None else {},
            tier=tier,
            nonce_window=nonce_window,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "secret": self.secret,
            "balances": {k: fmt(v) for k, v in self.balances.items()},
            "tier": self.tier,
            "nonce_window": self.nonce_window,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> AccountConfig:
        window = data.get("nonce_window")
        balances = data.get("balances") or {}
        if not isinstance(balances, Mapping):
            raise ValueError("bad account snapshot")
        return cls(
            str(data["key"]),
            str(data["secret"]),
            balances,
            tier=str(data.get("tier", "starter")),
            nonce_window=int(window) if isinstance(window, int) else None,
        )


class Account:
    """The mutable state of one account. Only the engine touches it, under its lock."""

    def __init__(self, config: AccountConfig, *, created: float) -> None:
        self.config = config
        self.created = created
        self.balances: dict[str, Decimal] = dict(config.balances)
        self.holds: dict[str, Decimal] = {}
        self.last_nonce = 0
        self.rest = DecayingCounter(0.0, created)
        self.trading: dict[str, DecayingCounter] = {}
        self.dms_trigger: float | None = None
        # Open (and pending) orders, with indexes kept in step by the trading engine.
        self.open: dict[str, SandboxOrder] = {}
        self.open_by_userref: dict[int, dict[str, None]] = {}
        self.open_by_cl_ord_id: dict[str, str] = {}
        self.open_per_pair: dict[str, int] = {}
        # Every order still retained (open and closed), and the closed ones in close order.
        self.orders: dict[str, SandboxOrder] = {}
        self.closed: OrderedDict[str, SandboxOrder] = OrderedDict()
        # Fills of this account's orders, oldest first: trade id -> Kraken trade-info object.
        self.fills: OrderedDict[str, dict[str, object]] = OrderedDict()
        self.funding: dict[str, FundingTx] = {}
        self.withdraw_keys: dict[str, dict[str, str]] = {}
        self.next_withdraw_outcome: list[str] = []

    @property
    def key(self) -> str:
        return self.config.key

    @property
    def limits(self) -> TierLimits:
        return TIERS[self.config.tier]

    def balance(self, asset: str) -> Decimal:
        return self.balances.get(asset, Decimal(0))

    def hold(self, asset: str) -> Decimal:
        return self.holds.get(asset, Decimal(0))

    def available(self, asset: str) -> Decimal:
        return self.balance(asset) - self.hold(asset)

    def credit(self, asset: str, amount: Decimal) -> None:
        self.balances[asset] = self.balance(asset) + amount

    def debit(self, asset: str, amount: Decimal) -> None:
        new = self.balance(asset) - amount
        if new < 0 or new < self.hold(asset):
            # The engine checks funds before it moves them; getting here is a bug.
            raise AssertionError(f"debit of {amount} {asset} would break the hold invariant")
        self.balances[asset] = new

    def reserve(self, asset: str, amount: Decimal) -> None:
        if amount > self.available(asset):
            raise AssertionError(f"reserve of {amount} {asset} exceeds the available balance")
        self.holds[asset] = self.hold(asset) + amount

    def release(self, asset: str, amount: Decimal) -> None:
        left = self.hold(asset) - amount
        if left < 0:
            raise AssertionError(f"release of {amount} {asset} exceeds the hold")
        if left == 0:
            self.holds.pop(asset, None)
        else:
            self.holds[asset] = left

    def trading_counter(self, pair_id: str) -> DecayingCounter:
        counter = self.trading.get(pair_id)
        if counter is None:
            counter = self.trading[pair_id] = DecayingCounter(0.0, self.created)
        return counter

    # -- the open-order indexes (kept in step by the trading engine) --------------------

    def add_open(self, order: SandboxOrder) -> None:
        """A new open (or pending) order: retained, open, and in its indexes."""
        self.orders[order.txid] = order
        self.open[order.txid] = order
        if order.userref is not None:
            self.open_by_userref.setdefault(order.userref, {})[order.txid] = None
        if order.cl_ord_id is not None:
            self.open_by_cl_ord_id[order.cl_ord_id] = order.txid
        self.open_per_pair[order.pair_id] = self.open_per_pair.get(order.pair_id, 0) + 1

    def remove_open(self, order: SandboxOrder) -> None:
        """An order no longer open: out of the open indexes (still retained)."""
        self.open.pop(order.txid, None)
        if order.userref is not None:
            group = self.open_by_userref.get(order.userref)
            if group is not None:
                group.pop(order.txid, None)
                if not group:
                    del self.open_by_userref[order.userref]
        if (
            order.cl_ord_id is not None
            and self.open_by_cl_ord_id.get(order.cl_ord_id) == order.txid
        ):
            del self.open_by_cl_ord_id[order.cl_ord_id]
        left = self.open_per_pair.get(order.pair_id, 0) - 1
        if left > 0:
            self.open_per_pair[order.pair_id] = left
        else:
            self.open_per_pair.pop(order.pair_id, None)

"""Settings of the sandbox exchange (one frozen object; change with ``attrs.evolve``)."""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["SandboxConfig"]

_SYSTEM_STATUSES = ("online", "maintenance", "cancel_only", "post_only")


def _non_negative(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen(kw_only=True)
class SandboxConfig:
    """How the sandbox behaves. Every Kraken limit is on by default and can be switched off.

    * ``nonce_window``: default nonce window for accounts that do not set their own (in nonce
      units, like Kraken's key setting; 0 = strictly increasing).
    * ``require_user_agent``: answer a request without ``User-Agent`` with Cloudflare's 403
      HTML page, as Kraken's "Browser Integrity Check" does.
    * ``rest_rate_limit`` / ``trading_rate_limit`` / ``open_orders_limit`` /
      ``public_rate_limit``: the four limiters (see :mod:`oms.sandbox.ratelimit`);
      ``public_burst`` and ``public_rate`` shape the public token bucket per client;
      ``history_cost`` is what a history call (ClosedOrders, TradesHistory, Ledgers,
      QueryLedgers) adds to the REST counter: 4 by default, the strictest of Kraken's
      sources (the 2026 rate-limit guide and a support article; an older guide and
      kraken-cli say 2), so a client that paces history calls too eagerly fails here first.
    * ``lockout_after`` sequential authentication failures with one key (invalid key,
      signature or nonce) lock it out for ``lockout_seconds`` (``EGeneral:Temporary
      lockout``); 0 disables.
    * ``system_status``: what ``SystemStatus`` reports and the engine enforces.
    * ``partial_fills``: a market trade fills resting orders only up to its volume; False
      fills a crossed order completely.
    * ``max_closed_orders``: closed orders (and fills) kept per account, oldest dropped
      first; 0 keeps everything.
    * ``seed``: makes ids (txids, refids) reproducible.
    * funding timings (seconds): withdrawals go Initial → Pending after
      ``withdraw_pending_after``, → Settled ``withdraw_settled_after`` later (the blockchain
      txid appears), → Success ``withdraw_success_after`` later; a deposit is Settled when
      made and Success (credited) ``deposit_success_after`` later; a cancel request takes
      ``withdraw_cancel_after``. ``seed_funding_history`` gives each new account a few
      past deposits and withdrawals to look at.
    """

    nonce_window: int = attrs.field(default=0, validator=_non_negative)
    require_user_agent: bool = True
    rest_rate_limit: bool = True
    trading_rate_limit: bool = True
    open_orders_limit: bool = True
    public_rate_limit: bool = True
    public_burst: float = attrs.field(default=30.0, validator=_non_negative)
    public_rate: float = attrs.field(default=1.0, validator=_non_negative)
    history_cost: int = attrs.field(default=4, validator=_non_negative)
    lockout_after: int = attrs.field(default=20, validator=_non_negative)
    lockout_seconds: float = attrs.field(default=900.0, validator=_non_negative)
    system_status: str = attrs.field(
        default="online", validator=attrs.validators.in_(_SYSTEM_STATUSES)
    )
    partial_fills: bool = True
    max_closed_orders: int = attrs.field(default=50_000, validator=_non_negative)
    seed: int = 0
    withdraw_pending_after: float = attrs.field(default=5.0, validator=_non_negative)
    withdraw_settled_after: float = attrs.field(default=30.0, validator=_non_negative)
    withdraw_success_after: float = attrs.field(default=60.0, validator=_non_negative)
    withdraw_cancel_after: float = attrs.field(default=2.0, validator=_non_negative)
    deposit_success_after: float = attrs.field(default=60.0, validator=_non_negative)
    seed_funding_history: bool = True

    def without_limits(self) -> SandboxConfig:
        """The same settings with every rate limit, the open-order cap and the lockout off
        (for load tests)."""
        return attrs.evolve(
            self,
            rest_rate_limit=False,
            trading_rate_limit=False,
            open_orders_limit=False,
            public_rate_limit=False,
            lockout_after=0,
        )

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxConfig:
        names = {f.name for f in attrs.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

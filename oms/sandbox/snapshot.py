"""An exchange's whole state as JSON and back (``--state FILE``): accounts, orders with their
books, indexes and timers, fills, funding, counters and id generators.

The market is not included (it has its own ``snapshot()``). Secrets are: the file is as
sensitive as the sandbox's keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from oms._decimal import fmt
from oms.sandbox.accounts import Account, AccountConfig
from oms.sandbox.book import SandboxOrder
from oms.sandbox.config import SandboxConfig
from oms.sandbox.funding import FundingTx
from oms.sandbox.ratelimit import DecayingCounter

if TYPE_CHECKING:
    from oms.sandbox.engine import Exchange

__all__ = ["VERSION", "config_of", "dump", "load"]

VERSION = 1


def _dump_account(acct: Account) -> dict[str, Any]:
    orders = [o.to_json() for o in acct.closed.values()]
    orders.extend(o.to_json() for o in acct.open.values())
    return {
        "config": acct.config.to_json(),
        "created": acct.created,
        "balances": {k: fmt(v) for k, v in acct.balances.items()},
        "holds": {k: fmt(v) for k, v in acct.holds.items()},
        "last_nonce": str(acct.last_nonce),
        "rest": acct.rest.to_json(),
        "trading": {k: c.to_json() for k, c in acct.trading.items()},
        "dms_trigger": acct.dms_trigger,
        "orders": orders,
        "fills": [[tid, info] for tid, info in acct.fills.items()],
        "funding": [tx.to_json() for tx in acct.funding.values()],
        "withdraw_keys": acct.withdraw_keys,
        "next_withdraw_outcome": list(acct.next_withdraw_outcome),
    }


def dump(exchange: Exchange) -> dict[str, Any]:
    """All of ``exchange``'s state as a JSON-able dict (decimals as strings). Call under its
    lock."""
    return {
        "version": VERSION,
        "time": exchange.clock.time(),
        "config": exchange.config.to_json(),
        "ids": exchange.ids.snapshot(),
        "seq": exchange.trading.seq,
        "accounts": [_dump_account(acct) for acct in exchange.accounts.values()],
    }


def config_of(data: Mapping[str, Any]) -> SandboxConfig:
    """The settings a snapshot was taken with (``ValueError`` for another version)."""
    if data.get("version") != VERSION:
        raise ValueError(f"unsupported exchange snapshot version {data.get('version')!r}")
    return SandboxConfig.from_json(dict(data["config"]))


def _load_account(exchange: Exchange, entry: Mapping[str, Any]) -> None:
    acct = Account(AccountConfig.from_json(entry["config"]), created=entry["created"])
    acct.balances = {k: Decimal(v) for k, v in entry["balances"].items()}
    acct.holds = {k: Decimal(v) for k, v in entry["holds"].items()}
    acct.last_nonce = int(entry["last_nonce"])
    acct.rest = DecayingCounter.from_json(entry["rest"])
    acct.trading = {k: DecayingCounter.from_json(v) for k, v in entry["trading"].items()}
    acct.withdraw_keys = {k: dict(v) for k, v in entry["withdraw_keys"].items()}
    acct.next_withdraw_outcome = list(entry["next_withdraw_outcome"])
    exchange.accounts[acct.key] = acct
    for asset in acct.balances:
        exchange.assets.ensure(asset)
    for raw in entry["orders"]:
        exchange.trading.restore_order(acct, SandboxOrder.from_json(raw))
    for tid, info in entry["fills"]:
        acct.fills[tid] = info
    for raw_tx in entry["funding"]:
        exchange.funding.restore_tx(acct, FundingTx.from_json(raw_tx))
    if entry.get("dms_trigger") is not None:
        acct.dms_trigger = float(entry["dms_trigger"])
        exchange.trading.push_timer(acct.dms_trigger, "dms", acct.key)


def load(exchange: Exchange, data: Mapping[str, Any]) -> None:
    """Fill a new, empty ``exchange`` (built with :func:`config_of`) from :func:`dump`."""
    exchange.ids.load(dict(data["ids"]))
    for entry in data["accounts"]:
        _load_account(exchange, entry)
    # Timers pushed above drew sequence numbers; they only break ties, so the saved
    # counter (which orders' queue priority continues from) wins.
    exchange.trading.seq = int(data.get("seq", exchange.trading.seq))

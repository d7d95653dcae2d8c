"""What must hold of an exchange's books after any sequence of requests (the property tests
call :func:`check_account` through ``Exchange.check_invariants``)."""

from __future__ import annotations

from decimal import Decimal

from oms.sandbox.accounts import Account
from oms.sandbox.assets import AssetTable
from oms.sandbox.book import q_down

__all__ = ["check_account"]


def _open_order_holds(acct: Account) -> dict[str, Decimal]:
    """Open orders are open, executed within their volume; what they hold, per asset."""
    holds: dict[str, Decimal] = {}
    for order in acct.open.values():
        assert order.is_open, order.txid
        assert Decimal(0) <= order.vol_exec <= order.vol, order.txid
        assert order.hold >= 0, order.txid
        holds[order.hold_asset] = holds.get(order.hold_asset, Decimal(0)) + order.hold
    return holds


def _check_amounts(acct: Account, assets: AssetTable, holds: dict[str, Decimal]) -> None:
    """Balances and holds are non-negative, on their asset's decimals, and add up."""
    for asset, amount in acct.balances.items():
        assert amount >= 0, f"negative balance {asset}"
        places = assets.ensure(asset).decimals
        assert amount == q_down(amount, places), f"{asset} balance {amount}"
    for asset, held in acct.holds.items():
        assert held >= 0, f"negative hold {asset}"
        places = assets.ensure(asset).decimals
        assert held == q_down(held, places), f"{asset} hold {held}"
        assert held <= acct.balance(asset), f"hold above balance {asset}"
        assert holds.get(asset, Decimal(0)) == held, f"hold mismatch {asset}"
    for asset, held in holds.items():
        assert acct.hold(asset) == held, f"hold mismatch {asset}"


def check_account(acct: Account, assets: AssetTable) -> None:
    """Raise AssertionError if the account's books do not add up."""
    _check_amounts(acct, assets, _open_order_holds(acct))
    for userref, group in acct.open_by_userref.items():
        for txid in group:
            assert acct.open[txid].userref == userref
    for order in acct.closed.values():
        assert not order.is_open, order.txid
        assert order.hold == 0, order.txid
        assert order.vol_exec <= order.vol, order.txid

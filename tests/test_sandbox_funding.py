"""Sandbox deposits and withdrawals move through Kraken's statuses as the clock advances."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import sandbox_engine_support as support

from oms.sandbox.assets import DEFAULT_ASSETS
from oms.sandbox.config import SandboxConfig

T0 = support.T0
DOGE = next(a for a in DEFAULT_ASSETS if a.asset_id == "XXDG")
KEYS = ["method", "aclass", "asset", "refid", "txid", "info", "amount", "fee", "time", "status"]


def make(**kw: Any) -> tuple[Any, support.Caller, Any, Any]:
    kw.setdefault("config", SandboxConfig(rest_rate_limit=False))
    return support.make(**kw)


def status(caller: support.Caller, kind: str, refid: str) -> dict[str, Any]:
    method = "DepositStatus" if kind == "deposit" else "WithdrawStatus"
    found: list[dict[str, Any]] = [
        e for e in caller.ok(method, {"asset": "XDG"}) if e["refid"] == refid
    ]
    (entry,) = found
    return entry


def test_a_new_account_has_history_in_every_shape() -> None:
    _, caller, _, _ = make()
    deposits = caller.ok("DepositStatus")
    withdrawals = caller.ok("WithdrawStatus")
    assert [d["status"] for d in deposits] == ["Failure", "Success"]
    assert [w["status"] for w in withdrawals] == ["Failure", "Success"]
    assert list(deposits[1]) == KEYS
    canceled = withdrawals[0]
    # Withdrawal entries also carry network and key, as Kraken's WithdrawStatus does (§4.5).
    assert list(canceled) == [*KEYS, "status-prop", "network", "key"]
    assert (canceled["txid"], canceled["status-prop"]) == (None, "canceled")
    assert (withdrawals[1]["amount"], withdrawals[1]["fee"]) == ("98.00000000", "2.00000000")
    assert len(withdrawals[1]["txid"]) == 64
    assert deposits[0]["time"] > deposits[1]["time"]  # newest first


def test_history_seeding_can_be_switched_off() -> None:
    _, caller, _, _ = make(config=SandboxConfig(seed_funding_history=False))
    assert caller.ok("DepositStatus") == []


def test_a_deposit_settles_then_succeeds_and_is_credited_on_success() -> None:
    exchange, caller, clock, _ = make()
    refid = exchange.deposit(caller.account.key, "doge", "997")
    entry = status(caller, "deposit", refid)
    assert entry["status"] == "Settled"
    assert entry["amount"] == "997.00000000"
    assert len(entry["txid"]) == 64
    assert caller.ok("Balance")["XXDG"] == "1000000.00000000"
    clock.advance(exchange.config.deposit_success_after)
    assert status(caller, "deposit", refid)["status"] == "Success"
    assert caller.ok("Balance")["XXDG"] == "1000997.00000000"


def test_failed_and_held_deposits() -> None:
    exchange, caller, clock, _ = make()
    failed = exchange.deposit(caller.account.key, "XXDG", 50, outcome="failure")
    held = exchange.deposit(caller.account.key, "XDG", 60, outcome="onhold")
    clock.advance(3600)
    assert status(caller, "deposit", failed)["status"] == "Failure"
    entry = status(caller, "deposit", held)
    # Kraken's deposit example shows a held deposit as Settled + onhold.
    assert (entry["status"], entry["status-prop"]) == ("Settled", "onhold")
    assert exchange.balances(caller.account.key)["XXDG"] == Decimal(1000000)
    exchange.release_funding(caller.account.key, held)
    clock.advance(exchange.config.deposit_success_after)
    assert status(caller, "deposit", held)["status"] == "Success"
    assert exchange.balances(caller.account.key)["XXDG"] == Decimal(1000060)
    with pytest.raises(ValueError, match="outcome"):
        exchange.deposit(caller.account.key, "XDG", 1, outcome="maybe")


def test_a_withdrawal_goes_initial_pending_settled_success() -> None:
    exchange, caller, clock, _ = make()
    info = caller.ok("WithdrawInfo", {"asset": "XDG", "key": "sandbox", "amount": "100"})
    assert info == {
        "method": "Dogecoin",
        "limit": "1000000.00000000",
        "amount": "98.00000000",
        "fee": "2.00000000",
    }
    refid = caller.ok("Withdraw", {"asset": "XDG", "key": "sandbox", "amount": "100"})["refid"]
    assert caller.ok("Balance")["XXDG"] == "999900.00000000"  # net of pending withdrawals
    cfg = exchange.config
    seen = []
    for step in (
        0,
        cfg.withdraw_pending_after,
        cfg.withdraw_settled_after,
        cfg.withdraw_success_after,
    ):
        clock.advance(step)
        entry = status(caller, "withdrawal", refid)
        seen.append((entry["status"], entry["txid"] is not None))
    assert seen == [("Initial", False), ("Pending", False), ("Settled", True), ("Success", True)]
    assert (entry["amount"], entry["fee"]) == ("98.00000000", "2.00000000")
    assert caller.ok("Balance")["XXDG"] == "999900.00000000"


def test_withdraw_cancel_before_processing_refunds_and_ends_canceled() -> None:
    exchange, caller, clock, _ = make()
    refid = caller.ok("Withdraw", {"asset": "XDG", "key": "sandbox", "amount": "100"})["refid"]
    assert caller.ok("WithdrawCancel", {"asset": "XDG", "refid": refid}) is True
    assert status(caller, "withdrawal", refid)["status-prop"] == "cancel-pending"
    assert caller.ok("WithdrawCancel", {"asset": "XDG", "refid": refid}) is False
    clock.advance(exchange.config.withdraw_cancel_after)
    entry = status(caller, "withdrawal", refid)
    assert (entry["status"], entry["status-prop"]) == ("Failure", "canceled")
    assert caller.ok("Balance")["XXDG"] == "1000000.00000000"


def test_withdraw_cancel_is_refused_once_settled() -> None:
    exchange, caller, clock, _ = make()
    refid = caller.ok("Withdraw", {"asset": "XDG", "key": "sandbox", "amount": "100"})["refid"]
    clock.advance(exchange.config.withdraw_pending_after + exchange.config.withdraw_settled_after)
    assert caller.ok("WithdrawCancel", {"asset": "XDG", "refid": refid}) is False
    # The late request is recorded: status-prop cancel-denied.
    entry = status(caller, "withdrawal", refid)
    assert (entry["status"], entry["status-prop"]) == ("Settled", "cancel-denied")
    assert caller.err("WithdrawCancel", {"asset": "XDG", "refid": "AAAAAAA-AAAAAA-AAAAAA"}) == (
        "EFunding:Unknown reference id"
    )


def test_a_deposit_returned_by_kraken_is_success_plus_return_and_not_credited() -> None:
    exchange, caller, clock, _ = make()
    refid = exchange.deposit(caller.account.key, "XDG", 60, outcome="return")
    clock.advance(3600)
    entry = status(caller, "deposit", refid)
    assert (entry["status"], entry["status-prop"]) == ("Success", "return")
    assert exchange.balances(caller.account.key)["XXDG"] == Decimal(1000000)


def test_a_withdrawal_returned_by_kraken_cannot_be_cancelled_and_comes_back() -> None:
    exchange, caller, clock, _ = make()
    exchange.next_withdrawal_outcome(caller.account.key, "return")
    refid = caller.ok("Withdraw", {"asset": "XDG", "key": "sandbox", "amount": "100"})["refid"]
    clock.advance(exchange.config.withdraw_pending_after)
    entry = status(caller, "withdrawal", refid)
    assert (entry["status"], entry["status-prop"]) == ("Pending", "return")
    assert caller.ok("WithdrawCancel", {"asset": "XDG", "refid": refid}) is False
    clock.advance(3600)
    entry = status(caller, "withdrawal", refid)
    assert (entry["status"], entry["status-prop"]) == ("Failure", "return")
    assert caller.ok("Balance")["XXDG"] == "1000000.00000000"


@pytest.mark.parametrize(
    ("outcome", "final", "prop"),
    # "On hold" is the seed's withdrawal status for a manual check.
    [("failure", "Failure", None), ("onhold", "On hold", "onhold")],
)
def test_scripted_withdrawal_outcomes(outcome: str, final: str, prop: str | None) -> None:
    exchange, caller, clock, _ = make()
    exchange.next_withdrawal_outcome(caller.account.key, outcome)
    refid = caller.ok("Withdraw", {"asset": "XDG", "key": "sandbox", "amount": "100"})["refid"]
    clock.advance(3600)
    entry = status(caller, "withdrawal", refid)
    assert (entry["status"], entry.get("status-prop")) == (final, prop)
    expected = "1000000.00000000" if outcome == "failure" else "999900.00000000"
    assert caller.ok("Balance")["XXDG"] == expected


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"key": "nope"}, "EFunding:Unknown withdraw key"),
        ({"amount": "abc"}, "EFunding:Invalid amount"),
        ({"amount": "0"}, "EFunding:Invalid amount"),
        ({"amount": "1.5"}, "EFunding:Invalid amount"),  # not above the fee
        ({"amount": "10.000000001"}, "EFunding:Invalid amount"),
        ({"amount": "5000000"}, "EFunding:Insufficient funds"),
        ({"max_fee": "1"}, "EFunding:Max fee exceeded"),
        ({"address": "elsewhere"}, "EFunding:Invalid withdrawal address"),
        ({"asset": "NOPE"}, "EQuery:Unknown asset"),
        ({"key": ""}, "EGeneral:Invalid arguments:key"),
    ],
)
def test_withdraw_rejections(params: dict[str, str], error: str) -> None:
    _, caller, _, _ = make()
    request = {"asset": "XDG", "key": "sandbox", "amount": "100", **params}
    assert caller.err("Withdraw", request) == error
    assert caller.ok("Balance")["XXDG"] == "1000000.00000000"


def test_funds_held_by_orders_cannot_be_withdrawn() -> None:
    _, caller, _, _ = make(balances={"XXDG": "1000"})
    caller.ok("AddOrder", support.limit("XDGUSD", "sell", "0.2", "900", oflags="fciq"))
    assert caller.err("Withdraw", {"asset": "XDG", "key": "sandbox", "amount": "200"}) == (
        "EFunding:Insufficient funds"
    )
    assert caller.ok("Withdraw", {"asset": "XDG", "key": "sandbox", "amount": "100"})["refid"]


@pytest.mark.parametrize(
    ("method", "field"), [("WithdrawStatus", "withdrawals"), ("DepositStatus", "deposit")]
)
def test_cursor_paging_visits_every_entry_once_newest_first(method: str, field: str) -> None:
    exchange, caller, clock, _ = make(
        config=SandboxConfig(seed_funding_history=False, rest_rate_limit=False)
    )
    refids = []
    for n in range(5):
        if field == "deposit":
            refids.append(exchange.deposit(caller.account.key, "XDG", 100 + n))
        else:
            refids.append(
                caller.ok("Withdraw", {"asset": "XDG", "key": "sandbox", "amount": "100"})["refid"]
            )
        clock.advance(1)
    page = caller.ok(method, {"cursor": True, "limit": 2})
    seen = [e["refid"] for e in page[field]]
    while page["next_cursor"] is not None:
        page = caller.ok(method, {"cursor": page["next_cursor"], "limit": 2})
        seen.extend(e["refid"] for e in page[field])
    assert seen == refids[::-1]
    assert [e["refid"] for e in caller.ok(method)] == refids[::-1]
    assert [e["refid"] for e in caller.ok(method, {"cursor": "false", "limit": 1})] == refids[-1:]
    assert caller.err(method, {"cursor": "!!!"}) == "EGeneral:Invalid arguments:cursor"


def test_status_filters_by_time_and_method() -> None:
    exchange, caller, clock, _ = make()
    first = exchange.deposit(caller.account.key, "XDG", 1000)
    clock.advance(100)
    exchange.deposit(caller.account.key, "XBT", "0.5")
    window = caller.ok("DepositStatus", {"start": int(T0), "end": int(T0) + 50})
    assert [e["refid"] for e in window] == [first]
    bitcoin = caller.ok("DepositStatus", {"method": "Bitcoin"})
    assert [e["asset"] for e in bitcoin] == ["XXBT"]
    assert bitcoin[0]["amount"] == "0.5000000000"


def test_deposit_methods_and_addresses() -> None:
    _, caller, _, _ = make()
    (method,) = caller.ok("DepositMethods", {"asset": "XBT"})
    assert method["method"] == "Bitcoin"
    assert method["gen-address"] is True
    assert method["limit"] is False
    (address,) = caller.ok("DepositAddresses", {"asset": "XBT", "method": "Bitcoin"})
    assert set(address) == {"address", "expiretm", "new"}
    assert caller.err("DepositAddresses", {"asset": "XBT", "method": "Wire"}) == (
        "EFunding:No funding method"
    )
    keys = caller.ok("WithdrawAddresses", {"asset": "XDG"})
    assert [k["key"] for k in keys] == ["sandbox"]
    assert caller.err("DepositMethods", {"asset": "NOPE"}) == "EQuery:Unknown asset"
    assert caller.err("DepositMethods") == "EGeneral:Invalid arguments:asset"

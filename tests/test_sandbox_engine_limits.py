"""The sandbox enforces Kraken's limiters (REST counter, trading counter, open orders, public)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest
import sandbox_engine_support as support

from oms.sandbox.config import SandboxConfig
from oms.sandbox.ratelimit import CANCEL_PENALTY, TIERS

T0 = support.T0
limit = support.limit
ORDER = limit("XBTUSD", "buy", "40000", "0.001")


def make(config: SandboxConfig, **kw: Any) -> tuple[Any, support.Caller, Any, Any]:
    return support.make(config=config, prices={"XXBTZUSD": "50000.0"}, **kw)


@pytest.mark.parametrize("tier", ["starter", "intermediate", "pro"])
def test_rest_counter_allows_the_tier_maximum_then_refuses(tier: str) -> None:
    _, caller, clock, _ = make(SandboxConfig(), tier=tier)
    limits = TIERS[tier]
    for _ in range(int(limits.rest_max)):
        caller.ok("Balance")
    assert caller.err("Balance") == "EAPI:Rate limit exceeded"
    clock.advance(2 * limits.rest_max / limits.rest_decay)
    caller.ok("Balance")


def test_history_calls_cost_more() -> None:
    _, caller, _, _ = make(SandboxConfig(history_cost=2))
    for _ in range(7):
        caller.ok("ClosedOrders")
    caller.ok("Balance")  # 14 + 1 fits exactly
    assert caller.err("ClosedOrders") == "EAPI:Rate limit exceeded"


def test_add_and_cancel_do_not_touch_the_rest_counter() -> None:
    _, caller, _, _ = make(SandboxConfig(trading_rate_limit=False))
    for _ in range(30):
        txid = caller.ok("AddOrder", ORDER)["txid"][0]
        caller.ok("CancelOrder", {"txid": txid})
    caller.ok("Balance")


def test_amend_counts_on_the_rest_counter_as_the_client_paces_it() -> None:
    # Kraken's guide exempts AddOrder and CancelOrder (and the batch forms are the same
    # transactions); nothing exempts AmendOrder, so the client counts it, and so does this.
    _, caller, _, _ = make(SandboxConfig(trading_rate_limit=False))
    txid = caller.ok("AddOrder", ORDER)["txid"][0]
    for _ in range(15):
        caller.ok("AmendOrder", {"txid": txid, "order_qty": "0.5"})
    assert caller.err("Balance") == "EAPI:Rate limit exceeded"


def test_calling_while_limited_keeps_the_limit_on() -> None:
    _, caller, clock, _ = make(SandboxConfig())
    for _ in range(15):
        caller.ok("Balance")
    for _ in range(5):
        clock.advance(1)
        assert caller.err("Balance") == "EAPI:Rate limit exceeded"


def test_trading_counter_threshold_per_pair() -> None:
    _, caller, clock, _ = make(SandboxConfig(rest_rate_limit=False, open_orders_limit=False))
    threshold = int(TIERS["starter"].trading_threshold)
    for _ in range(threshold):
        caller.ok("AddOrder", ORDER)
    assert caller.err("AddOrder", ORDER) == "EOrder:Rate limit exceeded"
    # Another pair has its own counter.
    caller.ok("AddOrder", limit("ETHUSD", "buy", "100", "0.01"))
    clock.advance(1 / TIERS["starter"].trading_decay)
    caller.ok("AddOrder", ORDER)


def test_cancelling_young_orders_costs_the_age_penalty() -> None:
    exchange, caller, clock, _ = make(SandboxConfig(rest_rate_limit=False))
    counter = exchange.accounts[caller.account.key].trading_counter("XXBTZUSD")
    decay = TIERS["starter"].trading_decay
    txid = caller.ok("AddOrder", ORDER)["txid"][0]
    assert counter.level(T0, decay) == 1
    clock.advance(7)
    caller.ok("AmendOrder", {"txid": txid, "order_qty": "0.002"})
    assert counter.level(T0 + 7, decay) == 1 + 2  # amend: +1, +2 when younger than 10 s
    clock.advance(36)
    caller.ok("CancelOrder", {"txid": txid})
    assert counter.level(T0 + 43, decay) == 4  # 36 s after the amend: +4


def test_cancels_that_would_exceed_the_threshold_are_refused_but_batches_pass() -> None:
    _, caller, _, _ = make(SandboxConfig(rest_rate_limit=False))
    txids = [caller.ok("AddOrder", ORDER)["txid"][0] for _ in range(10)]
    youngest_penalty = CANCEL_PENALTY[0][1]
    threshold = TIERS["starter"].trading_threshold
    allowed = int((threshold - 10) // youngest_penalty)
    for txid in txids[:allowed]:
        caller.ok("CancelOrder", {"txid": txid})
    assert caller.err("CancelOrder", {"txid": txids[allowed]}) == "EOrder:Rate limit exceeded"
    result = caller.ok("CancelOrderBatch", {"orders": txids[allowed:]}, json_body=True)
    assert result == {"count": len(txids) - allowed}


def test_open_orders_per_pair_are_capped_by_tier() -> None:
    _, caller, _, _ = make(SandboxConfig(rest_rate_limit=False, trading_rate_limit=False))
    cap = TIERS["starter"].max_open_per_pair
    for _ in range(cap):
        caller.ok("AddOrder", ORDER)
    assert caller.err("AddOrder", ORDER) == "EOrder:Orders limit exceeded"
    caller.ok("AddOrder", limit("ETHUSD", "buy", "100", "0.01"))


def test_without_limits_turns_every_limiter_off() -> None:
    config = SandboxConfig(public_burst=1, lockout_after=1).without_limits()
    _, caller, _, _ = make(config)
    for _ in range(200):
        txid = caller.ok("AddOrder", ORDER)["txid"][0]
        caller.ok("CancelOrder", {"txid": txid})
        caller.ok("Balance")
        assert caller.public("Time")["error"] == []


def test_limits_can_be_changed_on_a_running_exchange() -> None:
    exchange, caller, _, _ = make(SandboxConfig())
    for _ in range(15):
        caller.ok("Balance")
    exchange.configure(rest_rate_limit=False)
    caller.ok("Balance")


def _lines_run(action: Callable[[], object]) -> int:
    """How many lines of Python ``action`` executes: a count that does not depend on how
    loaded the machine is, unlike elapsed time."""
    count = 0

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        action()
    finally:
        sys.settrace(None)
    return count


def test_add_and_cancel_are_cheap_enough_for_load_tests() -> None:
    _, caller, _, _ = make(SandboxConfig().without_limits())

    def round_trips(n: int) -> None:
        for _ in range(n):
            txid = caller.ok("AddOrder", ORDER)["txid"][0]
            caller.ok("CancelOrder", {"txid": txid})

    round_trips(20)
    early = _lines_run(lambda: round_trips(20))
    round_trips(1000)
    late = _lines_run(lambda: round_trips(20))
    # The same work per request after 1,000 orders as after 20: a regression to O(n) per
    # request (a scan of the account's orders) would multiply the later count.
    assert late <= early * 1.1


def test_validate_only_orders_do_not_count() -> None:
    exchange, caller, _, _ = make(SandboxConfig(rest_rate_limit=False))
    for _ in range(100):
        caller.ok("AddOrder", {**ORDER, "validate": True})
    counter = exchange.accounts[caller.account.key].trading_counter("XXBTZUSD")
    assert counter.level(T0, TIERS["starter"].trading_decay) == 0


@pytest.mark.parametrize(("tier", "cap"), [("starter", 15), ("intermediate", 25), ("pro", 40)])
def test_scheduled_orders_are_capped_by_tier_and_count_as_open(tier: str, cap: int) -> None:
    # Kraken caps orders scheduled 5 s or more ahead (15/25/40 by tier) with
    # "EOrder:Scheduled orders limit exceeded", and counts them toward open orders.
    _, caller, clock, _ = make(
        SandboxConfig(rest_rate_limit=False, trading_rate_limit=False), tier=tier
    )
    later = {**ORDER, "starttm": "+60"}
    for _ in range(cap):
        caller.ok("AddOrder", later)
    assert caller.err("AddOrder", later) == "EOrder:Scheduled orders limit exceeded"
    assert len(caller.ok("OpenOrders")["open"]) == cap
    caller.ok("AddOrder", ORDER)  # not scheduled: only the open-order cap applies
    clock.advance(61)  # the scheduled ones start: room again
    caller.ok("AddOrder", later)


def test_scheduled_orders_fill_the_open_order_cap_too() -> None:
    _, caller, _, _ = make(
        SandboxConfig(rest_rate_limit=False, trading_rate_limit=False), tier="starter"
    )
    for _ in range(15):
        caller.ok("AddOrder", {**ORDER, "starttm": "+60"})
    for _ in range(60 - 15):
        caller.ok("AddOrder", ORDER)
    assert caller.err("AddOrder", ORDER) == "EOrder:Orders limit exceeded"

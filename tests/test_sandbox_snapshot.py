"""An exchange's state survives snapshot and restore: same books, same behaviour after."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import sandbox_engine_support as support

from oms.sandbox.clock import ManualClock
from oms.sandbox.config import SandboxConfig
from oms.sandbox.engine import Exchange

T0 = support.T0
limit = support.limit


def busy_exchange() -> tuple[Exchange, support.Caller, ManualClock, support.StubMarket]:
    exchange, caller, clock, market = support.make(
        prices={"XXBTZUSD": "50000.0"}, config=SandboxConfig().without_limits()
    )
    caller.ok("AddOrder", limit("XBTUSD", "buy", "49000", "0.5", userref=1))
    caller.ok("AddOrder", limit("XBTUSD", "sell", "52000", "0.5", cl_ord_id="s-1"))
    caller.ok("AddOrder", limit("XBTUSD", "buy", "48000", "0.1", starttm="+100"))
    caller.ok("AddOrder", limit("XBTUSD", "buy", "47000", "0.1", expiretm="+200"))
    caller.ok(
        "AddOrder",
        {
            "pair": "XBTUSD",
            "type": "sell",
            "ordertype": "stop-loss",
            "price": "45000",
            "volume": "0.2",
        },
    )
    caller.ok(
        "AddOrder", {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "0.01"}
    )
    market.trade("XXBTZUSD", "48900.0", "0.2", at=T0 + 1)
    clock.advance(2)
    caller.ok("CancelAllOrdersAfter", {"timeout": 500})
    caller.ok("Withdraw", {"asset": "XDG", "key": "sandbox", "amount": "100"})
    exchange.deposit(caller.account.key, "XBT", "0.25")
    return exchange, caller, clock, market


def test_snapshot_is_json_and_restores_to_the_same_state() -> None:
    exchange, caller, clock, market = busy_exchange()
    snap = exchange.snapshot()
    text = json.dumps(snap)
    restored = Exchange.restore(json.loads(text), clock=clock, market=market)
    assert restored.snapshot() == snap
    # The restored exchange still knows the last nonce.
    twin = support.Caller(restored, caller.account)
    twin.nonce = 0
    assert twin.err("Balance") == "EAPI:Invalid nonce"
    twin.nonce = caller.nonce
    assert twin.ok("OpenOrders", {"userref": 1})["open"]


def test_a_restored_exchange_behaves_like_the_original() -> None:
    exchange, _, clock, market = busy_exchange()
    snap = json.loads(json.dumps(exchange.snapshot()))
    clock2 = ManualClock(clock.time())
    market2 = copy.deepcopy(market)
    restored = Exchange.restore(snap, clock=clock2, market=market2)
    for ex, mk, ck in ((exchange, market, clock), (restored, market2, clock2)):
        mk.trade("XXBTZUSD", "47500.0", "1", at=ck.time() + 150)
        mk.trade("XXBTZUSD", "44000.0", "1", at=ck.time() + 300)
        ck.advance(1000)
        ex.advance()
    assert restored.snapshot() == exchange.snapshot()
    statuses = sorted(o["status"] for o in _orders(exchange))
    assert "expired" in statuses
    assert "pending" not in statuses


def _orders(exchange: Exchange) -> list[dict[str, Any]]:
    (acct,) = exchange.accounts.values()
    return [exchange.trading.info(o) for o in acct.orders.values()]


def test_restore_refuses_an_unknown_version() -> None:
    exchange, _, clock, market = busy_exchange()
    snap = exchange.snapshot()
    snap["version"] = 99
    with pytest.raises(ValueError, match="version"):
        Exchange.restore(snap, clock=clock, market=market)

"""A served sandbox on the system clock keeps time by itself: the dead man's switch and other
timers take effect when they fire, not at the next request; a manual clock moves only when the
test moves it; and the Python reads show the exchange as of its clock."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
import sandbox_engine_support as support

from oms.auth import encode_form, sign
from oms.sandbox import ManualClock, Sandbox, SandboxConfig

UA = {"User-Agent": "oms-tests/1"}
_NONCES = itertools.count(time.time_ns())


def private(session: requests.Session, sb: Sandbox, method: str, **params: object) -> Any:
    nonce = next(_NONCES)
    body = encode_form({"nonce": nonce, **params})
    path = f"/0/private/{method}"
    headers = {
        "API-Key": sb.key,
        "API-Sign": sign(sb.secret, path, nonce, body),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    answer = session.post(sb.base_url + path, data=body, headers=headers, timeout=5).json()
    assert answer["error"] == [], answer
    return answer["result"]


def wait_until(started: float, condition: Callable[[], bool], *, at: float) -> bool:
    """Sleep until ``at`` seconds after ``started`` (monotonic), then check ``condition``;
    on a loaded machine, give it a few more seconds before calling it false."""
    time.sleep(max(0.0, started + at - time.monotonic()))
    give_up = time.monotonic() + 5.0
    while not condition():
        if time.monotonic() > give_up:
            return False
        time.sleep(0.05)
    return True


def ticker_threads(sb: Sandbox) -> list[threading.Thread]:
    # Other tests' servers may be alive too: only this server's port counts.
    assert sb.server is not None
    name = f"oms-sandbox-ticker:{sb.server.port}"
    return [t for t in threading.enumerate() if t.name == name and t.is_alive()]


def test_the_dead_mans_switch_fires_on_time_with_no_request() -> None:
    # One of the few tests that waits in real time (about 1.5 s): real time is the subject.
    with Sandbox.serve(config=SandboxConfig().without_limits()) as sb:
        server = sb.server
        assert server is not None
        with requests.Session() as session:
            session.headers.update(UA)
            txids = [
                private(
                    session,
                    sb,
                    "AddOrder",
                    pair="XBTUSD",
                    type="buy",
                    ordertype="limit",
                    price="30000.0",
                    volume="0.001",
                    userref=userref,
                )["txid"][0]
                for userref in (1, 2)
            ]
            private(session, sb, "CancelAllOrdersAfter", timeout=1)
            armed = time.monotonic()

        def canceled() -> bool:
            # The snapshot shows the engine's state as it is: it does not advance the
            # exchange, so only the ticker can have canceled the orders.
            (account,) = sb.exchange.snapshot()["accounts"]
            statuses = {o["txid"]: (o["status"], o["reason"]) for o in account["orders"]}
            done = ("canceled", "Cancel all orders after timeout")
            return all(statuses[txid] == done for txid in txids)

        assert wait_until(armed, canceled, at=1.5)
        assert len(ticker_threads(sb)) == 1
        assert sb.exchange.open_orders(sb.key) == {}
        assert sb.exchange.holds(sb.key) == {}
    # Closing the sandbox stops its ticker.
    assert not server.ticking
    assert ticker_threads(sb) == []


def test_no_ticker_on_a_manual_clock() -> None:
    with Sandbox.serve(clock=ManualClock(support.T0)) as sb:
        assert sb.server is not None
        assert not sb.server.ticking
        assert ticker_threads(sb) == []


def test_no_ticker_when_switched_off() -> None:
    with Sandbox.serve(tick=None) as sb:
        assert sb.server is not None
        assert not sb.server.ticking


def test_python_reads_bring_the_exchange_up_to_its_clock() -> None:
    exchange, caller, clock, _ = support.make(config=SandboxConfig().without_limits())
    key = caller.account.key
    txid = caller.ok("AddOrder", support.limit("XBTUSD", "buy", "30000.0", "0.001"))["txid"][0]
    caller.ok("CancelAllOrdersAfter", {"timeout": 10})
    clock.advance(11)
    # No request since the switch fired: each read must still see it.
    assert exchange.holds(key) == {}
    assert exchange.open_orders(key) == {}
    order = exchange.order(key, txid)
    assert order is not None
    assert (order["status"], order["reason"]) == ("canceled", "Cancel all orders after timeout")


def test_python_balances_show_a_deposit_once_its_time_has_come() -> None:
    exchange, caller, clock, _ = support.make()
    key = caller.account.key
    before = exchange.balances(key)["ZUSD"]
    exchange.deposit(key, "ZUSD", "25")
    assert exchange.balances(key)["ZUSD"] == before
    clock.advance(exchange.config.deposit_success_after)
    assert exchange.balances(key)["ZUSD"] == before + 25

"""Random add/cancel/amend/advance sequences keep the sandbox's books consistent: no negative
balance, holds covered, groups emptied, money conserved (also under many threads)."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import sandbox_engine_support as support
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from oms.sandbox.accounts import AccountConfig
from oms.sandbox.config import SandboxConfig
from oms.sandbox.protocol import format_rfc3339

T0 = support.T0
limit = support.limit


# -- the property test -----------------------------------------------------------------------

PAIRS = {
    "XBTUSD": ("XXBTZUSD", Decimal("50000.0"), Decimal("100"), Decimal("0.001")),
    "XDGUSD": ("XDGUSD", Decimal("0.1500000"), Decimal("0.0010000"), Decimal("50")),
}
INITIAL = {"ZUSD": "30000", "XXBT": "1", "XXDG": "50000"}


class ExchangeMachine(RuleBasedStateMachine):
    txids = Bundle("txids")

    def __init__(self) -> None:
        super().__init__()
        config = SandboxConfig(seed_funding_history=False).without_limits()
        self.exchange, self.caller, self.clock, self.market = support.make(
            config=config, balances=INITIAL
        )
        self.key = self.caller.account.key
        self.deposited: dict[str, Decimal] = {}

    def _price(self, pair: str, steps: int) -> str:
        pair_id, _, step, _ = PAIRS[pair]
        price = self.market.last_price(pair_id) + step * steps
        return str(max(price, step))

    @rule(
        target=txids,
        pair=st.sampled_from(sorted(PAIRS)),
        side=st.sampled_from(["buy", "sell"]),
        steps=st.integers(-5, 5),
        lots=st.integers(1, 400),
        userref=st.sampled_from([None, 1, 2, 3]),
        flags=st.sampled_from([None, "post", "fciq", "fcib", "post,fcib"]),
        market_order=st.booleans(),
    )
    def add(
        self,
        pair: str,
        side: str,
        steps: int,
        lots: int,
        userref: int | None,
        flags: str | None,
        market_order: bool,
    ) -> str:
        _, _, _, lot = PAIRS[pair]
        params: dict[str, Any] = {"pair": pair, "type": side, "volume": str(lot * lots)}
        if market_order:
            params["ordertype"] = "market"
            if flags and "fcib" in flags:
                params["oflags"] = "fcib"
        else:
            params.update(ordertype="limit", price=self._price(pair, steps))
            if flags:
                params["oflags"] = flags
        if userref is not None:
            params["userref"] = userref
        answer = self.caller.call("AddOrder", params)
        if answer["error"]:
            assert answer["error"][0].startswith(("EOrder:", "EGeneral:Invalid arguments")), answer
            return ""
        txid: str = answer["result"]["txid"][0]
        return txid

    @rule(txid=txids)
    def cancel(self, txid: str) -> None:
        if not txid:
            return
        answer = self.caller.call("CancelOrder", {"txid": txid})
        assert answer["error"] in ([], ["EOrder:Unknown order"], ["EOrder:Invalid order"])

    @rule(userref=st.sampled_from([1, 2, 3]))
    def cancel_group(self, userref: int) -> None:
        answer = self.caller.call("CancelOrder", {"txid": str(userref)})
        assert answer["error"] in ([], ["EOrder:Unknown order"], ["EOrder:Invalid order"])
        assert self.caller.ok("OpenOrders", {"userref": userref})["open"] == {}

    @rule(txid=txids, steps=st.integers(-5, 5), lots=st.integers(1, 400))
    def amend(self, txid: str, steps: int, lots: int) -> None:
        order = self.exchange.order(self.key, txid) if txid else None
        if order is None or order["status"] not in ("open", "pending"):
            return
        pair = order["descr"]["pair"]
        _, _, _, lot = PAIRS[pair]
        answer = self.caller.call(
            "AmendOrder",
            {"txid": txid, "order_qty": str(lot * lots), "limit_price": self._price(pair, steps)},
        )
        assert not answer["error"] or answer["error"][0].startswith("EOrder:"), answer

    @rule(
        pair=st.sampled_from(sorted(PAIRS)),
        steps=st.integers(-8, 8),
        lots=st.integers(1, 300),
        seconds=st.integers(1, 120),
    )
    def market_trades(self, pair: str, steps: int, lots: int, seconds: int) -> None:
        pair_id, _, _, lot = PAIRS[pair]
        self.market.trade(
            pair_id, self._price(pair, steps), str(lot * lots), at=self.clock.time() + seconds
        )
        self.clock.advance(seconds)
        self.exchange.advance()

    @rule(asset=st.sampled_from(["ZUSD", "XXDG"]), amount=st.integers(1, 500))
    def deposit(self, asset: str, amount: int) -> None:
        self.exchange.deposit(self.key, asset, amount)

    @rule(amount=st.integers(20, 3000))
    def withdraw(self, amount: int) -> None:
        answer = self.caller.call(
            "Withdraw", {"asset": "XDG", "key": "sandbox", "amount": str(amount)}
        )
        assert answer["error"] in ([], ["EFunding:Insufficient funds"]), answer

    @rule(txid=txids)
    def deadline_in_the_past_changes_nothing(self, txid: str) -> None:
        before = self.exchange.balances(self.key)
        params = {**limit("XBTUSD", "buy", "1000", "0.01"), "deadline": format_rfc3339(T0)}
        if self.clock.time() > T0:
            self.caller.err("AddOrder", params)
        assert self.exchange.balances(self.key) == before

    @invariant()
    def books_are_consistent(self) -> None:
        self.exchange.check_invariants()

    @invariant()
    def money_is_conserved_apart_from_fees(self) -> None:
        acct = self.exchange.accounts[self.key]
        expected = {asset: Decimal(v) for asset, v in INITIAL.items()}

        def move(asset: str, amount: Decimal) -> None:
            expected[asset] = expected.get(asset, Decimal(0)) + amount

        for tx in acct.funding.values():
            if tx.kind == "deposit" and tx.status == "Success":
                move(tx.asset, tx.gross)
            elif tx.kind == "withdrawal" and tx.status != "Failure":
                move(tx.asset, -tx.gross)
        for order in acct.orders.values():
            assert order.vol_exec <= order.vol
            pair = self.market.pair(order.pair_id)
            assert pair is not None
            # Fills move ledger amounts (cost and fee on the assets' decimals, see
            # Trading.booked); the exchange's own rounding rule is what is checked elsewhere
            # (test_sandbox_accounting), here only that nothing else moves money.
            spent, received = self.exchange.trading.booked(order, pair)
            if order.side == "buy":
                move(pair.quote, -spent)
                move(pair.base, received)
            else:
                move(pair.base, -spent)
                move(pair.quote, received)
        for asset, amount in expected.items():
            assert acct.balance(asset) == amount, asset


ExchangeMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestExchangeMachine = ExchangeMachine.TestCase


def test_many_threads_on_one_exchange_keep_it_consistent() -> None:
    exchange, _, _, _ = support.make(config=SandboxConfig().without_limits())
    callers = []
    for n in range(4):
        account = AccountConfig.generate(f"thread-{n}", balances={"ZUSD": "100000"})
        exchange.add_account(account)
        callers.append(support.Caller(exchange, account))
    errors: list[BaseException] = []

    def work(caller: support.Caller) -> None:
        try:
            for n in range(150):
                txid = caller.ok("AddOrder", limit("XBTUSD", "buy", "30000", "0.01", userref=n))[
                    "txid"
                ][0]
                caller.ok("CancelOrder", {"txid": txid})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in callers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    exchange.check_invariants()
    for caller in callers:
        assert caller.ok("ClosedOrders", {"without_count": False})["count"] == 150

"""Sandbox money is exact: balances sit on each asset's decimals and move by the ledger amounts
of the fills (cost and fee rounded to the asset), and an average fill price is never worse than
the order's limit."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, ROUND_UP, Context, Decimal
from typing import Any

import pytest
import sandbox_engine_support as support
from hypothesis import given, settings
from hypothesis import strategies as st

from oms.sandbox.assets import DEFAULT_ASSETS
from oms.sandbox.config import SandboxConfig
from oms.sandbox.market import DEFAULT_PAIRS, PairSpec

T0 = support.T0
XBT, ETH, XDG = DEFAULT_PAIRS
DECIMALS = {spec.asset_id: spec.decimals for spec in DEFAULT_ASSETS}
PAIRS = {pair.pair_id: pair for pair in DEFAULT_PAIRS}


def make(prices: dict[str, str], **kw: Any) -> tuple[Any, support.Caller, Any, Any]:
    kw.setdefault("config", SandboxConfig().without_limits())
    return support.make(prices=prices, **kw)


def place(caller: support.Caller, params: dict[str, Any]) -> str:
    txid: str = caller.ok("AddOrder", params)["txid"][0]
    return txid


def unit(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


def places_of(text: str) -> int:
    _, _, frac = text.partition(".")
    return len(frac)


def ledger(amount: Decimal, asset: str, *, fee: bool = False) -> Decimal:
    """What a ledger entry of ``amount`` moves: the asset's decimals, fees rounded up."""
    return amount.quantize(unit(DECIMALS[asset]), rounding=ROUND_UP if fee else ROUND_HALF_UP)


def check_balances_shown_exactly(exchange: Any, caller: support.Caller) -> None:
    """Balance and BalanceEx show every asset with exactly its decimals, and hide nothing."""
    inside = exchange.balances(caller.account.key)
    holds = exchange.holds(caller.account.key)
    shown = caller.ok("Balance")
    extended = caller.ok("BalanceEx")
    assert set(shown) == set(inside)
    for asset, text in shown.items():
        assert places_of(text) == DECIMALS[asset], (asset, text)
        assert Decimal(text) == inside[asset], (asset, text, inside[asset])
        entry = extended[asset]
        for field in ("balance", "credit", "credit_used", "hold_trade"):
            assert places_of(entry[field]) == DECIMALS[asset], (asset, field, entry)
        assert Decimal(entry["balance"]) == inside[asset]
        assert Decimal(entry["hold_trade"]) == holds.get(asset, Decimal(0))


# -- 1. balances on the asset's decimals ---------------------------------------------------

# Volumes whose cost at 65022.2 has a fifth decimal (the audit saw ZUSD 99347.41706).
ODD_VOLUMES = ["0.00012345", "0.00123457", "0.01234567", "0.00007777", "0.01001001"]


@pytest.mark.parametrize("volume", ODD_VOLUMES)
@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize("oflags", ["fciq", "fcib"])
def test_a_fill_leaves_every_balance_on_the_assets_decimals(
    volume: str, side: str, oflags: str
) -> None:
    exchange, caller, _, _ = make({"XXBTZUSD": "65022.2"})
    txid = place(
        caller,
        {
            "pair": "XBTUSD",
            "type": side,
            "ordertype": "market",
            "volume": volume,
            "oflags": oflags,
        },
    )
    assert caller.ok("QueryOrders", {"txid": txid})[txid]["status"] == "closed"
    check_balances_shown_exactly(exchange, caller)
    exchange.check_invariants()


@pytest.mark.parametrize("volume", ODD_VOLUMES)
def test_balances_move_by_the_orders_cost_and_fee_rounded_to_the_asset(volume: str) -> None:
    exchange, caller, _, _ = make({"XXBTZUSD": "65022.2"})
    before = exchange.balances(caller.account.key)
    buy = place(caller, {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": volume})
    sell = place(
        caller,
        {
            "pair": "XBTUSD",
            "type": "sell",
            "ordertype": "market",
            "volume": volume,
            "oflags": "fciq",
        },
    )
    orders = caller.ok("QueryOrders", {"txid": f"{buy},{sell}"})
    b, s = orders[buy], orders[sell]
    expected = (
        before["ZUSD"]
        - ledger(Decimal(b["cost"]), "ZUSD")
        - ledger(Decimal(b["fee"]), "ZUSD", fee=True)
        + ledger(Decimal(s["cost"]), "ZUSD")
        - ledger(Decimal(s["fee"]), "ZUSD", fee=True)
    )
    after = exchange.balances(caller.account.key)
    assert after["ZUSD"] == expected
    assert after["XXBT"] == before["XXBT"]
    assert exchange.holds(caller.account.key) == {}


def test_a_resting_buy_holds_quote_on_the_assets_decimals() -> None:
    exchange, caller, _, _ = make({"XXBTZUSD": "65022.2"})
    place(caller, support.limit("XBTUSD", "buy", "60000.1", "0.00012345"))
    (held,) = exchange.holds(caller.account.key).values()
    assert held == held.quantize(unit(DECIMALS["ZUSD"]))
    hold_trade = caller.ok("BalanceEx")["ZUSD"]["hold_trade"]
    assert places_of(hold_trade) == DECIMALS["ZUSD"]
    assert Decimal(hold_trade) == held
    check_balances_shown_exactly(exchange, caller)


@pytest.mark.parametrize(
    ("balances", "message"),
    [({"ZUSD": "10.00001"}, "ZUSD"), ({"XXDG": "1.000000001"}, "XXDG")],
)
def test_an_account_cannot_start_with_more_decimals_than_its_asset(
    balances: dict[str, str], message: str
) -> None:
    exchange, _, _, _ = make({})
    with pytest.raises(ValueError, match=message):
        exchange.add_account("another", "c2VjcmV0", balances)


def test_a_deposit_cannot_carry_more_decimals_than_its_asset() -> None:
    exchange, caller, _, _ = make({})
    with pytest.raises(ValueError, match="decimals"):
        exchange.deposit(caller.account.key, "ZUSD", "1.00001")
    exchange.deposit(caller.account.key, "ZUSD", "1.0001")


# -- 2. the average price -------------------------------------------------------------------


def exact_average(fills: list[tuple[Decimal, Decimal]], places: int, side: str) -> Decimal:
    """The volume-weighted average of ``(volume, price)`` fills, rounded in the buyer's or
    the seller's favour to ``places``."""
    rounding = ROUND_FLOOR if side == "buy" else ROUND_CEILING
    notional = sum((v * p for v, p in fills), Decimal(0))
    volume = sum((v for v, _ in fills), Decimal(0))
    average = Context(prec=60, rounding=rounding).divide(notional, volume)
    return average.quantize(unit(places), rounding=rounding)


@pytest.mark.parametrize("volume", ODD_VOLUMES)
@pytest.mark.parametrize("side", ["buy", "sell"])
def test_the_average_price_of_a_fill_at_the_limit_is_the_limit(volume: str, side: str) -> None:
    _, caller, _, _ = make({"XXBTZUSD": "65022.2"})
    txid = place(caller, support.limit("XBTUSD", side, "65022.2", volume))
    order = caller.ok("QueryOrders", {"txid": txid})[txid]
    assert order["status"] == "closed"
    assert Decimal(order["price"]) == Decimal("65022.2")
    # Kraken shows price, cost and fee of an order with the pair's cost decimals.
    assert {places_of(order[f]) for f in ("price", "cost", "fee")} == {XBT.cost_decimals}


def test_the_average_of_fills_at_two_prices_comes_from_the_exact_fills() -> None:
    exchange, caller, clock, market = make({"XXBTZUSD": "50000.0"})
    txid = place(caller, support.limit("XBTUSD", "buy", "49000.3", "0.00300001"))
    market.trade("XXBTZUSD", "49000.0", "0.00100007", at=T0 + 1)
    clock.advance(2)
    caller.ok("AmendOrder", {"txid": txid, "limit_price": "48999.9"})
    market.trade("XXBTZUSD", "48000.0", "1", at=T0 + 3)
    clock.advance(2)
    order = caller.ok("QueryOrders", {"txid": txid})[txid]
    assert order["status"] == "closed"
    fills = [
        (Decimal("0.00100007"), Decimal("49000.3")),
        (Decimal("0.00199994"), Decimal("48999.9")),
    ]
    assert Decimal(order["price"]) == exact_average(fills, XBT.cost_decimals, "buy")
    assert Decimal(order["price"]) <= Decimal("49000.3")
    check_balances_shown_exactly(exchange, caller)


def test_an_unfilled_order_shows_a_zero_price_with_the_cost_decimals() -> None:
    _, caller, _, _ = make({"XXBTZUSD": "65022.2"})
    txid = place(caller, support.limit("XBTUSD", "buy", "60000.0", "0.001"))
    order = caller.ok("QueryOrders", {"txid": txid})[txid]
    assert order["price"] == order["cost"] == order["fee"] == "0." + "0" * XBT.cost_decimals


# -- properties over random trading ---------------------------------------------------------

_ORDER = st.tuples(
    st.sampled_from(DEFAULT_PAIRS),
    st.sampled_from(["buy", "sell"]),
    st.integers(min_value=-40, max_value=40),  # limit, in ticks from the start price
    st.integers(min_value=1, max_value=400),  # volume, in multiples of a small odd lot
    st.booleans(),  # market order?
)
_TRADE = st.tuples(
    st.sampled_from(DEFAULT_PAIRS),
    st.integers(min_value=-60, max_value=60),  # price, in ticks from the start price
    st.integers(min_value=1, max_value=500),  # volume, in the same odd lots
)


def _lot(pair: PairSpec) -> Decimal:
    # ordermin plus an odd tail: costs then carry every decimal the pair allows.
    return pair.ordermin + Decimal("0.00000137") * 7


def _price(pair: PairSpec, ticks: int) -> Decimal:
    return pair.start_price + pair.tick_size * 10 * ticks


@settings(max_examples=60)
@given(orders=st.lists(_ORDER, min_size=1, max_size=8), trades=st.lists(_TRADE, max_size=12))
def test_random_trading_keeps_balances_exact_and_averages_within_limits(
    orders: list[tuple[PairSpec, str, int, int, bool]],
    trades: list[tuple[PairSpec, int, int]],
) -> None:
    exchange, caller, clock, market = make(
        {p.pair_id: str(p.start_price) for p in DEFAULT_PAIRS},
        balances={"ZUSD": "10000000", "XXBT": "1000", "XETH": "10000", "XXDG": "100000000"},
    )
    before = exchange.balances(caller.account.key)
    placed: list[str] = []
    for pair, side, ticks, lots, is_market in orders:
        params: dict[str, Any] = {
            "pair": pair.altname,
            "type": side,
            "volume": str(_lot(pair) * lots),
            # Fee in quote for both sides, so every fee shows in the order info.
            "oflags": "fciq",
        }
        if is_market:
            params["ordertype"] = "market"
        else:
            params.update(ordertype="limit", price=str(_price(pair, ticks)))
        answer = caller.call("AddOrder", params)
        if not answer["error"]:
            placed.append(answer["result"]["txid"][0])
    for n, (pair, ticks, lots) in enumerate(trades):
        market.trade(pair.pair_id, str(_price(pair, ticks)), str(_lot(pair) * lots), at=T0 + n)
    clock.advance(len(trades) + 1)
    check_balances_shown_exactly(exchange, caller)
    exchange.check_invariants()
    # Conservation: each asset moved by exactly the orders' ledger amounts, nothing else.
    expected = dict(before)
    for txid in placed:
        order = caller.ok("QueryOrders", {"txid": txid})[txid]
        pair = PAIRS[next(p.pair_id for p in DEFAULT_PAIRS if p.altname == order["descr"]["pair"])]
        vol = Decimal(order["vol_exec"])
        cost = ledger(Decimal(order["cost"]), pair.quote)
        fee = ledger(Decimal(order["fee"]), pair.quote, fee=True)
        sign = 1 if order["descr"]["type"] == "buy" else -1
        expected[pair.base] += sign * vol
        expected[pair.quote] -= sign * cost + fee
        if vol and order["descr"]["ordertype"] == "limit":
            average, limit = Decimal(order["price"]), Decimal(order["descr"]["price"])
            assert average <= limit if sign == 1 else average >= limit, order
            assert places_of(order["price"]) == pair.cost_decimals
    assert exchange.balances(caller.account.key) == expected

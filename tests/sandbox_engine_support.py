"""Helpers for the sandbox engine tests: a market whose prices the test sets, and a client
that signs requests for an :class:`~oms.sandbox.engine.Exchange` without any transport."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from decimal import ROUND_UP, Decimal
from typing import Any

import attrs

from oms.auth import encode_form, sign
from oms.sandbox.accounts import AccountConfig
from oms.sandbox.clock import ManualClock
from oms.sandbox.config import SandboxConfig
from oms.sandbox.engine import Exchange, SandboxRequest, SandboxResponse
from oms.sandbox.market import DEFAULT_PAIRS, PairSpec

T0 = 1_700_000_000.0
NS = 1_000_000_000


@attrs.frozen
class StubTrade:
    pair_id: str
    price: Decimal
    volume: Decimal
    side: str
    ordertype: str
    time_ns: int
    trade_id: int

    def to_row(self) -> list[object]:
        return [str(self.price), str(self.volume), self.time_ns / NS, self.side[0], "l", "", 1]


class StubMarket:
    """A market that trades only when the test says so (``trade``), at the test's prices."""

    def __init__(
        self,
        prices: Mapping[str, str] | None = None,
        pairs: Sequence[PairSpec] = DEFAULT_PAIRS,
    ) -> None:
        self._pairs = tuple(pairs)
        self._by_name = {n.upper(): p for p in self._pairs for n in p.names}
        self.last: dict[str, Decimal] = {p.pair_id: p.start_price for p in self._pairs}
        for pair_id, price in (prices or {}).items():
            self.last[pair_id] = Decimal(price)
        self.pending: list[StubTrade] = []
        self.tape: list[StubTrade] = []
        self.fills: list[StubTrade] = []
        self.now = 0.0
        self.next_id = 1

    @property
    def pairs(self) -> tuple[PairSpec, ...]:
        return self._pairs

    def pair(self, name: str) -> PairSpec | None:
        return self._by_name.get(name.strip().upper())

    def trade(
        self, pair_id: str, price: str, volume: str = "1000", *, at: float, side: str = "sell"
    ) -> None:
        """Schedule a market trade at time ``at`` (it happens when the exchange advances)."""
        self.pending.append(
            StubTrade(pair_id, Decimal(price), Decimal(volume), side, "limit", int(at * NS), 0)
        )
        self.pending.sort(key=lambda t: t.time_ns)

    def advance_to(self, now: float) -> list[StubTrade]:
        self.now = max(self.now, now)
        due = [t for t in self.pending if t.time_ns <= now * NS]
        self.pending = [t for t in self.pending if t.time_ns > now * NS]
        out = []
        for t in due:
            t = attrs.evolve(t, trade_id=self.next_id)
            self.next_id += 1
            self.last[t.pair_id] = t.price
            self.tape.append(t)
            out.append(t)
        return out

    def last_price(self, pair_id: str) -> Decimal:
        return self.last[pair_id]

    def record_fill(
        self,
        pair_id: str,
        price: Decimal,
        volume: Decimal,
        side: str,
        ordertype: str,
        time_ns: int,
    ) -> StubTrade:
        t = StubTrade(pair_id, price, volume, side, ordertype, time_ns, self.next_id)
        self.next_id += 1
        self.fills.append(t)
        return t

    def trades(
        self, pair_id: str, since_ns: int | None, count: int = 1000
    ) -> tuple[list[StubTrade], int]:
        rows = [t for t in self.tape if t.pair_id == pair_id]
        return rows[-count:], rows[-1].time_ns if rows else 0

    def ohlc(
        self, pair_id: str, interval: int = 1, since: int | None = None, now: float | None = None
    ) -> tuple[list[list[object]], int]:
        p = str(self.last[pair_id])
        return [[int(self.now), p, p, p, p, p, "0", 0]], int(self.now) - 60

    def ticker(self, pair_id: str, now: float | None = None) -> dict[str, Any]:
        p = str(self.last[pair_id])
        return {"c": [p, "0"]}

    def depth(self, pair_id: str, count: int = 100) -> dict[str, list[list[object]]]:
        p = str(self.last[pair_id])
        return {"asks": [[p, "1", int(self.now)]], "bids": [[p, "1", int(self.now)]]}


class Caller:
    """Signs and sends requests for one account straight into ``Exchange.handle``."""

    def __init__(self, exchange: Exchange, account: AccountConfig) -> None:
        self.exchange = exchange
        self.account = account
        self.nonce = 1_000

    def request(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        json_body: bool = False,
        nonce: int | None = None,
        key: str | None = None,
        secret: str | None = None,
        headers: Mapping[str, str] | None = None,
        received_at: float | None = None,
    ) -> SandboxResponse:
        if nonce is None:
            self.nonce += 1
            nonce = self.nonce
        body_params = {"nonce": nonce, **(params or {})}
        body = json.dumps(body_params) if json_body else encode_form(body_params)
        path = f"/0/private/{method}"
        sent = {
            "user-agent": "oms-tests/1",
            "api-key": key if key is not None else self.account.key,
            "api-sign": sign(secret or self.account.secret, path, nonce, body),
            "content-type": "application/json"
            if json_body
            else "application/x-www-form-urlencoded",
        }
        sent.update(headers or {})
        return self.exchange.handle(
            SandboxRequest("POST", path, "", sent, body.encode(), received_at=received_at)
        )

    def call(self, method: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        """The whole envelope as a dict."""
        response = self.request(method, params, **kw)
        assert response.status == 200, response.body
        return response.json()

    def ok(self, method: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        answer = self.call(method, params, **kw)
        assert answer["error"] == [], answer
        return answer["result"]

    def err(self, method: str, params: Mapping[str, Any] | None = None, **kw: Any) -> str:
        answer = self.call(method, params, **kw)
        assert answer["error"], answer
        assert "result" not in answer
        return str(answer["error"][0])

    def public(self, method: str, query: str = "") -> Any:
        response = self.exchange.handle(
            SandboxRequest("GET", f"/0/public/{method}", query, {"user-agent": "oms-tests/1"})
        )
        assert response.status == 200
        return response.json()


BALANCES = {"ZUSD": "100000", "XXBT": "10", "XETH": "100", "XXDG": "1000000"}


def make(
    *,
    prices: Mapping[str, str] | None = None,
    config: SandboxConfig | None = None,
    balances: Mapping[str, str] | None = None,
    tier: str = "starter",
    market: Any = None,
) -> tuple[Exchange, Caller, ManualClock, Any]:
    """An exchange on a ManualClock at T0 with one funded account and a stub market."""
    clock = ManualClock(T0)
    market = market if market is not None else StubMarket(prices)
    account = AccountConfig.generate(
        "tests", balances=dict(balances if balances is not None else BALANCES), tier=tier
    )
    exchange = Exchange(
        clock=clock,
        market=market,
        accounts=[account],
        config=config if config is not None else SandboxConfig(),
    )
    exchange.propagate_errors = True
    return exchange, Caller(exchange, account), clock, market


def limit(pair: str, side: str, price: str, volume: str, **extra: Any) -> dict[str, Any]:
    return {
        "pair": pair,
        "type": side,
        "ordertype": "limit",
        "price": price,
        "volume": volume,
        **extra,
    }


# -- orders (the test_sandbox_{trading,execution,validation,amend} modules) ---------------

BASE = limit("XBTUSD", "buy", "40000", "0.01")
TXID = re.compile(r"^O[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{6}$")
TICK_PAIR = PairSpec(
    pair_id="XTICKZUSD",
    altname="TICKUSD",
    wsname="TICK/USD",
    base="XETH",
    quote="ZUSD",
    pair_decimals=2,
    lot_decimals=8,
    cost_decimals=5,
    ordermin="0.01",
    costmin="0.5",
    tick_size="0.05",
    start_price="10.00",
)


def make_orders(**kw: Any) -> tuple[Any, Caller, Any, StubMarket]:
    """:func:`make` at 50,000 USD per XBT, without rate limits."""
    kw.setdefault("prices", {"XXBTZUSD": "50000.0"})
    kw.setdefault("config", SandboxConfig(trading_rate_limit=False, rest_rate_limit=False))
    exchange, caller, clock, market = make(**kw)
    return exchange, caller, clock, market


def place(caller: Caller, params: dict[str, Any], **kw: Any) -> str:
    txid: str = caller.ok("AddOrder", params, **kw)["txid"][0]
    return txid


def info(caller: Caller, txid: str) -> dict[str, Any]:
    result: dict[str, Any] = caller.ok("QueryOrders", {"txid": txid, "trades": True})[txid]
    return result


def fee(cost: Decimal, percent: Decimal, places: int) -> Decimal:
    return (cost * percent / 100).quantize(Decimal(1).scaleb(-places), rounding=ROUND_UP)

"""How orders execute: at once on arrival, against the market's tape when they rest, and
when a trigger price is touched. Owns the per-pair books.

The sandbox's counterparty is the market (:mod:`oms.sandbox.market`): sandbox users' orders
never match each other. A resting limit order fills when a market trade prints at or through
its price, at its own limit price, as maker, up to the trade's volume (orders at the same
price share a trade in arrival order). An order that can execute on arrival (a market order,
or a limit order priced through the last trade) fills completely at the last price as taker.
Ending an order is the caller's (``close``): :class:`~oms.sandbox.trading.Trading` keeps the
indexes and what follows a fill (a conditional close).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

from oms._decimal import fmt
from oms.sandbox import money
from oms.sandbox.accounts import Account
from oms.sandbox.assets import AssetTable
from oms.sandbox.book import PairBook, PairLike, SandboxOrder, q_down, q_even
from oms.sandbox.config import SandboxConfig
from oms.sandbox.ids import IdFactory
from oms.sandbox.money import marketable
from oms.sandbox.validation import TRIGGERED

__all__ = ["Execution", "MarketLike", "TradeLike"]

_NS = 1_000_000_000

REASON_FUNDS = "Out of funds"
REASON_POST = "Post only order"
REASON_IOC = "Immediate or cancel"
REASON_FOK = "Fill or kill"

Close = Callable[[SandboxOrder, str, "str | None", float], None]


class TradeLike(Protocol):
    """A trade on the market's tape (see ``oms.sandbox.market.MarketTrade``)."""

    @property
    def pair_id(self) -> str: ...
    @property
    def price(self) -> Decimal: ...
    @property
    def volume(self) -> Decimal: ...
    @property
    def side(self) -> str: ...
    @property
    def ordertype(self) -> str: ...
    @property
    def time_ns(self) -> int: ...
    @property
    def trade_id(self) -> int: ...

    def to_row(self) -> list[object]: ...


class MarketLike(Protocol):
    """What the exchange needs from the market (``oms.sandbox.market.Market`` has it)."""

    @property
    def pairs(self) -> Sequence[PairLike]: ...
    def pair(self, name: str) -> PairLike | None: ...
    def advance_to(self, now: float) -> Sequence[TradeLike]: ...
    def last_price(self, pair_id: str) -> Decimal: ...
    def record_fill(
        self,
        pair_id: str,
        price: Decimal,
        volume: Decimal,
        side: str,
        ordertype: str,
        time_ns: int,
    ) -> TradeLike: ...
    def trades(
        self, pair_id: str, since_ns: int | None, count: int = ...
    ) -> tuple[Sequence[TradeLike], int]: ...
    def ohlc(
        self, pair_id: str, interval: int = ..., since: int | None = ..., now: float | None = ...
    ) -> tuple[list[list[object]], int]: ...
    def ticker(self, pair_id: str, now: float | None = ...) -> dict[str, Any]: ...
    def depth(self, pair_id: str, count: int = ...) -> dict[str, list[list[object]]]: ...


def _fill_row(
    order: SandboxOrder,
    pair: PairLike,
    *,
    volume: Decimal,
    price: Decimal,
    cost: Decimal,
    fee: Decimal,
    now: float,
) -> dict[str, object]:
    """One fill as Kraken's trade-info object (``TradesHistory``), without its trade ids."""
    cd = pair.cost_decimals
    return {
        "ordertxid": order.txid,
        "pair": order.pair_id,
        "time": now,
        "type": order.side,
        "ordertype": order.ordertype,
        "price": fmt(q_even(price, max(cd, pair.pair_decimals))),
        "cost": fmt(cost),
        "fee": fmt(fee),
        "vol": fmt(q_down(volume, pair.lot_decimals)),
        "margin": fmt(q_down(Decimal(0), cd)),
        "leverage": "0",
        "misc": "",
    }


# -- the engine -----------------------------------------------------------------------------


class Execution:
    """Executes orders against the market. ``accounts`` and ``open_orders`` are the trading
    engine's own dicts; ``close`` ends an order (filled, or cancelled for a reason)."""

    def __init__(
        self,
        *,
        market: MarketLike,
        accounts: Mapping[str, Account],
        open_orders: Mapping[str, SandboxOrder],
        ids: IdFactory,
        assets: AssetTable,
        config: Callable[[], SandboxConfig],
        close: Close,
    ) -> None:
        self.market = market
        self.accounts = accounts
        self.open_orders = open_orders
        self.ids = ids
        self.assets = assets
        self._config = config
        self._close = close
        self.books: dict[str, PairBook] = {}
        self.resting: dict[str, Decimal] = {}  # txid -> price it rests at in its book
        self._replay: dict[str, Decimal] = {}

    @property
    def config(self) -> SandboxConfig:
        return self._config()

    def pair(self, pair_id: str) -> PairLike:
        spec = self.market.pair(pair_id)
        if spec is None:  # pragma: no cover - orders only exist for known pairs
            raise KeyError(pair_id)
        return spec

    def places(self, asset: str) -> int:
        return self.assets.ensure(asset).decimals

    def hold_for(
        self, pair: PairLike, side: str, fee_in_base: bool, volume: Decimal, price: Decimal
    ) -> tuple[str, Decimal]:
        return money.hold_for(pair, side, fee_in_base, volume, price, self.places)

    def booked(self, order: SandboxOrder, pair: PairLike) -> tuple[Decimal, Decimal]:
        return money.booked(order, pair, self.places)

    def replay(self, trades: Sequence[TradeLike], run_timers: Callable[[float], None]) -> None:
        """Match the market's new ``trades`` in time order, running the timers due before
        each; while a trade is replayed, arriving orders compare with its price."""
        try:
            for trade in trades:
                t = trade.time_ns / _NS
                run_timers(t)
                self._replay[trade.pair_id] = trade.price
                self.match(trade, t)
        finally:
            self._replay.clear()

    def rest(self, order: SandboxOrder, price: Decimal) -> None:
        """Put the order in its pair's book at ``price``."""
        self.book(order.pair_id).add(order, price)
        self.resting[order.txid] = price

    def await_trigger(self, order: SandboxOrder) -> None:
        """Watch the tape for the order's trigger price."""
        self.book(order.pair_id).triggers[order.txid] = None

    def ref_price(self, pair_id: str) -> Decimal:
        """The price an arriving order is compared with: the last trade (while replaying
        the tape, the trade being replayed)."""
        price = self._replay.get(pair_id)
        return price if price is not None else self.market.last_price(pair_id)

    def book(self, pair_id: str) -> PairBook:
        book = self.books.get(pair_id)
        if book is None:
            book = self.books[pair_id] = PairBook()
        return book

    def unrest(self, order: SandboxOrder) -> None:
        """Take the order out of its pair's book and trigger list."""
        price = self.resting.pop(order.txid, None)
        book = self.books.get(order.pair_id)
        if book is not None:
            if price is not None:
                book.remove(order, price)
            book.triggers.pop(order.txid, None)

    def activate(self, order: SandboxOrder, now: float, price: Decimal | None = None) -> None:
        """Make a pending (or amended) order live: it executes, rests or waits to trigger."""
        order.status = "open"
        ref = price if price is not None else self.ref_price(order.pair_id)
        if order.ordertype == "market":
            self._take(order, ref, now)
            return
        if order.ordertype in TRIGGERED and not order.triggered:
            if self._trigger_hit(order, ref):
                self._fire(order, ref, now)
            else:
                self.await_trigger(order)
            return
        self._enter_limit(order, ref, now)

    def _enter_limit(self, order: SandboxOrder, ref: Decimal, now: float) -> None:
        limit = order.limit_price
        if limit is None:  # pragma: no cover - only limit-like orders get here
            self._take(order, ref, now)
            return
        if marketable(order.side, limit, ref):
            if order.post_only:
                self._close(order, "canceled", REASON_POST, now)
            else:
                self._take(order, ref, now)
            return
        if order.timeinforce == "IOC":
            self._close(order, "canceled", REASON_IOC, now)
        elif order.timeinforce == "FOK":
            self._close(order, "canceled", REASON_FOK, now)
        else:
            self.rest(order, limit)

    def _trigger_hit(self, order: SandboxOrder, price: Decimal) -> bool:
        trigger = order.price if order.price is not None else Decimal(0)
        stop = order.ordertype.startswith("stop")
        rising = (order.side == "buy") == stop
        return price >= trigger if rising else price <= trigger

    def _fire(self, order: SandboxOrder, price: Decimal, now: float) -> None:
        order.triggered = True
        order.misc.append("stopped" if order.ordertype.startswith("stop") else "touched")
        order.stopprice = order.price or Decimal(0)
        self.book(order.pair_id).triggers.pop(order.txid, None)
        if order.ordertype.endswith("-limit") and order.price2 is not None:
            order.limitprice = order.price2
            self.new_segment(order, order.price2)
            self._enter_limit(order, price, now)
        else:
            self._take(order, price, now)

    def new_segment(self, order: SandboxOrder, price: Decimal) -> None:
        """Start a new run of maker fills at ``price`` (fees round per segment)."""
        order.seg_price = price
        order.seg_exec = Decimal(0)
        order.seg_cost0 = order.cost
        order.seg_fee0 = order.fee
        order.seg_feeb0 = order.fee_base

    def _take(self, order: SandboxOrder, price: Decimal, now: float) -> None:
        """Fill the whole remaining volume at ``price`` as taker (or cancel: out of funds)."""
        pair = self.pair(order.pair_id)
        acct = self.accounts[order.account]
        need_asset, need = self.hold_for(
            pair, order.side, order.fee_in_base, order.remaining, price
        )
        if need > order.hold + acct.available(need_asset):
            # Only a triggered stop can get here: it was reserved at its trigger price and
            # the market went through it further than the account can pay for.
            self._close(order, "canceled", REASON_FUNDS, now)
            return
        taker_type = (
            "market" if order.ordertype in ("market", "stop-loss", "take-profit") else "limit"
        )
        self._fill(order, order.remaining, price, False, now, order.side, taker_type)

    def _fill(
        self,
        order: SandboxOrder,
        volume: Decimal,
        price: Decimal,
        maker: bool,
        now: float,
        taker_side: str,
        taker_type: str,
    ) -> None:
        pair = self.pair(order.pair_id)
        acct = self.accounts[order.account]
        new_cost, new_fee, new_feeb = money.fill_totals(order, pair, volume, price, maker=maker)
        if maker:
            order.seg_exec += volume
        dcost = new_cost - order.cost
        dfee = new_fee - order.fee
        spent0, got0 = self.booked(order, pair)
        order.vol_exec += volume
        order.cost = new_cost
        order.notional += volume * price
        order.fee = new_fee
        order.fee_base = new_feeb
        spent1, got1 = self.booked(order, pair)
        spend, get = spent1 - spent0, got1 - got0
        if order.side == "buy":
            spend_asset, get_asset = pair.quote, pair.base
        else:
            spend_asset, get_asset = pair.base, pair.quote
        from_hold = min(spend, order.hold)
        order.hold -= from_hold
        acct.release(spend_asset, from_hold)
        acct.debit(spend_asset, spend)
        acct.credit(get_asset, get)
        if not maker:
            self.new_segment(order, order.seg_price)
        time_ns = int(now * _NS)
        tape = self.market.record_fill(
            order.pair_id, price, volume, taker_side, taker_type, time_ns
        )
        tid = self.ids.next("trade")
        order.trades.append(tid)
        acct.fills[tid] = _fill_row(
            order, pair, volume=volume, price=price, cost=dcost, fee=dfee, now=now
        )
        acct.fills[tid].update(trade_id=tape.trade_id, maker=maker)
        keep = self.config.max_closed_orders
        if keep and len(acct.fills) > keep:
            acct.fills.popitem(last=False)
        if order.vol_exec >= order.vol:
            self._close(order, "closed", None, now)

    def match(self, trade: TradeLike, now: float) -> None:
        book = self.books.get(trade.pair_id)
        if book is None:
            return
        price = trade.price
        if book.triggers:
            for txid in list(book.triggers):
                order = self.open_orders.get(txid)
                if order is not None and order.status == "open" and self._trigger_hit(order, price):
                    self._fire(order, price, now)
        partial = self.config.partial_fills
        for side_list, is_bid in ((book.bids, True), (book.asks, False)):
            left = trade.volume
            while side_list:
                key, _, txid = side_list[0]
                limit = -key if is_bid else key
                if (is_bid and limit < price) or (not is_bid and limit > price):
                    break
                order = self.open_orders[txid]
                volume = min(order.remaining, left) if partial else order.remaining
                if volume <= 0:
                    break
                taker_side = "sell" if is_bid else "buy"
                self._fill(order, volume, limit, True, now, taker_side, trade.ordertype)
                left -= volume
                if partial and left <= 0:
                    break

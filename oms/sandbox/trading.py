"""Order entry, matching against the market's tape, cancels, amends and order queries.

The sandbox's counterparty is the market (:mod:`oms.sandbox.market`): sandbox users' orders
never match each other. A resting limit order fills when a market trade prints at or through
its price, at its own limit price, as maker, up to the trade's volume (orders at the same
price share a trade in arrival order). An order that can execute on arrival (a market order,
or a limit order priced through the last trade) fills completely at the last price as taker.
"""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, Protocol

from oms._decimal import fmt
from oms.sandbox.accounts import Account
from oms.sandbox.assets import AssetTable
from oms.sandbox.book import PairBook, PairLike, SandboxOrder, q_down, q_even, q_half_up, q_up
from oms.sandbox.config import SandboxConfig
from oms.sandbox.ids import IdFactory
from oms.sandbox.protocol import ApiError, Params, invalid, parse_decimal
from oms.sandbox.ratelimit import AMEND_PENALTY, CANCEL_PENALTY, age_penalty
from oms.sandbox.validation import TRIGGERED, OrderSpec, parse_price, parse_volume

__all__ = ["MarketLike", "TradeLike", "Trading"]

_NS = 1_000_000_000
#: An order whose starttm is at least this many seconds ahead is a scheduled order.
SCHEDULED_AHEAD = 5.0

REASON_USER = "User requested"
REASON_FUNDS = "Out of funds"
REASON_POST = "Post only order"
REASON_IOC = "Immediate or cancel"
REASON_FOK = "Fill or kill"
REASON_DMS = "Cancel all orders after timeout"
REASON_AMEND = "Order quantity amended below executed quantity"


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


# -- the engine -----------------------------------------------------------------------------


class Trading:
    """All orders of all accounts, the per-pair books and the timers (start, expiry, dead
    man's switch). Every method runs under the exchange's lock."""

    def __init__(
        self,
        *,
        market: MarketLike,
        accounts: dict[str, Account],
        ids: IdFactory,
        config: SandboxConfig,
        assets: AssetTable | None = None,
    ) -> None:
        self.market = market
        self.accounts = accounts
        self.ids = ids
        self.config = config
        self.assets = assets if assets is not None else AssetTable()
        self.open_orders: dict[str, SandboxOrder] = {}
        self.books: dict[str, PairBook] = {}
        self.resting: dict[str, Decimal] = {}  # txid -> price it rests at in its book
        self.timers: list[tuple[float, int, str, str]] = []  # (time, seq, kind, ref)
        self.seq = 0
        self._replay: dict[str, Decimal] = {}
        self._now = 0.0

    # -- helpers ------------------------------------------------------------------------

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def pair(self, pair_id: str) -> PairLike:
        spec = self.market.pair(pair_id)
        if spec is None:  # pragma: no cover - orders only exist for known pairs
            raise KeyError(pair_id)
        return spec

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

    def charge(
        self, acct: Account, pair_id: str, amount: float, now: float, *, force: bool
    ) -> None:
        """Add to the account's trading counter for ``pair_id``; refuse when over the
        threshold unless ``force`` (batch cancels are accepted anyway, per Kraken)."""
        if not self.config.trading_rate_limit or amount <= 0:
            return
        limits = acct.limits
        counter = acct.trading_counter(pair_id)
        if not force and counter.would_exceed(
            now, limits.trading_decay, amount, limits.trading_threshold
        ):
            raise ApiError("EOrder:Rate limit exceeded")
        counter.add(now, limits.trading_decay, amount)

    def places(self, asset: str) -> int:
        """The asset's ``decimals``: balances and holds are always whole multiples of it."""
        return self.assets.ensure(asset).decimals

    def hold_for(
        self, spec_pair: PairLike, side: str, fee_in_base: bool, volume: Decimal, price: Decimal
    ) -> tuple[str, Decimal]:
        """What an order of ``volume`` at ``price`` must reserve: a buy holds quote (with the
        taker fee unless the fee is taken in base), a sell holds base (plus the fee in base
        when ``fcib``). Each part is rounded up to the asset's decimals, so the hold covers
        whatever :meth:`booked` moves for the fills."""
        pair = spec_pair
        taker = pair.fees_taker / 100
        if side == "buy":
            qd = self.places(pair.quote)
            cost = q_even(volume * price, pair.cost_decimals)
            hold = q_up(cost, qd)
            if not fee_in_base:
                hold += q_up(q_up(cost * taker, pair.cost_decimals), qd)
            return pair.quote, hold
        bd = self.places(pair.base)
        hold = q_up(volume, bd)
        if fee_in_base:
            hold += q_up(q_up(volume * taker, pair.lot_decimals), bd)
        return pair.base, hold

    def booked(self, order: SandboxOrder, pair: PairLike) -> tuple[Decimal, Decimal]:
        """What the order's fills so far have taken from and given to the account, in total:
        ``(spent, received)``, each on its asset's decimals.

        Kraken keeps accounts as ledger entries, whose ``amount`` and ``fee`` are on the
        asset's decimals, while an order's ``cost`` and ``fee`` are on the pair's
        ``cost_decimals``. So the ledger amount is the cost rounded half-up to the asset and
        the ledger fee the fee rounded up. A fill moves the difference of these totals before
        and after it, so balances always equal the start plus the rounded totals of the
        orders, however the fills were split, and no digit below the asset's ever appears.
        """
        qd, bd = self.places(pair.quote), self.places(pair.base)
        cost = q_half_up(order.cost, qd)
        vol = q_half_up(order.vol_exec, bd)
        if order.fee_in_base:
            fee_base = q_up(order.fee_base, bd)
            if order.side == "buy":
                return cost, vol - fee_base
            return vol + fee_base, cost
        fee = q_up(order.fee, qd)
        if order.side == "buy":
            return cost + fee, vol
        return vol, cost - fee

    @staticmethod
    def hold_price(
        ordertype: str, price: Decimal | None, price2: Decimal | None, ref: Decimal
    ) -> Decimal:
        if ordertype in ("stop-loss-limit", "take-profit-limit") and price2 is not None:
            return price2
        if ordertype == "market" or price is None:
            return ref
        return price

    @staticmethod
    def marketable(side: str, limit: Decimal, ref: Decimal) -> bool:
        return limit >= ref if side == "buy" else limit <= ref

    def post_only_would_take(self, spec: OrderSpec, ref: Decimal) -> bool:
        if not spec.post_only or spec.starttm > self._now:
            return False
        if spec.ordertype in ("limit", "iceberg") and spec.price is not None:
            return self.marketable(spec.side, spec.price, ref)
        return False

    # -- placing -------------------------------------------------------------------------

    def check_open_limits(self, acct: Account, spec: OrderSpec) -> None:
        """The open-order cap per pair, the scheduled-order cap and cl_ord_id uniqueness
        (``self._now`` is the placement time)."""
        if (
            self.config.open_orders_limit
            and acct.open_per_pair.get(spec.pair.pair_id, 0) >= acct.limits.max_open_per_pair
        ):
            raise ApiError("EOrder:Orders limit exceeded")
        if (
            self.config.open_orders_limit
            and spec.starttm >= self._now + SCHEDULED_AHEAD
            and sum(1 for o in acct.open.values() if o.status == "pending")
            >= acct.limits.max_scheduled
        ):
            # Kraken caps scheduled orders by tier (15/25/40), beside the open-order cap
            # they also count toward; the string is in Kraken's error list.
            raise ApiError("EOrder:Scheduled orders limit exceeded")
        if spec.cl_ord_id is not None and spec.cl_ord_id in acct.open_by_cl_ord_id:
            raise ApiError("EOrder:Duplicate cl_ord_id")

    def place(self, acct: Account, spec: OrderSpec, now: float) -> SandboxOrder:
        """Reserve funds and create the order (it may fill or cancel at once)."""
        self._now = now
        pair = spec.pair
        ref = self.ref_price(pair.pair_id)
        self.check_open_limits(acct, spec)
        if self.post_only_would_take(spec, ref):
            raise ApiError("EOrder:Post only order")
        hold_price = self.hold_price(spec.ordertype, spec.price, spec.price2, ref)
        asset, amount = self.hold_for(pair, spec.side, "fcib" in spec.oflags, spec.vol, hold_price)
        if amount > acct.available(asset):
            raise ApiError("EOrder:Insufficient funds")
        seg_price = spec.price if spec.ordertype in ("limit", "iceberg") else Decimal(0)
        order = SandboxOrder(
            txid=self._new_txid(),
            account=acct.key,
            pair_id=pair.pair_id,
            side=spec.side,
            ordertype=spec.ordertype,
            vol=spec.vol,
            price=spec.price,
            price2=spec.price2,
            userref=spec.userref,
            cl_ord_id=spec.cl_ord_id,
            oflags=list(spec.oflags),
            timeinforce=spec.timeinforce,
            starttm=spec.starttm,
            expiretm=spec.expiretm,
            opentm=now,
            status="pending",
            hold_asset=asset,
            hold=amount,
            seq=self.next_seq(),
            touched=now,
            refid=spec.refid,
            close=spec.close,
            displayvol=spec.displayvol,
            trigger=spec.trigger,
            deadline=spec.deadline,
            seg_price=seg_price or Decimal(0),
        )
        acct.reserve(asset, amount)
        self._index(acct, order)
        if order.expiretm:
            self.push_timer(order.expiretm, "expire", order.txid)
        if order.starttm > now:
            self.push_timer(order.starttm, "start", order.txid)
        else:
            self._activate(order, now)
        return order

    def _new_txid(self) -> str:
        while True:
            txid = self.ids.next("order")
            if all(txid not in a.orders for a in self.accounts.values()):
                return txid

    def _index(self, acct: Account, order: SandboxOrder) -> None:
        acct.orders[order.txid] = order
        acct.open[order.txid] = order
        self.open_orders[order.txid] = order
        if order.userref is not None:
            acct.open_by_userref.setdefault(order.userref, {})[order.txid] = None
        if order.cl_ord_id is not None:
            acct.open_by_cl_ord_id[order.cl_ord_id] = order.txid
        acct.open_per_pair[order.pair_id] = acct.open_per_pair.get(order.pair_id, 0) + 1

    def _unindex(self, acct: Account, order: SandboxOrder) -> None:
        acct.open.pop(order.txid, None)
        self.open_orders.pop(order.txid, None)
        if order.userref is not None:
            group = acct.open_by_userref.get(order.userref)
            if group is not None:
                group.pop(order.txid, None)
                if not group:
                    del acct.open_by_userref[order.userref]
        if (
            order.cl_ord_id is not None
            and acct.open_by_cl_ord_id.get(order.cl_ord_id) == order.txid
        ):
            del acct.open_by_cl_ord_id[order.cl_ord_id]
        left = acct.open_per_pair.get(order.pair_id, 0) - 1
        if left > 0:
            acct.open_per_pair[order.pair_id] = left
        else:
            acct.open_per_pair.pop(order.pair_id, None)

    def push_timer(self, when: float, kind: str, ref: str) -> None:
        heapq.heappush(self.timers, (when, self.next_seq(), kind, ref))

    def _activate(self, order: SandboxOrder, now: float, price: Decimal | None = None) -> None:
        order.status = "open"
        ref = price if price is not None else self.ref_price(order.pair_id)
        if order.ordertype == "market":
            self._take(order, ref, now)
            return
        if order.ordertype in TRIGGERED and not order.triggered:
            if self._trigger_hit(order, ref):
                self._fire(order, ref, now)
            else:
                self.book(order.pair_id).triggers[order.txid] = None
            return
        self._enter_limit(order, ref, now)

    def _enter_limit(self, order: SandboxOrder, ref: Decimal, now: float) -> None:
        limit = order.limit_price
        if limit is None:  # pragma: no cover - only limit-like orders get here
            self._take(order, ref, now)
            return
        if self.marketable(order.side, limit, ref):
            if order.post_only:
                self.close(order, "canceled", REASON_POST, now)
            else:
                self._take(order, ref, now)
            return
        if order.timeinforce == "IOC":
            self.close(order, "canceled", REASON_IOC, now)
        elif order.timeinforce == "FOK":
            self.close(order, "canceled", REASON_FOK, now)
        else:
            self.book(order.pair_id).add(order, limit)
            self.resting[order.txid] = limit

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
            self._new_segment(order, order.price2)
            self._enter_limit(order, price, now)
        else:
            self._take(order, price, now)

    def _new_segment(self, order: SandboxOrder, price: Decimal) -> None:
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
            self.close(order, "canceled", REASON_FUNDS, now)
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
        cd, ld = pair.cost_decimals, pair.lot_decimals
        rate = (pair.fees_maker if maker else pair.fees_taker) / 100
        fcib = order.fee_in_base
        if maker:
            order.seg_exec += volume
            seg_cost = q_even(order.seg_exec * order.seg_price, cd)
            new_cost = order.seg_cost0 + seg_cost
            new_fee = order.seg_fee0 + q_up(seg_cost * rate, cd)
            new_feeb = order.seg_feeb0 + (q_up(order.seg_exec * rate, ld) if fcib else 0)
        else:
            dcost = q_even(volume * price, cd)
            new_cost = order.cost + dcost
            new_fee = order.fee + q_up(dcost * rate, cd)
            new_feeb = order.fee_base + (q_up(volume * rate, ld) if fcib else 0)
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
            self._new_segment(order, order.seg_price)
        time_ns = int(now * _NS)
        tape = self.market.record_fill(
            order.pair_id, price, volume, taker_side, taker_type, time_ns
        )
        tid = self.ids.next("trade")
        order.trades.append(tid)
        acct.fills[tid] = {
            "ordertxid": order.txid,
            "pair": order.pair_id,
            "time": now,
            "type": order.side,
            "ordertype": order.ordertype,
            "price": fmt(q_even(price, max(cd, pair.pair_decimals))),
            "cost": fmt(dcost),
            "fee": fmt(dfee),
            "vol": fmt(q_down(volume, ld)),
            "margin": fmt(q_down(Decimal(0), cd)),
            "leverage": "0",
            "misc": "",
            "trade_id": tape.trade_id,
            "maker": maker,
        }
        keep = self.config.max_closed_orders
        if keep and len(acct.fills) > keep:
            acct.fills.popitem(last=False)
        if order.vol_exec >= order.vol:
            self.close(order, "closed", None, now)

    def close(self, order: SandboxOrder, status: str, reason: str | None, now: float) -> None:
        """End an order: release what it still holds and move it to the closed list."""
        acct = self.accounts[order.account]
        order.status = status
        order.reason = reason
        order.closetm = now
        if order.hold:
            acct.release(order.hold_asset, order.hold)
            order.hold = Decimal(0)
        price = self.resting.pop(order.txid, None)
        book = self.books.get(order.pair_id)
        if book is not None:
            if price is not None:
                book.remove(order, price)
            book.triggers.pop(order.txid, None)
        self._unindex(acct, order)
        acct.closed[order.txid] = order
        limit = self.config.max_closed_orders
        while limit and len(acct.closed) > limit:
            old, _ = acct.closed.popitem(last=False)
            acct.orders.pop(old, None)
        if status == "closed" and order.close:
            self._spawn_close(acct, order, now)

    def _spawn_close(self, acct: Account, parent: SandboxOrder, now: float) -> None:
        assert parent.close is not None
        pair = self.pair(parent.pair_id)
        spec = OrderSpec(
            pair=pair,
            side="sell" if parent.side == "buy" else "buy",
            ordertype=parent.close["ordertype"],
            vol=parent.vol_exec,
            price=Decimal(parent.close["price"]),
            price2=Decimal(parent.close["price2"]) if "price2" in parent.close else None,
            userref=parent.userref,
            refid=parent.txid,
        )
        spec.oflags = ["fciq" if spec.side == "buy" else "fcib"]
        # Kraken places the close only if it can; the parent stays filled either way.
        with contextlib.suppress(ApiError):
            self.place(acct, spec, now)

    # -- time ------------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Replay the market's new trades against resting orders, firing timers in time order."""
        trades = self.market.advance_to(now)
        try:
            for trade in trades:
                t = trade.time_ns / _NS
                self._run_timers(t)
                self._replay[trade.pair_id] = trade.price
                self._match(trade, t)
        finally:
            self._replay.clear()
        self._run_timers(now)
        self._now = now

    def _run_timers(self, upto: float) -> None:
        timers = self.timers
        while timers and timers[0][0] <= upto:
            when, _, kind, ref = heapq.heappop(timers)
            self._now = when
            if kind == "dms":
                acct = self.accounts.get(ref)
                if acct is not None and acct.dms_trigger == when:
                    acct.dms_trigger = None
                    for victim in list(acct.open.values()):
                        self.close(victim, "canceled", REASON_DMS, when)
                continue
            order = self.open_orders.get(ref)
            if order is None:
                continue
            if kind == "start" and order.status == "pending" and order.starttm == when:
                self._activate(order, when)
            elif kind == "expire" and order.expiretm == when:
                self.close(order, "expired", None, when)

    def _match(self, trade: TradeLike, now: float) -> None:
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

    def arm_dead_mans_switch(self, acct: Account, timeout: int, now: float) -> float | None:
        if timeout == 0:
            acct.dms_trigger = None
            return None
        acct.dms_trigger = now + timeout
        self.push_timer(acct.dms_trigger, "dms", acct.key)
        return acct.dms_trigger

    # -- cancels ---------------------------------------------------------------------------

    def find_for_cancel(
        self, acct: Account, ref: str | int, *, by_cl_ord_id: bool = False
    ) -> list[SandboxOrder]:
        if by_cl_ord_id:
            txid = acct.open_by_cl_ord_id.get(str(ref))
            return [acct.open[txid]] if txid is not None else []
        if isinstance(ref, int):
            group = acct.open_by_userref.get(ref)
            return [acct.open[t] for t in group] if group else []
        order = acct.open.get(ref)
        return [order] if order is not None else []

    def cancel(
        self,
        acct: Account,
        orders: Iterable[SandboxOrder],
        now: float,
        *,
        force: bool,
        charge: bool = True,
        reason: str = REASON_USER,
    ) -> int:
        """Cancel ``orders`` after charging the age penalties to the trading counters
        (refused as a whole when a counter would go over, unless ``force``)."""
        todo = [o for o in dict.fromkeys(orders) if o.is_open]
        penalties: dict[str, float] = {}
        for order in todo if charge else ():
            extra = age_penalty(CANCEL_PENALTY, now - order.touched)
            penalties[order.pair_id] = penalties.get(order.pair_id, 0) + extra
        if not force and self.config.trading_rate_limit:
            limits = acct.limits
            for pair_id, amount in penalties.items():
                counter = acct.trading_counter(pair_id)
                if amount and counter.would_exceed(
                    now, limits.trading_decay, amount, limits.trading_threshold
                ):
                    raise ApiError("EOrder:Rate limit exceeded")
        for pair_id, amount in penalties.items():
            self.charge(acct, pair_id, amount, now, force=True)
        for order in todo:
            self.close(order, "canceled", reason, now)
        return len(todo)

    # -- amends ----------------------------------------------------------------------------

    def amend(self, acct: Account, order: SandboxOrder, p: Params, now: float) -> None:
        """AmendOrder: change quantity and/or prices in place (txid and userref kept)."""
        pair = self.pair(order.pair_id)
        self.charge(
            acct,
            order.pair_id,
            1 + age_penalty(AMEND_PENALTY, now - order.touched),
            now,
            force=False,
        )
        ref = self.ref_price(order.pair_id)
        new_vol = order.vol
        if "order_qty" in p:
            new_vol = parse_volume(p.raw("order_qty"), pair, "order_qty")
        new_price, new_price2 = order.price, order.price2
        if "limit_price" in p:
            if order.ordertype in ("limit", "iceberg"):
                new_price = parse_price(p.raw("limit_price"), "limit_price", pair, ref, order.side)
            elif order.ordertype.endswith("-limit"):
                new_price2 = parse_price(p.raw("limit_price"), "price2", pair, ref, order.side)
            else:
                raise invalid("limit_price")
        if "trigger_price" in p:
            if order.ordertype not in TRIGGERED or order.triggered:
                raise invalid("trigger_price")
            new_price = parse_price(p.raw("trigger_price"), "trigger_price", pair, ref, order.side)
        if "display_qty" in p:
            if order.ordertype != "iceberg":
                raise invalid("display_qty")
            shown = parse_decimal(p.raw("display_qty"), "display_qty")
            if shown <= 0 or shown * 15 < new_vol - order.vol_exec:
                raise invalid("display_qty")
            order.displayvol = shown
        post_only = p.flag("post_only") or order.post_only
        limit_after = new_price2 if order.ordertype.endswith("-limit") else new_price
        active_limit = order.ordertype in ("limit", "iceberg") or (
            order.ordertype.endswith("-limit") and order.triggered
        )
        if (
            post_only
            and active_limit
            and limit_after is not None
            and order.status == "open"
            and self.marketable(order.side, limit_after, ref)
        ):
            raise ApiError("EOrder:Post only order")
        if new_vol <= order.vol_exec:
            order.misc.append("amended")
            self.close(order, "canceled", REASON_AMEND, now)
            return
        remaining = new_vol - order.vol_exec
        hold_price = self.hold_price(order.ordertype, new_price, new_price2, ref)
        asset, need = self.hold_for(pair, order.side, order.fee_in_base, remaining, hold_price)
        if need - order.hold > acct.available(asset):
            raise ApiError("EOrder:Insufficient funds")
        # Apply: take it out of the book, change it, put it back (or let it execute).
        price_changed = (new_price, new_price2) != (order.price, order.price2)
        was_resting = self.resting.pop(order.txid, None)
        if was_resting is not None:
            self.book(order.pair_id).remove(order, was_resting)
        self.book(order.pair_id).triggers.pop(order.txid, None)
        if price_changed or new_vol > order.vol:
            order.seq = self.next_seq()  # loses queue priority, as on Kraken
        order.vol = new_vol
        order.price, order.price2 = new_price, new_price2
        if need > order.hold:
            acct.reserve(asset, need - order.hold)
        elif need < order.hold:
            acct.release(asset, order.hold - need)
        order.hold = need
        seg = order.limit_price
        self._new_segment(order, seg if seg is not None else Decimal(0))
        if "amended" not in order.misc:
            order.misc.append("amended")
        order.touched = now
        if order.status == "open":
            self._activate(order, now, ref)

    # -- queries ---------------------------------------------------------------------------

    def info(self, order: SandboxOrder, *, trades: bool = False) -> dict[str, Any]:
        return order.info(self.pair(order.pair_id), trades=trades)

    # -- persistence -----------------------------------------------------------------------

    def restore_order(self, acct: Account, order: SandboxOrder) -> None:
        """Re-insert an order from a snapshot (books, indexes and timers rebuilt)."""
        if order.is_open:
            self._index(acct, order)
            if order.status == "pending" and order.starttm:
                self.push_timer(order.starttm, "start", order.txid)
            if order.expiretm:
                self.push_timer(order.expiretm, "expire", order.txid)
            if order.status == "open":
                if order.ordertype in TRIGGERED and not order.triggered:
                    self.book(order.pair_id).triggers[order.txid] = None
                elif order.limit_price is not None:
                    self.book(order.pair_id).add(order, order.limit_price)
                    self.resting[order.txid] = order.limit_price
        else:
            acct.orders[order.txid] = order
            acct.closed[order.txid] = order
        self.seq = max(self.seq, order.seq)

"""Order entry, the open-order indexes, timers (start, expiry, dead man's switch), cancels
and closing. How an order executes is :mod:`oms.sandbox.execution`'s; amends are
:mod:`oms.sandbox.amend`'s; the money arithmetic is :mod:`oms.sandbox.money`'s.
"""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from oms.sandbox import money
from oms.sandbox.accounts import Account
from oms.sandbox.amend import amend
from oms.sandbox.assets import AssetTable
from oms.sandbox.book import PairLike, SandboxOrder
from oms.sandbox.config import SandboxConfig
from oms.sandbox.execution import Execution, MarketLike, TradeLike
from oms.sandbox.ids import IdFactory
from oms.sandbox.money import hold_price, marketable
from oms.sandbox.protocol import ApiError, Params
from oms.sandbox.ratelimit import CANCEL_PENALTY, age_penalty
from oms.sandbox.validation import TRIGGERED, OrderSpec

__all__ = ["MarketLike", "TradeLike", "Trading"]

#: An order whose starttm is at least this many seconds ahead is a scheduled order.
SCHEDULED_AHEAD = 5.0

REASON_USER = "User requested"
REASON_DMS = "Cancel all orders after timeout"


class Trading:
    """All orders of all accounts, their indexes and the timers; executes them through
    :attr:`execution`. Every method runs under the exchange's lock."""

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
        self.timers: list[tuple[float, int, str, str]] = []  # (time, seq, kind, ref)
        self.seq = 0
        self._now = 0.0
        self.execution = Execution(
            market=market,
            accounts=accounts,
            open_orders=self.open_orders,
            ids=ids,
            assets=self.assets,
            config=lambda: self.config,
            close=self.close,
        )

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
        """The price an arriving order is compared with (:meth:`Execution.ref_price`)."""
        return self.execution.ref_price(pair_id)

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
        self, pair: PairLike, side: str, fee_in_base: bool, volume: Decimal, price: Decimal
    ) -> tuple[str, Decimal]:
        """What an order must reserve (:func:`oms.sandbox.money.hold_for`)."""
        return money.hold_for(pair, side, fee_in_base, volume, price, self.places)

    def booked(self, order: SandboxOrder, pair: PairLike) -> tuple[Decimal, Decimal]:
        """What the order's fills have moved (:func:`oms.sandbox.money.booked`)."""
        return money.booked(order, pair, self.places)

    def post_only_would_take(self, spec: OrderSpec, ref: Decimal) -> bool:
        if not spec.post_only or spec.starttm > self._now:
            return False
        if spec.ordertype in ("limit", "iceberg") and spec.price is not None:
            return marketable(spec.side, spec.price, ref)
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
        at = hold_price(spec.ordertype, spec.price, spec.price2, ref)
        asset, amount = self.hold_for(pair, spec.side, "fcib" in spec.oflags, spec.vol, at)
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
            self.execution.activate(order, now)
        return order

    def _new_txid(self) -> str:
        while True:
            txid = self.ids.next("order")
            if all(txid not in a.orders for a in self.accounts.values()):
                return txid

    def _index(self, acct: Account, order: SandboxOrder) -> None:
        acct.add_open(order)
        self.open_orders[order.txid] = order

    def push_timer(self, when: float, kind: str, ref: str) -> None:
        heapq.heappush(self.timers, (when, self.next_seq(), kind, ref))

    def close(self, order: SandboxOrder, status: str, reason: str | None, now: float) -> None:
        """End an order: release what it still holds and move it to the closed list."""
        acct = self.accounts[order.account]
        order.status = status
        order.reason = reason
        order.closetm = now
        if order.hold:
            acct.release(order.hold_asset, order.hold)
            order.hold = Decimal(0)
        self.execution.unrest(order)
        acct.remove_open(order)
        self.open_orders.pop(order.txid, None)
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
        self.execution.replay(self.market.advance_to(now), self._run_timers)
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
                self.execution.activate(order, when)
            elif kind == "expire" and order.expiretm == when:
                self.close(order, "expired", None, when)

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
        """AmendOrder: change quantity and/or prices in place (:mod:`oms.sandbox.amend`)."""
        amend(self, acct, order, p, now)

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
                    self.execution.await_trigger(order)
                elif order.limit_price is not None:
                    self.execution.rest(order, order.limit_price)
        else:
            acct.orders[order.txid] = order
            acct.closed[order.txid] = order
        self.seq = max(self.seq, order.seq)

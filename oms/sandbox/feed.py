"""What WebSocket subscribers see: the engine's own state turned into v2 events.

The :class:`Feed` watches accounts that have a subscriber. After every engine operation
(each request handled, each :meth:`~oms.sandbox.engine.Exchange.advance`), still under the
exchange lock, it compares each watched account with what it last published and hands the
difference to the account's sinks as ``executions`` entries (``pending_new``, ``new``,
``amended``, ``trade``, ``filled``, ``canceled``, ``expired``) and ``balances`` ledger
entries. Nothing is recorded on the side: the events are read off the same orders and fill
rows REST answers from, so the two can never disagree.

Without a subscriber the feed is not even registered with the exchange: no work at all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any, NamedTuple

from oms.sandbox import wsreports as reports
from oms.sandbox.accounts import Account
from oms.sandbox.book import PairLike, SandboxOrder, q_down
from oms.sandbox.engine import Exchange
from oms.sandbox.ids import IdFactory
from oms.sandbox.wsformat import v2_asset

__all__ = ["Feed", "Sink"]

logger = logging.getLogger(__name__)

Entry = dict[str, Any]
#: Receives ``(executions entries, balances entries)`` for one account, under the lock.
Sink = Callable[[list[Entry], list[Entry]], None]

#: Fills a snapshot with ``snap_trades`` shows, newest last.
SNAPSHOT_TRADES = 50


class _Mark(NamedTuple):
    """What of an order the feed compares between two publishes."""

    status: str
    vol: Decimal
    vol_exec: Decimal
    price: Decimal | None
    price2: Decimal | None
    displayvol: Decimal | None
    fills: int


def _mark(order: SandboxOrder) -> _Mark:
    return _Mark(
        order.status,
        order.vol,
        order.vol_exec,
        order.price,
        order.price2,
        order.displayvol,
        len(order.trades),
    )


def _last(mapping: dict[str, Any]) -> str | None:
    return next(reversed(mapping), None)


def _since(mapping: dict[str, Any], marker: str | None) -> list[str]:
    """The keys inserted after ``marker`` (all of them if it is None or gone)."""
    if marker is not None and marker not in mapping:
        marker = None
    out: list[str] = []
    for key in reversed(mapping):
        if key == marker:
            break
        out.append(key)
    out.reverse()
    return out


class _Watch:
    """One watched account: its sinks and what was last published of it."""

    def __init__(self, acct: Account) -> None:
        self.sinks: list[Sink] = []
        self.open: dict[str, tuple[SandboxOrder, _Mark]] = {
            txid: (order, _mark(order)) for txid, order in acct.open.items()
        }
        self.last_order = _last(acct.orders)
        self.last_fill = _last(acct.fills)
        self.balances = dict(acct.balances)
        #: The newest fill of the last publish, if it had any (the ledger's ``ref_id``).
        self.fresh_fill: str | None = None


class Feed:
    """The v2 event source of one exchange; sinks are attached per account."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self._watches: dict[str, _Watch] = {}
        self._ledger_ids = IdFactory(exchange.config.seed + 0x5753)  # "WS": its own id space
        self._registered = False

    @property
    def lock(self) -> threading.RLock:
        return self.exchange.lock

    # -- sinks -----------------------------------------------------------------------------

    def attach(self, key: str, sink: Sink) -> None:
        """Send ``key``'s events to ``sink`` from the next operation on (call under the lock
        right after building the snapshot, so nothing falls between the two)."""
        with self.lock:
            watch = self._watches.get(key)
            if watch is None:
                watch = self._watches[key] = _Watch(self.exchange.accounts[key])
            watch.sinks.append(sink)
            if not self._registered:
                self.exchange.observers.append(self.publish)
                self._registered = True

    def detach(self, key: str, sink: Sink) -> None:
        """Stop sending to ``sink``; the last sink of the last account unregisters the feed."""
        with self.lock:
            watch = self._watches.get(key)
            if watch is None or sink not in watch.sinks:
                return
            watch.sinks.remove(sink)
            if not watch.sinks:
                del self._watches[key]
            if not self._watches and self._registered:
                self.exchange.observers.remove(self.publish)
                self._registered = False

    @property
    def watching(self) -> int:
        """How many accounts have a subscriber."""
        return len(self._watches)

    # -- snapshots (under the lock) ----------------------------------------------------------

    def _pair(self, order_pair: str) -> PairLike:
        return self.exchange.trading.pair(order_pair)

    def asset_name(self, asset_id: str) -> str:
        spec = self.exchange.assets.get(asset_id)
        return v2_asset(spec.altname if spec is not None else asset_id)

    def executions_snapshot(self, key: str, *, orders: bool, trades: bool) -> list[Entry]:
        """Open orders (``snap_orders``) then the last 50 fills (``snap_trades``)."""
        acct = self.exchange.accounts[key]
        out: list[Entry] = []
        if orders:
            for order in acct.open.values():
                out.append(reports.snapshot_order_entry(order, self._pair(order.pair_id)))
        if trades:
            tids = list(acct.fills)[-SNAPSHOT_TRADES:]
            for tid in tids:
                row = acct.fills[tid]
                owner = acct.orders.get(str(row["ordertxid"]))
                status = reports.order_status(owner) if owner is not None else "filled"
                out.append(self._trade(tid, row, owner, None, status))
        return out

    def balances_snapshot(self, key: str) -> list[Entry]:
        acct = self.exchange.accounts[key]
        named = sorted((self.asset_name(asset), amount) for asset, amount in acct.balances.items())
        return [reports.balance_snapshot_entry(name, amount) for name, amount in named]

    # -- publishing ------------------------------------------------------------------------

    def publish(self) -> None:
        """Hand every watched account's changes to its sinks (the exchange calls this)."""
        now = self.exchange.clock.time()
        for key, watch in list(self._watches.items()):
            acct = self.exchange.accounts.get(key)
            if acct is None:
                continue
            executions = list(self._executions(acct, watch, now))
            ledger = self._ledger(acct, watch, now)
            if not executions and not ledger:
                continue
            for sink in list(watch.sinks):
                try:
                    sink(executions, ledger)
                except Exception:  # pragma: no cover - a sink only queues
                    logger.exception("websocket sink failed")

    def _executions(self, acct: Account, watch: _Watch, now: float) -> Iterator[Entry]:
        new_orders = _since(acct.orders, watch.last_order)
        new_fills = _since(acct.fills, watch.last_fill)
        watch.last_order = _last(acct.orders)
        watch.last_fill = _last(acct.fills)
        watch.fresh_fill = new_fills[-1] if new_fills else None
        by_order: dict[str, list[str]] = {}
        for tid in new_fills:
            by_order.setdefault(str(acct.fills[tid]["ordertxid"]), []).append(tid)
        for txid, (order, mark) in list(watch.open.items()):
            current = _mark(order)
            if current == mark:
                continue
            yield from self._order_events(acct, order, mark, by_order.pop(txid, []), now)
            if order.is_open:
                watch.open[txid] = (order, current)
            else:
                del watch.open[txid]
        for txid in new_orders:
            order = acct.orders[txid]
            if txid in watch.open:
                continue
            yield from self._order_events(acct, order, None, by_order.pop(txid, []), now)
            if order.is_open:
                watch.open[txid] = (order, _mark(order))
        for txid, tids in by_order.items():  # fills of orders the feed never saw
            for tid in tids:
                owner = acct.orders.get(txid)
                yield self._trade(tid, acct.fills[tid], owner, None, "partially_filled")

    def _order_events(
        self,
        acct: Account,
        order: SandboxOrder,
        prev: _Mark | None,
        tids: list[str],
        now: float,
    ) -> Iterator[Entry]:
        pair = self._pair(order.pair_id)
        never_live = order.status == "pending" or (
            order.closetm is not None and order.starttm > order.closetm
        )
        if prev is None:
            yield reports.order_entry(order, pair, now)
        if (prev is None or prev.status == "pending") and not never_live:
            start = max(order.opentm, order.starttm or 0.0)
            yield reports.status_entry(order, "new", "new", start)
        if prev is not None and (prev.vol, prev.price, prev.price2, prev.displayvol) != (
            order.vol,
            order.price,
            order.price2,
            order.displayvol,
        ):
            yield reports.amended_entry(order, pair, order.touched)
        yield from self._trades(acct, order, pair, tids)
        if not order.is_open:
            yield reports.terminal_entry(order, pair)

    def _trades(
        self, acct: Account, order: SandboxOrder, pair: PairLike, tids: list[str]
    ) -> Iterator[Entry]:
        """Trade entries with the order's running totals, rebuilt backwards from its
        current ones (each fill row holds what that fill added)."""
        qty = q_down(order.vol_exec, pair.lot_decimals)
        cost, notional = q_down(order.cost, pair.cost_decimals), order.notional
        totals: list[tuple[Decimal, Decimal, Decimal]] = []
        for tid in reversed(tids):
            row = acct.fills[tid]
            totals.append((qty, cost, notional))
            vol, price = Decimal(str(row["vol"])), Decimal(str(row["price"]))
            qty, cost, notional = (
                qty - vol,
                cost - Decimal(str(row["cost"])),
                notional - vol * price,
            )
        totals.reverse()
        vol = q_down(order.vol, pair.lot_decimals)
        for tid, cum in zip(tids, totals, strict=True):
            status = "filled" if cum[0] >= vol else "partially_filled"
            yield self._trade(tid, acct.fills[tid], order, cum, status)

    def _trade(
        self,
        tid: str,
        row: Mapping[str, Any],
        order: SandboxOrder | None,
        cum: tuple[Decimal, Decimal, Decimal] | None,
        status: str,
    ) -> Entry:
        pair = self._pair(str(row["pair"]))
        fee_asset = self.asset_name(pair.quote)
        return reports.trade_entry(tid, row, order, pair, cum, status, fee_asset)

    def _ledger(self, acct: Account, watch: _Watch, now: float) -> list[Entry]:
        """One ledger entry per asset whose balance moved since the last publish."""
        if acct.balances == watch.balances:
            return []
        trade_ref = watch.fresh_fill
        out: list[Entry] = []
        for asset in sorted(set(acct.balances) | set(watch.balances)):
            before = watch.balances.get(asset, Decimal(0))
            after = acct.balances.get(asset, Decimal(0))
            if before == after:
                continue
            amount = after - before
            if trade_ref is not None:
                kind, ref = "trade", trade_ref
            else:
                kind = "deposit" if amount > 0 else "withdrawal"
                ref = _last(acct.funding) or ""
            out.append(
                reports.ledger_entry(
                    ledger_id=self._ledger_ids.next("ledger"),
                    ref_id=ref,
                    now=now,
                    kind=kind,
                    name=self.asset_name(asset),
                    amount=amount,
                    balance=after,
                )
            )
        watch.balances = dict(acct.balances)
        return out

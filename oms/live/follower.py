"""Following this account's orders live: WebSocket v2 ``executions`` into the order cache, and
on to the strategy (a part of :class:`oms.manager.OrderManager`).

Each executions message is written to the cache in one transaction (see
:meth:`oms.cache.OrderCache.revise_orders` and :func:`oms.live.events.merge`), then handed to
the subscribers as :class:`OrderUpdate` values: a callback, or an iterator, for every order, a
group's or one userref's. After each (re)subscription and at each sequence gap the follower
reconciles through REST (the manager's ``sync``) before it reads on, so the cache never stays
behind what the stream missed.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from oms.conventions import WS_V2_ASSETS
from oms.errors import OmsError, ResponseShapeError, ValidationError
from oms.live.events import ExecutionEvent, counts_on, merge, order_from_event
from oms.live.sightings import Sightings
from oms.live.stream import ExecutionStream, StreamStatus
from oms.models import Order

__all__ = ["Follower", "OrderUpdate", "Subscription"]

logger = logging.getLogger("oms.live")

# REST's names of the assets WebSocket v2 names otherwise.
_REST_ASSET = {v2: rest for rest, v2 in WS_V2_ASSETS.items()}


@attrs.frozen
class OrderUpdate:
    """One execution event and the order as the cache holds it after the event (``None``
    only if the order could not be learned: the event is still delivered)."""

    event: ExecutionEvent
    order: Order | None

    @property
    def txid(self) -> str:
        return self.event.txid

    @property
    def userref(self) -> int | None:
        return self.order.userref if self.order is not None else self.event.userref


class Subscription:
    """What a strategy receives: by ``callback`` (called in the stream's thread, in order;
    an exception it raises is logged and the stream goes on) or by iterating (blocks for
    the next update; ends once :meth:`close`\\ d). ``userrefs`` limits it to those userrefs
    (a group is its userref); ``None`` receives everything."""

    def __init__(
        self,
        follower: Follower,
        callback: Callable[[OrderUpdate], object] | None,
        userrefs: frozenset[int] | None,
    ):
        self._follower = follower
        self._callback = callback
        self.userrefs = userrefs
        self._queue: queue.SimpleQueue[OrderUpdate | None] = queue.SimpleQueue()
        self.closed = False

    def __repr__(self) -> str:
        wanted = "all" if self.userrefs is None else sorted(self.userrefs)
        return f"Subscription({wanted}, closed={self.closed})"

    def wants(self, update: OrderUpdate) -> bool:
        return self.userrefs is None or update.userref in self.userrefs

    def deliver(self, update: OrderUpdate) -> None:
        if self.closed:
            return
        if self._callback is None:
            self._queue.put(update)
            return
        try:
            self._callback(update)
        except Exception:  # a strategy's bug must not stop the stream for everyone
            logger.exception("a live-update callback raised; the stream goes on")

    def get(self, timeout: float | None = None) -> OrderUpdate | None:
        """The next update (waits up to ``timeout`` seconds); ``None`` if none came or the
        subscription is closed."""
        if self.closed and self._queue.empty():
            return None
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def __iter__(self) -> Iterator[OrderUpdate]:
        while True:
            update = self._queue.get()
            if update is None:
                return
            yield update

    def close(self) -> None:
        """Receive nothing more; an iterator ends after what it already holds."""
        if not self.closed:
            self.closed = True
            self._follower.unsubscribe(self)
            self._queue.put(None)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Follower:
    """Keeps the cache in step with the executions stream and fans updates out.

    ``reconcile`` brings the cache up to date through REST (the manager's ``sync``; given
    the snapshot's orders right after a subscription, it does not list open orders again);
    ``query`` reads orders the stream named without describing them (REST QueryOrders,
    cached); ``rest_pair`` maps a v2 symbol (``BTC/USD``) to the REST name the cache uses
    (``None``: unknown, the order is then read through REST).
    """

    def __init__(
        self,
        *,
        cache: Any,
        url: str,
        token: Callable[[], str],
        now: Callable[[], float],
        reconcile: Callable[[Sequence[Order] | None], object],
        query: Callable[[Sequence[str]], Iterable[Order]],
        rest_pair: Callable[[str], str | None],
        sightings: Sightings,
        stream_options: Mapping[str, Any] | None = None,
    ):
        self.cache = cache
        self._now = now
        self._reconcile = reconcile
        self._query = query
        self._rest_pair = rest_pair
        self.sightings = sightings
        # The orders of the last subscription's snapshot, until its reconciliation.
        self._snapshot: list[Order] | None = None
        self._subscribers: list[Subscription] = []
        self._lock = threading.Lock()
        self.stream = ExecutionStream(
            url,
            token,
            on_message=self._on_message,
            on_resync=self._on_resync,
            **dict(stream_options or {}),
        )

    def __repr__(self) -> str:
        return f"Follower({self.stream!r}, {len(self._subscribers)} subscriber(s))"

    @property
    def status(self) -> StreamStatus:
        return self.stream.status

    def start(self) -> None:
        # A callback that places an order runs in the stream's thread: waiting there for the
        # stream to see that order would wait for itself, so it takes the REST way.
        self.sightings.attach(
            lambda: self.stream.status.live and not self.stream.in_stream_thread()
        )
        self.stream.start()

    def stop(self) -> None:
        self.sightings.detach()
        self.stream.stop()
        with self._lock:
            subscribers, self._subscribers = self._subscribers, []
        for subscription in subscribers:
            subscription.close()

    def subscribe(
        self,
        callback: Callable[[OrderUpdate], object] | None = None,
        *,
        userrefs: Iterable[int] | None = None,
    ) -> Subscription:
        if callback is not None and not callable(callback):
            raise ValidationError("callback must be callable", field="callback")
        wanted = None if userrefs is None else frozenset(userrefs)
        subscription = Subscription(self, callback, wanted)
        with self._lock:
            self._subscribers.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscribers:
                self._subscribers.remove(subscription)

    # --- the stream's thread --------------------------------------------------------------

    def _on_resync(self, reason: str) -> None:
        logger.info("reconciling the cache through REST (%s)", reason)
        snapshot, self._snapshot = self._snapshot, None
        # Right after a subscription, its snapshot is every open order: REST need not list
        # them again (ClosedOrders and QueryOrders still say what closed meanwhile).
        self._reconcile(snapshot)

    def _on_message(self, message: Mapping[str, Any]) -> None:
        snapshot = message.get("type") == "snapshot"
        sequence = message.get("sequence")
        data = message.get("data")
        entries = data if isinstance(data, list) else []
        events, malformed = [], 0
        for entry in entries:
            try:
                events.append(
                    ExecutionEvent.from_api(
                        entry,
                        snapshot=snapshot,
                        sequence=sequence if isinstance(sequence, int) else None,
                    )
                )
            except ResponseShapeError as exc:
                malformed += 1
                logger.warning("an executions entry was malformed (%s)", exc)
        orders = self._apply(events) if events else {}
        if snapshot:
            whole = (
                not malformed
                and isinstance(data, list)
                and len(orders) == len({e.txid for e in events})
            )
            self._snapshot = list(orders.values()) if whole else None
        if malformed or not isinstance(data, list):
            # What the bad entries said, REST says.
            logger.warning("reconciling after a malformed executions message")
            self._reconcile(None)

    def _apply(self, events: list[ExecutionEvent]) -> dict[str, Order]:
        now = self._now()
        unknown: list[str] = []
        # Named before the write transaction: learning a new pair asks REST.
        symbols = {e.symbol for e in events if e.symbol}
        pairs = {s: name for s in symbols if (name := self._rest_pair(s)) is not None}
        written = self.cache.revise_orders(
            [e.txid for e in events],
            lambda cached: self._revise(cached, events, pairs, unknown),
            synced_at=now,
        )
        orders = {o.txid: o for o in written}
        if unknown:
            orders.update(self._learn(unknown, events, now))
        # A snapshot entry's time is not the order's open time: no placement judges by it.
        live = {e.txid for e in events if not e.snapshot}
        self.sightings.seen(o for txid, o in orders.items() if txid in live)
        updates = [OrderUpdate(e, orders.get(e.txid)) for e in events]
        with self._lock:
            subscribers = list(self._subscribers)
        for update in updates:
            for subscription in subscribers:
                if subscription.wants(update):
                    subscription.deliver(update)
        return orders

    @staticmethod
    def _revise(
        cached: Mapping[str, Order],
        events: Sequence[ExecutionEvent],
        pairs: Mapping[str, str],
        unknown: list[str],
    ) -> list[Order]:
        """Each event applied, in order, to the order as it stands (cached, or built from a
        whole description). An order the events do not describe whole, or whose fee a trade
        cannot be counted onto (:func:`counts_on`), goes to ``unknown``: REST reads it."""
        current = dict(cached)
        for event in events:
            if event.txid in unknown:
                continue
            order = current.get(event.txid)
            if order is None:
                pair = pairs.get(event.symbol or "")
                order = order_from_event(event, pair) if pair else None
            if order is None or not counts_on(order, event):
                unknown.append(event.txid)
                continue
            current[event.txid] = merge(order, event)
        return [o for txid, o in current.items() if txid not in unknown]

    def _learn(
        self, txids: list[str], events: list[ExecutionEvent], now: float
    ) -> dict[str, Order]:
        """Orders the stream named but could not move on by itself: read through REST, then
        moved on by those events that count on REST's view (the cache keeps whichever is
        further along: REST's answer may be older than a row written meanwhile)."""
        try:
            found = list(self._query(txids))
        except OmsError as exc:
            logger.warning("could not read %s after a live event: %s", ", ".join(txids), exc)
            return {}
        written = self.cache.revise_orders(
            [o.txid for o in found],
            lambda cached: [merge_all(o, events) for o in found],
            synced_at=now,
        )
        return {o.txid: o for o in written}


def merge_all(order: Order, events: Iterable[ExecutionEvent]) -> Order:
    """``order`` moved on by each of ``events`` that concerns it and counts on it, in
    order."""
    for event in events:
        if event.txid == order.txid and counts_on(order, event):
            order = merge(order, event)
    return order


def rest_pair_name(symbol: str, lookup: Callable[[str], Any]) -> str | None:
    """The REST name (altname, e.g. ``XBTUSD``) of the v2 symbol ``BTC/USD``: ``lookup``
    finds the pair rules by their WebSocket v1 name (``XBT/USD``) or altname, else ``None``.
    ``None`` when no pair answers to it: never a guess (the cache would hold a name REST
    does not use)."""
    parts = [_REST_ASSET.get(p, p) for p in symbol.upper().split("/")]
    for name in ("/".join(parts), "".join(parts), symbol.replace("/", "")):
        pair = lookup(name)
        if pair is not None:
            return str(pair.altname)
    return None

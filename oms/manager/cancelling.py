"""Cancelling: one order by txid, or whole groups by userref, never another program's order,
each judged by what the exchange says afterwards."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

import attrs

from oms.cache import CLOSED_STATUSES, OrderCache
from oms.client import KrakenClient
from oms.conventions import check_txid
from oms.errors import InvalidOrder, OmsError, UnknownOrder
from oms.intents import Intent
from oms.manager.counts import PAGE_SIZE, RequestCounts, requests_for
from oms.manager.lookup import OrderLookup
from oms.manager.ownership import Turns
from oms.manager.recovery import UNRESOLVED, Recovery
from oms.manager.results import GroupCancelResult
from oms.manager.timing import KrakenTime
from oms.models import CancelResult, Order, OrderStatus

__all__ = ["Canceller"]

logger = logging.getLogger("oms.manager")

_GONE = (UnknownOrder, InvalidOrder)

#: How long a cancel waits for the live stream to show the order closed before it reads
#: the order back through REST (the stream's events arrive within milliseconds).
STREAM_WAIT = 2.0


class Canceller:
    """Cancels for one manager; see :meth:`oms.manager.OrderManager.cancel_group`."""

    def __init__(
        self,
        *,
        client: KrakenClient,
        cache: OrderCache,
        time: KrakenTime,
        lookup: OrderLookup,
        recovery: Recovery,
        turns: Turns,
        counts: RequestCounts,
    ):
        self.client = client
        self.cache = cache
        self.time = time
        self.lookup = lookup
        self.recovery = recovery
        self.turns = turns
        self.counts = counts

    def cancel(self, txid: str) -> CancelResult:
        """See :meth:`oms.manager.OrderManager.cancel`."""
        check_txid(txid, instead="use cancel_group(userref)")
        self.counts.add("CancelOrder")
        try:
            result = self.client.cancel_order(txid=txid)
        except _GONE:
            # Not open: closed meanwhile, or cancelled by a first try whose answer was lost.
            # No event is coming for it now: REST says how it ended.
            self.refresh([txid])
            raise
        self._read_back(txid)
        return result

    def _read_back(self, txid: str) -> None:
        """Cache the order as it ended: from the live stream when one runs (its event says
        so within milliseconds, and costs no REST call), else (or if it stays silent) read
        through QueryOrders."""
        sightings = self.lookup.sightings
        if sightings.live:
            seen = sightings.wait_for(
                lambda o: o.txid == txid and o.status in CLOSED_STATUSES, timeout=STREAM_WAIT
            )
            if seen is not None:
                return
        self.refresh([txid])

    def refresh(self, txids: Sequence[str]) -> None:
        """Cache the orders as Kraken has them now. Failing is logged, not raised: the cancel
        itself is done, and until the next sync the cache keeps the last state it knew
        (never a guessed one)."""
        try:
            rows, _ = self.lookup.query_known(list(txids))
            now = self.time.now()
        except OmsError as exc:
            logger.warning("could not read back %s after a cancel: %s", ", ".join(txids), exc)
            return
        self.cache.upsert_orders(rows, synced_at=now)

    def groups(self, userrefs: Sequence[int], *, batch: bool) -> GroupCancelResult:
        """Cancel the groups' own orders, then judge it by which orders it cancelled.

        Counts can agree by accident (a member that filled, and an outsider cancelled in its
        place), and a lost answer makes them disagree although everything was cancelled.
        OpenOrders just before says what the cancel could act on, and whether strangers share
        a userref; OpenOrders after what it left; QueryOrders what became of the rest (and
        their executed volume).
        """
        with contextlib.ExitStack() as turns:
            # No placement of this manager with these userrefs runs meanwhile: an order it
            # is about to record would look like a stranger's.
            for ref in sorted(userrefs):
                turns.enter_context(self.turns.of(ref))
            return self._in_turn(userrefs, batch=batch)

    def _open_with(self, userrefs: Sequence[int]) -> dict[str, Order]:
        self.counts.add("OpenOrders")
        if len(userrefs) == 1:
            return {o.txid: o for o in self.client.open_orders(userref=userrefs[0])}
        wanted = set(userrefs)
        return {o.txid: o for o in self.client.open_orders() if o.userref in wanted}

    def _send(
        self, by_userref: Sequence[int], by_txid: Sequence[str], *, batch: bool
    ) -> CancelResult:
        """CancelOrder for one userref alone (unless ``batch``); otherwise CancelOrderBatch,
        50 ids a request. "No such order" from Kraken counts as nothing cancelled."""
        if not by_userref and not by_txid:
            return CancelResult(0)
        if not batch and len(by_userref) == 1 and not by_txid:
            self.counts.add("CancelOrder")
            try:
                return self.client.cancel_order(userref=by_userref[0])
            except _GONE:
                return CancelResult(0)
        entries: list[tuple[str, int | str]] = [("userref", r) for r in by_userref]
        entries += [("txid", t) for t in by_txid]
        count, pending = 0, False
        for i in range(0, len(entries), PAGE_SIZE):
            chunk = entries[i : i + PAGE_SIZE]
            self.counts.add("CancelOrderBatch")
            try:
                answer = self.client.cancel_order_batch(
                    userrefs=[int(v) for k, v in chunk if k == "userref"],
                    txids=[str(v) for k, v in chunk if k == "txid"],
                )
            except _GONE:
                answer = CancelResult(0)
            count += answer.count
            pending = pending or answer.pending
        return CancelResult(count, pending)

    def _members(self, userrefs: Sequence[int]) -> tuple[set[str], list[Intent]]:
        """The groups' members (orders this database placed with the userrefs), and their
        placements still undecided (recovered first, as far as the exchange answers)."""
        try:
            # A member whose placement ended undecided has no txid yet: resolve it first.
            self.recovery.ensure()
        except OmsError as exc:
            logger.warning("group cancel: earlier placements are still undecided (%s)", exc)
        undecided = [
            i for ref in userrefs for i in self.cache.intents(states=UNRESOLVED, userref=ref)
        ]
        return {t for ref in userrefs for t in self.cache.member_txids(ref)}, undecided

    def _in_turn(self, userrefs: Sequence[int], *, batch: bool) -> GroupCancelResult:
        members, undecided = self._members(userrefs)
        before = self._open_with(userrefs)
        started = self.time.now()
        plan = self._plan(userrefs, members, undecided, before)
        # Outsiders are known to the cache from here on, whatever happens next. The group's
        # own orders are written once, as the end of the cancel finds them (OpenOrders after
        # it, or QueryOrders): writing each twice was most of the bookkeeping of a big group.
        self.cache.upsert_orders([before[t] for t in plan.strangers], synced_at=started)
        result = self._send(plan.by_userref, plan.by_txid, batch=batch)
        after = self._open_with(userrefs)
        now = self.time.now()
        self.cache.upsert_orders(after.values(), synced_at=now)
        found, missing = self.lookup.query_known(sorted((plan.own | set(before)) - set(after)))
        final = {o.txid: o for o in found}
        cancelled = {t for t in before if t in final and final[t].status is OrderStatus.CANCELED}
        if result.count > len(cancelled):
            # It cancelled orders that were not open a moment before: placed in between.
            for order in self._closed_since(userrefs, started - self.lookup.match_slack):
                if order.txid not in before and order.status is OrderStatus.CANCELED:
                    final[order.txid] = order
                    cancelled.add(order.txid)
        self.cache.upsert_orders(final.values(), synced_at=now)
        plan.own |= self.cache.placed_here(t for t in final if t not in plan.own)
        outcome = _judge(
            userrefs, result, members, plan, set(after), final, cancelled, set(missing)
        )
        _log(outcome, len(cancelled))
        return outcome

    def _plan(
        self,
        userrefs: Sequence[int],
        members: set[str],
        undecided: list[Intent],
        before: dict[str, Order],
    ) -> _Plan:
        """Which open orders are the groups' own, and how to cancel them: by userref where no
        stranger shares it, by txid where one does."""
        own = members | self.cache.placed_here(before)
        # An order an undecided placement may have made is treated as the group's: cancelling
        # it is what the caller asked for; leaving it open would leave one of theirs behind.
        own |= {t for t, o in before.items() if any(self.lookup.matches(i, o) for i in undecided)}
        strangers = {t for t in before if t not in own}
        shared = {ref for t in strangers if (ref := before[t].userref) is not None}
        plan = _Plan(
            own=own,
            strangers=strangers,
            by_userref=[ref for ref in userrefs if ref not in shared],
            by_txid=sorted(t for t in own if t in before and before[t].userref in shared),
        )
        if strangers:
            logger.warning(
                "userref(s) %s are shared with %d order(s) this database did not place; "
                "cancelling the group's own %d order(s) by txid and leaving the others open",
                sorted(shared),
                len(strangers),
                len(plan.by_txid),
            )
        return plan

    def _closed_since(self, userrefs: Sequence[int], since: float) -> list[Order]:
        ref = userrefs[0] if len(userrefs) == 1 else None
        found = list(self.client.iter_closed_orders(userref=ref, start=since, closetime="close"))
        self.counts.add("ClosedOrders", requests_for(len(found)))
        wanted = set(userrefs)
        return [o for o in found if o.userref in wanted]


@attrs.define
class _Plan:
    own: set[str]
    strangers: set[str]
    by_userref: list[int]
    by_txid: list[str]


def _judge(
    userrefs: Sequence[int],
    result: CancelResult,
    members: set[str],
    plan: _Plan,
    after: set[str],
    final: dict[str, Order],
    cancelled: set[str],
    missing: set[str],
) -> GroupCancelResult:
    """What the cancel did, order by order (see :class:`GroupCancelResult`)."""
    own = plan.own
    touched = cancelled - own
    gone = set(final) | after | missing
    return GroupCancelResult(
        userrefs=tuple(userrefs),
        count=result.count,
        expected=len(members),
        confirmed_empty=not (after & own),
        leftovers=tuple(sorted(after & own)),
        pending=result.pending,
        cancelled=tuple(sorted(cancelled & own)),
        closed=tuple(sorted((own & set(final)) - cancelled)),
        outsiders=tuple(sorted(plan.strangers | (after - own) | touched)),
        unaccounted=tuple(sorted(own - gone)),
        count_known=result.count >= len(cancelled),
        outsiders_cancelled=tuple(sorted(touched)),
        by_txid=tuple(plan.by_txid),
        missing=tuple(sorted(missing)),
    )


def _log(outcome: GroupCancelResult, confirmed: int) -> None:
    if not outcome.ok:
        logger.warning("group cancel did not check out: %s", outcome)
    elif not outcome.count_known:
        logger.info(
            "group cancel answered count %d, but %d cancels are confirmed (a lost answer "
            "repeated); judged by the confirmation",
            outcome.count,
            confirmed,
        )

"""Looking an order up on the exchange: the only way an ambiguous placement is resolved.

An order answers an intent only if every field the intent fixed agrees and it did not open
before the request could have been sent (:meth:`OrderLookup.matches`); it is looked for only
once Kraken's clock is past the intent's deadline, so a miss proves the order absent. While
a live stream runs (:mod:`oms.live`), the order may be *found* sooner: the first executions
event that answers the intent resolves it; absence is still only ever proven this way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from decimal import Decimal

from oms.cache import OrderCache
from oms.client import KrakenClient
from oms.errors import InvalidOrder, OmsError, UnknownOrder
from oms.intents import Intent, IntentState
from oms.live.sightings import Sightings
from oms.manager.counts import PAGE_SIZE, RequestCounts, requests_for
from oms.manager.timing import KrakenTime
from oms.models import Order

__all__ = ["OrderLookup", "Undecided"]

logger = logging.getLogger("oms.manager")

# A price in plain decimal notation (a relative one starts with + or - or ends with %).
_ABSOLUTE = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class Undecided(Exception):
    """The exchange could not be asked (or its clock read): nothing is proven; carries the
    last error."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


class OrderLookup:
    """Finds the exchange's orders for an intent or a userref, and caches what it sees.

    ``match_slack`` is how much earlier than Kraken's confirmed time before a send an order
    may have opened and still answer it (the exchange's own clocks); ``attempts`` bounds the
    tries at one listing.
    """

    def __init__(
        self,
        client: KrakenClient,
        cache: OrderCache,
        time: KrakenTime,
        counts: RequestCounts,
        *,
        match_slack: float,
        attempts: int,
        sightings: Sightings | None = None,
    ):
        #: Orders a live stream has just seen (:mod:`oms.live`): while one is live, an
        #: ambiguous placement is resolved by the first event that answers it.
        self.sightings = sightings if sightings is not None else Sightings()
        self.client = client
        self.cache = cache
        self.time = time
        self.counts = counts
        self.match_slack = match_slack
        self.attempts = attempts

    def by_userref(self, userref: int, since: float) -> list[Order]:
        """OpenOrders then ClosedOrders for ``userref`` (raises :class:`Undecided`).

        In this order an order cannot slip between the two: open at the first call means
        seen there; closed before it means still closed (and listed) at the second.
        """
        last: Exception | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                self.counts.add("OpenOrders")
                opened = list(self.client.open_orders(userref=userref))
                closed = list(self.client.iter_closed_orders(userref=userref, start=since))
                self.counts.add("ClosedOrders", requests_for(len(closed)))
                return opened + closed
            except OmsError as exc:
                if exc.outcome_known and not exc.retry_safe:
                    raise Undecided(exc) from exc
                last = exc
                self.time.sleep(self.time.backoff(exc, attempt))
        assert last is not None
        raise Undecided(last)

    def since(self, intent: Intent) -> float:
        """The earliest open time an order answering ``intent`` can have: Kraken's confirmed
        time before the send (intents written before oms recorded it: their ``created_at``),
        less the slack for the exchange's own clocks."""
        anchor = intent.not_before if intent.not_before is not None else intent.created_at
        return anchor - self.match_slack

    def matches(self, intent: Intent, order: Order) -> bool:
        """Whether ``order`` is what ``intent`` asked for: every field the intent fixed
        (userref, pair, side, type, volume, prices, leverage, the flags it set) must agree,
        and it must not have opened before the request could have been sent."""
        if order.userref != intent.userref or order.pair.upper() != intent.pair.upper():
            return False
        if order.side.value != intent.side or order.descr.ordertype_raw != intent.ordertype:
            return False
        if order.vol != intent.volume or not _same_terms(intent, order):
            return False
        return order.opentm >= self.since(intent)

    def find(self, intent: Intent, *, wait: bool = True) -> Order | None:
        """The exchange's order for ``intent``, adopted into the cache; None if provably
        absent. Raises :class:`Undecided` if the exchange could not be asked, or its clock
        could not be read (an absence seen before the deadline would prove nothing)."""
        assert intent.deadline is not None
        if wait and self.sightings.live:
            sighted = self._sighted(intent)
            if sighted is not None:
                return sighted
        if wait:
            try:
                self.time.wait_past(intent.deadline)
            except Exception as exc:  # Time unreachable, or a clock that never gets there
                raise Undecided(exc) from exc
        seen = self.by_userref(intent.userref, self.since(intent))
        # Everything seen is real and current: keep it, whatever the outcome.
        synced_at = self.time.now()
        self.cache.upsert_orders(seen, synced_at=synced_at)
        candidates = sorted(
            (o for o in seen if self.matches(intent, o)), key=lambda o: (o.opentm, o.txid)
        )
        for order in candidates:
            # From any state that may become placed (oms.intents.TRANSITIONS), ABSENT too: a
            # match seen after the deadline is the truth, whoever concluded otherwise. The
            # cache refuses an order that answers another intent already.
            if self.cache.adopt(intent.id, order, synced_at=synced_at):
                logger.info(
                    "intent %s adopted %s after an ambiguous outcome", intent.id, order.txid
                )
                return order
            current = self.cache.intent(intent.id)
            if current is not None and current.state is IntentState.PLACED:
                # Resolved by someone else meanwhile; report what they found.
                return self.cache.order(current.txid) if current.txid else order
        return None

    def _sighted(self, intent: Intent) -> Order | None:
        """The live stream's order for ``intent``, adopted, if one comes before the deadline
        passes (by the estimate of Kraken's clock; REST proves absence after it). A candidate
        is judged again as the cache now holds it; one refused (it answers another intent)
        is passed over and the wait goes on."""
        assert intent.deadline is not None
        end = intent.deadline + self.time.margin
        refused: set[str] = set()
        while (left := end - self.time.local_now()) > 0:
            seen = self.sightings.wait_for(
                lambda o: o.txid not in refused and self.matches(intent, o), timeout=left
            )
            if seen is None:
                return None
            # The stream may have moved it on since (pending, then open): judged as cached.
            order = self.cache.order(seen.txid) or seen
            if self.matches(intent, order) and self.cache.adopt(
                intent.id, order, synced_at=self.time.now()
            ):
                logger.info("intent %s adopted %s, seen on the live stream", intent.id, order.txid)
                return order
            current = self.cache.intent(intent.id)
            if current is not None and current.state is IntentState.PLACED and current.txid:
                return self.cache.order(current.txid) or order
            refused.add(seen.txid)
        return None

    def query_known(self, txids: Sequence[str]) -> tuple[list[Order], dict[str, str]]:
        """QueryOrders for ``txids``: the orders found, and for each txid the exchange does
        not know, what it answered (those are marked missing in the cache).

        One unknown txid makes Kraken refuse the whole batch (``EOrder:Invalid order`` or
        ``EOrder:Unknown order``), so a refused batch is asked again one txid at a time: the
        rest are found, and only the unknown ones are set aside.
        """
        found: list[Order] = []
        missing: dict[str, str] = {}
        for i in range(0, len(txids), PAGE_SIZE):
            batch = list(txids[i : i + PAGE_SIZE])
            self.counts.add("QueryOrders")
            try:
                found.extend(self.client.query_orders(batch))
                continue
            except (UnknownOrder, InvalidOrder):
                pass
            for txid in batch:
                self.counts.add("QueryOrders")
                try:
                    found.extend(self.client.query_orders([txid]))
                except (UnknownOrder, InvalidOrder) as exc:
                    missing[txid] = f"QueryOrders answered {exc}"
                    logger.warning("cached order %s is unknown to the exchange (%s)", txid, exc)
        self.cache.mark_missing(missing, at=self.time.local_now())
        return found, missing


def _same_terms(intent: Intent, order: Order) -> bool:
    """Prices, leverage and flags the intent set, as the order shows them."""
    params = intent.params
    for name, shown in (("price", order.descr.price), ("price2", order.descr.price2)):
        wanted = params.get(name)
        if wanted is None or not _ABSOLUTE.fullmatch(str(wanted)):
            continue  # not set, or relative (+5, -1%: Kraken shows the resolved price)
        if not isinstance(shown, Decimal) or shown != Decimal(str(wanted)):
            return False
    leverage = params.get("leverage")
    if leverage is not None and str(order.descr.leverage or "none") not in (
        str(leverage),
        f"{leverage}:1",
    ):
        return False
    flags = {f for f in str(params.get("oflags") or "").split(",") if f}
    return flags <= set(order.oflags)

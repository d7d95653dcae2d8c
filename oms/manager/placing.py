"""Placing one order exactly once: intent first, a ``deadline`` on every AddOrder, a lookup
instead of a blind re-send, and every way out recorded.

The steps of :meth:`Placer.place`: the request is checked; an *intent* (what is about to be
sent, its userref, Kraken's confirmed time and the deadline) is written; AddOrder is sent;
a clear answer lands in the cache; an ambiguous one is resolved by :class:`OrderLookup`
after the deadline, and only a proven absence is sent again (with a new deadline, up to
``max_attempts`` requests in all: the client itself never repeats an AddOrder).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, TypeVar

import attrs

from oms.cache import Group, OrderCache
from oms.client import KrakenClient
from oms.errors import (
    AllocatorExhausted,
    KrakenError,
    OmsError,
    OrderNotPlaced,
    OutcomeUnknownError,
    ServerTimeUnavailable,
    ValidationError,
)
from oms.intents import Intent, IntentState
from oms.manager.counts import RequestCounts
from oms.manager.lookup import OrderLookup, Undecided
from oms.manager.ownership import Turns
from oms.manager.recording import Final, Flight, Recorder, placement
from oms.manager.recovery import Recovery
from oms.manager.results import Placement
from oms.manager.timing import KrakenTime
from oms.models import AssetPair
from oms.orders import OrderRequest, check_against_pair, check_userref
from oms.retry import RetryPolicy
from oms.userref import UserrefAllocator

__all__ = ["Placer", "claim_fresh"]

logger = logging.getLogger("oms.manager")

_T = TypeVar("_T")
# Userrefs drawn in a row before giving up because the cache knows each one as in use.
ALLOCATION_TRIES = 1000
# The manager owns AddOrder's retries: one request per attempt it counts.
ONE_REQUEST = RetryPolicy.none()


def claim_fresh(allocator: UserrefAllocator, claim: Callable[[int], _T]) -> _T:
    """``claim(userref)`` for the first value from ``allocator`` that nothing in the cache
    carries yet (``claim`` writes the record that takes it, refusing a taken one)."""
    for _ in range(ALLOCATION_TRIES):
        ref = allocator.allocate()
        try:
            return claim(ref)
        except ValidationError as exc:
            if exc.rule != "userref-in-use":
                raise
            logger.info("userref %s from %r is in use (%s); drawing another", ref, allocator, exc)
    raise AllocatorExhausted(
        f"{allocator!r} handed out {ALLOCATION_TRIES} userrefs in a row that the cache knows "
        "as in use"
    )


class Placer:
    """Places orders for one manager (see the module's description)."""

    def __init__(
        self,
        *,
        client: KrakenClient,
        cache: OrderCache,
        time: KrakenTime,
        lookup: OrderLookup,
        recorder: Recorder,
        recovery: Recovery,
        turns: Turns,
        counts: RequestCounts,
        allocator: UserrefAllocator,
        owner: str,
        pair: Callable[[str], AssetPair],
        max_attempts: int,
    ):
        self.client = client
        self.cache = cache
        self.time = time
        self.lookup = lookup
        self.recorder = recorder
        self.recovery = recovery
        self.turns = turns
        self.counts = counts
        self.allocator = allocator
        self.owner = owner
        self.pair = pair
        self.max_attempts = max_attempts

    def place(
        self, request: OrderRequest, *, group: Group | int | None, validate: bool | None
    ) -> Placement:
        """See :meth:`oms.manager.OrderManager.place`."""
        if not isinstance(request, OrderRequest):
            raise ValidationError("request must be an oms.orders.OrderRequest", field="request")
        dry_run = request.validate if validate is None else bool(validate)
        group_ref = _group_userref(request, group)
        if not dry_run:
            self.recovery.ensure()
        pair = self.pair(request.pair)
        check_against_pair(request, pair)
        # One placement per userref at a time in this manager: a lookup by userref must never
        # run while another placement with the same userref is between Kraken's answer and
        # the cache, or it could adopt that order as its own (two callers told "placed" for
        # one order). Fresh userrefs are unique, so only groups and hand-chosen ones wait,
        # and they wait before the intent (and its deadline) is written.
        chosen = group_ref if group_ref is not None else request.userref
        with self.turns.of(chosen) if chosen is not None else contextlib.nullcontext():
            request, intent = self._write_intent(
                request, pair, group_ref=group_ref, dry_run=dry_run
            )
            # Written before anything is sent: from here on every way out leaves the intent
            # resolved, or marked for recovery.
            flight = Flight(intent)
            try:
                return self._drive(flight, request)
            except Final as final:
                raise final.error from final.error.__cause__
            except BaseException as exc:
                outcome = self.recorder.abandon(flight, exc)
                if not isinstance(exc, Exception) or outcome is None:
                    raise
                if isinstance(outcome, Placement):
                    return outcome
                raise outcome from exc

    def _write_intent(
        self, request: OrderRequest, pair: AssetPair, *, group_ref: int | None, dry_run: bool
    ) -> tuple[OrderRequest, Intent]:
        """The request with its userref, and its intent, written to the cache.

        A userref from the allocator must be one nothing in the cache carries (a group cancel
        would take the other order with it): checked as the intent is written.
        """
        try:
            # A time Kraken's clock had certainly reached before this request is sent: an
            # order that opened before it cannot be this intent's, whatever any local clock
            # says. Asked again when old, so a stranger's identical order is not taken for it.
            self.time.fresh_floor()
            ahead = self.time.ahead()  # may measure again: before reading the time
            now = self.time.now()
            not_before = self.time.server.floor  # the latest, after any measuring above
        except OmsError as exc:
            raise ServerTimeUnavailable(
                f"could not read Kraken's time to set the order's deadline "
                f"({type(exc).__name__}: {exc}); nothing was sent"
            ) from exc

        def write(userref: int, *, fresh: bool) -> tuple[OrderRequest, Intent]:
            final = attrs.evolve(request, userref=userref, validate=dry_run, deadline=None)
            intent = Intent(
                id=uuid.uuid4().hex,
                created_at=now,
                userref=userref,
                pair=pair.altname,
                side=final.side.value,
                ordertype=final.ordertype.value,
                volume=final.volume,
                price=final.price if isinstance(final.price, Decimal) else None,
                params=final.to_params(),
                state=IntentState.PENDING,
                is_group=group_ref is not None,
                validate=dry_run,
                attempts=1,
                deadline=now + ahead,
                owner=self.owner,
                updated_at=now,
                not_before=not_before,
            )
            self.cache.add_intent(intent, fresh_userref=fresh)
            return final, intent

        chosen = group_ref or request.userref
        if chosen is not None:
            return write(chosen, fresh=False)
        return claim_fresh(self.allocator, lambda ref: write(ref, fresh=True))

    def _fresh_deadline(self, flight: Flight) -> Intent | Placement:
        """The intent about to be sent, its deadline moved on if too little of it is left
        (time went by since it was written, or the clock estimate moved): nothing was sent
        with this deadline yet, so changing it (compare-and-set) cannot duplicate anything."""
        intent = flight.intent
        assert intent.deadline is not None
        if not self.time.too_close(intent.deadline):
            return intent
        now = self.time.now()
        updated = self.cache.update_intent(
            intent.id,
            expect_attempts=intent.attempts,
            expect_deadline=intent.deadline,
            expect_states=[intent.state],
            deadline=now + self.time.ahead(),
            updated_at=now,
        )
        if updated is None:
            return self.recorder.settled_elsewhere(intent, None)
        flight.intent = updated
        return updated

    def _send(self, intent: Intent, request: OrderRequest) -> Any:
        assert intent.deadline is not None
        self.counts.add("AddOrder")
        # The deadline was set by the server's clock: it is checked against the same estimate,
        # not against a local clock that may have stepped since.
        deadline = datetime.fromtimestamp(intent.deadline, timezone.utc)
        return self.client.add_order(
            attrs.evolve(request, deadline=deadline), now=self.time.now(), retry=ONE_REQUEST
        )

    def _drive(self, flight: Flight, request: OrderRequest) -> Placement:
        """Send until the outcome is known; deliberate ends are raised as :class:`Final`."""
        while True:
            fresh = self._fresh_deadline(flight)
            if isinstance(fresh, Placement):
                return fresh
            intent = fresh
            try:
                result = self._send(intent, request)
            except OmsError as exc:
                found = self._after_failure(intent, exc)
                if found is not None:
                    return found
                following = self._next_attempt(intent, exc)
                if isinstance(following, Placement):
                    return following
                flight.intent = following
                continue
            if intent.validate:
                self.recorder.settle(intent, IntentState.VALIDATED)
                return placement(intent, IntentState.VALIDATED, None, result.descr_order)
            # AddOrderResult.from_api refuses a live answer without a txid.
            assert result.txid is not None
            flight.txid, flight.descr = result.txid, result.descr_order
            self.recorder.placed(intent, result.txid, result.descr_order)
            return placement(intent, IntentState.PLACED, result.txid, result.descr_order)

    def _after_failure(self, intent: Intent, exc: OmsError) -> Placement | None:
        """What a failed attempt means: raises :class:`Final` if final, returns the placement
        if the order was found, ``None`` if it is provably not on the exchange."""
        if exc.outcome_known and not exc.retry_safe:
            # A definite answer: Kraken refused (or nothing was sent); nothing was placed.
            state = IntentState.REJECTED if isinstance(exc, KrakenError) else IntentState.ABSENT
            self.recorder.settle(intent, state, error=f"{type(exc).__name__}: {exc}")
            raise Final(exc)
        if exc.outcome_known:
            # Nothing was done (a rate limit, a connection never made): sending again cannot
            # duplicate. A dry run gets no other shortcut: an exchange that answers a
            # validate request with a txid, or whose answer is lost, may have placed it.
            self.time.sleep(self.time.backoff(exc, intent.attempts))
            return None
        logger.warning(
            "AddOrder for intent %s (userref %s) ended ambiguously (%s: %s); reconciling",
            intent.id,
            intent.userref,
            type(exc).__name__,
            exc,
        )
        try:
            found = self.lookup.find(intent)
        except Undecided as undecided:
            self.recorder.settle(intent, IntentState.UNKNOWN, error=f"{type(exc).__name__}: {exc}")
            self.recovery.leave(intent.id)
            raise Final(
                OutcomeUnknownError(
                    f"could not tell whether intent {intent.id} (userref {intent.userref}, "
                    f"{intent.side} {intent.volume} {intent.pair}) was placed: the lookup "
                    f"failed with {type(undecided.cause).__name__}: {undecided.cause}. It is "
                    "recorded as unknown; recover() resolves it once the exchange answers",
                    intent_id=intent.id,
                    userref=intent.userref,
                ),
                cause=exc,
            ) from exc
        return None if found is None else self.recorder.found(intent, found)

    def _next_attempt(self, intent: Intent, exc: OmsError) -> Intent | Placement:
        """The intent for another attempt (provably not placed: it cannot duplicate), or
        the end when the attempts are used up."""
        if intent.attempts >= self.max_attempts:
            error = f"{type(exc).__name__}: {exc}"
            if self.recorder.settle(intent, IntentState.ABSENT, error=error) is None:
                return self.recorder.settled_elsewhere(intent, exc)
            raise Final(
                OrderNotPlaced(
                    f"order not placed after {intent.attempts} attempt(s), each proven "
                    f"absent (last error: {error}); intent {intent.id}, userref "
                    f"{intent.userref}",
                    intent_id=intent.id,
                    userref=intent.userref,
                ),
                cause=exc,
            ) from exc
        now = self.time.now()
        updated = self.cache.update_intent(
            intent.id,
            expect_attempts=intent.attempts,
            expect_deadline=intent.deadline,
            expect_states=[intent.state],
            attempts=intent.attempts + 1,
            deadline=now + self.time.ahead(),
            updated_at=now,
        )
        if updated is None:
            return self.recorder.settled_elsewhere(intent, exc)
        return updated


def _group_userref(request: OrderRequest, group: Group | int | None) -> int | None:
    """The group's userref, checked against the request's own."""
    if request.cl_ord_id is not None:
        raise ValidationError(
            "the order manager tags and finds orders by userref, which Kraken does not "
            "allow together with cl_ord_id; leave cl_ord_id unset",
            field="cl_ord_id",
            rule="exclusive",
        )
    if isinstance(group, Group):
        group_ref: int | None = group.userref
    else:
        group_ref = None if group is None else check_userref(group)
    if group_ref is not None and request.userref not in (None, group_ref):
        raise ValidationError(
            f"request.userref {request.userref} is not the group's {group_ref}",
            field="userref",
            rule="exclusive",
        )
    return group_ref

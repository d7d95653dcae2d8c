"""Writing what became of a placement: the outcome of each attempt, Kraken's txid (which must
never be lost), and what is left for recovery when anything unexpected fails."""

from __future__ import annotations

import logging
from decimal import Decimal

import attrs

from oms.cache import OrderCache
from oms.errors import (
    CacheError,
    DryRunPlacedOrder,
    OmsError,
    OrderNotPlaced,
    OutcomeUnknownError,
    PlacementNotRecorded,
)
from oms.intents import Intent, IntentState
from oms.manager.recovery import Recovery
from oms.manager.results import Placement
from oms.manager.timing import KrakenTime
from oms.models import (
    Order,
    OrderDescr,
    OrderStatus,
    OrderType,
    Side,
    checked,
    parse_price,
)

__all__ = ["Final", "Flight", "Recorder", "TxidClaimed"]

logger = logging.getLogger("oms.manager")

# Tries at writing a placed order's txid before the placement is given up to recovery.
WRITE_ATTEMPTS = 4


class TxidClaimed(Exception):
    """Kraken answered this intent with a txid that another intent already adopted by lookup."""


class Final(Exception):
    """A placement's deliberate end, already recorded in the cache: ``error`` is what the
    caller gets. Anything else escaping a placement is a failure the intent must survive."""

    def __init__(self, error: OmsError, *, cause: BaseException | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        if cause is not None:
            error.__cause__ = cause


@attrs.define
class Flight:
    """One placement in progress: its intent as last written, and the order once Kraken
    answered with a txid (what must not be lost if recording it fails)."""

    intent: Intent
    txid: str | None = None
    descr: str = ""


def placement(intent: Intent, state: IntentState, txid: str | None, descr: str | None) -> Placement:
    return Placement(intent.id, intent.userref, state, txid, intent.attempts, descr=descr)


class Recorder:
    """Records each step of a placement in the cache (compare-and-set on what was read)."""

    def __init__(self, cache: OrderCache, time: KrakenTime, recovery: Recovery):
        self.cache = cache
        self.time = time
        self.recovery = recovery

    def settle(
        self,
        intent: Intent,
        state: IntentState,
        *,
        error: str | None = None,
    ) -> Intent | None:
        """Record the outcome of the attempt ``intent`` describes, unless the intent changed
        meanwhile (another manager resolved it, or moved on): compare-and-set on its state,
        attempt number and deadline. ``None`` if it had changed."""
        return self.cache.update_intent(
            intent.id,
            expect_states=[intent.state],
            expect_attempts=intent.attempts,
            expect_deadline=intent.deadline,
            state=state,
            error=error,
            updated_at=self.time.local_now(),
        )

    def found(self, intent: Intent, order: Order) -> Placement:
        """The order a lookup found (and adopted) for ``intent``."""
        if intent.validate:
            raise Final(
                DryRunPlacedOrder(
                    f"the dry run (validate=true) of intent {intent.id} was placed as a real "
                    f"order {order.txid} (userref {intent.userref}): the exchange ignored "
                    "validate. It is tracked in the cache and was not sent again; cancel it if "
                    "it is not wanted",
                    intent_id=intent.id,
                    userref=intent.userref,
                    txid=order.txid,
                )
            )
        return attrs.evolve(
            placement(intent, IntentState.PLACED, order.txid, order.descr.order), reconciled=True
        )

    def settled_elsewhere(self, intent: Intent, exc: OmsError | None) -> Placement:
        """The intent changed under this placement (another manager judged it): report its
        outcome as recorded, never send again."""
        current = self.cache.intent(intent.id)
        if current is not None and current.state is IntentState.PLACED and current.txid:
            order = self.cache.order(current.txid)
            if order is not None:
                return self.found(current, order)
        if current is not None and current.state in (IntentState.ABSENT, IntentState.REJECTED):
            raise Final(
                OrderNotPlaced(
                    f"intent {intent.id} (userref {intent.userref}) was resolved as "
                    f"{current.state.value} by another manager while being placed; not sent "
                    "again",
                    intent_id=intent.id,
                    userref=intent.userref,
                ),
                cause=exc,
            )
        raise Final(
            OutcomeUnknownError(
                f"intent {intent.id} (userref {intent.userref}) was changed by another manager "
                f"while being placed (now {current.state.value if current else 'gone'}); not "
                "sent again",
                intent_id=intent.id,
                userref=intent.userref,
            ),
            cause=exc,
        )

    def placed(self, intent: Intent, txid: str, descr: str) -> None:
        """Write Kraken's txid for ``intent``; the write is retried, since losing it would
        leave an order on the exchange the cache does not know."""
        order = placed_order(intent, txid, descr)
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                self.store(intent, order)
                return
            except TxidClaimed:
                raise  # not a write failure: writing again cannot help
            except CacheError as exc:  # the cache failed (locked, disk full, ...)
                if attempt == WRITE_ATTEMPTS:
                    raise
                logger.warning(
                    "recording order %s of intent %s failed (%s: %s); attempt %d of %d",
                    txid,
                    intent.id,
                    type(exc).__name__,
                    exc,
                    attempt + 1,
                    WRITE_ATTEMPTS,
                )
                self.time.sleep(0.25 * 2.0**attempt)

    def store(self, intent: Intent, order: Order) -> None:
        """Adopt ``order`` for ``intent``; keep it in the cache whatever happened meanwhile."""
        # Kraken's txid is the truth: an intent another manager judged absent (or unknown)
        # while this attempt was on its way is wrong about it, so the order is adopted from
        # every state that may become placed.
        if self.cache.adopt(intent.id, order, synced_at=None):
            return
        current = self.cache.intent(intent.id)
        if current is not None and current.txid == order.txid:
            return  # another manager found this very order first
        # The intent answers for another order, or was settled otherwise: this order exists
        # all the same, so it is kept in the cache, never dropped.
        if self.cache.order(order.txid) is None:
            self.cache.upsert_orders([order], synced_at=None)
        if current is not None and current.state.unresolved:
            # Another intent adopted this very order by lookup (possible across processes
            # placing identical orders in one group): reporting "placed" here would tell two
            # callers about one order. Leave this intent to recovery and say so.
            raise TxidClaimed(
                f"order {order.txid} was adopted by another intent before intent {intent.id} "
                "could record it"
            )
        logger.error(
            "order %s (userref %s) was placed for intent %s, which another manager had "
            "resolved as %s%s; the order is cached, check it",
            order.txid,
            intent.userref,
            intent.id,
            current.state.value if current else "gone",
            f" with {current.txid}" if current and current.txid else "",
        )

    def abandon(self, flight: Flight, exc: BaseException) -> Placement | OmsError | None:
        """A placement failed unexpectedly (not a decision of the placer): leave its intent
        where recovery will find it and say what the caller must know.

        Returns the placement if the order could still be recorded, else the error to raise
        (``None`` for a ``BaseException``, which the caller re-raises untouched).
        """
        intent = flight.intent
        self.recovery.leave(intent.id)
        if flight.txid is not None:
            try:
                # One more try at the write that matters most: the order itself.
                self.store(intent, placed_order(intent, flight.txid, flight.descr))
            except (CacheError, TxidClaimed):
                logger.exception("could not record order %s of intent %s", flight.txid, intent.id)
            else:
                self.recovery.settled(intent.id)
                return placement(intent, IntentState.PLACED, flight.txid, flight.descr)
        else:
            try:
                self.cache.update_intent(
                    intent.id,
                    expect_states=[intent.state],
                    state=IntentState.UNKNOWN,
                    error=f"{type(exc).__name__}: {exc}",
                    updated_at=self.time.local_now(),
                )
            except CacheError:
                logger.exception("could not mark intent %s unknown", intent.id)
        logger.error(
            "placement of intent %s (userref %s) failed with %s: %s; left for recover()",
            intent.id,
            intent.userref,
            type(exc).__name__,
            exc,
        )
        if not isinstance(exc, Exception):
            return None
        return _abandoned_error(flight, exc)


def _abandoned_error(flight: Flight, exc: Exception) -> OmsError:
    intent = flight.intent
    what = f"{intent.side} {intent.volume} {intent.pair}"
    if flight.txid is not None:
        return PlacementNotRecorded(
            f"Kraken placed order {flight.txid} for intent {intent.id} (userref "
            f"{intent.userref}, {what}) but the cache could not record it "
            f"({type(exc).__name__}: {exc}). Do not place it again: recover() (run before "
            "the next placement) adopts it",
            intent_id=intent.id,
            userref=intent.userref,
            txid=flight.txid,
        )
    return OutcomeUnknownError(
        f"placing intent {intent.id} (userref {intent.userref}, {what}) failed with "
        f"{type(exc).__name__}: {exc}; the order may exist. The intent is left for "
        "recover() (run before the next placement)",
        intent_id=intent.id,
        userref=intent.userref,
    )


def placed_order(intent: Intent, txid: str, descr: str) -> Order:
    """The order as sent: until the next sync the cache holds it with status "pending".

    Built from the intent's fields, which were checked when the request was made (no
    re-parsing of Kraken-style text: this runs on every placement).
    """
    params = intent.params
    try:
        ordertype: OrderType | None = OrderType(intent.ordertype)
    except ValueError:
        ordertype = None
    zero = Decimal(0)
    return checked(
        Order,
        txid=txid,
        status=OrderStatus.PENDING,
        descr=checked(
            OrderDescr,
            pair=intent.pair,
            side=Side(intent.side),
            ordertype=ordertype,
            ordertype_raw=intent.ordertype,
            price=parse_price(str(params.get("price", "0"))),
            price2=parse_price(str(params.get("price2", "0"))),
            leverage="none",
            order=descr,
            close=None,
        ),
        vol=intent.volume,
        vol_exec=zero,
        cost=zero,
        fee=zero,
        price=zero,
        opentm=float(intent.created_at),
        userref=intent.userref or None,
        oflags=tuple(f for f in str(params.get("oflags") or "").split(",") if f),
    )

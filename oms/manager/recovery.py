"""Recovery: resolving intents whose placement ended without a known outcome (a crash, a
lookup that failed, a cache that failed while recording) before anything new is placed."""

from __future__ import annotations

import logging
import threading

from oms.cache import OrderCache
from oms.errors import OutcomeUnknownError
from oms.intents import Intent, IntentState
from oms.manager.lookup import OrderLookup, Undecided
from oms.manager.ownership import Ownership
from oms.manager.results import RecoveryReport
from oms.manager.timing import KrakenTime

__all__ = ["Recovery"]

logger = logging.getLogger("oms.manager")

UNRESOLVED = tuple(s for s in IntentState if s.unresolved)


class Recovery:
    """Resolves unresolved intents: those of managers that are gone, and this manager's own
    that were left to it (:meth:`leave`)."""

    def __init__(self, cache: OrderCache, lookup: OrderLookup, time: KrakenTime, owner: Ownership):
        self.cache = cache
        self.lookup = lookup
        self.time = time
        self.owner = owner
        self._lock = threading.Lock()
        self._orphans_lock = threading.Lock()
        # Set once a recovery left nothing unresolved (until then each placement recovers).
        self._recovered = False
        # This manager's intents left for recovery (a placement undecided, or failed
        # unexpectedly): recover() resolves them even while they still read "pending" (the
        # cache may be what failed), and placing waits until it has.
        self._orphans: set[str] = set()

    def leave(self, intent_id: str) -> None:
        """Leave ``intent_id`` to the next recovery (run before the next placement)."""
        with self._orphans_lock:
            self._orphans.add(intent_id)

    def settled(self, intent_id: str) -> None:
        """``intent_id`` was resolved after all: no recovery needed for it."""
        with self._orphans_lock:
            self._orphans.discard(intent_id)

    @property
    def needed(self) -> bool:
        with self._orphans_lock:
            return not self._recovered or bool(self._orphans)

    def ensure(self) -> None:
        """Recover if anything may need it; raise if something stays unresolved."""
        with self._lock:
            if not self.needed:
                return
            report = self.recover()
            if report.unknown:
                first = self.cache.intent(report.unknown[0])
                raise OutcomeUnknownError(
                    f"{len(report.unknown)} earlier placement(s) could not be resolved yet "
                    f"(first: intent {report.unknown[0]}); nothing new is placed until they are",
                    intent_id=report.unknown[0],
                    userref=first.userref if first else None,
                )

    def _todo(self, orphans: set[str]) -> tuple[list[Intent], set[str]]:
        """Intents to resolve now, and the dead owners they came from."""
        mine = self.owner.token
        todo: list[Intent] = []
        dead: set[str] = set()
        for intent in self.cache.intents(states=UNRESOLVED):
            if intent.owner == mine:
                if intent.state is IntentState.UNKNOWN or intent.id in orphans:
                    todo.append(intent)
            elif not self.owner.alive(intent.owner):
                todo.append(intent)
                if intent.owner is not None:
                    dead.add(intent.owner)
        return todo, dead

    def recover(self) -> RecoveryReport:
        """See :meth:`oms.manager.OrderManager.recover`."""
        with self._orphans_lock:
            orphans = set(self._orphans)
        todo, dead_owners = self._todo(orphans)
        placed: list[str] = []
        absent: list[str] = []
        unknown: list[str] = []
        sent = [i.deadline for i in todo if i.deadline is not None]
        clock_failure: Exception | None = None
        if sent:
            # One wait for all: past the latest deadline none of them can still take effect.
            try:
                self.time.wait_past(max(sent))
            except Exception as exc:  # Time unreachable: nothing can be proven absent yet
                clock_failure = exc
        outcomes: dict[str, list[str]] = {"placed": placed, "absent": absent, "unknown": unknown}
        for intent in todo:
            outcome = self._resolve(intent, clock_failure)
            if outcome is not None:
                outcomes[outcome].append(intent.id)
        with self._orphans_lock:
            # Those still unknown stay; any other (resolved here, or found resolved) is done.
            # One added meanwhile (not in the snapshot) waits for the next recovery.
            self._orphans -= orphans - set(unknown)
            # Unknown ones taken over from dead managers are this manager's now: retried
            # before its next placement too.
            self._recovered = not unknown
        for owner in dead_owners:
            self.owner.forget(owner)
        if todo:
            logger.info(
                "recovered %d intent(s): %d placed, %d absent, %d unknown",
                len(todo),
                len(placed),
                len(absent),
                len(unknown),
            )
        return RecoveryReport(tuple(placed), tuple(absent), tuple(unknown))

    def _resolve(self, intent: Intent, clock_failure: Exception | None) -> str | None:
        """What ``intent`` became ("placed", "absent", "unknown"), or ``None`` if its owner
        moved it on meanwhile."""
        if intent.deadline is None:
            # Never sent: nothing can exist on the exchange.
            return "absent" if self.resolve_as(intent, IntentState.ABSENT) else None
        try:
            if clock_failure is not None:
                raise Undecided(clock_failure)
            found = self.lookup.find(intent, wait=False)
        except Undecided as undecided:
            changed = self.cache.update_intent(
                intent.id,
                expect_attempts=intent.attempts,
                expect_deadline=intent.deadline,
                state=IntentState.UNKNOWN,
                owner=self.owner.token,
                error=f"lookup failed: {undecided.cause}",
                updated_at=self.time.local_now(),
            )
            return "unknown" if changed is not None else None
        if found is not None:
            return "placed"
        return "absent" if self.resolve_as(intent, IntentState.ABSENT) else None

    def resolve_as(self, intent: Intent, state: IntentState) -> bool:
        """Move ``intent`` to ``state`` if it is still as read (compare-and-set): an owner
        that is alive after all (and sent another attempt, with a new deadline) keeps it."""
        changed = self.cache.update_intent(
            intent.id,
            expect_attempts=intent.attempts,
            expect_deadline=intent.deadline,
            state=state,
            updated_at=self.time.local_now(),
        )
        return changed is not None

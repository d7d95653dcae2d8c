"""``OrderManager``: placement that never duplicates, group cancels that are checked, recovery.

Strategy code → :class:`OrderManager` → :class:`~oms.client.KrakenClient` → transport →
Kraken. Beside the manager sit the :class:`~oms.cache.OrderCache` (SQLite) and a userref
allocator (:mod:`oms.userref`).

Placement (:meth:`OrderManager.place`):

1. the request is checked (its own rules, then the pair's precision rules from AssetPairs);
2. an *intent* is written to SQLite: what is about to be sent, with its userref, the server
   time and the ``deadline`` after which Kraken's engine will refuse to act on it;
3. AddOrder is sent with that ``deadline``;
4. a clear answer (a txid, or a definite rejection) lands in the cache;
5. an *ambiguous* answer (a timeout, a dropped connection, a 5xx page, ``EService:Unavailable``
   / ``Busy`` / ``Deadline elapsed``, ``EGeneral:Internal error``) is never answered by sending
   again. The manager waits until the deadline has passed by the server's clock (so the
   request can no longer take effect), looks the order up by its userref in OpenOrders and
   then ClosedOrders (from just before the intent), and adopts a match. Only when the order is
   provably absent is it sent again, with a new deadline, a bounded number of times. When even
   the lookup fails the intent stays ``unknown`` and :class:`~oms.errors.OutcomeUnknownError`
   names it.

After a crash the next manager on the same database resolves every intent left behind
(:meth:`OrderManager.recover`, run automatically before its first placement) before it places
anything: nothing is left untracked, nothing is sent twice.
"""

from __future__ import annotations

import logging
import os
import threading
import time as _time
import uuid
import weakref
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import filelock

from oms.cache import OPEN_STATUSES, Group, Intent, IntentState, OrderCache
from oms.client import KrakenClient
from oms.errors import (
    KrakenError,
    OmsError,
    OutcomeUnknownError,
    Throttled,
    UnknownOrder,
    ValidationError,
)
from oms.models import (
    AssetPair,
    CancelResult,
    DeadMansSwitch,
    Order,
    OrderStatus,
)
from oms.orders import DEADLINE_MAX, DEADLINE_MIN, OrderRequest, check_against_pair, check_userref
from oms.userref import CounterAllocator, UserrefAllocator

__all__ = [
    "GroupCancelResult",
    "OrderManager",
    "OrderNotPlaced",
    "Placement",
    "RecoveryReport",
    "SyncResult",
]

logger = logging.getLogger(__name__)

_CANCEL_BATCH = 50
_SYNC_CURSOR = "sync.closed_cursor"
_SYNC_AT = "sync.at"


class OrderNotPlaced(OmsError):
    """The order is provably not on the exchange, and the manager gave up re-sending it.

    Every attempt ended ambiguously and each lookup after its deadline found nothing, so it
    is certain nothing was placed; sending again (as a new placement) cannot duplicate.
    """

    outcome_known = True
    retry_safe = True

    def __init__(self, message: str, *, intent_id: str, userref: int):
        super().__init__(message)
        self.intent_id = intent_id
        self.userref = userref


@attrs.frozen
class Placement:
    """What :meth:`OrderManager.place` did.

    ``reconciled`` is true when the txid was not in an answer but found by looking the order
    up after an ambiguous outcome; ``attempts`` counts AddOrder requests sent.
    """

    intent_id: str
    userref: int
    state: IntentState
    txid: str | None
    attempts: int
    reconciled: bool = False
    descr: str | None = None

    @property
    def placed(self) -> bool:
        return self.state is IntentState.PLACED

    @property
    def validated(self) -> bool:
        return self.state is IntentState.VALIDATED


@attrs.frozen
class GroupCancelResult:
    """A group cancel, checked.

    ``count`` is what Kraken reported cancelled; ``expected`` how many open members the cache
    knew; ``confirmed_empty`` whether OpenOrders for the userref(s) came back empty afterwards,
    and ``leftovers`` the txids still open if not. ``ok`` says all three agree; a mismatch is
    reported, never hidden (an order may have filled meanwhile, or been placed elsewhere).
    """

    userrefs: tuple[int, ...]
    count: int
    expected: int
    confirmed_empty: bool
    leftovers: tuple[str, ...] = ()
    pending: bool = False
    cancelled: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.count == self.expected and self.confirmed_empty


@attrs.frozen
class SyncResult:
    """What :meth:`OrderManager.sync` fetched: open orders, newly closed ones, and orders the
    cache thought open that had to be asked for by txid."""

    open: int
    closed: int
    refreshed: int
    at: float


@attrs.frozen
class RecoveryReport:
    """Intents resolved by :meth:`OrderManager.recover`, by outcome (intent ids)."""

    placed: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()

    @property
    def resolved(self) -> int:
        return len(self.placed) + len(self.absent)


# --- ownership of intents across processes -------------------------------------------------

# Tokens of managers alive in this process (the only liveness test for an in-memory cache).
_LIVE: set[str] = set()
_LIVE_LOCK = threading.Lock()


class _Ownership:
    """Tells intents of a live manager (in flight: hands off) from a dead one's (recover).

    Each manager holds an OS file lock named after its token for as long as it lives; the OS
    drops the lock when the process dies, even by SIGKILL. A lock that can be taken therefore
    belongs to a manager that is gone.
    """

    def __init__(self, cache_path: str) -> None:
        self.token = uuid.uuid4().hex
        self._folder = None if cache_path == ":memory:" else Path(cache_path + ".owners")
        self._lock: filelock.BaseFileLock | None = None
        if self._folder is not None:
            self._folder.mkdir(parents=True, exist_ok=True)
            self._lock = filelock.FileLock(str(self._folder / f"{self.token}.lock"))
            self._lock.acquire(timeout=0)
        with _LIVE_LOCK:
            _LIVE.add(self.token)

    def alive(self, token: str | None) -> bool:
        if token is None:
            return False
        with _LIVE_LOCK:
            if token in _LIVE:
                return True
        if self._folder is None:
            return False
        path = self._folder / f"{token}.lock"
        probe = filelock.FileLock(str(path))
        try:
            probe.acquire(timeout=0)
        except filelock.Timeout:
            return True
        probe.release()
        return False

    def forget(self, token: str) -> None:
        if self._folder is not None:
            (self._folder / f"{token}.lock").unlink(missing_ok=True)

    def release(self) -> None:
        with _LIVE_LOCK:
            _LIVE.discard(self.token)
        if self._lock is not None and self._lock.is_locked:
            self._lock.release()
            self.forget(self.token)


# --- the manager ------------------------------------------------------------------------------


class _Undecided(Exception):
    """The lookup itself failed; carries the last error."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


class OrderManager:
    """Places, tracks and cancels orders through one client, one cache, one allocator.

    ``cache`` is an :class:`~oms.cache.OrderCache` or a database path. ``allocator`` hands out
    the userref of each order placed without a group (the "unique id" use) and of each new
    group; by default a :class:`~oms.userref.CounterAllocator` in the same database.

    ``deadline`` (seconds, 2..60) is how far ahead of the server's time each AddOrder's
    ``deadline`` is set; it bounds how long an ambiguous outcome takes to resolve.
    ``clock`` returns the server's time (default: local time corrected by the offset to
    Kraken's ``Time``); ``sleep`` waits. Tests inject both (the sandbox's manual clock and
    its ``advance``), so nothing really waits.
    """

    def __init__(
        self,
        client: KrakenClient,
        cache: OrderCache | str | os.PathLike[str],
        *,
        allocator: UserrefAllocator | None = None,
        deadline: float = 15.0,
        max_attempts: int = 3,
        lookup_attempts: int = 3,
        margin: float = 2.0,
        match_slack: float = 5.0,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], object] = _time.sleep,
    ):
        lo, hi = DEADLINE_MIN.total_seconds() + 1, DEADLINE_MAX.total_seconds() - 1
        if not lo <= deadline <= hi:
            # A second's room on each side, for the time the request spends on the way.
            raise ValidationError(
                f"deadline must be {lo:g}..{hi:g} seconds (Kraken allows 2..60)",
                field="deadline",
                rule="deadline-range",
            )
        for name, value in (("max_attempts", max_attempts), ("lookup_attempts", lookup_attempts)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"{name} must be a positive int", field=name)
        if margin < 0 or match_slack < 0:
            raise ValidationError("margin and match_slack must be >= 0", field="margin")
        self.client = client
        self._owns_cache = not isinstance(cache, OrderCache)
        self.cache = cache if isinstance(cache, OrderCache) else OrderCache(cache)
        self.allocator: UserrefAllocator = (
            allocator if allocator is not None else CounterAllocator(self.cache)
        )
        self.deadline = float(deadline)
        self.max_attempts = max_attempts
        self.lookup_attempts = lookup_attempts
        self.margin = float(margin)
        self.match_slack = float(match_slack)
        self._clock = clock
        self._sleep = sleep
        self._offset: float | None = None
        self._pairs: dict[str, AssetPair] = {}
        self._owner = _Ownership(self.cache.path)
        # A manager dropped without close() must not keep its intents from recovery forever.
        self._release = weakref.finalize(self, self._owner.release)
        self._recover_lock = threading.Lock()
        self._needs_recovery = True
        #: Requests sent to the exchange by this manager, by method (for cost accounting).
        self.requests: dict[str, int] = {}
        limiter = getattr(client, "rate_limiter", None)
        if limiter is not None and limiter.order_age is None and limiter.order_pair is None:
            # Cancelling a young order costs up to 8 trading points; the cache knows the ages
            # of orders placed before this process started, which the limiter cannot.
            limiter.order_age = self._order_age
            limiter.order_pair = self._order_pair

    def __repr__(self) -> str:
        return f"OrderManager({self.client!r}, {self.cache!r})"

    def __enter__(self) -> OrderManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Give up ownership of this manager's intents (a later manager may recover them)."""
        self._release()
        if self._owns_cache:
            self.cache.close()

    def _count(self, method: str, n: int = 1) -> None:
        self.requests[method] = self.requests.get(method, 0) + n

    # --- time ----------------------------------------------------------------------------

    def _calibrate(self) -> float:
        server = self.client.time().unixtime
        after = _time.time()
        self._count("Time")
        # unixtime is truncated to the second and was read before the answer arrived: the
        # server's clock is at least ``server`` now, so this offset errs on the early side and
        # "the deadline has passed" is never concluded too soon.
        self._offset = server - after
        return after + self._offset

    def now(self) -> float:
        """The exchange's time (unix seconds) as well as this manager knows it."""
        if self._clock is not None:
            return self._clock()
        if self._offset is None:
            return self._calibrate()
        return _time.time() + self._offset

    def _wait_past(self, deadline: float) -> None:
        """Sleep until the server's clock is past ``deadline`` (plus the safety margin)."""
        target = deadline + self.margin
        for _ in range(1000):
            now = self._clock() if self._clock is not None else self._calibrate()
            # The margin already puts target strictly after the deadline.
            if now >= target:
                return
            self._sleep(target - now + (0.0 if self._clock is not None else 0.5))
        raise OutcomeUnknownError(f"the server clock did not pass {target}")

    def _youngest(self, ref: str) -> Order | None:
        if ref.isdigit():
            members = self.cache.open_orders(userref=int(ref), limit=1)
            return members[0] if members else None
        return self.cache.order(ref)

    def _order_age(self, ref: str) -> float | None:
        order = self._youngest(ref)
        return None if order is None else max(0.0, self.now() - order.opentm)

    def _order_pair(self, ref: str) -> str | None:
        order = self._youngest(ref)
        return None if order is None else order.pair

    # --- pairs and groups ----------------------------------------------------------------

    def pair(self, name: str) -> AssetPair:
        """AssetPairs' entry for ``name`` (id, altname or wsname), asked once and kept."""
        key = name.strip().upper()
        if key not in self._pairs:
            found = self.client.asset_pairs(name)
            self._count("AssetPairs")
            for pair in found.values():
                for alias in (pair.pair_id, pair.altname, pair.wsname):
                    if alias:
                        self._pairs[alias.upper()] = pair
            if key not in self._pairs:
                matches = [p for p in found.values() if p.matches(name)]
                if len(matches) != 1:
                    raise ValidationError(f"unknown pair {name!r}", field="pair", rule="pair")
                self._pairs[key] = matches[0]
        return self._pairs[key]

    def new_group(self, label: str, *, userref: int | None = None) -> Group:
        """A new group: one userref (allocated, or ``userref`` chosen by hand) and a label.

        Every order placed with ``group=`` carries the group's userref, so one CancelOrder
        cancels them all (:meth:`cancel_group`).
        """
        if not isinstance(label, str) or not label.strip():
            raise ValidationError("a group needs a non-empty label", field="label")
        ref = check_userref(userref) if userref is not None else self.allocator.allocate()
        existing = self.cache.group(ref)
        if existing is not None:
            raise ValidationError(
                f"userref {ref} is already the group {existing.label!r}",
                field="userref",
                rule="userref-in-use",
            )
        return self.cache.add_group(Group(userref=ref, label=label.strip(), created_at=self.now()))

    def group(self, userref: int) -> Group | None:
        return self.cache.group(userref)

    def groups(self, *, label: str | None = None) -> list[Group]:
        return self.cache.groups(label=label)

    # --- placement -----------------------------------------------------------------------

    def place(
        self,
        request: OrderRequest,
        *,
        group: Group | int | None = None,
        validate: bool | None = None,
    ) -> Placement:
        """Place one order (or with ``validate=True`` check it with Kraken, placing nothing).

        The userref is the group's (``group=``), the request's own (chosen by hand), or a
        fresh one from the allocator. Raises the exchange's error on a definite rejection,
        :class:`OrderNotPlaced` when every attempt provably failed, and
        :class:`~oms.errors.OutcomeUnknownError` when it could not be decided (the intent
        stays recorded as ``unknown`` for :meth:`recover`).
        """
        if not isinstance(request, OrderRequest):
            raise ValidationError("request must be an oms.orders.OrderRequest", field="request")
        dry_run = request.validate if validate is None else bool(validate)
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
        if not dry_run:
            self._ensure_recovered()
        pair = self.pair(request.pair)
        check_against_pair(request, pair)
        userref = group_ref or request.userref or self.allocator.allocate()
        request = attrs.evolve(request, userref=userref, validate=dry_run, deadline=None)
        now = self.now()
        price = request.price if isinstance(request.price, Decimal) else None
        intent = Intent(
            id=uuid.uuid4().hex,
            created_at=now,
            userref=userref,
            pair=pair.altname,
            side=request.side.value,
            ordertype=request.ordertype.value,
            volume=request.volume,
            price=price,
            params=request.to_params(),
            state=IntentState.PENDING,
            is_group=group_ref is not None,
            validate=dry_run,
            attempts=1,
            deadline=now + self.deadline,
            owner=self._owner.token,
            updated_at=now,
        )
        # Written before anything is sent: a crash from here on leaves a trace to resolve.
        self.cache.add_intent(intent)
        return self._drive(intent, request)

    def _send(self, intent: Intent, request: OrderRequest) -> Any:
        assert intent.deadline is not None
        self._count("AddOrder")
        return self.client.add_order(attrs.evolve(request, deadline=_utc(intent.deadline)))

    def _drive(self, intent: Intent, request: OrderRequest) -> Placement:
        while True:
            try:
                result = self._send(intent, request)
            except OmsError as exc:
                found = self._after_failure(intent, exc)
                if found is not None:
                    return Placement(
                        intent.id,
                        intent.userref,
                        IntentState.PLACED,
                        found.txid,
                        intent.attempts,
                        reconciled=True,
                        descr=found.descr.order,
                    )
                # Provably not placed: another attempt cannot make a duplicate.
                if intent.attempts >= self.max_attempts:
                    self._finish(intent, IntentState.ABSENT, error=f"{type(exc).__name__}: {exc}")
                    raise OrderNotPlaced(
                        f"order not placed after {intent.attempts} attempt(s), each proven "
                        f"absent (last error: {type(exc).__name__}: {exc}); intent "
                        f"{intent.id}, userref {intent.userref}",
                        intent_id=intent.id,
                        userref=intent.userref,
                    ) from exc
                intent = self._next_attempt(intent)
                continue
            if intent.validate:
                self._finish(intent, IntentState.VALIDATED)
                return Placement(
                    intent.id,
                    intent.userref,
                    IntentState.VALIDATED,
                    None,
                    intent.attempts,
                    descr=result.descr_order,
                )
            return self._record_placed(intent, result.txid, result.descr_order)

    def _after_failure(self, intent: Intent, exc: OmsError) -> Order | None:
        """What a failed attempt means: raises if final, returns the order if it was found,
        ``None`` if the order is provably not on the exchange."""
        if exc.outcome_known and not exc.retry_safe:
            # A definite answer: Kraken refused (or nothing was sent); nothing was placed.
            state = IntentState.REJECTED if isinstance(exc, KrakenError) else IntentState.ABSENT
            self._finish(intent, state, error=f"{type(exc).__name__}: {exc}")
            raise exc
        if exc.outcome_known or intent.validate:
            # Nothing was done (a rate limit, a connection never made), or nothing can have
            # been (a validate-only request): sending again cannot duplicate.
            self._sleep(self._backoff(exc, intent.attempts))
            return None
        logger.warning(
            "AddOrder for intent %s (userref %s) ended ambiguously (%s: %s); reconciling",
            intent.id,
            intent.userref,
            type(exc).__name__,
            exc,
        )
        try:
            return self._lookup(intent)
        except _Undecided as undecided:
            self._finish(intent, IntentState.UNKNOWN, error=f"{type(exc).__name__}: {exc}")
            self._needs_recovery = True
            raise OutcomeUnknownError(
                f"could not tell whether intent {intent.id} (userref {intent.userref}, "
                f"{intent.side} {intent.volume} {intent.pair}) was placed: the lookup failed "
                f"with {type(undecided.cause).__name__}: {undecided.cause}. It is recorded as "
                "unknown; recover() resolves it once the exchange answers",
                intent_id=intent.id,
                userref=intent.userref,
            ) from exc

    def _backoff(self, exc: OmsError, attempt: int) -> float:
        if isinstance(exc, Throttled) and exc.retry_at is not None:
            return max(0.0, exc.retry_at - self.now())
        return min(8.0, 0.5 * 2.0 ** (attempt - 1))

    def _next_attempt(self, intent: Intent) -> Intent:
        now = self.now()
        updated = self.cache.update_intent(
            intent.id,
            expect_attempts=intent.attempts,
            expect_states=[IntentState.PENDING],
            attempts=intent.attempts + 1,
            deadline=now + self.deadline,
            updated_at=now,
        )
        if updated is None:
            raise OutcomeUnknownError(
                f"intent {intent.id} was changed by another manager while being placed",
                intent_id=intent.id,
                userref=intent.userref,
            )
        return updated

    def _finish(self, intent: Intent, state: IntentState, *, error: str | None = None) -> None:
        self.cache.update_intent(intent.id, state=state, error=error, updated_at=self.now())

    def _record_placed(self, intent: Intent, txid: str | None, descr: str) -> Placement:
        assert txid is not None  # AddOrderResult.from_api refuses a live answer without one
        # Until the next sync the cache holds the order as sent, with status "pending".
        order = Order.from_api(
            txid,
            {
                "userref": intent.userref,
                "status": OrderStatus.PENDING.value,
                "opentm": intent.created_at,
                "descr": {
                    "pair": intent.pair,
                    "type": intent.side,
                    "ordertype": intent.ordertype,
                    "price": str(intent.params.get("price", "0")),
                    "price2": str(intent.params.get("price2", "0")),
                    "order": descr,
                },
                "vol": str(intent.volume),
                "vol_exec": "0",
                "cost": "0",
                "fee": "0",
                "price": "0",
                "oflags": str(intent.params.get("oflags", "")),
            },
        )
        if not self.cache.adopt(intent.id, order, synced_at=None, state_from=[IntentState.PENDING]):
            # Another manager resolved this intent meanwhile (it can only have found this
            # very order): keep its record.
            logger.warning("intent %s was resolved elsewhere while placing", intent.id)
        return Placement(
            intent.id, intent.userref, IntentState.PLACED, txid, intent.attempts, descr=descr
        )

    # --- reconciliation ------------------------------------------------------------------

    def _fetch_by_userref(self, userref: int, since: float) -> list[Order]:
        """OpenOrders then ClosedOrders for ``userref``.

        In this order an order cannot slip between the two: open at the first call means
        seen there; closed before it means still closed (and listed) at the second.
        """
        last: Exception | None = None
        for attempt in range(1, self.lookup_attempts + 1):
            try:
                self._count("OpenOrders")
                opened = list(self.client.open_orders(userref=userref))
                closed: list[Order] = []
                for order in self.client.iter_closed_orders(userref=userref, start=since):
                    closed.append(order)
                self._count("ClosedOrders", max(1, -(-len(closed) // 50)))
                return opened + closed
            except OmsError as exc:
                if exc.outcome_known and not exc.retry_safe:
                    raise _Undecided(exc) from exc
                last = exc
                self._sleep(self._backoff(exc, attempt))
        assert last is not None
        raise _Undecided(last)

    def _matches(self, intent: Intent, order: Order) -> bool:
        if order.userref != intent.userref or order.pair.upper() != intent.pair.upper():
            return False
        if order.side.value != intent.side or order.descr.ordertype_raw != intent.ordertype:
            return False
        if order.vol != intent.volume:
            return False
        if intent.price is not None and order.descr.price != intent.price:
            return False
        return order.opentm >= intent.created_at - self.match_slack

    def _lookup(self, intent: Intent, *, wait: bool = True) -> Order | None:
        """The exchange's order for ``intent``, adopted into the cache; None if provably absent.

        Raises :class:`_Undecided` if the exchange could not be asked.
        """
        assert intent.deadline is not None
        if wait:
            self._wait_past(intent.deadline)
        seen = self._fetch_by_userref(intent.userref, intent.created_at - self.match_slack)
        # Everything seen is real and current: keep it, whatever the outcome.
        synced_at = self.now()
        self.cache.upsert_orders(seen, synced_at=synced_at)
        claimed = self.cache.claimed_txids(exclude_intent=intent.id)
        candidates = sorted(
            (o for o in seen if self._matches(intent, o) and o.txid not in claimed),
            key=lambda o: (o.opentm, o.txid),
        )
        for order in candidates:
            if self.cache.adopt(
                intent.id,
                order,
                synced_at=synced_at,
                state_from=[IntentState.PENDING, IntentState.UNKNOWN],
            ):
                logger.info(
                    "intent %s adopted %s after an ambiguous outcome", intent.id, order.txid
                )
                return order
            current = self.cache.intent(intent.id)
            if current is not None and current.state is IntentState.PLACED:
                # Resolved by someone else meanwhile; report what they found.
                return self.cache.order(current.txid) if current.txid else order
        return None

    # --- recovery ------------------------------------------------------------------------

    def _ensure_recovered(self) -> None:
        with self._recover_lock:
            if not self._needs_recovery:
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
            self._needs_recovery = False

    def recover(self) -> RecoveryReport:
        """Resolve intents left unresolved: those of managers that are gone (a crash), and this
        manager's own ``unknown`` ones. Intents in flight in a live manager are left alone.

        Each is looked up after its deadline: found → ``placed`` (adopted), provably absent
        → ``absent`` (never re-sent: the program that wanted it is gone, and the market has
        moved), lookup failed → stays ``unknown``.
        """
        mine = self._owner.token
        todo: list[Intent] = []
        dead_owners: set[str] = set()
        for intent in self.cache.intents(states=[IntentState.PENDING, IntentState.UNKNOWN]):
            if intent.owner == mine:
                if intent.state is IntentState.UNKNOWN:
                    todo.append(intent)
            elif not self._owner.alive(intent.owner):
                todo.append(intent)
                if intent.owner is not None:
                    dead_owners.add(intent.owner)
        placed: list[str] = []
        absent: list[str] = []
        unknown: list[str] = []
        sent = {i.id: i.deadline for i in todo if i.deadline is not None and not i.validate}
        if sent:
            # One wait for all: past the latest deadline none of them can still take effect.
            self._wait_past(max(sent.values()))
        for intent in todo:
            if intent.id not in sent:
                # A dry run, or never sent: nothing can exist on the exchange.
                self._resolve_as(intent, IntentState.ABSENT, absent)
                continue
            try:
                found = self._lookup(intent, wait=False)
            except _Undecided as undecided:
                self.cache.update_intent(
                    intent.id,
                    expect_states=[IntentState.PENDING, IntentState.UNKNOWN],
                    state=IntentState.UNKNOWN,
                    owner=mine,
                    error=f"lookup failed: {undecided.cause}",
                    updated_at=self.now(),
                )
                unknown.append(intent.id)
                continue
            if found is not None:
                placed.append(intent.id)
            else:
                self._resolve_as(intent, IntentState.ABSENT, absent)
        for owner in dead_owners:
            self._owner.forget(owner)
        if todo:
            logger.info(
                "recovered %d intent(s): %d placed, %d absent, %d unknown",
                len(todo),
                len(placed),
                len(absent),
                len(unknown),
            )
        return RecoveryReport(tuple(placed), tuple(absent), tuple(unknown))

    def _resolve_as(self, intent: Intent, state: IntentState, into: list[str]) -> None:
        changed = self.cache.update_intent(
            intent.id,
            expect_states=[IntentState.PENDING, IntentState.UNKNOWN],
            state=state,
            updated_at=self.now(),
        )
        if changed is not None:
            into.append(intent.id)

    # --- queries -------------------------------------------------------------------------

    def find_by_userref(self, userref: int, *, refresh: bool = False) -> list[Order]:
        """Orders carrying ``userref`` (the "backup id" use: when the txid is not known).

        From the cache; with ``refresh=True`` (or when the cache knows none) asked from the
        exchange (OpenOrders and ClosedOrders filtered by the userref) and cached first.
        """
        check_userref(userref)
        cached = self.cache.by_userref(userref)
        if cached and not refresh:
            return cached
        try:
            seen = self._fetch_by_userref(userref, since=0)
        except _Undecided as undecided:
            raise undecided.cause from None
        self.cache.upsert_orders(seen, synced_at=self.now())
        return self.cache.by_userref(userref)

    def sync(self) -> SyncResult:
        """Bring the cache up to date with the exchange, fetching only what changed.

        OpenOrders (all of them: Kraken does not page it), then ClosedOrders for orders closed
        since the last sync (paged with ``end`` pinned, by the client's iterator), then
        QueryOrders for any order the cache still thought open that appeared in neither.
        Everything is written in one transaction with the new cursor.
        """
        started = self.now()
        cursor_text = self.cache.get_meta(_SYNC_CURSOR)
        cursor = float(cursor_text) if cursor_text is not None else None
        self._count("OpenOrders")
        opened = list(self.client.open_orders())
        closed = list(self.client.iter_closed_orders(start=cursor, closetime="close"))
        self._count("ClosedOrders", max(1, -(-len(closed) // 50)))
        seen = {o.txid for o in opened} | {o.txid for o in closed}
        stale = sorted(self.cache.txids(status=OPEN_STATUSES) - seen)
        refreshed: list[Order] = []
        if stale:
            self._count("QueryOrders", -(-len(stale) // 50))
            refreshed = list(self.client.query_orders(stale))
        # The cursor trails the sync's start by the slack, so an order closing during this
        # sync, or stamped by a clock a little behind ours, is fetched again next time.
        # Oldest answer first, so a later one wins (an order open at the first call may have
        # closed by the second; the cache also never reopens a closed order).
        self.cache.apply_sync(
            [*opened, *closed, *refreshed],
            synced_at=started,
            meta={_SYNC_CURSOR: repr(started - self.match_slack), _SYNC_AT: repr(started)},
        )
        return SyncResult(
            open=len(opened), closed=len(closed), refreshed=len(refreshed), at=started
        )

    # --- cancels -------------------------------------------------------------------------

    def cancel(self, txid: str) -> CancelResult:
        """Cancel one order by txid; the cache marks it cancelled when Kraken confirms."""
        if not isinstance(txid, str) or not txid:
            raise ValidationError("txid must be a non-empty string", field="txid")
        self._count("CancelOrder")
        result = self.client.cancel_order(txid=txid)
        if result.count:
            self.cache.mark_closed([txid], closetm=self.now())
        return result

    def cancel_group(self, group: Group | int) -> GroupCancelResult:
        """Cancel every open order of a group with one CancelOrder (the userref as ``txid``),
        then check: ``count`` against the cache's open members, and OpenOrders for the userref
        must be empty."""
        userref = group.userref if isinstance(group, Group) else check_userref(group)
        expected = [o.txid for o in self.cache.open_orders(userref=userref)]
        self._count("CancelOrder")
        try:
            result = self.client.cancel_order(userref=userref)
        except UnknownOrder:
            # Kraken's answer when no open order carries the userref.
            result = CancelResult(0)
        return self._confirm((userref,), expected, result)

    def cancel_groups(self, groups: Iterable[Group | int]) -> GroupCancelResult:
        """Cancel several groups with CancelOrderBatch (50 userrefs a request), then check as
        :meth:`cancel_group` does, for all of them together."""
        refs = list(
            dict.fromkeys(g.userref if isinstance(g, Group) else check_userref(g) for g in groups)
        )
        if not refs:
            raise ValidationError("no groups to cancel", field="groups")
        expected = [o.txid for ref in refs for o in self.cache.open_orders(userref=ref)]
        count, pending = 0, False
        for i in range(0, len(refs), _CANCEL_BATCH):
            self._count("CancelOrderBatch")
            try:
                batch = self.client.cancel_order_batch(userrefs=refs[i : i + _CANCEL_BATCH])
            except UnknownOrder:
                batch = CancelResult(0)
            count += batch.count
            pending = pending or batch.pending
        return self._confirm(tuple(refs), expected, CancelResult(count, pending))

    def _confirm(
        self, userrefs: Sequence[int], expected: list[str], result: CancelResult
    ) -> GroupCancelResult:
        if len(userrefs) == 1:
            self._count("OpenOrders")
            still = list(self.client.open_orders(userref=userrefs[0]))
        else:
            self._count("OpenOrders")
            wanted = set(userrefs)
            still = [o for o in self.client.open_orders() if o.userref in wanted]
        leftovers = tuple(sorted(o.txid for o in still))
        now = self.now()
        if still:
            self.cache.upsert_orders(still, synced_at=now)
        gone = [t for t in expected if t not in set(leftovers)]
        if result.count == len(expected):
            self.cache.mark_closed(gone, closetm=now)
        elif gone:
            # Kraken cancelled a different number than the cache expected (some filled, or
            # orders unknown to the cache existed): ask for the truth rather than guess.
            self._count("QueryOrders", -(-len(gone) // 50))
            self.cache.upsert_orders(self.client.query_orders(gone), synced_at=now)
        outcome = GroupCancelResult(
            userrefs=tuple(userrefs),
            count=result.count,
            expected=len(expected),
            confirmed_empty=not leftovers,
            leftovers=leftovers,
            pending=result.pending,
            cancelled=tuple(gone),
        )
        if not outcome.ok:
            logger.warning("group cancel did not check out: %s", outcome)
        return outcome

    def arm_dead_mans_switch(self, timeout: int = 60) -> DeadMansSwitch:
        """Start (or extend) CancelAllOrdersAfter: every order is cancelled if ``timeout``
        seconds pass without another call. Call again every 15-30 s."""
        if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout < 86400:
            raise ValidationError("timeout must be an int in 1..86399", field="timeout")
        self._count("CancelAllOrdersAfter")
        return self.client.cancel_all_orders_after(timeout)

    def disarm_dead_mans_switch(self) -> DeadMansSwitch:
        """Stop the dead man's switch (CancelAllOrdersAfter with timeout 0)."""
        self._count("CancelAllOrdersAfter")
        return self.client.cancel_all_orders_after(0)

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
   / ``Busy`` / ``Deadline elapsed``, ``EGeneral:Internal error``, a dry run answered with a
   txid) is never answered by sending again. The manager waits until the deadline has passed
   by the server's clock, as Kraken's ``Time`` confirms (so the request can no longer take
   effect), looks the order up by its userref in OpenOrders and then ClosedOrders (from just
   before the intent), and adopts a match. Only when the order is provably absent is it sent
   again, with a new deadline, a bounded number of times. When even the lookup fails the
   intent stays ``unknown`` and :class:`~oms.errors.OutcomeUnknownError` names it;
6. anything else that fails once the intent is written (the network while waiting, the cache
   while recording Kraken's answer, a ``KeyboardInterrupt``) leaves the intent to
   :meth:`OrderManager.recover` and never surfaces as an error that looks harmless.

After a crash the next manager on the same database resolves every intent left behind
(:meth:`OrderManager.recover`, run automatically before its first placement) before it places
anything: nothing is left untracked, nothing is sent twice.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import re
import threading
import time as _time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import attrs
import filelock

from oms.account import RANGE_ENV, AccountIdentity, AccountState, parse_userref_range
from oms.cache import OPEN_STATUSES, Group, Intent, IntentState, OrderCache
from oms.client import KrakenClient
from oms.errors import (
    AllocatorExhausted,
    InvalidOrder,
    KrakenError,
    OmsError,
    OutcomeUnknownError,
    ServerTimeUnavailable,
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
from oms.servertime import ServerClock
from oms.userref import USERREF_MAX, USERREF_MIN, CounterAllocator, UserrefAllocator

__all__ = [
    "DryRunPlacedOrder",
    "GroupCancelResult",
    "OrderManager",
    "OrderNotPlaced",
    "Placement",
    "PlacementNotRecorded",
    "RecoveryReport",
    "SyncResult",
]

logger = logging.getLogger(__name__)

# Kraken's page and batch size (QueryOrders, ClosedOrders pages, CancelOrderBatch).
_CANCEL_BATCH = 50
# A price in plain decimal notation (a relative one starts with + or - or ends with %).
_ABSOLUTE = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# What Kraken's CancelOrder reads as a userref rather than a txid.
_USERREF_LIKE = re.compile(r"[+-]?\d+")
# Tries at writing a placed order's txid before the placement is given up to recovery.
_WRITE_ATTEMPTS = 4
# Userrefs drawn in a row before giving up because the cache knows each one as in use.
_ALLOCATION_TRIES = 1000

_T = TypeVar("_T")
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


class DryRunPlacedOrder(OmsError):
    """A dry run (``validate=True``) became a real order: the exchange ignored ``validate``.

    The order was found by its userref after the deadline and is tracked in the cache (its
    intent is ``placed``); nothing was sent again. Cancel it if it is not wanted.
    """

    outcome_known = True
    retry_safe = False

    def __init__(self, message: str, *, intent_id: str, userref: int, txid: str):
        super().__init__(message)
        self.intent_id = intent_id
        self.userref = userref
        self.txid = txid


class PlacementNotRecorded(OutcomeUnknownError):
    """Kraken accepted the order (``txid``) but the cache could not record it (the database
    stayed locked, the disk is full, ...).

    The order exists; its intent is left for :meth:`OrderManager.recover` (run before the next
    placement), which adopts it by its userref. Do not place it again.
    """

    def __init__(self, message: str, *, intent_id: str, userref: int, txid: str):
        super().__init__(message, intent_id=intent_id, userref=userref)
        self.txid = txid


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
    """A group cancel, checked order by order against the exchange.

    ``count`` is what Kraken reported cancelled and ``expected`` how many open members the
    cache knew. *Members* are the orders this database placed with the userref(s); any other
    order carrying one is an *outsider* (another program's, or placed by hand). What each
    order became is asked from Kraken (OpenOrders before and after, QueryOrders for the
    rest), written to the cache, and reported:

    - ``cancelled``: the members this request cancelled;
    - ``closed``: members that were no longer open when it came (filled, expired or cancelled
      elsewhere), not counted in ``count``;
    - ``outsiders``: orders carrying the userref(s) that are not members. When any was open
      before the cancel, the members were cancelled by txid (``by_txid``) and the outsiders
      left open;
    - ``outsiders_cancelled``: outsiders this request cancelled all the same (one placed with
      the userref between the check and a by-userref cancel): reported, never hidden;
    - ``leftovers``: members still open afterwards (``confirmed_empty`` is false);
    - ``unaccounted``: members Kraken's answers did not mention at all;
    - ``missing``: members the exchange says it does not know (marked so in the cache);
    - ``count_known``: false when ``count`` is below the cancels confirmed (a lost answer:
      the client repeated the cancel and the repeat found nothing left, answering 0 or
      ``EOrder:Unknown order``); the confirmation decides then.

    ``ok``: every member was cancelled or had closed, no outsider was cancelled, no member is
    left open (OpenOrders after the cancel, not assumed), none is unaccounted for, and a
    trustworthy ``count`` matches what was cancelled. Outsiders left open do not make it
    false: they were never the group's. A mismatch is reported, never hidden.
    """

    userrefs: tuple[int, ...]
    count: int
    expected: int
    confirmed_empty: bool
    leftovers: tuple[str, ...] = ()
    pending: bool = False
    cancelled: tuple[str, ...] = ()
    closed: tuple[str, ...] = ()
    outsiders: tuple[str, ...] = ()
    unaccounted: tuple[str, ...] = ()
    count_known: bool = True
    outsiders_cancelled: tuple[str, ...] = ()
    by_txid: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        done = len(self.cancelled) + len(self.outsiders_cancelled)
        counted = not self.count_known or self.count == done
        return (
            self.confirmed_empty
            and not self.outsiders_cancelled
            and not self.unaccounted
            and counted
        )


@attrs.frozen
class SyncResult:
    """What :meth:`OrderManager.sync` fetched: open orders, newly closed ones, and orders the
    cache thought open that had to be asked for by txid.

    ``foreign``: orders first seen in this sync whose userref lies in this program's userref
    range but which this database never placed (another program, another host, a hand-placed
    order): their userrefs are reserved in the account state and never handed out.
    ``missing``: cached open orders the exchange answered it does not know (each asked by
    itself); they are marked in the cache (:meth:`oms.cache.OrderCache.missing_orders`) and
    no longer count as open.
    """

    open: int
    closed: int
    refreshed: int
    at: float
    foreign: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


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
    belongs to a manager that is gone. The lock folder is named after the database's real
    path (symlinks and relative paths resolved, as SQLite itself does), so every manager of
    one file looks in the same place however it was opened.
    """

    def __init__(self, cache_path: str) -> None:
        self.token = uuid.uuid4().hex
        self._folder = (
            None if cache_path == ":memory:" else Path(os.path.realpath(cache_path) + ".owners")
        )
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

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _busy(
    method: Callable[Concatenate[OrderManager, _P], _R],
) -> Callable[Concatenate[OrderManager, _P], _R]:
    """A public call that uses the cache or the exchange: :meth:`OrderManager.close` waits."""

    @functools.wraps(method)
    def call(self: OrderManager, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._working():
            return method(self, *args, **kwargs)

    return call


class _Undecided(Exception):
    """The lookup itself failed; carries the last error."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _Turn:
    """The lock placements with one userref take turns on, and how many want it."""

    __slots__ = ("lock", "waiting")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting = 0


class _TxidClaimed(Exception):
    """Kraken answered this intent with a txid that another intent already adopted by lookup."""


class _Final(Exception):
    """A placement's deliberate end, already recorded in the cache: ``error`` is what the
    caller gets. Anything else escaping a placement is a failure the intent must survive."""

    def __init__(self, error: OmsError, *, cause: BaseException | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        if cause is not None:
            error.__cause__ = cause


@attrs.define
class _Flight:
    """One placement in progress: its intent as last written, and the order once Kraken
    answered with a txid (what must not be lost if recording it fails)."""

    intent: Intent
    txid: str | None = None
    descr: str = ""


def _pages(n: int) -> int:
    """Requests a listing of ``n`` orders took (Kraken pages by 50; an empty one is a call)."""
    return max(1, -(-n // _CANCEL_BATCH))


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


class OrderManager:
    """Places, tracks and cancels orders through one client, one cache, one allocator.

    ``cache`` is an :class:`~oms.cache.OrderCache` or a database path. It is bound to the
    client's exchange (base URL) and account the first time; opened later with another, the
    manager refuses (:class:`~oms.errors.DatabaseBindingError`, naming both) unless
    ``rebind=True``.

    ``allocator`` hands out the userref of each order placed without a group (the "unique id"
    use) and of each new group. By default it is a :class:`~oms.userref.CounterAllocator` in
    the account's machine-wide state (:mod:`oms.account`): every program on this machine
    trading the account shares one sequence, whatever database each uses. ``account`` names
    the account (default ``$OMS_ACCOUNT``, else the API key identifies it), so several keys of
    one account can share that state. ``userref_range`` (``(lo, hi)``, ``"LO-HI"`` or ``"K/N"``;
    default ``$OMS_USERREF_RANGE``, else the whole range) confines the default allocator to
    this host's slice when several machines trade one account. :meth:`sync` reserves, in the
    account state, every userref in that range that it sees on an order this database did not
    place, and reports those orders.

    ``deadline`` (seconds, 2..60) is how far ahead of the server's time each AddOrder's
    ``deadline`` is set; it bounds how long an ambiguous outcome takes to resolve.
    ``clock`` is the local clock (default ``time.time``), ``monotonic`` a clock no step moves
    (default ``time.monotonic``; against it steps of ``clock`` are seen) and ``sleep`` waits;
    tests inject them (the sandbox's manual clock and its ``advance``; a simulation whose
    manual clock stands for real time passes it as ``monotonic`` too), so nothing really
    waits. The clock is never trusted as the server's: its offset to Kraken's ``Time`` is
    measured, and measured again when stale or when the clock is seen to step
    (:class:`oms.servertime.ServerClock`). Whether an exchange order answers an intent never
    depends on it: the lookup compares every field the intent fixed, and the only time it
    uses is one Kraken's ``Time`` confirmed. Before a lookup may prove an order absent,
    Kraken's ``Time`` must confirm the deadline has passed.

    If one manager is shared by threads, :meth:`close` waits for their calls to finish.
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
        account: str | None = None,
        userref_range: tuple[int, int] | str | None = None,
        rebind: bool = False,
        time_max_age: float = 300.0,
        floor_max_age: float = 15.0,
        monotonic: Callable[[], float] = _time.monotonic,
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
        if allocator is not None and userref_range is not None:
            raise ValidationError(
                "give allocator= or userref_range=, not both (confine the allocator itself)",
                field="userref_range",
                rule="exclusive",
            )
        if userref_range is None and allocator is None:
            userref_range = os.environ.get(RANGE_ENV) or None
        if isinstance(userref_range, str):
            userref_range = parse_userref_range(userref_range)
        key = client.credentials.key if client.credentials is not None else None
        self.account = AccountIdentity.find(key=key, name=account)
        self.client = client
        self._owns_cache = not isinstance(cache, OrderCache)
        self.cache = cache if isinstance(cache, OrderCache) else OrderCache(cache)
        try:
            self.cache.bind(client.base_url, self.account, rebind=rebind)
            self._owns_allocator = allocator is None
            if allocator is not None:
                self.allocator: UserrefAllocator = allocator
            else:
                lo_ref, hi_ref = userref_range or (USERREF_MIN, USERREF_MAX)
                self.allocator = (
                    CounterAllocator.for_account(self.account, lo=lo_ref, hi=hi_ref)
                    if self.account is not None
                    else CounterAllocator(self.cache, lo=lo_ref, hi=hi_ref)
                )
        except BaseException:
            if self._owns_cache:
                self.cache.close()
            raise
        self.deadline = float(deadline)
        self.max_attempts = max_attempts
        self.lookup_attempts = lookup_attempts
        self.margin = float(margin)
        self.match_slack = float(match_slack)
        self.floor_max_age = float(floor_max_age)
        self._clock = clock if clock is not None else _time.time
        self._sleep = sleep
        self._server = ServerClock(
            self._fetch_time,
            clock=self._clock,
            monotonic=monotonic,
            max_age=time_max_age,
        )
        self._pairs: dict[str, AssetPair] = {}
        self._owner = _Ownership(self.cache.path)
        # A manager dropped without close() must not keep its intents from recovery forever.
        self._release = weakref.finalize(self, self._owner.release)
        self._recover_lock = threading.Lock()
        self._orphans_lock = threading.Lock()
        # Set once a recovery left nothing unresolved (until then each placement recovers).
        self._recovered = False
        # Threads inside a call (by thread id, with nesting depth); close() waits for them.
        self._activity = threading.Condition()
        self._active: dict[int, int] = {}
        self._closing = False
        # This manager's intents left for recovery (a placement undecided, or failed
        # unexpectedly): recover() resolves them even while they still read "pending" (the
        # cache may be what failed), and placing waits until it has.
        self._orphans: set[str] = set()
        self._turns_guard = threading.Lock()
        self._turns: dict[int, _Turn] = {}
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
        """Give up ownership of this manager's intents (a later manager may recover them).

        Waits for placements (and other calls) running in other threads to finish first:
        giving up an intent in flight would let another manager judge it while it is still
        being sent. Later calls raise :class:`~oms.errors.ValidationError`.
        """
        with self._activity:
            self._closing = True
            me = threading.get_ident()
            while any(t != me for t in self._active):
                self._activity.wait()
        self._release()
        if self._owns_allocator:
            close = getattr(self.allocator, "close", None)
            if close is not None:
                close()
        if self._owns_cache:
            self.cache.close()

    @contextmanager
    def _working(self) -> Iterator[None]:
        """Marks a call in progress: :meth:`close` waits for it."""
        me = threading.get_ident()
        with self._activity:
            if self._closing and me not in self._active:
                raise ValidationError("this OrderManager is closed", field="manager", rule="closed")
            self._active[me] = self._active.get(me, 0) + 1
        try:
            yield
        finally:
            with self._activity:
                self._active[me] -= 1
                if not self._active[me]:
                    del self._active[me]
                self._activity.notify_all()

    def _count(self, method: str, n: int = 1) -> None:
        self.requests[method] = self.requests.get(method, 0) + n

    # --- time ----------------------------------------------------------------------------

    def _fetch_time(self) -> float:
        self._count("Time")
        return float(self.client.time().unixtime)

    def now(self) -> float:
        """The exchange's time (unix seconds) as well as this manager knows it: the local
        clock corrected by the offset Kraken's ``Time`` last measured (measured again when
        stale, or when the local clock stepped)."""
        return self._server.now()

    @property
    def server_clock(self) -> ServerClock:
        """What this manager knows of Kraken's time (offset, uncertainty, last answer)."""
        return self._server

    def _deadline_bounds(self) -> tuple[float, float]:
        """How far ahead of :meth:`now` a deadline may lie so that Kraken, by its own clock,
        sees it within now + 2 s .. now + 60 s, given what the estimate may be off."""
        room = self._server.uncertainty + 0.5
        return DEADLINE_MIN.total_seconds() + room, DEADLINE_MAX.total_seconds() - room

    def _deadline_ahead(self) -> float:
        """Seconds ahead of :meth:`now` for the next deadline: the configured ``deadline``,
        kept within :meth:`_deadline_bounds`."""
        low, high = self._deadline_bounds()
        if low > high:
            # A very slow Time answer: measure again (the next one is usually quick).
            self._server.calibrate()
            low, high = self._deadline_bounds()
        return min(max(self.deadline, low), max(low, high))

    def _wait_past(self, deadline: float) -> None:
        """Sleep until the server's clock is past ``deadline`` (plus the safety margin).

        Only then can a lookup prove an order absent. The estimate paces the waiting; the
        conclusion is Kraken's: ``Time`` must say the target has passed (an estimate running
        ahead of Kraken's clock would look too early and miss a late order).
        Raises whatever reading the server's time raises.
        """
        # Time answers whole seconds: Kraken can confirm no less than the next whole second.
        target = float(math.ceil(deadline + self.margin))
        local = self._clock
        ask = False
        for _ in range(1000):
            estimate = self._server.now()
            if estimate >= target or ask:
                # unixtime is truncated and was read before the answer left: the server's
                # clock is at least this, so "past" is never concluded too soon.
                if self._server.calibrate() >= target:
                    return
                estimate = self._server.now()
            wanted = max(0.0, target - estimate) + 0.25
            before = local()
            self._sleep(wanted)
            # A sleep that did not move the local clock (an injected one) says nothing about
            # the server's: ask Kraken after it instead of trusting the estimate.
            ask = local() - before < wanted / 2
        raise OutcomeUnknownError(f"the server clock did not pass {target}")

    def _local_now(self) -> float:
        """The time for bookkeeping fields when the server may not be reachable."""
        try:
            return self._server.estimate()
        except Exception:  # an injected clock failing must not stop an intent being marked
            return _time.time()

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
            known = self.client.known_pair(name)
            if known is not None:
                # The client learned this pair already (its own pre-send check asks AssetPairs
                # once per pair): no second request for the same rules.
                self._pairs[key] = known
                return known
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

    @_busy
    def new_group(self, label: str, *, userref: int | None = None) -> Group:
        """A new group: one userref (allocated, or ``userref`` chosen by hand) and a label.

        Every order placed with ``group=`` carries the group's userref, so one CancelOrder
        cancels them all (:meth:`cancel_group`).
        """
        if not isinstance(label, str) or not label.strip():
            raise ValidationError("a group needs a non-empty label", field="label")
        chosen = check_userref(userref) if userref is not None else None
        now = self.now()

        def claim(ref: int) -> Group:
            # Refused (userref-in-use) if any group, order or intent carries it: checked in
            # the insert's own transaction, so two processes cannot both take one.
            return self.cache.add_group(Group(userref=ref, label=label.strip(), created_at=now))

        return claim(chosen) if chosen is not None else self._fresh_userref(claim)

    def _fresh_userref(self, claim: Callable[[int], _T]) -> _T:
        """``claim(userref)`` for the first value from the allocator that nothing in the cache
        carries yet (``claim`` writes the record that takes it, refusing a taken one)."""
        for _ in range(_ALLOCATION_TRIES):
            ref = self.allocator.allocate()
            try:
                return claim(ref)
            except ValidationError as exc:
                if exc.rule != "userref-in-use":
                    raise
                logger.info(
                    "userref %s from %r is in use (%s); drawing another", ref, self.allocator, exc
                )
        raise AllocatorExhausted(
            f"{self.allocator!r} handed out {_ALLOCATION_TRIES} userrefs in a row that the "
            "cache knows as in use"
        )

    def group(self, userref: int) -> Group | None:
        return self.cache.group(userref)

    def groups(self, *, label: str | None = None) -> list[Group]:
        return self.cache.groups(label=label)

    # --- placement -----------------------------------------------------------------------

    @_busy
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
        stays recorded as ``unknown`` for :meth:`recover`) — also when anything else fails
        once the intent is written (the network while waiting for the deadline, the cache
        while recording the answer: :class:`PlacementNotRecorded` then carries the txid).
        ``KeyboardInterrupt`` and other ``BaseException`` propagate unchanged, after the
        intent is marked for recovery.
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
        # One placement per userref at a time in this manager: a lookup by userref must never
        # run while another placement with the same userref is between Kraken's answer and
        # the cache, or it could adopt that order as its own (two callers told "placed" for
        # one order). Fresh userrefs are unique, so only groups and hand-chosen ones wait,
        # and they wait before the intent (and its deadline) is written.
        chosen = group_ref if group_ref is not None else request.userref
        with self._userref_turn(chosen) if chosen is not None else contextlib.nullcontext():
            request, intent = self._write_intent(
                request, pair, group_ref=group_ref, dry_run=dry_run
            )
            # Written before anything is sent: from here on every way out leaves the intent
            # resolved, or marked for recovery.
            flight = _Flight(intent)
            try:
                return self._drive(flight, request)
            except _Final as final:
                raise final.error from final.error.__cause__
            except BaseException as exc:
                outcome = self._abandon(flight, exc)
                if not isinstance(exc, Exception) or outcome is None:
                    raise
                if isinstance(outcome, Placement):
                    return outcome
                raise outcome from exc

    @contextmanager
    def _userref_turn(self, userref: int) -> Iterator[None]:
        with self._turns_guard:
            turn = self._turns.setdefault(userref, _Turn())
            turn.waiting += 1
        try:
            with turn.lock:
                yield
        finally:
            with self._turns_guard:
                turn.waiting -= 1
                if turn.waiting == 0:
                    # Unique-id userrefs are used once: drop their lock, keep the dict small.
                    del self._turns[userref]

    def _write_intent(
        self, request: OrderRequest, pair: AssetPair, *, group_ref: int | None, dry_run: bool
    ) -> tuple[OrderRequest, Intent]:
        """The request with its userref, and its intent, written to the cache.

        A userref from the allocator must be one nothing in the cache carries (a group cancel
        would take the other order with it): checked as the intent is written.
        """
        try:
            if self._server.floor_age() > self.floor_max_age:
                # Kraken's last Time answer is old: a fresh one keeps "opened before the
                # send" tight, so a stranger's identical order is not taken for this one.
                self._server.calibrate()
            ahead = self._deadline_ahead()  # may measure again: before reading the time
            now = self.now()
        except OmsError as exc:
            raise ServerTimeUnavailable(
                f"could not read Kraken's time to set the order's deadline "
                f"({type(exc).__name__}: {exc}); nothing was sent"
            ) from exc
        # A time Kraken's clock had certainly reached before this request is sent: an order
        # that opened before it cannot be this intent's, whatever any local clock says.
        not_before = self._server.floor

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
                owner=self._owner.token,
                updated_at=now,
                not_before=not_before,
            )
            self.cache.add_intent(intent, fresh_userref=fresh)
            return final, intent

        chosen = group_ref or request.userref
        if chosen is not None:
            return write(chosen, fresh=False)
        return self._fresh_userref(lambda ref: write(ref, fresh=True))

    def _fresh_deadline(self, flight: _Flight) -> Intent | Placement:
        """The intent about to be sent, its deadline moved on if too little of it is left
        (time went by since it was written, or the clock estimate moved): nothing was sent
        with this deadline yet, so changing it (compare-and-set) cannot duplicate anything."""
        intent = flight.intent
        assert intent.deadline is not None
        now = self.now()
        if intent.deadline - now >= self._deadline_bounds()[0]:
            return intent
        updated = self.cache.update_intent(
            intent.id,
            expect_attempts=intent.attempts,
            expect_deadline=intent.deadline,
            expect_states=[IntentState.PENDING],
            deadline=now + self._deadline_ahead(),
            updated_at=now,
        )
        if updated is None:
            return self._settled_elsewhere(intent, None)
        flight.intent = updated
        return updated

    def _send(self, intent: Intent, request: OrderRequest) -> Any:
        assert intent.deadline is not None
        self._count("AddOrder")
        # The deadline was set by the server's clock: it is checked against the same estimate,
        # not against a local clock that may have stepped since.
        return self.client.add_order(
            attrs.evolve(request, deadline=_utc(intent.deadline)), now=self.now()
        )

    def _drive(self, flight: _Flight, request: OrderRequest) -> Placement:
        """Send until the outcome is known; deliberate ends are raised as :class:`_Final`."""
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
                    return self._found(intent, found)
                # Provably not placed: another attempt cannot make a duplicate.
                if intent.attempts >= self.max_attempts:
                    error = f"{type(exc).__name__}: {exc}"
                    if self._settle(intent, IntentState.ABSENT, error=error) is None:
                        return self._settled_elsewhere(intent, exc)
                    raise _Final(
                        OrderNotPlaced(
                            f"order not placed after {intent.attempts} attempt(s), each proven "
                            f"absent (last error: {error}); intent {intent.id}, userref "
                            f"{intent.userref}",
                            intent_id=intent.id,
                            userref=intent.userref,
                        ),
                        cause=exc,
                    ) from exc
                following = self._next_attempt(intent, exc)
                if isinstance(following, Placement):
                    return following
                flight.intent = following
                continue
            if intent.validate:
                self._settle(intent, IntentState.VALIDATED)
                return Placement(
                    intent.id,
                    intent.userref,
                    IntentState.VALIDATED,
                    None,
                    intent.attempts,
                    descr=result.descr_order,
                )
            # AddOrderResult.from_api refuses a live answer without a txid.
            assert result.txid is not None
            flight.txid, flight.descr = result.txid, result.descr_order
            self._record_placed(intent, result.txid, result.descr_order)
            return Placement(
                intent.id,
                intent.userref,
                IntentState.PLACED,
                result.txid,
                intent.attempts,
                descr=result.descr_order,
            )

    def _found(self, intent: Intent, found: Order) -> Placement:
        """The order a lookup found (and adopted) for ``intent``."""
        if intent.validate:
            raise _Final(
                DryRunPlacedOrder(
                    f"the dry run (validate=true) of intent {intent.id} was placed as a real "
                    f"order {found.txid} (userref {intent.userref}): the exchange ignored "
                    "validate. It is tracked in the cache and was not sent again; cancel it if "
                    "it is not wanted",
                    intent_id=intent.id,
                    userref=intent.userref,
                    txid=found.txid,
                )
            )
        return Placement(
            intent.id,
            intent.userref,
            IntentState.PLACED,
            found.txid,
            intent.attempts,
            reconciled=True,
            descr=found.descr.order,
        )

    def _after_failure(self, intent: Intent, exc: OmsError) -> Order | None:
        """What a failed attempt means: raises :class:`_Final` if final, returns the order if
        it was found, ``None`` if the order is provably not on the exchange."""
        if exc.outcome_known and not exc.retry_safe:
            # A definite answer: Kraken refused (or nothing was sent); nothing was placed.
            state = IntentState.REJECTED if isinstance(exc, KrakenError) else IntentState.ABSENT
            self._settle(intent, state, error=f"{type(exc).__name__}: {exc}")
            raise _Final(exc)
        if exc.outcome_known:
            # Nothing was done (a rate limit, a connection never made): sending again cannot
            # duplicate. A dry run gets no other shortcut: an exchange that answers a
            # validate request with a txid, or whose answer is lost, may have placed it.
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
            self._settle(intent, IntentState.UNKNOWN, error=f"{type(exc).__name__}: {exc}")
            self._leave_for_recovery(intent.id)
            raise _Final(
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

    def _backoff(self, exc: OmsError, attempt: int) -> float:
        if isinstance(exc, Throttled) and exc.retry_at is not None:
            return max(0.0, exc.retry_at - self.now())
        return min(8.0, 0.5 * 2.0 ** (attempt - 1))

    def _next_attempt(self, intent: Intent, exc: OmsError) -> Intent | Placement:
        now = self.now()
        updated = self.cache.update_intent(
            intent.id,
            expect_attempts=intent.attempts,
            expect_deadline=intent.deadline,
            expect_states=[IntentState.PENDING],
            attempts=intent.attempts + 1,
            deadline=now + self._deadline_ahead(),
            updated_at=now,
        )
        if updated is None:
            return self._settled_elsewhere(intent, exc)
        return updated

    def _settle(
        self,
        intent: Intent,
        state: IntentState,
        *,
        error: str | None = None,
        expect: Sequence[IntentState] = (IntentState.PENDING,),
    ) -> Intent | None:
        """Record the outcome of the attempt ``intent`` describes, unless the intent changed
        meanwhile (another manager resolved it, or moved on): compare-and-set on its state,
        attempt number and deadline. ``None`` if it had changed."""
        return self.cache.update_intent(
            intent.id,
            expect_states=expect,
            expect_attempts=intent.attempts,
            expect_deadline=intent.deadline,
            state=state,
            error=error,
            updated_at=self._local_now(),
        )

    def _settled_elsewhere(self, intent: Intent, exc: OmsError | None) -> Placement:
        """The intent changed under this placement (another manager judged it): report its
        outcome as recorded, never send again."""
        current = self.cache.intent(intent.id)
        if current is not None and current.state is IntentState.PLACED and current.txid:
            order = self.cache.order(current.txid)
            if order is not None:
                return self._found(current, order)
        if current is not None and current.state in (IntentState.ABSENT, IntentState.REJECTED):
            raise _Final(
                OrderNotPlaced(
                    f"intent {intent.id} (userref {intent.userref}) was resolved as "
                    f"{current.state.value} by another manager while being placed; not sent "
                    "again",
                    intent_id=intent.id,
                    userref=intent.userref,
                ),
                cause=exc,
            )
        raise _Final(
            OutcomeUnknownError(
                f"intent {intent.id} (userref {intent.userref}) was changed by another manager "
                f"while being placed (now {current.state.value if current else 'gone'}); not "
                "sent again",
                intent_id=intent.id,
                userref=intent.userref,
            ),
            cause=exc,
        )

    def _placed_order(self, intent: Intent, txid: str, descr: str) -> Order:
        # Until the next sync the cache holds the order as sent, with status "pending".
        return Order.from_api(
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

    def _record_placed(self, intent: Intent, txid: str, descr: str) -> None:
        """Write Kraken's txid for ``intent``; the write is retried, since losing it would
        leave an order on the exchange the cache does not know."""
        order = self._placed_order(intent, txid, descr)
        for attempt in range(1, _WRITE_ATTEMPTS + 1):
            try:
                self._store_placed(intent, order)
                return
            except _TxidClaimed:
                raise  # not a write failure: writing again cannot help
            except Exception as exc:  # whatever the cache raised (locked, disk full, ...)
                if attempt == _WRITE_ATTEMPTS:
                    raise
                logger.warning(
                    "recording order %s of intent %s failed (%s: %s); attempt %d of %d",
                    txid,
                    intent.id,
                    type(exc).__name__,
                    exc,
                    attempt + 1,
                    _WRITE_ATTEMPTS,
                )
                self._sleep(0.25 * 2.0**attempt)

    def _store_placed(self, intent: Intent, order: Order) -> None:
        # An intent another manager judged absent (or unknown) while this attempt was on its
        # way is wrong about it: Kraken's txid is the truth, so it is adopted from those too.
        states = [IntentState.PENDING, IntentState.UNKNOWN, IntentState.ABSENT]
        if self.cache.adopt(intent.id, order, synced_at=None, state_from=states):
            return
        current = self.cache.intent(intent.id)
        if current is not None and current.txid == order.txid:
            return  # another manager found this very order first
        # The intent answers for another order, or was settled otherwise: this order exists
        # all the same, so it is kept in the cache, never dropped.
        if self.cache.order(order.txid) is None:
            self.cache.upsert_orders([order], synced_at=None)
        if current is not None and current.state in (IntentState.PENDING, IntentState.UNKNOWN):
            # Another intent adopted this very order by lookup (possible across processes
            # placing identical orders in one group): reporting "placed" here would tell two
            # callers about one order. Leave this intent to recovery and say so.
            raise _TxidClaimed(
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

    def _abandon(self, flight: _Flight, exc: BaseException) -> Placement | OmsError | None:
        """A placement failed unexpectedly (not a decision of :meth:`_drive`): leave its intent
        where :meth:`recover` will find it and say what the caller must know.

        Returns the placement if the order could still be recorded, else the error to raise
        (``None`` for a ``BaseException``, which the caller re-raises untouched).
        """
        intent = flight.intent
        self._leave_for_recovery(intent.id)
        if flight.txid is not None:
            try:
                # One more try at the write that matters most: the order itself.
                self._store_placed(intent, self._placed_order(intent, flight.txid, flight.descr))
            except Exception:
                logger.exception("could not record order %s of intent %s", flight.txid, intent.id)
            else:
                with self._orphans_lock:
                    self._orphans.discard(intent.id)
                return Placement(
                    intent.id,
                    intent.userref,
                    IntentState.PLACED,
                    flight.txid,
                    intent.attempts,
                    descr=flight.descr,
                )
        else:
            try:
                self.cache.update_intent(
                    intent.id,
                    expect_states=[IntentState.PENDING],
                    state=IntentState.UNKNOWN,
                    error=f"{type(exc).__name__}: {exc}",
                    updated_at=self._local_now(),
                )
            except Exception:
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
                self._count("ClosedOrders", _pages(len(closed)))
                return opened + closed
            except OmsError as exc:
                if exc.outcome_known and not exc.retry_safe:
                    raise _Undecided(exc) from exc
                last = exc
                self._sleep(self._backoff(exc, attempt))
        assert last is not None
        raise _Undecided(last)

    def _since(self, intent: Intent) -> float:
        """The earliest open time an order answering ``intent`` can have: Kraken's confirmed
        time before the send (intents written before oms recorded it: their ``created_at``),
        less the slack for the exchange's own clocks."""
        anchor = intent.not_before if intent.not_before is not None else intent.created_at
        return anchor - self.match_slack

    def _matches(self, intent: Intent, order: Order) -> bool:
        """Whether ``order`` is what ``intent`` asked for: every field the intent fixed
        (userref, pair, side, type, volume, prices, leverage, the flags it set) must agree,
        and it must not have opened before the request could have been sent."""
        if order.userref != intent.userref or order.pair.upper() != intent.pair.upper():
            return False
        if order.side.value != intent.side or order.descr.ordertype_raw != intent.ordertype:
            return False
        if order.vol != intent.volume:
            return False
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
        if not flags <= set(order.oflags):
            return False
        return order.opentm >= self._since(intent)

    def _lookup(self, intent: Intent, *, wait: bool = True) -> Order | None:
        """The exchange's order for ``intent``, adopted into the cache; None if provably absent.

        Raises :class:`_Undecided` if the exchange could not be asked, or its clock could not
        be read (an absence seen before the deadline would prove nothing).
        """
        assert intent.deadline is not None
        if wait:
            try:
                self._wait_past(intent.deadline)
            except Exception as exc:  # Time unreachable, or a clock that never gets there
                raise _Undecided(exc) from exc
        seen = self._fetch_by_userref(intent.userref, self._since(intent))
        # Everything seen is real and current: keep it, whatever the outcome.
        synced_at = self.now()
        self.cache.upsert_orders(seen, synced_at=synced_at)
        claimed = self.cache.claimed_txids(exclude_intent=intent.id)
        candidates = sorted(
            (o for o in seen if self._matches(intent, o) and o.txid not in claimed),
            key=lambda o: (o.opentm, o.txid),
        )
        for order in candidates:
            # ABSENT too: a match seen after the deadline is the truth, whoever concluded
            # otherwise.
            if self.cache.adopt(
                intent.id,
                order,
                synced_at=synced_at,
                state_from=[IntentState.PENDING, IntentState.UNKNOWN, IntentState.ABSENT],
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

    def _leave_for_recovery(self, intent_id: str) -> None:
        with self._orphans_lock:
            self._orphans.add(intent_id)

    @property
    def _needs_recovery(self) -> bool:
        with self._orphans_lock:
            return not self._recovered or bool(self._orphans)

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

    @_busy
    def recover(self) -> RecoveryReport:
        """Resolve intents left unresolved: those of managers that are gone (a crash), and this
        manager's own ``unknown`` ones (and any whose placement failed unexpectedly). Intents
        in flight in a live manager are left alone.

        Each is looked up after its deadline, dry runs included (an exchange may have ignored
        ``validate``): found → ``placed`` (adopted), provably absent → ``absent`` (never
        re-sent: the program that wanted it is gone, and the market has moved), lookup failed
        (or the server's clock could not be read) → stays ``unknown``. Every change is
        compare-and-set on what was read, so an intent its owner moved on meanwhile is left to
        its owner.
        """
        mine = self._owner.token
        with self._orphans_lock:
            orphans = set(self._orphans)
        todo: list[Intent] = []
        dead_owners: set[str] = set()
        for intent in self.cache.intents(states=[IntentState.PENDING, IntentState.UNKNOWN]):
            if intent.owner == mine:
                if intent.state is IntentState.UNKNOWN or intent.id in orphans:
                    todo.append(intent)
            elif not self._owner.alive(intent.owner):
                todo.append(intent)
                if intent.owner is not None:
                    dead_owners.add(intent.owner)
        placed: list[str] = []
        absent: list[str] = []
        unknown: list[str] = []
        sent = [i.deadline for i in todo if i.deadline is not None]
        clock_failure: Exception | None = None
        if sent:
            # One wait for all: past the latest deadline none of them can still take effect.
            try:
                self._wait_past(max(sent))
            except Exception as exc:  # Time unreachable: nothing can be proven absent yet
                clock_failure = exc
        for intent in todo:
            if intent.deadline is None:
                # Never sent: nothing can exist on the exchange.
                self._resolve_as(intent, IntentState.ABSENT, absent)
                continue
            try:
                if clock_failure is not None:
                    raise _Undecided(clock_failure)
                found = self._lookup(intent, wait=False)
            except _Undecided as undecided:
                changed = self.cache.update_intent(
                    intent.id,
                    expect_states=[IntentState.PENDING, IntentState.UNKNOWN],
                    expect_attempts=intent.attempts,
                    expect_deadline=intent.deadline,
                    state=IntentState.UNKNOWN,
                    owner=mine,
                    error=f"lookup failed: {undecided.cause}",
                    updated_at=self._local_now(),
                )
                if changed is not None:
                    unknown.append(intent.id)
                continue
            if found is not None:
                placed.append(intent.id)
            else:
                self._resolve_as(intent, IntentState.ABSENT, absent)
        with self._orphans_lock:
            # Those still unknown stay; any other (resolved here, or found resolved) is done.
            # One added meanwhile (not in the snapshot) waits for the next recovery.
            self._orphans -= orphans - set(unknown)
            # Unknown ones taken over from dead managers are this manager's now: retried
            # before its next placement too.
            self._recovered = not unknown
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
        # Compare-and-set on what was read: an owner that is alive after all (and sent
        # another attempt, with a new deadline) keeps its intent.
        changed = self.cache.update_intent(
            intent.id,
            expect_states=[IntentState.PENDING, IntentState.UNKNOWN],
            expect_attempts=intent.attempts,
            expect_deadline=intent.deadline,
            state=state,
            updated_at=self._local_now(),
        )
        if changed is not None:
            into.append(intent.id)

    # --- queries -------------------------------------------------------------------------

    @_busy
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

    @_busy
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
        self._count("ClosedOrders", _pages(len(closed)))
        seen = {o.txid for o in opened} | {o.txid for o in closed}
        stale = sorted(self.cache.txids(status=OPEN_STATUSES) - seen)
        refreshed, missing = self._query_known(stale)
        everything = [*opened, *closed, *refreshed]
        foreign = self._foreign(everything)
        # The cursor trails the sync's start by the slack, so an order closing during this
        # sync, or stamped by a clock a little behind ours, is fetched again next time.
        # Oldest answer first, so a later one wins (an order open at the first call may have
        # closed by the second; the cache also never reopens a closed order).
        self.cache.apply_sync(
            everything,
            synced_at=started,
            meta={_SYNC_CURSOR: repr(started - self.match_slack), _SYNC_AT: repr(started)},
        )
        return SyncResult(
            open=len(opened),
            closed=len(closed),
            refreshed=len(refreshed),
            at=started,
            foreign=tuple(o.txid for o in foreign),
            missing=tuple(sorted(missing)),
        )

    def _query_known(self, txids: Sequence[str]) -> tuple[list[Order], dict[str, str]]:
        """QueryOrders for ``txids``: the orders found, and for each txid the exchange does
        not know, what it answered (those are marked missing in the cache).

        One unknown txid makes Kraken refuse the whole batch (``EOrder:Invalid order`` or
        ``EOrder:Unknown order``), so a refused batch is asked again one txid at a time: the
        rest are found, and only the unknown ones are set aside.
        """
        found: list[Order] = []
        missing: dict[str, str] = {}
        for i in range(0, len(txids), _CANCEL_BATCH):
            batch = list(txids[i : i + _CANCEL_BATCH])
            self._count("QueryOrders")
            try:
                found.extend(self.client.query_orders(batch))
                continue
            except (UnknownOrder, InvalidOrder):
                pass
            for txid in batch:
                self._count("QueryOrders")
                try:
                    found.extend(self.client.query_orders([txid]))
                except (UnknownOrder, InvalidOrder) as exc:
                    missing[txid] = f"QueryOrders answered {exc}"
                    logger.warning("cached order %s is unknown to the exchange (%s)", txid, exc)
        self.cache.mark_missing(missing, at=self._local_now())
        return found, missing

    def _foreign(self, orders: Sequence[Order]) -> list[Order]:
        """Orders in this program's userref range that this database did not place and did
        not know yet; their userrefs are reserved machine-wide (never handed out)."""
        lo, hi = self.allocator.lo, self.allocator.hi
        candidates = [o for o in orders if o.userref is not None and lo <= o.userref <= hi]
        if not candidates:
            return []
        ours = self.cache.placed_here(o.txid for o in candidates)
        undecided = {
            i.userref for i in self.cache.intents(states=[IntentState.PENDING, IntentState.UNKNOWN])
        }
        strangers = [o for o in candidates if o.txid not in ours and o.userref not in undecided]
        store = getattr(self.allocator, "store", None)
        foreign: list[Order] = []
        if isinstance(store, AccountState):
            # Reported once, when first reserved, however the cache learned of the order
            # (a lookup, a group cancel, find_by_userref).
            for order in strangers:
                assert order.userref is not None
                if store.reserve(
                    order.userref,
                    txid=order.txid,
                    reason="seen on the exchange, not placed by this program",
                    seen_at=self._local_now(),
                ):
                    foreign.append(order)
        else:
            known = self.cache.txids()
            foreign = [o for o in strangers if o.txid not in known]
        for order in foreign:
            logger.warning(
                "order %s carries userref %s, inside this program's range %s..%s, but was not "
                "placed by it; the userref is reserved and will not be handed out",
                order.txid,
                order.userref,
                lo,
                hi,
            )
        return foreign

    # --- cancels -------------------------------------------------------------------------

    @_busy
    def cancel(self, txid: str) -> CancelResult:
        """Cancel one order by txid; the cache then gets the order as Kraken has it (a partly
        filled order keeps what it executed).

        An all-digit ``txid`` is refused: Kraken reads it as a userref and cancels every open
        order carrying it (use :meth:`cancel_group` for that).
        """
        if not isinstance(txid, str) or not txid.strip():
            raise ValidationError("txid must be a non-empty string", field="txid")
        if _USERREF_LIKE.fullmatch(txid.strip()):
            raise ValidationError(
                f"txid {txid!r} is a number, which Kraken reads as a userref: it would cancel "
                "every open order carrying it. Use cancel_group(userref) for that",
                field="txid",
                rule="txid-is-userref",
            )
        self._count("CancelOrder")
        try:
            result = self.client.cancel_order(txid=txid)
        except (UnknownOrder, InvalidOrder):
            # Not open: closed meanwhile, or cancelled by a first try whose answer was lost.
            self._refresh([txid])
            raise
        self._refresh([txid])
        return result

    def _refresh(self, txids: Sequence[str]) -> None:
        """Cache the orders as Kraken has them now. Failing is logged, not raised: the cancel
        itself is done, and until the next sync the cache keeps the last state it knew
        (never a guessed one)."""
        try:
            rows, _ = self._query_known(list(txids))
            now = self.now()
        except OmsError as exc:
            logger.warning("could not read back %s after a cancel: %s", ", ".join(txids), exc)
            return
        self.cache.upsert_orders(rows, synced_at=now)

    @_busy
    def cancel_group(self, group: Group | int) -> GroupCancelResult:
        """Cancel every open order of a group, never an order that is not the group's.

        OpenOrders for the userref comes first. When every open order carrying it is one this
        database placed, one CancelOrder with the userref as ``txid`` cancels them all (the
        support note's way). When another program's order carries the userref too, the
        members are cancelled by txid instead (CancelOrderBatch, 50 a request) and the others
        are left open and reported as ``outsiders``. Then what each order became is checked
        (see :class:`GroupCancelResult`).
        """
        userref = group.userref if isinstance(group, Group) else check_userref(group)
        return self._cancel_checked((userref,), batch=False)

    @_busy
    def cancel_groups(self, groups: Iterable[Group | int]) -> GroupCancelResult:
        """Cancel several groups at once (CancelOrderBatch, 50 entries a request) with the
        same rule as :meth:`cancel_group`: a userref only other programs' orders share with
        no one is cancelled by userref, the members of a shared one by txid."""
        refs = list(
            dict.fromkeys(g.userref if isinstance(g, Group) else check_userref(g) for g in groups)
        )
        if not refs:
            raise ValidationError("no groups to cancel", field="groups")
        return self._cancel_checked(tuple(refs), batch=True)

    def _open_with(self, userrefs: Sequence[int]) -> dict[str, Order]:
        self._count("OpenOrders")
        if len(userrefs) == 1:
            return {o.txid: o for o in self.client.open_orders(userref=userrefs[0])}
        wanted = set(userrefs)
        return {o.txid: o for o in self.client.open_orders() if o.userref in wanted}

    def _send_cancels(
        self, by_userref: Sequence[int], by_txid: Sequence[str], *, batch: bool
    ) -> CancelResult:
        """CancelOrder for one userref alone (unless ``batch``); otherwise CancelOrderBatch,
        50 ids a request. "No such order" from Kraken counts as nothing cancelled."""
        if not batch and len(by_userref) == 1 and not by_txid:
            self._count("CancelOrder")
            try:
                return self.client.cancel_order(userref=by_userref[0])
            except (UnknownOrder, InvalidOrder):
                return CancelResult(0)
        entries: list[tuple[str, int | str]] = [("userref", r) for r in by_userref]
        entries += [("txid", t) for t in by_txid]
        count, pending = 0, False
        for i in range(0, len(entries), _CANCEL_BATCH):
            chunk = entries[i : i + _CANCEL_BATCH]
            self._count("CancelOrderBatch")
            try:
                answer = self.client.cancel_order_batch(
                    userrefs=[int(v) for k, v in chunk if k == "userref"],
                    txids=[str(v) for k, v in chunk if k == "txid"],
                )
            except (UnknownOrder, InvalidOrder):
                answer = CancelResult(0)
            count += answer.count
            pending = pending or answer.pending
        return CancelResult(count, pending)

    def _cancel_checked(self, userrefs: Sequence[int], *, batch: bool) -> GroupCancelResult:
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
                turns.enter_context(self._userref_turn(ref))
            return self._cancel_in_turn(userrefs, batch=batch)

    def _cancel_in_turn(self, userrefs: Sequence[int], *, batch: bool) -> GroupCancelResult:
        try:
            # A member whose placement ended undecided has no txid yet: resolve it first.
            self._ensure_recovered()
        except OmsError as exc:
            logger.warning("group cancel: earlier placements are still undecided (%s)", exc)
        undecided = [
            i
            for ref in userrefs
            for i in self.cache.intents(
                states=[IntentState.PENDING, IntentState.UNKNOWN], userref=ref
            )
        ]
        members = {o.txid for ref in userrefs for o in self.cache.members(ref)}
        before = self._open_with(userrefs)
        started = self.now()
        # Outsiders are known to the cache from here on, whatever happens next.
        self.cache.upsert_orders(before.values(), synced_at=started)
        own = members | self.cache.placed_here(before)
        # An order an undecided placement may have made is treated as the group's: cancelling
        # it is what the caller asked for; leaving it open would leave one of theirs behind.
        own |= {t for t, o in before.items() if any(self._matches(i, o) for i in undecided)}
        strangers = {t for t in before if t not in own}
        shared = {ref for t in strangers if (ref := before[t].userref) is not None}
        by_userref = [ref for ref in userrefs if ref not in shared]
        by_txid = sorted(t for t in own if t in before and before[t].userref in shared)
        if strangers:
            logger.warning(
                "userref(s) %s are shared with %d order(s) this database did not place; "
                "cancelling the group's own %d order(s) by txid and leaving the others open",
                sorted(shared),
                len(strangers),
                len(by_txid),
            )
        if by_userref or by_txid:
            result = self._send_cancels(by_userref, by_txid, batch=batch)
        else:
            result = CancelResult(0)
        after = self._open_with(userrefs)
        now = self.now()
        self.cache.upsert_orders(after.values(), synced_at=now)
        asked = sorted((own | set(before)) - set(after))
        found, missing = self._query_known(asked)
        final = {o.txid: o for o in found}
        cancelled = {t for t in before if t in final and final[t].status is OrderStatus.CANCELED}
        if result.count > len(cancelled):
            # It cancelled orders that were not open a moment before: placed in between.
            for order in self._closed_since(userrefs, started - self.match_slack):
                if order.txid not in before and order.status is OrderStatus.CANCELED:
                    final[order.txid] = order
                    cancelled.add(order.txid)
        self.cache.upsert_orders(final.values(), synced_at=now)
        own |= self.cache.placed_here(final)
        touched = cancelled - own
        outcome = GroupCancelResult(
            userrefs=tuple(userrefs),
            count=result.count,
            expected=len(members),
            confirmed_empty=not (set(after) & own),
            leftovers=tuple(sorted(set(after) & own)),
            pending=result.pending,
            cancelled=tuple(sorted(cancelled & own)),
            closed=tuple(sorted(t for t in own if t in final and t not in cancelled)),
            outsiders=tuple(sorted(strangers | (set(after) - own) | touched)),
            unaccounted=tuple(
                sorted(t for t in own if t not in final and t not in after and t not in missing)
            ),
            count_known=result.count >= len(cancelled),
            outsiders_cancelled=tuple(sorted(touched)),
            by_txid=tuple(by_txid),
            missing=tuple(sorted(missing)),
        )
        if not outcome.ok:
            logger.warning("group cancel did not check out: %s", outcome)
        elif not outcome.count_known:
            logger.info(
                "group cancel answered count %d, but %d cancels are confirmed (a lost answer "
                "repeated); judged by the confirmation",
                outcome.count,
                len(cancelled),
            )
        return outcome

    def _closed_since(self, userrefs: Sequence[int], since: float) -> list[Order]:
        ref = userrefs[0] if len(userrefs) == 1 else None
        found = list(self.client.iter_closed_orders(userref=ref, start=since, closetime="close"))
        self._count("ClosedOrders", _pages(len(found)))
        wanted = set(userrefs)
        return [o for o in found if o.userref in wanted]

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

    # -- named constructors (the building lives in oms.connect) -----------------------------

    @classmethod
    def from_env(cls, cache: Any = None, **options: Any) -> OrderManager:
        """A manager on the exchange the environment names: see
        :func:`oms.connect.manager_from_env`. It closes its client when closed."""
        from oms.connect import manager_from_env

        return manager_from_env(cache, **options)

    @classmethod
    def on_sandbox(cls, sandbox: Any, cache: Any = ":memory:", **options: Any) -> OrderManager:
        """A manager on a sandbox (or a sandbox's URL) sharing its clock: see
        :func:`oms.connect.manager_on_sandbox`. It closes its client when closed."""
        from oms.connect import manager_on_sandbox

        return manager_on_sandbox(sandbox, cache, **options)

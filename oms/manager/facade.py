"""``OrderManager``: the one object strategy code talks to, a facade over parts that each own
one job (see ``docs/architecture.rst``):

- :class:`~oms.manager.timing.KrakenTime`: Kraken's time, deadlines, waiting past them;
- :class:`~oms.manager.placing.Placer`: placing one order exactly once;
- :class:`~oms.manager.lookup.OrderLookup`: finding an order on the exchange;
- :class:`~oms.manager.recording.Recorder`: writing what became of each attempt;
- :class:`~oms.manager.recovery.Recovery`: resolving what was left undecided;
- :class:`~oms.manager.tracking.Tracker`: syncing the cache with the exchange;
- :class:`~oms.manager.cancelling.Canceller`: cancelling orders and groups.
"""

from __future__ import annotations

import functools
import os
import time as _time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from oms.account import RANGE_ENV, AccountIdentity, parse_userref_range
from oms.cache import Group, OrderCache
from oms.client import KrakenClient
from oms.conventions import check_dead_mans_switch
from oms.errors import ValidationError
from oms.live.sightings import Sightings
from oms.manager.cancelling import Canceller
from oms.manager.counts import RequestCounts
from oms.manager.following import Following
from oms.manager.lookup import OrderLookup
from oms.manager.ownership import Activity, Ownership, Turns
from oms.manager.placing import Placer, claim_fresh
from oms.manager.recording import Recorder
from oms.manager.recovery import Recovery
from oms.manager.results import GroupCancelResult, Placement, RecoveryReport, SyncResult
from oms.manager.timing import KrakenTime
from oms.manager.tracking import Tracker
from oms.models import AssetPair, CancelResult, DeadMansSwitch, Order
from oms.orders import DEADLINE_MAX, DEADLINE_MIN, OrderRequest, check_userref
from oms.servertime import ServerClock
from oms.userref import USERREF_MAX, USERREF_MIN, CounterAllocator, UserrefAllocator

if TYPE_CHECKING:  # the stream's modules load when follow() starts one
    from oms.live.follower import OrderUpdate, Subscription
    from oms.live.stream import StreamStatus

__all__ = ["OrderManager"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _busy(
    method: Callable[Concatenate[OrderManager, _P], _R],
) -> Callable[Concatenate[OrderManager, _P], _R]:
    """A public call that uses the cache or the exchange: :meth:`OrderManager.close` waits."""

    @functools.wraps(method)
    def call(self: OrderManager, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._activity.working():
            return method(self, *args, **kwargs)

    return call


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

    ``deadline`` (seconds, 3..59) is how far ahead of the server's time each AddOrder's
    ``deadline`` is set; it bounds how long an ambiguous outcome takes to resolve.
    ``max_attempts`` bounds the AddOrder requests of one placement (the client never repeats
    one itself: :attr:`Placement.attempts` is the number sent), ``lookup_attempts`` the tries
    at one lookup. ``clock`` is the local clock (default ``time.time``), ``monotonic`` a clock
    no step moves (default ``time.monotonic``; against it steps of ``clock`` are seen) and
    ``sleep`` waits; tests inject them (the sandbox's manual clock and its ``advance``; a
    simulation whose manual clock stands for real time passes it as ``monotonic`` too), so
    nothing really waits. The clock is never trusted as the server's: its offset to Kraken's
    ``Time`` is measured, and measured again when stale or when the clock is seen to step
    (:class:`oms.servertime.ServerClock`). Whether an exchange order answers an intent never
    depends on it: the lookup compares every field the intent fixed, and the only time it
    uses is one Kraken's ``Time`` confirmed. Before a lookup may prove an order absent,
    Kraken's ``Time`` must confirm the deadline has passed.

    ``ws_url`` is where :meth:`follow` streams from (default ``$OMS_WS_URL``, else Kraken's
    for Kraken's REST host); ``live_options`` tunes that stream (see
    :class:`oms.live.stream.ExecutionStream`).

    Use :meth:`from_env` (a live account) or :meth:`on_sandbox` (a local exchange) to build
    one with its client in one step; such a manager owns its client (``owns_client``) and
    closes it with itself. If one manager is shared by threads, :meth:`close` waits
    for their calls to finish; a closed manager leaves its client fully usable.
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
        owns_client: bool = False,
        owns_cache: bool | None = None,
        ws_url: str | None = None,
        live_options: Mapping[str, Any] | None = None,
    ):
        _check_settings(deadline, max_attempts, lookup_attempts, margin, match_slack)
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
        self._owns_client = owns_client
        # By default the manager closes the cache it opened itself, not one it was given.
        self._owns_cache = not isinstance(cache, OrderCache) if owns_cache is None else owns_cache
        self.cache = cache if isinstance(cache, OrderCache) else OrderCache(cache)
        try:
            self.cache.bind(client.base_url, self.account, rebind=rebind)
            self._owns_allocator = allocator is None
            self.allocator = allocator or self._default_allocator(userref_range)
        except BaseException:
            if self._owns_cache:
                self.cache.close()
            raise
        self.deadline = float(deadline)
        self.max_attempts = max_attempts
        #: Requests sent to the exchange by this manager, by method (for cost accounting).
        self.requests = RequestCounts()
        self.time = KrakenTime(
            client,
            self.requests,
            deadline=self.deadline,
            margin=float(margin),
            floor_max_age=float(floor_max_age),
            max_age=time_max_age,
            clock=clock if clock is not None else _time.time,
            monotonic=monotonic,
            sleep=sleep,
        )
        self.ownership = Ownership(self.cache.path)
        # A manager dropped without close() must not keep its intents from recovery forever.
        self._release = weakref.finalize(self, self.ownership.release)
        self._activity = Activity()
        self._build_parts(
            turns=Turns(), match_slack=float(match_slack), lookup_attempts=lookup_attempts
        )
        self.following = Following(
            **self._common(),
            lookup=self.lookup,
            sync=self.tracker.sync,
            ws_url=ws_url,
            stream_options=live_options,
        )

    def _default_allocator(self, userref_range: tuple[int, int] | None) -> UserrefAllocator:
        lo, hi = userref_range or (USERREF_MIN, USERREF_MAX)
        if self.account is not None:
            return CounterAllocator.for_account(self.account, lo=lo, hi=hi)
        return CounterAllocator(self.cache, lo=lo, hi=hi)

    def _common(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "cache": self.cache,
            "time": self.time,
            "counts": self.requests,
        }

    def _build_parts(self, *, turns: Turns, match_slack: float, lookup_attempts: int) -> None:
        common = self._common()
        self.lookup = OrderLookup(
            self.client,
            self.cache,
            self.time,
            self.requests,
            match_slack=match_slack,
            attempts=lookup_attempts,
            sightings=Sightings(),
        )
        self.recovery = Recovery(self.cache, self.lookup, self.time, self.ownership)
        self.recorder = Recorder(self.cache, self.time, self.recovery)
        self.placer = Placer(
            **common,
            lookup=self.lookup,
            recorder=self.recorder,
            recovery=self.recovery,
            turns=turns,
            allocator=self.allocator,
            owner=self.ownership.token,
            pair=self.pair,
            max_attempts=self.max_attempts,
        )
        self.tracker = Tracker(**common, lookup=self.lookup, allocator=self.allocator)
        self.canceller = Canceller(
            **common, lookup=self.lookup, recovery=self.recovery, turns=turns
        )

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
        being sent. Later calls raise :class:`~oms.errors.ValidationError`. The client is
        closed too only if the manager owns it (``owns_client=True``, as the named
        constructors build it); otherwise it stays fully usable.
        """
        self._activity.close()
        self.following.stop()
        self._release()
        if self._owns_allocator:
            close = getattr(self.allocator, "close", None)
            if close is not None:
                close()
        if self._owns_cache:
            self.cache.close()
        if self._owns_client:
            self.client.close()

    # --- time and pairs ------------------------------------------------------------------

    def now(self) -> float:
        """The exchange's time (unix seconds) as well as this manager knows it: the local
        clock corrected by the offset Kraken's ``Time`` last measured (measured again when
        stale, or when the local clock stepped)."""
        return self.time.now()

    @property
    def server_clock(self) -> ServerClock:
        """What this manager knows of Kraken's time (offset, uncertainty, last answer)."""
        return self.time.server

    def pair(self, name: str) -> AssetPair:
        """AssetPairs' entry for ``name`` (id, altname or wsname), asked once and kept."""
        pairs = self.client.pairs  # one pair-rules cache, the client's
        known = pairs.known(name)
        if known is not None:
            return known
        self.requests.add("AssetPairs")
        return pairs.get(name)

    # --- groups and placement ------------------------------------------------------------

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

        return claim(chosen) if chosen is not None else claim_fresh(self.allocator, claim)

    def group(self, userref: int) -> Group | None:
        return self.cache.group(userref)

    def groups(self, *, label: str | None = None) -> list[Group]:
        return self.cache.groups(label=label)

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
        :class:`~oms.errors.OrderNotPlaced` when every attempt provably failed, and
        :class:`~oms.errors.OutcomeUnknownError` when it could not be decided (the intent
        stays recorded as ``unknown`` for :meth:`recover`) — also when anything else fails
        once the intent is written (the network while waiting for the deadline, the cache
        while recording the answer: :class:`~oms.errors.PlacementNotRecorded` then carries
        the txid). ``KeyboardInterrupt`` and other ``BaseException`` propagate unchanged,
        after the intent is marked for recovery.
        """
        return self.placer.place(request, group=group, validate=validate)

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
        return self.recovery.recover()

    # --- queries -------------------------------------------------------------------------

    @_busy
    def find_by_userref(self, userref: int, *, refresh: bool = False) -> list[Order]:
        """Orders carrying ``userref`` (the "backup id" use: when the txid is not known).

        From the cache; with ``refresh=True`` (or when the cache knows none) asked from the
        exchange (OpenOrders and ClosedOrders filtered by the userref) and cached first.
        """
        return self.tracker.find_by_userref(check_userref(userref), refresh=refresh)

    @_busy
    def sync(self) -> SyncResult:
        """Bring the cache up to date with the exchange, fetching only what changed.

        OpenOrders (all of them: Kraken does not page it), then ClosedOrders for orders closed
        since the last sync (paged with ``end`` pinned, by the client's iterator), then
        QueryOrders for any order the cache still thought open that appeared in neither.
        Everything is written in one transaction with the new cursor.
        """
        return self.tracker.sync()

    # --- following live ------------------------------------------------------------------

    @_busy
    def follow(
        self,
        callback: Callable[[OrderUpdate], object] | None = None,
        *,
        group: Group | int | None = None,
        userref: int | None = None,
        wait: float | None = 10.0,
    ) -> Subscription:
        """Follow orders live (WebSocket v2 ``executions``): each event updates the cache in
        one transaction, then reaches the subscription: ``callback(update)`` in the stream's
        thread, or iterate the :class:`~oms.live.Subscription`; every order, a ``group``'s or
        one ``userref``'s. The first call starts the stream (waiting up to ``wait`` s for it to
        be live); it reconnects by itself and stops with :meth:`close`. See docs/live.rst."""
        return self.following.follow(callback, group=group, userref=userref, wait=wait)

    @property
    def stream_status(self) -> StreamStatus | None:
        """Whether the live stream is live, since when, its gaps and reconnects (``None``:
        :meth:`follow` was never called)."""
        return self.following.status

    # --- cancels -------------------------------------------------------------------------

    @_busy
    def cancel(self, txid: str) -> CancelResult:
        """Cancel one order by txid; the cache then gets the order as Kraken has it (a partly
        filled order keeps what it executed).

        An all-digit ``txid`` is refused: Kraken reads it as a userref and cancels every open
        order carrying it (use :meth:`cancel_group` for that).
        """
        return self.canceller.cancel(txid)

    @_busy
    def cancel_group(self, group: Group | int) -> GroupCancelResult:
        """Cancel every open order of a group, never an order that is not the group's.

        OpenOrders for the userref comes first. When every open order carrying it is one this
        database placed, one CancelOrder with the userref as ``txid`` cancels them all (the
        support note's way). When another program's order carries the userref too, the
        members are cancelled by txid instead (CancelOrderBatch, 50 a request) and the others
        are left open and reported as ``outsiders``. Then what each order became is checked
        (see :class:`~oms.manager.GroupCancelResult`).
        """
        userref = group.userref if isinstance(group, Group) else check_userref(group)
        return self.canceller.groups((userref,), batch=False)

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
        return self.canceller.groups(tuple(refs), batch=True)

    def arm_dead_mans_switch(self, timeout: int = 60) -> DeadMansSwitch:
        """Start (or extend) CancelAllOrdersAfter: every order is cancelled if ``timeout``
        seconds pass without another call. Call again every 15-30 s."""
        check_dead_mans_switch(timeout, disarm=False)  # 0 would disarm: disarm_dead_mans_switch
        self.requests.add("CancelAllOrdersAfter")
        return self.client.cancel_all_orders_after(timeout)

    def disarm_dead_mans_switch(self) -> DeadMansSwitch:
        """Stop the dead man's switch (CancelAllOrdersAfter with timeout 0)."""
        self.requests.add("CancelAllOrdersAfter")
        return self.client.cancel_all_orders_after(0)

    # --- named constructors (the building lives in oms.connect) --------------------------

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


def _check_settings(
    deadline: float, max_attempts: int, lookup_attempts: int, margin: float, match_slack: float
) -> None:
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

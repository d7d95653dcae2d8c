"""Deposits and withdrawals tracked as state machines, with every status change recorded.

Kraken's DepositStatus / WithdrawStatus answer with each transaction's status *now*;
:class:`FundingTracker` polls them (following ``next_cursor`` through every page) and
records, per refid, each change of ``status`` or ``status-prop`` with the time it was seen
(:class:`~oms.funding_store.FundingStore`). Nothing is flattened: ``Settled`` (a deposit
still waiting for confirmations; a withdrawal sent to the blockchain) stays apart from
``Success``, ``On hold``/``onhold`` are kept as spelled, ``Partial`` and ``EarlyConfirmed``
are known, and a status this library has never heard of is stored and flagged.

The lifecycle (from Kraken's support article on funding status values, IFEX-derived)::

    Initial ──► Pending ──► Settled ──► Success
                 │   ▲         ▲
                 ▼   │         │        Pending ──► EarlyConfirmed ──► Settled (deposits)
                On hold ───────┘        Settled ◄─► Partial ──► Success
    every status but Success ──► Failure;  Success and Failure are final

A poll can miss intermediate states, so any move forward is allowed (Initial → Settled is
fine). A move Kraken's lifecycle does not allow (backwards, like Success → Pending, or out
of a final Success/Failure) is recorded anyway, because Kraken is the authority, and flagged
with the problem (:attr:`FundingTransition.allowed`, :meth:`FundingTracker.anomalies`).
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import attrs

from oms._owning import OwnsClientAndStore
from oms.errors import ValidationError
from oms.funding_store import FundingKind, FundingStore, FundingTransition, TrackedFunding
from oms.models import FundingStatus, FundingTransaction

__all__ = [
    "FINAL_STATUSES",
    "LIFECYCLE",
    "FundingKind",
    "FundingSource",
    "FundingSyncReport",
    "FundingTracker",
    "FundingTransition",
    "TrackedFunding",
    "lifecycle_problem",
]

_S = FundingStatus

#: Statuses after which Kraken changes nothing any more.
FINAL_STATUSES = frozenset({_S.SUCCESS, _S.FAILURE})

#: Where each non-final status may go next, counting states a poll may have missed.
LIFECYCLE: dict[FundingStatus, frozenset[FundingStatus]] = {
    _S.INITIAL: frozenset(
        {_S.PENDING, _S.ON_HOLD, _S.EARLY_CONFIRMED, _S.SETTLED, _S.PARTIAL, *FINAL_STATUSES}
    ),
    _S.PENDING: frozenset(
        {_S.ON_HOLD, _S.EARLY_CONFIRMED, _S.SETTLED, _S.PARTIAL, *FINAL_STATUSES}
    ),
    # Held for a manual check, then released to carry on (or failed).
    _S.ON_HOLD: frozenset(
        {_S.PENDING, _S.EARLY_CONFIRMED, _S.SETTLED, _S.PARTIAL, *FINAL_STATUSES}
    ),
    _S.EARLY_CONFIRMED: frozenset({_S.SETTLED, _S.PARTIAL, *FINAL_STATUSES}),
    _S.SETTLED: frozenset({_S.PARTIAL, *FINAL_STATUSES}),
    _S.PARTIAL: frozenset({_S.SETTLED, *FINAL_STATUSES}),
}


def lifecycle_problem(
    kind: FundingKind, old: FundingStatus | None, new: FundingStatus
) -> str | None:
    """Why Kraken's lifecycle does not lead from ``old`` to ``new``; None if it does.

    ``old`` is None for a first sighting (tracking may start at any stage). The same status
    again (a status-prop change, a respelling) is always allowed.
    """
    if new is _S.UNKNOWN:
        return f"unknown {kind.value} status"
    if old is None or old is new:
        return None
    if old is _S.UNKNOWN:
        return f"from an unknown {kind.value} status"
    if old in FINAL_STATUSES:
        return f"{old.value} is final, yet it became {new.value}"
    if new not in LIFECYCLE[old]:
        return f"{old.value} cannot become {new.value}"
    return None


class FundingSource(Protocol):
    """What :class:`FundingTracker` needs (a :class:`~oms.client.KrakenClient` is one)."""

    def iter_deposit_status(self, *, asset: str | None = None) -> Iterator[FundingTransaction]: ...

    def iter_withdraw_status(self, *, asset: str | None = None) -> Iterator[FundingTransaction]: ...


@attrs.frozen(kw_only=True)
class FundingSyncReport:
    """What one :meth:`FundingTracker.sync` saw: how many entries, and the transitions
    recorded (first sightings included)."""

    seen_at: float
    deposits: int
    withdrawals: int
    transitions: tuple[FundingTransition, ...]

    @property
    def anomalies(self) -> tuple[FundingTransition, ...]:
        return tuple(t for t in self.transitions if not t.allowed)


def _statuses(statuses: Iterable[FundingStatus | str]) -> set[FundingStatus]:
    out = set()
    for status in statuses:
        if isinstance(status, FundingStatus):
            out.add(status)
        else:
            # Kraken's spellings ("On hold", "onhold", "on-hold") all name one state.
            out.add(FundingStatus.parse(status))
    return out


class FundingTracker(OwnsClientAndStore):
    """Polls Kraken's funding status endpoints into ``store`` and answers from it.

    ``client`` may be None for a tracker that only answers from the store (``sync`` then
    refuses). ``clock`` gives the unix time recorded as "seen at" (inject the sandbox clock
    in tests). With ``owns`` (what :meth:`from_env` gives), :meth:`close` closes the client
    and the store too.
    """

    def __init__(
        self,
        client: FundingSource | None,
        store: FundingStore,
        *,
        clock: Callable[[], float] = _time.time,
        owns: bool = False,
    ) -> None:
        self.client = client
        self.store = store
        self._clock = clock
        self._owns = owns

    @classmethod
    def from_env(
        cls,
        db: Any = None,
        *,
        base_url: str | None = None,
        offline: bool = False,
        **client_options: Any,
    ) -> FundingTracker:
        """The history database ``db`` (default :func:`oms.paths.history_db`) and a client
        on ``base_url`` with the environment's key pair (Query Funds permission), or none
        when ``offline``; see :func:`oms.connect.funding_tracker_from_env`."""
        from oms.connect import funding_tracker_from_env

        return funding_tracker_from_env(db, base_url=base_url, offline=offline, **client_options)

    def __repr__(self) -> str:
        return f"FundingTracker({self.store!r})"

    def sync(
        self,
        *,
        asset: str | None = None,
        deposits: bool = True,
        withdrawals: bool = True,
        on_item: Callable[[FundingKind, int], object] | None = None,
    ) -> FundingSyncReport:
        """Fetch every page of DepositStatus and WithdrawStatus (optionally for one
        ``asset``) and record what changed since the last sync.

        Both listings are fetched before anything is written, and each is written in one
        transaction: an interrupted sync records nothing half-way. ``on_item(kind, n)`` is
        called as each transaction arrives (``n`` counts that kind so far), for progress.
        """
        client = self.client
        if client is None:
            raise ValidationError("this tracker has no client to poll", field="client")
        fetched: list[tuple[FundingKind, list[FundingTransaction]]] = []
        listings = []
        if deposits:
            listings.append((FundingKind.DEPOSIT, client.iter_deposit_status))
        if withdrawals:
            listings.append((FundingKind.WITHDRAWAL, client.iter_withdraw_status))
        for kind, listing in listings:
            items: list[FundingTransaction] = []
            for item in listing(asset=asset):
                items.append(item)
                if on_item is not None:
                    on_item(kind, len(items))
            fetched.append((kind, items))
        seen_at = self._clock()
        transitions: list[FundingTransition] = []
        for kind, items in fetched:
            transitions += self.store.record(kind, items, seen_at=seen_at, judge=lifecycle_problem)
        counts = {kind: len(items) for kind, items in fetched}
        return FundingSyncReport(
            seen_at=seen_at,
            deposits=counts.get(FundingKind.DEPOSIT, 0),
            withdrawals=counts.get(FundingKind.WITHDRAWAL, 0),
            transitions=tuple(transitions),
        )

    # --- answers from the store ---------------------------------------------------------

    def get(self, refid: str) -> TrackedFunding | None:
        return self.store.get(refid)

    def all(self, *, kind: FundingKind | None = None) -> list[TrackedFunding]:
        """Every tracked transaction, newest first."""
        return self.store.transactions(kind=kind)

    def pending(self, *, kind: FundingKind | None = None) -> list[TrackedFunding]:
        """Transactions not yet final (neither Success nor Failure), newest first."""
        return [t for t in self.all(kind=kind) if t.status not in FINAL_STATUSES]

    def by_status(
        self, *statuses: FundingStatus | str, kind: FundingKind | None = None
    ) -> list[TrackedFunding]:
        """Transactions whose current status is one of ``statuses`` (enums or Kraken's
        texts in any of its spellings), newest first."""
        wanted = _statuses(statuses)
        return [t for t in self.all(kind=kind) if t.status in wanted]

    def history(self, refid: str) -> list[FundingTransition]:
        """Every recorded transition of ``refid``, first sighting first."""
        return self.store.transitions(refid=refid)

    def anomalies(self) -> list[FundingTransition]:
        """Every recorded transition Kraken's lifecycle does not allow."""
        return self.store.transitions(allowed=False)

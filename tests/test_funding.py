"""Every deposit and withdrawal is tracked as a state machine: each status and status-prop
change is recorded once with the time seen, Kraken's texts are never flattened, and moves
Kraken's lifecycle does not allow are recorded and flagged, never hidden."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from history_support import T0

from oms.errors import ConnectError, ValidationError
from oms.funding import (
    FINAL_STATUSES,
    LIFECYCLE,
    FundingKind,
    FundingTracker,
    lifecycle_problem,
)
from oms.funding_store import FundingStore
from oms.models import FundingStatus, FundingTransaction, StatusProp
from oms.sandbox import ManualClock, Sandbox, SandboxConfig

FIXTURES = Path(__file__).parent / "fixtures"
S = FundingStatus


def seed(name: str) -> FundingTransaction:
    """The seed's example entry from ``fixtures/seed_<name>.json``."""
    result = json.loads((FIXTURES / f"seed_{name}.json").read_text())["result"]
    return FundingTransaction.from_api(result[0])


@attrs.define
class Scripted:
    """A funding source that shows whatever the test last set."""

    deposits: list[FundingTransaction] = attrs.field(factory=list)
    withdrawals: list[FundingTransaction] = attrs.field(factory=list)
    fail: bool = False

    def iter_deposit_status(self, *, asset: str | None = None) -> Iterator[FundingTransaction]:
        yield from self.deposits

    def iter_withdraw_status(self, *, asset: str | None = None) -> Iterator[FundingTransaction]:
        if self.fail:
            raise ConnectError("unplugged")
        yield from self.withdrawals


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def store() -> Iterator[FundingStore]:
    with FundingStore(":memory:") as s:
        yield s


# --- the seed's examples ----------------------------------------------------------------------


def test_the_seeds_withdrawal_goes_initial_pending_settled_success(
    store: FundingStore, clock: ManualClock
) -> None:
    source = Scripted()
    tracker = FundingTracker(source, store, clock=clock.time)
    for name in ("withdraw_initial", "withdraw_pending", "withdraw_settled", "withdraw_success"):
        source.withdrawals = [seed(name)]
        tracker.sync()
        clock.advance(10)
    history = tracker.history("ASBCMYC-F5ETQT-34NMWT")
    assert [t.to_status for t in history] == [S.INITIAL, S.PENDING, S.SETTLED, S.SUCCESS]
    assert [t.seen_at for t in history] == [T0, T0 + 10, T0 + 20, T0 + 30]
    assert all(t.allowed for t in history)
    # The blockchain txid appears at Settled, as in the seed.
    assert [t.txid is not None for t in history] == [False, False, True, True]
    assert tracker.pending() == []


def test_the_seeds_deposit_goes_settled_success(store: FundingStore, clock: ManualClock) -> None:
    source = Scripted(deposits=[seed("deposit_settled")])
    tracker = FundingTracker(source, store, clock=clock.time)
    tracker.sync()
    assert [t.refid for t in tracker.pending(kind=FundingKind.DEPOSIT)] == ["QSB7IFM-Q3LT3X-NVAOKE"]
    source.deposits = [seed("deposit_success")]
    report = tracker.sync()
    (change,) = report.transitions
    assert (change.from_status, change.to_status, change.allowed) == (S.SETTLED, S.SUCCESS, True)
    # Settled and Success are two statuses, never one.
    assert tracker.by_status(S.SETTLED) == []
    assert [t.refid for t in tracker.by_status("Success")] == ["QSB7IFM-Q3LT3X-NVAOKE"]


def test_the_seeds_failure_keeps_its_status_prop(store: FundingStore, clock: ManualClock) -> None:
    source = Scripted(withdrawals=[seed("withdraw_initial")])
    tracker = FundingTracker(source, store, clock=clock.time)
    tracker.sync()
    source.withdrawals = [seed("withdraw_failure")]
    (change,) = tracker.sync().transitions
    assert (change.to_status_raw, change.to_prop_raw) == ("Failure", "canceled")
    assert change.to_prop is StatusProp.CANCELED
    assert change.allowed
    item = tracker.get("ASBCMYC-F5ETQT-34NMWT")
    assert item is not None
    assert item.tx == seed("withdraw_failure")


# --- flagged, never hidden ----------------------------------------------------------------------


def test_success_then_pending_is_recorded_and_flagged(
    store: FundingStore, clock: ManualClock
) -> None:
    source = Scripted(withdrawals=[seed("withdraw_success")])
    tracker = FundingTracker(source, store, clock=clock.time)
    tracker.sync()
    source.withdrawals = [seed("withdraw_pending")]
    report = tracker.sync()
    (bad,) = report.anomalies
    assert (bad.from_status, bad.to_status, bad.allowed) == (S.SUCCESS, S.PENDING, False)
    assert bad.problem is not None
    assert "final" in bad.problem
    assert tracker.anomalies() == [bad]
    # Kraken is the authority: the current status is what it says now.
    assert [t.status for t in tracker.pending()] == [S.PENDING]


def test_no_change_records_no_transition(store: FundingStore, clock: ManualClock) -> None:
    source = Scripted(withdrawals=[seed("withdraw_pending")])
    tracker = FundingTracker(source, store, clock=clock.time)
    assert len(tracker.sync().transitions) == 1
    clock.advance(60)
    assert tracker.sync().transitions == ()
    item = tracker.get("ASBCMYC-F5ETQT-34NMWT")
    assert item is not None
    assert (item.first_seen, item.changed_at, item.last_seen) == (T0, T0, T0 + 60)


@pytest.mark.parametrize(
    ("status", "prop", "parsed", "flagged"),
    [
        ("On hold", None, S.ON_HOLD, False),
        ("onhold", None, S.ON_HOLD, False),
        ("Pending", "onhold", S.PENDING, False),
        ("Pending", "on-hold", S.PENDING, False),
        ("Partial", None, S.PARTIAL, False),
        ("EarlyConfirmed", None, S.EARLY_CONFIRMED, False),
        ("Settled", "return", S.SETTLED, False),
        ("Initial", "cancel-pending", S.INITIAL, False),
        ("Failure", "cancel-denied", S.FAILURE, False),
        ("Reversed", None, S.UNKNOWN, True),
    ],
)
def test_every_status_and_prop_is_kept_as_kraken_spelled_it(
    store: FundingStore,
    clock: ManualClock,
    status: str,
    prop: str | None,
    parsed: FundingStatus,
    flagged: bool,
) -> None:
    tx = attrs.evolve(
        seed("withdraw_initial"),
        status=FundingStatus.parse(status),
        status_raw=status,
        status_prop=None if prop is None else StatusProp.parse(prop),
        status_prop_raw=prop,
    )
    tracker = FundingTracker(Scripted(withdrawals=[tx]), store, clock=clock.time)
    (seen,) = tracker.sync().transitions
    assert (seen.to_status_raw, seen.to_prop_raw, seen.to_status) == (status, prop, parsed)
    assert seen.allowed is not flagged
    item = tracker.get(tx.refid)
    assert item is not None
    assert (item.tx.status_raw, item.tx.status_prop_raw) == (status, prop)
    assert tracker.by_status(status) == [item]


def test_by_status_accepts_any_spelling(store: FundingStore, clock: ManualClock) -> None:
    base = seed("withdraw_initial")
    held = [
        attrs.evolve(base, refid=f"R{n}", status=S.ON_HOLD, status_raw=raw)
        for n, raw in enumerate(["On hold", "onhold"])
    ]
    tracker = FundingTracker(Scripted(withdrawals=held), store, clock=clock.time)
    tracker.sync()
    for spelling in ("On hold", "on-hold", "ONHOLD", S.ON_HOLD):
        assert {t.refid for t in tracker.by_status(spelling)} == {"R0", "R1"}


# --- the lifecycle table ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "allowed"),
    [
        (None, S.SUCCESS, True),  # tracking may start at any stage
        (S.INITIAL, S.PENDING, True),
        (S.INITIAL, S.SETTLED, True),  # a poll missed Pending
        (S.PENDING, S.ON_HOLD, True),
        (S.ON_HOLD, S.PENDING, True),
        (S.PENDING, S.EARLY_CONFIRMED, True),
        (S.SETTLED, S.SUCCESS, True),
        (S.SETTLED, S.PARTIAL, True),
        (S.PENDING, S.FAILURE, True),
        (S.SETTLED, S.SETTLED, True),  # a status-prop change
        (S.SUCCESS, S.PENDING, False),
        (S.SUCCESS, S.FAILURE, False),
        (S.FAILURE, S.SUCCESS, False),
        (S.SETTLED, S.PENDING, False),
        (S.PENDING, S.INITIAL, False),
        (S.EARLY_CONFIRMED, S.INITIAL, False),
        (S.PENDING, S.UNKNOWN, False),
        (S.UNKNOWN, S.SUCCESS, False),
    ],
)
def test_lifecycle(old: FundingStatus | None, new: FundingStatus, allowed: bool) -> None:
    problem = lifecycle_problem(FundingKind.WITHDRAWAL, old, new)
    assert (problem is None) is allowed


def test_every_known_non_final_status_has_a_way_forward() -> None:
    known = set(FundingStatus) - {S.UNKNOWN}
    assert set(LIFECYCLE) == known - FINAL_STATUSES
    for status, onward in LIFECYCLE.items():
        assert onward & FINAL_STATUSES == FINAL_STATUSES, status
        assert status not in onward


# --- syncing --------------------------------------------------------------------------------------


def test_an_interrupted_sync_records_nothing(store: FundingStore, clock: ManualClock) -> None:
    source = Scripted(deposits=[seed("deposit_settled")], fail=True)
    tracker = FundingTracker(source, store, clock=clock.time)
    with pytest.raises(ConnectError):
        tracker.sync()
    assert tracker.all() == []
    assert tracker.history("QSB7IFM-Q3LT3X-NVAOKE") == []


def test_a_tracker_without_client_only_answers(store: FundingStore) -> None:
    with pytest.raises(ValidationError):
        FundingTracker(None, store).sync()


def test_sandbox_lifecycles_on_a_manual_clock(
    tmp_path: Path, clock: ManualClock, request: pytest.FixtureRequest
) -> None:
    sb = Sandbox.in_process(clock=clock)
    client = sb.client()
    store = FundingStore(tmp_path / "h.db")
    # Closed explicitly: Python 3.13 warns (an error here) about connections left to the GC.
    request.addfinalizer(store.close)
    tracker = FundingTracker(client, store, clock=clock.time)
    first = tracker.sync()
    # The sandbox's past transactions are first sightings, in their final states.
    assert {t.to_status for t in first.transitions} <= FINAL_STATUSES
    assert all(t.allowed for t in first.transitions)

    done = client.withdraw("XXDG", "sandbox", "100")
    canceled = client.withdraw("XXDG", "sandbox", "60")
    assert client.withdraw_cancel("XXDG", canceled)
    deposit = sb.exchange.deposit(sb.key, "XXDG", "997")
    cfg = sb.exchange.config
    steps = [
        0.0,
        cfg.withdraw_pending_after,
        cfg.withdraw_settled_after,
        cfg.withdraw_success_after,
    ]
    for step in steps:
        clock.advance(step)
        tracker.sync()

    def path(refid: str) -> list[tuple[str, str | None]]:
        return [(t.to_status_raw, t.to_prop_raw) for t in tracker.history(refid)]

    assert path(done) == [
        ("Initial", None),
        ("Pending", None),
        ("Settled", None),
        ("Success", None),
    ]
    assert path(canceled) == [("Initial", "cancel-pending"), ("Failure", "canceled")]
    assert path(deposit) == [("Settled", None), ("Success", None)]
    assert tracker.anomalies() == []
    assert tracker.pending() == []
    (settled,) = [t for t in tracker.history(done) if t.to_status is S.SETTLED]
    assert settled.txid is not None
    assert settled.seen_at == T0 + steps[1] + steps[2]


def test_every_page_of_deposits_is_tracked(store: FundingStore, clock: ManualClock) -> None:
    config = SandboxConfig(seed_funding_history=False)
    sb = Sandbox.in_process(clock=clock, config=config)
    refids = {sb.exchange.deposit(sb.key, "XXDG", str(100 + n)) for n in range(30)}
    client = sb.client()
    first_page = client.deposit_status(cursor=True)
    # Kraken's default page is 25 deposits: all 30 need next_cursor.
    assert len(first_page.items) < len(refids)
    assert first_page.next_cursor is not None
    tracker = FundingTracker(client, store, clock=clock.time)
    tracker.sync()
    assert {t.refid for t in tracker.all(kind=FundingKind.DEPOSIT)} == refids

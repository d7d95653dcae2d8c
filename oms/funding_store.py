"""The funding part of the history database: each deposit and withdrawal as last seen, and
every change of its status or status-prop with the time it was seen.

Kraken's exact texts are stored (``status_raw``, ``status_prop_raw``), never a flattened
value: ``Settled`` and ``Success`` stay apart, ``On hold``/``onhold`` stay as Kraken spelled
them, and a status this library does not know yet is kept, not dropped. The enums of
:mod:`oms.models` are parsed from those texts when reading.

The tables are created by :data:`oms.history_store.MIGRATIONS`, so one file can hold the
trade history and the funding records. Only the SQLite files' modules (this one,
:mod:`oms.history_store`, the order cache's, :mod:`oms.account`) touch SQLite, through
:mod:`oms._sqlite`.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from oms._decimal import fmt, to_decimal
from oms._sqlite import insert_sql, rows, upsert_sql
from oms.history_store import HistoryDatabase
from oms.models import FundingStatus, FundingTransaction, StatusProp

__all__ = ["FundingKind", "FundingStore", "FundingTransition", "Judge", "TrackedFunding"]


class FundingKind(str, enum.Enum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"


def _opt_prop(raw: str | None) -> StatusProp | None:
    return None if raw is None else StatusProp.parse(raw)


@attrs.frozen(kw_only=True)
class FundingTransition:
    """One observed change of a funding transaction's status or status-prop.

    The first sighting of a refid is a transition from ``None``. ``allowed`` is False (and
    ``problem`` says why) when Kraken's lifecycle does not lead from the old status to the
    new one; the new status is recorded either way, because Kraken is the authority.
    Kraken's exact texts are kept (``*_raw``) beside the parsed enums.
    """

    kind: FundingKind
    refid: str
    seen_at: float
    from_status_raw: str | None
    from_prop_raw: str | None
    to_status_raw: str
    to_prop_raw: str | None
    txid: str | None
    allowed: bool
    problem: str | None = None

    @property
    def from_status(self) -> FundingStatus | None:
        raw = self.from_status_raw
        return None if raw is None else FundingStatus.parse(raw)

    @property
    def to_status(self) -> FundingStatus:
        return FundingStatus.parse(self.to_status_raw)

    @property
    def from_prop(self) -> StatusProp | None:
        return _opt_prop(self.from_prop_raw)

    @property
    def to_prop(self) -> StatusProp | None:
        return _opt_prop(self.to_prop_raw)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> FundingTransition:
        return cls(
            kind=FundingKind(row["kind"]),
            refid=row["refid"],
            seen_at=float(row["seen_at"]),
            from_status_raw=row["from_status_raw"],
            from_prop_raw=row["from_prop_raw"],
            to_status_raw=row["to_status_raw"],
            to_prop_raw=row["to_prop_raw"],
            txid=row["txid"],
            allowed=bool(row["allowed"]),
            problem=row["problem"],
        )


@attrs.frozen(kw_only=True)
class TrackedFunding:
    """A deposit or withdrawal as last seen, and when it was first seen and last changed."""

    kind: FundingKind
    tx: FundingTransaction
    first_seen: float
    last_seen: float
    changed_at: float

    @property
    def refid(self) -> str:
        return self.tx.refid

    @property
    def status(self) -> FundingStatus:
        return self.tx.status

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TrackedFunding:
        prop_raw = row["status_prop_raw"]
        originators = row["originators"]
        tx = FundingTransaction(
            method=row["method"],
            aclass=row["aclass"],
            asset=row["asset"],
            refid=row["refid"],
            txid=row["txid"],
            info=row["info"],
            amount=to_decimal(row["amount"]),
            fee=None if row["fee"] is None else to_decimal(row["fee"]),
            time=row["time"],
            status=FundingStatus.parse(row["status_raw"]),
            status_raw=row["status_raw"],
            status_prop=_opt_prop(prop_raw),
            status_prop_raw=prop_raw,
            network=row["network"],
            key=row["key"],
            originators=None if originators is None else tuple(json.loads(originators)),
        )
        return cls(
            kind=FundingKind(row["kind"]),
            tx=tx,
            first_seen=float(row["first_seen"]),
            last_seen=float(row["last_seen"]),
            changed_at=float(row["changed_at"]),
        )


def _funding_row(
    kind: FundingKind,
    tx: FundingTransaction,
    *,
    first_seen: float,
    seen_at: float,
    changed_at: float,
) -> dict[str, Any]:
    return {
        "kind": kind.value,
        "refid": tx.refid,
        "method": tx.method,
        "aclass": tx.aclass,
        "asset": tx.asset,
        "txid": tx.txid,
        "info": tx.info,
        "amount": fmt(tx.amount),
        "fee": None if tx.fee is None else fmt(tx.fee),
        "time": tx.time,
        "status_raw": tx.status_raw,
        "status_prop_raw": tx.status_prop_raw,
        "network": tx.network,
        "key": tx.key,
        "originators": None if tx.originators is None else json.dumps(list(tx.originators)),
        "first_seen": first_seen,
        "last_seen": seen_at,
        "changed_at": changed_at,
    }


def _transition(
    kind: FundingKind,
    old: Mapping[str, Any] | None,
    tx: FundingTransaction,
    *,
    seen_at: float,
    judge: Judge,
) -> FundingTransition | None:
    """The transition from the stored row to ``tx``; None when neither the status nor the
    status-prop changed (a first sighting is a transition from nothing)."""
    before = (None, None) if old is None else (old["status_raw"], old["status_prop_raw"])
    if before == (tx.status_raw, tx.status_prop_raw):
        return None
    problem = judge(kind, None if before[0] is None else FundingStatus.parse(before[0]), tx.status)
    return FundingTransition(
        kind=kind,
        refid=tx.refid,
        seen_at=seen_at,
        from_status_raw=before[0],
        from_prop_raw=before[1],
        to_status_raw=tx.status_raw,
        to_prop_raw=tx.status_prop_raw,
        txid=tx.txid,
        allowed=problem is None,
        problem=problem,
    )


#: Judges a status change: ``(kind, old, new) -> problem``; None = Kraken's lifecycle allows it.
Judge = Callable[[FundingKind, FundingStatus | None, FundingStatus], str | None]


class FundingStore(HistoryDatabase):
    """Deposits and withdrawals with every status change seen (see :mod:`oms.funding`)."""

    def record(
        self,
        kind: FundingKind,
        items: Iterable[FundingTransaction],
        *,
        seen_at: float,
        judge: Judge,
    ) -> list[FundingTransition]:
        """Store what the status endpoint showed at ``seen_at``; return the new transitions.

        One transaction: the comparison with the stored state and the write cannot be split
        by another process, so each change is recorded exactly once.
        """
        found: list[FundingTransition] = []
        with self._write() as db:
            for tx in items:
                stored = rows(
                    db, "SELECT * FROM funding WHERE kind = ? AND refid = ?", [kind.value, tx.refid]
                )
                old = stored[0] if stored else None
                first_seen = changed_at = seen_at
                if old is not None:
                    first_seen, changed_at = float(old["first_seen"]), float(old["changed_at"])
                transition = _transition(kind, old, tx, seen_at=seen_at, judge=judge)
                if transition is not None:
                    changed_at = seen_at
                    row = attrs.asdict(transition)
                    row.update(kind=kind.value, allowed=int(transition.allowed))
                    db.execute(insert_sql("funding_transitions", tuple(row)), tuple(row.values()))
                    found.append(transition)
                row = _funding_row(
                    kind, tx, first_seen=first_seen, seen_at=seen_at, changed_at=changed_at
                )
                sql = upsert_sql("funding", tuple(row), ("kind", "refid"))
                db.execute(sql, tuple(row.values()))
        return found

    def get(self, refid: str, *, kind: FundingKind | None = None) -> TrackedFunding | None:
        found = self.transactions(kind=kind, refid=refid)
        return found[0] if found else None

    def transactions(
        self, *, kind: FundingKind | None = None, refid: str | None = None
    ) -> list[TrackedFunding]:
        """Tracked transactions, newest (by Kraken's ``time``) first."""
        where, params = _filters(kind=kind, refid=refid)
        sql = f"SELECT * FROM funding{where} ORDER BY time DESC, refid"  # noqa: S608 -- fixed fragments only
        rows = self._query(sql, params)
        return [TrackedFunding.from_row(r) for r in rows]

    def transitions(
        self,
        *,
        refid: str | None = None,
        kind: FundingKind | None = None,
        allowed: bool | None = None,
    ) -> list[FundingTransition]:
        """Recorded transitions in the order seen."""
        where, params = _filters(kind=kind, refid=refid, allowed=allowed)
        sql = f"SELECT * FROM funding_transitions{where} ORDER BY id"  # noqa: S608 -- fixed fragments only
        rows = self._query(sql, params)
        return [FundingTransition.from_row(r) for r in rows]


def _filters(**given: object) -> tuple[str, list[object]]:
    """A WHERE clause over the given columns (names from code, values as parameters)."""
    clauses, params = [], []
    for column, value in given.items():
        if value is None:
            continue
        clauses.append(f"{column} = ?")
        if isinstance(value, enum.Enum):
            value = value.value
        params.append(int(value) if isinstance(value, bool) else value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

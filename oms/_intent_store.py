"""The intent half of the order cache: placement intents and the userrefs they hold.

Every write checks :data:`oms.intents.TRANSITIONS`: a state change the table does not allow
is refused like a lost compare-and-set (``None`` / ``False``), and the compare-and-set on the
state defaults to "every state that may become the new one" (:func:`oms.intents.sources`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from oms._order_rows import upsert_orders
from oms._sqlite import Database, SequenceFile, insert_sql, rows
from oms.errors import ValidationError
from oms.intents import Intent, IntentState, sources
from oms.models import Order

__all__ = ["IntentStore", "refuse_taken", "userref_holder"]

# The columns of Intent.to_row(), in its order.
_INTENT_COLUMNS = (
    "id",
    "created_at",
    "userref",
    "pair",
    "side",
    "ordertype",
    "volume",
    "price",
    "params",
    "state",
    "is_group",
    "validate",
    "attempts",
    "deadline",
    "txid",
    "owner",
    "error",
    "updated_at",
    "not_before",
)
_INSERT_INTENT = insert_sql("intents", _INTENT_COLUMNS)
PLACED = IntentState.PLACED.value
_CHANGEABLE = frozenset({"state", "attempts", "deadline", "txid", "owner", "error", "updated_at"})


@functools.lru_cache(maxsize=32)
def _update_sql(columns: tuple[str, ...]) -> str:
    sets = ", ".join(f'"{c}" = ?' for c in columns)
    return f"UPDATE intents SET {sets} WHERE id = ?"  # noqa: S608 -- column names from code


# One statement, three index seeks, in the order a holder is named (a group first).
_HOLDER = (
    "SELECT 0, label FROM groups WHERE userref = :userref "
    "UNION ALL SELECT * FROM (SELECT 1, txid FROM orders WHERE userref = :userref LIMIT 1) "
    "UNION ALL SELECT * FROM (SELECT 2, id FROM intents WHERE userref = :userref LIMIT 1) "
    "LIMIT 1"
)


def userref_holder(db: Database, userref: int) -> str | None:
    """What already carries ``userref`` (a group, an order, an intent), or None."""
    row = db.execute(_HOLDER, {"userref": userref}).fetchone()
    if row is None:
        return None
    kind, name = row
    return (f"the group {name!r}", f"order {name}", f"intent {name}")[kind]


def refuse_taken(db: Database, userref: int) -> None:
    holder = userref_holder(db, userref)
    if holder is not None:
        raise ValidationError(
            f"userref {userref} is already used by {holder}",
            field="userref",
            rule="userref-in-use",
        )


def _allowed_from(
    state: IntentState | None, expect_states: Iterable[IntentState] | None
) -> frozenset[str] | None:
    """The state values a write may start from: what the caller expects, narrowed to what
    may become ``state`` (``None``: any, for a write that changes no state)."""
    expected = None if expect_states is None else {IntentState(s) for s in expect_states}
    if state is not None:
        may = sources(state)
        expected = set(may) if expected is None else expected & may
    return None if expected is None else frozenset(s.value for s in expected)


def _stale(
    row: Any,
    *,
    states: frozenset[str] | None,
    attempts: int | None,
    deadline: float | None,
) -> bool:
    """Whether the intent (``state, attempts, deadline``) is not as the caller last saw it."""
    return (
        (attempts is not None and row[1] != attempts)
        or (deadline is not None and row[2] != deadline)
        or (states is not None and row[0] not in states)
    )


class IntentStore(SequenceFile):
    """Placement intents (the :class:`~oms.cache.OrderCache` is one)."""

    def _in_use(self, db: Database, userref: int) -> bool:
        return userref_holder(db, userref) is not None

    def userref_in_use(self, userref: int) -> bool:
        """Whether any cached order, intent or group carries ``userref``."""
        with self._read() as db:
            return userref_holder(db, userref) is not None

    def add_intent(self, intent: Intent, *, fresh_userref: bool = False) -> Intent:
        """Record an intent. With ``fresh_userref`` (a userref from an allocator, meant to be
        unique) it is refused like :meth:`add_group` refuses a taken userref, checked in the
        insert's transaction."""
        values = tuple(intent.to_row().values())
        with self._write() as db:
            if fresh_userref:
                refuse_taken(db, intent.userref)
            db.execute(_INSERT_INTENT, values)
        return intent

    def intent(self, intent_id: str) -> Intent | None:
        found = self._query("SELECT * FROM intents WHERE id = ?", (intent_id,))
        return Intent.from_row(found[0]) if found else None

    def intents(
        self,
        *,
        states: Iterable[IntentState] | None = None,
        userref: int | None = None,
    ) -> list[Intent]:
        """Intents, oldest first, optionally only in ``states`` / with ``userref``."""
        clauses: list[str] = []
        params: list[Any] = []
        if states is not None:
            values = [IntentState(s).value for s in states]
            clauses.append(f"state IN ({', '.join('?' * len(values))})")
            params.extend(values)
        if userref is not None:
            clauses.append("userref = ?")
            params.append(userref)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        found = self._query(
            f"SELECT * FROM intents {where} ORDER BY created_at, id",  # noqa: S608 -- fixed fragments only
            params,
        )
        return [Intent.from_row(r) for r in found]

    def update_intent(
        self,
        intent_id: str,
        *,
        expect_attempts: int | None = None,
        expect_states: Iterable[IntentState] | None = None,
        expect_deadline: float | None = None,
        **changes: Any,
    ) -> Intent | None:
        """Change an intent if it still is as the caller last saw it (compare-and-set).

        Returns the new intent, or ``None`` if another manager changed it first (its
        ``attempts``, ``state`` or ``deadline`` no longer match), so two processes never both
        re-send, and a recovery never overrules an attempt it did not see. A new ``state`` is
        a transition of :data:`~oms.intents.TRANSITIONS`: one the table does not allow from
        the intent's current state is refused the same way, and ``expect_states`` defaults to
        every state that may become it.
        """
        unknown = set(changes) - _CHANGEABLE
        if unknown:
            raise ValidationError(f"cannot change intent fields {sorted(unknown)}", field="changes")
        state = changes.get("state")
        allowed = _allowed_from(None if state is None else IntentState(state), expect_states)
        values = {k: (v.value if isinstance(v, IntentState) else v) for k, v in changes.items()}
        with self._write() as db:
            found = rows(db, "SELECT * FROM intents WHERE id = ?", (intent_id,))
            if not found:
                return None
            row = found[0]
            seen = (row["state"], row["attempts"], row["deadline"])
            if _stale(seen, states=allowed, attempts=expect_attempts, deadline=expect_deadline):
                return None
            if values:
                columns = tuple(sorted(values))
                db.execute(_update_sql(columns), (*(values[c] for c in columns), intent_id))
                row.update(values)
        return Intent.from_row(row)

    def txid_claimed(self, txid: str, *, exclude_intent: str | None = None) -> bool:
        """Whether ``txid`` already answers for an intent (other than ``exclude_intent``):
        one seek on the unique txid index, whatever the number of intents."""
        with self._read() as db:
            row = db.execute(
                "SELECT 1 FROM intents WHERE txid = ? AND id IS NOT ?", (txid, exclude_intent)
            ).fetchone()
        return row is not None

    def claimed_txids(self, *, exclude_intent: str | None = None) -> set[str]:
        """Txids already answering for an intent (other than ``exclude_intent``); reads
        every placed intent, so prefer :meth:`txid_claimed` for a lookup."""
        found = self._query(
            "SELECT txid FROM intents WHERE txid IS NOT NULL AND id IS NOT ?", (exclude_intent,)
        )
        return {r["txid"] for r in found}

    def adopt(
        self,
        intent_id: str,
        order: Order,
        *,
        synced_at: float | None,
        state_from: Iterable[IntentState] | None = None,
    ) -> bool:
        """Record that ``order`` is the exchange's answer to the intent, in one transaction.

        Refuses (returns ``False``) if the txid already answers for another intent or the
        intent is no longer in one of ``state_from`` (by default, every state that may become
        ``placed``; a state the transition table does not let become ``placed`` is refused
        whatever ``state_from`` says).
        """
        expected = sorted(_allowed_from(IntentState.PLACED, state_from) or ())
        if not expected:
            return False
        # The compare-and-set and the "one order, one intent" rule are the update's WHERE.
        marks = ", ".join("?" * len(expected))
        with self._write() as db:
            changed = db.execute(
                "UPDATE intents SET state = ?, txid = ?, error = NULL, updated_at = ? "  # noqa: S608 -- placeholders only
                f"WHERE id = ? AND state IN ({marks}) AND NOT EXISTS "
                "(SELECT 1 FROM intents WHERE txid = ? AND id != ?)",
                (PLACED, order.txid, synced_at, intent_id, *expected, order.txid, intent_id),
            ).rowcount
            if changed != 1:
                return False
            upsert_orders(db, [order], synced_at=synced_at, intent_ids={order.txid: intent_id})
        return True

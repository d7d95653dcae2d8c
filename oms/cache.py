"""The SQLite order cache: orders, groups, placement intents and userref counters.

One database file holds everything the :class:`~oms.OrderManager` must remember across a
crash. It can be shared by several processes: WAL mode lets readers run beside a writer, a
busy timeout makes writers queue instead of failing, and every write (every multi-row write
included) is one ``BEGIN IMMEDIATE`` transaction, so a writer takes the lock before it reads
what it will change.

Money is stored as TEXT holding the exact decimal string, never REAL: a float column would
turn ``0.29`` into ``0.28999999999999998``. Times are REAL unix seconds (UTC).

The schema is created and upgraded by :data:`MIGRATIONS`, an ordered list of functions; the
number applied is kept in ``PRAGMA user_version``, so opening an old file upgrades it in place
and opening it from two processes at once applies each step exactly once.

This module and :mod:`oms.userref` are the only ones that touch SQLite.
"""

from __future__ import annotations

import enum
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import attrs
import sqlite_utils

from oms._decimal import fmt, to_decimal
from oms._sqlite import SequenceFile, migrator
from oms.account import AccountIdentity
from oms.errors import DatabaseBindingError, ValidationError
from oms.models import Order, OrderStatus, Price

__all__ = [
    "CLOSED_STATUSES",
    "MIGRATIONS",
    "OPEN_STATUSES",
    "Group",
    "Intent",
    "IntentState",
    "OrderCache",
]

#: Statuses of orders that can still trade (``pending`` = accepted, not yet on the book).
OPEN_STATUSES = (OrderStatus.PENDING, OrderStatus.OPEN)
#: Statuses of orders that are done.
CLOSED_STATUSES = (OrderStatus.CLOSED, OrderStatus.CANCELED, OrderStatus.EXPIRED)
_CLOSED_VALUES = [s.value for s in CLOSED_STATUSES]
_OPEN_VALUES = {s.value for s in OPEN_STATUSES}


class IntentState(str, enum.Enum):
    """Where a placement stands.

    ``pending`` is written before the request leaves; a crash leaves it so, and
    :meth:`oms.OrderManager.recover` resolves it into ``placed`` or ``absent``.
    """

    PENDING = "pending"  # written, request in flight (or the process died with it in flight)
    PLACED = "placed"  # the exchange has the order; ``txid`` says which
    REJECTED = "rejected"  # the exchange refused it for certain; nothing was placed
    ABSENT = "absent"  # provably never placed (looked up after the deadline, not found)
    UNKNOWN = "unknown"  # could not be decided yet; recover() tries again
    VALIDATED = "validated"  # a validate=True dry run that passed; nothing was placed

    @property
    def unresolved(self) -> bool:
        return self in (IntentState.PENDING, IntentState.UNKNOWN)


@attrs.frozen
class Group:
    """Many orders, one userref: the unit of a one-request group cancel.

    Kraken's ``CancelOrder`` with a userref as ``txid`` cancels every open order carrying it;
    the group records that these orders belong together (with a label for people), so the
    manager can check the cancel's ``count`` against its members.
    """

    userref: int
    label: str
    created_at: float

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Group:
        return cls(
            userref=int(row["userref"]), label=str(row["label"]), created_at=row["created_at"]
        )


@attrs.frozen
class Intent:
    """A placement as the manager meant it, written before the request is sent.

    ``params`` are the AddOrder parameters without ``deadline`` (what is needed to recognise
    the order on the exchange, or to resolve it by hand). ``created_at`` is the manager's
    estimate of the server's time when the intent was written (for people and bookkeeping).
    ``not_before`` is a time the server's clock had certainly reached before the request was
    sent (Kraken's last ``Time`` answer, never an extrapolation of a local clock): an order
    opened before it cannot be this intent's, whatever the local clock did.
    """

    id: str
    created_at: float
    userref: int
    pair: str
    side: str
    ordertype: str
    volume: Decimal
    price: Decimal | None
    params: Mapping[str, Any]
    state: IntentState
    is_group: bool = False
    validate: bool = False
    attempts: int = 0
    deadline: float | None = None
    txid: str | None = None
    owner: str | None = None
    error: str | None = None
    updated_at: float | None = None
    not_before: float | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Intent:
        return cls(
            id=row["id"],
            created_at=row["created_at"],
            userref=int(row["userref"]),
            pair=row["pair"],
            side=row["side"],
            ordertype=row["ordertype"],
            volume=to_decimal(row["volume"]),
            price=to_decimal(row["price"]) if row["price"] is not None else None,
            params=json.loads(row["params"]),
            state=IntentState(row["state"]),
            is_group=bool(row["is_group"]),
            validate=bool(row["validate"]),
            attempts=int(row["attempts"]),
            deadline=row["deadline"],
            txid=row["txid"],
            owner=row["owner"],
            error=row["error"],
            updated_at=row["updated_at"],
            not_before=row.get("not_before"),
        )

    def to_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at,
            "userref": self.userref,
            "pair": self.pair,
            "side": self.side,
            "ordertype": self.ordertype,
            "volume": fmt(self.volume),
            "price": fmt(self.price) if self.price is not None else None,
            "params": json.dumps(dict(self.params), sort_keys=True),
            "state": self.state.value,
            "is_group": int(self.is_group),
            "validate": int(self.validate),
            "attempts": self.attempts,
            "deadline": self.deadline,
            "txid": self.txid,
            "owner": self.owner,
            "error": self.error,
            "updated_at": self.updated_at,
            "not_before": self.not_before,
        }


# --- schema -------------------------------------------------------------------------------


def _m1_initial(db: sqlite_utils.Database) -> None:
    db.table("orders").create(
        {
            "txid": str,
            "userref": int,
            "cl_ord_id": str,
            "refid": str,
            "status": str,
            "pair": str,
            "side": str,
            "ordertype": str,
            "price": str,
            "price2": str,
            "leverage": str,
            "descr_order": str,
            "descr_close": str,
            "vol": str,
            "vol_exec": str,
            "cost": str,
            "fee": str,
            "avg_price": str,
            "stopprice": str,
            "limitprice": str,
            "trigger": str,
            "margin": int,
            "misc": str,
            "oflags": str,
            "reason": str,
            "sender_sub_id": str,
            "opentm": float,
            "closetm": float,
            "starttm": float,
            "expiretm": float,
            "intent_id": str,
            # When the exchange last confirmed this row; NULL = written from a placement answer.
            "synced_at": float,
        },
        pk="txid",
        not_null={"status", "pair", "side", "ordertype", "vol", "vol_exec"},
    )
    # userref first: "every order of this group / with this backup id" must stay an index seek
    # at millions of rows; opentm second serves the usual newest-first order.
    db.table("orders").create_index(["userref", "opentm"], index_name="orders_userref")
    db.table("orders").create_index(["status", "opentm"], index_name="orders_status")
    db.table("orders").create_index(["pair", "opentm"], index_name="orders_pair")
    db.table("orders").create_index(["opentm"], index_name="orders_opentm")
    db.table("orders").create_index(["intent_id"], index_name="orders_intent")

    db.table("groups").create(
        {"userref": int, "label": str, "created_at": float},
        pk="userref",
        not_null={"label", "created_at"},
    )
    db.table("groups").create_index(["label"], index_name="groups_label")

    db.table("intents").create(
        {
            "id": str,
            "created_at": float,
            "userref": int,
            "pair": str,
            "side": str,
            "ordertype": str,
            "volume": str,
            "price": str,
            "params": str,
            "state": str,
            "is_group": int,
            "validate": int,
            "attempts": int,
            "deadline": float,
            "txid": str,
            "owner": str,
            "error": str,
            "updated_at": float,
        },
        pk="id",
        not_null={
            "created_at",
            "userref",
            "pair",
            "side",
            "ordertype",
            "volume",
            "params",
            "state",
        },
    )
    db.table("intents").create_index(["state"], index_name="intents_state")
    db.table("intents").create_index(["userref"], index_name="intents_userref")
    # One exchange order can answer for one intent only (the group-userref adoption rule).
    db.table("intents").create_index(["txid"], index_name="intents_txid", unique=True)

    db.table("userref_sequences").create(
        {"name": str, "lo": int, "hi": int, "last": int},
        pk=("name", "lo", "hi"),
        not_null={"last"},
    )
    db.table("meta").create({"key": str, "value": str}, pk="key")


def _m2_sequence_kind(db: sqlite_utils.Database) -> None:
    # A counter and a timestamp allocator with one name shared a row (the key lacked the
    # kind). Each kind continues from the shared value: at or past both, so neither repeats.
    db.execute(
        "CREATE TABLE userref_sequences_v2 (kind TEXT NOT NULL, name TEXT NOT NULL, "
        "lo INTEGER NOT NULL, hi INTEGER NOT NULL, last INTEGER NOT NULL, "
        "PRIMARY KEY (kind, name, lo, hi))"
    )
    db.execute(
        "INSERT INTO userref_sequences_v2 (kind, name, lo, hi, last) "
        "SELECT k.kind, s.name, s.lo, s.hi, s.last FROM userref_sequences AS s "
        "CROSS JOIN (SELECT 'counter' AS kind UNION ALL SELECT 'timestamp') AS k"
    )
    db.execute("DROP TABLE userref_sequences")
    db.execute("ALTER TABLE userref_sequences_v2 RENAME TO userref_sequences")


def _m3_identity(db: sqlite_utils.Database) -> None:
    # not_before: the server-confirmed lower bound of an intent's send time (clock steps).
    db.execute("ALTER TABLE intents ADD COLUMN not_before REAL")
    # An order the exchange answered "unknown" for: when, and what it said.
    db.execute("ALTER TABLE orders ADD COLUMN missing_at REAL")
    db.execute("ALTER TABLE orders ADD COLUMN missing_note TEXT")


#: Schema migrations, applied in order; ``PRAGMA user_version`` counts those applied.
#: Append only: a file upgraded by an old step must never see it change.
MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (
    _m1_initial,
    _m2_sequence_kind,
    _m3_identity,
)


def _refuse_foreign(db: sqlite_utils.Database) -> None:
    """Refuse a file another schema claims by its application id (a history database):
    migrating it would mix the two and read its ``user_version`` as ours."""
    if db.execute("PRAGMA application_id").fetchone()[0] != 0:
        raise ValidationError(
            "not an oms order cache (a history database, or another application's file?); "
            "give a new file",
            field="path",
            rule="database-kind",
        )


_migrate = migrator(MIGRATIONS, what="database", before=_refuse_foreign)


_BINDING_KEYS = ("bound.base_url", "bound.account", "bound.account_label")
# Hashes of every API key this database was used with (comma-separated).
_BOUND_KEYS = "bound.keys"


def _normal_url(url: str) -> str:
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    port = f":{parts.port}" if parts.port is not None and parts.port != default else ""
    return f"{parts.scheme.lower()}://{host}{port}"


# --- order rows ---------------------------------------------------------------------------


def _dec(value: Decimal | None) -> str | None:
    return fmt(value) if value is not None else None


def _price_text(value: Price) -> str:
    # A relative price ("+5%") keeps Kraken's own notation; an absolute one is plain decimal.
    return fmt(value) if isinstance(value, Decimal) else str(value)


def _order_row(order: Order) -> dict[str, Any]:
    descr = order.descr
    return {
        "txid": order.txid,
        "userref": order.userref,
        "cl_ord_id": order.cl_ord_id,
        "refid": order.refid,
        "status": order.status.value,
        "pair": descr.pair,
        "side": descr.side.value,
        "ordertype": descr.ordertype_raw,
        "price": _price_text(descr.price),
        "price2": _price_text(descr.price2),
        "leverage": descr.leverage,
        "descr_order": descr.order,
        "descr_close": descr.close,
        "vol": fmt(order.vol),
        "vol_exec": fmt(order.vol_exec),
        "cost": fmt(order.cost),
        "fee": fmt(order.fee),
        "avg_price": fmt(order.price),
        "stopprice": _dec(order.stopprice),
        "limitprice": _dec(order.limitprice),
        "trigger": order.trigger.value if order.trigger is not None else None,
        "margin": None if order.margin is None else int(order.margin),
        "misc": ",".join(order.misc),
        "oflags": ",".join(order.oflags),
        "reason": order.reason,
        "sender_sub_id": order.sender_sub_id,
        "opentm": order.opentm,
        "closetm": order.closetm,
        "starttm": order.starttm,
        "expiretm": order.expiretm,
    }


def _order_api(row: Mapping[str, Any]) -> dict[str, Any]:
    """The order-info object Kraken would have sent for this row (for ``Order.from_api``)."""
    api: dict[str, Any] = {
        "refid": row["refid"],
        "userref": row["userref"],
        "cl_ord_id": row["cl_ord_id"],
        "status": row["status"],
        "opentm": row["opentm"],
        "starttm": row["starttm"] or 0,
        "expiretm": row["expiretm"] or 0,
        "descr": {
            "pair": row["pair"],
            "type": row["side"],
            "ordertype": row["ordertype"],
            "price": row["price"] or "0",
            "price2": row["price2"] or "0",
            "leverage": row["leverage"] or "none",
            "order": row["descr_order"] or "",
            "close": row["descr_close"] or "",
        },
        "vol": row["vol"],
        "vol_exec": row["vol_exec"],
        "cost": row["cost"] or "0",
        "fee": row["fee"] or "0",
        "price": row["avg_price"] or "0",
        "misc": row["misc"] or "",
        "oflags": row["oflags"] or "",
        "reason": row["reason"],
    }
    for key in ("stopprice", "limitprice", "closetm", "trigger", "sender_sub_id"):
        if row[key] is not None:
            api[key] = row[key]
    if row["margin"] is not None:
        api["margin"] = bool(row["margin"])
    return api


def _order_from_row(row: Mapping[str, Any]) -> Order:
    return Order.from_api(row["txid"], _order_api(row))


def _status_values(status: OrderStatus | str | Iterable[OrderStatus | str] | None) -> list[str]:
    if status is None:
        return []
    if isinstance(status, (str, OrderStatus)):
        status = [status]
    return [OrderStatus(s).value for s in status]


def _userref_holder(db: sqlite_utils.Database, userref: int) -> str | None:
    """What already carries ``userref`` (a group, an order, an intent), or None."""
    row = db.execute("SELECT label FROM groups WHERE userref = ?", [userref]).fetchone()
    if row is not None:
        return f"the group {row[0]!r}"
    row = db.execute("SELECT txid FROM orders WHERE userref = ? LIMIT 1", [userref]).fetchone()
    if row is not None:
        return f"order {row[0]}"
    row = db.execute("SELECT id FROM intents WHERE userref = ? LIMIT 1", [userref]).fetchone()
    if row is not None:
        return f"intent {row[0]}"
    return None


def _refuse_taken(db: sqlite_utils.Database, userref: int) -> None:
    holder = _userref_holder(db, userref)
    if holder is not None:
        raise ValidationError(
            f"userref {userref} is already used by {holder}",
            field="userref",
            rule="userref-in-use",
        )


def _chunks(ids: Iterable[str], size: int = 500) -> Iterator[tuple[list[str], str]]:
    """``ids`` in slices SQLite's parameter limit allows, each with its ``?, ?, ...``."""
    wanted = list(ids)
    for i in range(0, len(wanted), size):
        chunk = wanted[i : i + size]
        yield chunk, ", ".join("?" * len(chunk))


def _refuse_rewrite(known: tuple[str, int | None, str, str], new: Mapping[str, Any]) -> None:
    """An order's userref, pair and side never change on Kraken: a row that says otherwise
    for a cached txid comes from another exchange (or account), and must not overwrite the
    order this database knows."""
    _, userref, pair, side = known
    if (userref, pair, side) != (new["userref"], new["pair"], new["side"]):
        txid = new["txid"]
        raise DatabaseBindingError(
            f"the exchange reports order {txid} as userref {new['userref']} "
            f"{new['side']} {new['pair']}, but this database knows {txid} as userref "
            f"{userref} {side} {pair}: it holds another exchange's or account's orders. "
            "Nothing was overwritten; use a database of its own for this exchange"
        )


# --- the cache ----------------------------------------------------------------------------


class OrderCache(SequenceFile):
    """Orders, groups and placement intents in one SQLite file, queryable offline.

    ``path`` is a file (created if missing) or ``":memory:"`` for a private throwaway cache.
    The object may be shared by threads; use one per process (several processes may open the
    same file).
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0):
        try:
            super().__init__(path, busy_timeout=busy_timeout, migrate=_migrate)
        except ValidationError as exc:
            raise ValidationError(f"{path}: {exc}", field="path", rule=exc.rule) from None
        except sqlite3.DatabaseError as exc:
            # Opening is where a wrong file shows (not a database, locked, read-only): say so
            # here, once, instead of letting sqlite3's exception reach the caller.
            raise ValidationError(
                f"cannot use {path} as the order cache ({exc})", field="path", rule="database"
            ) from None

    # --- userref sequences (used by oms.userref) -----------------------------------------

    def _in_use(self, db: sqlite_utils.Database, userref: int) -> bool:
        return _userref_holder(db, userref) is not None

    def userref_in_use(self, userref: int) -> bool:
        """Whether any cached order, intent or group carries ``userref``."""
        with self._lock:
            return _userref_holder(self._db, userref) is not None

    # --- groups ----------------------------------------------------------------------------

    def add_group(self, group: Group) -> Group:
        """Record a new group. Refuses (:class:`~oms.errors.ValidationError`, rule
        ``userref-in-use``) a userref any order, intent or group already carries; the check
        and the insert are one transaction, so of two processes choosing one userref at
        once, exactly one gets it."""
        with self._write() as db:
            _refuse_taken(db, group.userref)
            db.table("groups").insert(attrs.asdict(group), pk="userref")
        return group

    def group(self, userref: int) -> Group | None:
        rows = self._query("SELECT * FROM groups WHERE userref = ?", [userref])
        return Group.from_row(rows[0]) if rows else None

    def groups(self, *, label: str | None = None) -> list[Group]:
        """Groups, newest first; ``label`` keeps only those with that label."""
        where, params = ("WHERE label = ?", [label]) if label is not None else ("", [])
        rows = self._query(
            f"SELECT * FROM groups {where} ORDER BY created_at DESC, userref DESC",  # noqa: S608 -- fixed fragments only
            params,
        )
        return [Group.from_row(r) for r in rows]

    # --- intents ---------------------------------------------------------------------------

    def add_intent(self, intent: Intent, *, fresh_userref: bool = False) -> Intent:
        """Record an intent. With ``fresh_userref`` (a userref from an allocator, meant to be
        unique) it is refused like :meth:`add_group` refuses a taken userref, checked in the
        insert's transaction."""
        with self._write() as db:
            if fresh_userref:
                _refuse_taken(db, intent.userref)
            db.table("intents").insert(intent.to_row(), pk="id")
        return intent

    def intent(self, intent_id: str) -> Intent | None:
        rows = self._query("SELECT * FROM intents WHERE id = ?", [intent_id])
        return Intent.from_row(rows[0]) if rows else None

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
        rows = self._query(
            f"SELECT * FROM intents {where} ORDER BY created_at, id",  # noqa: S608 -- fixed fragments only
            params,
        )
        return [Intent.from_row(r) for r in rows]

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
        re-send, and a recovery never overrules an attempt it did not see.
        """
        allowed = {"state", "attempts", "deadline", "txid", "owner", "error", "updated_at"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValidationError(f"cannot change intent fields {sorted(unknown)}", field="changes")
        values = {k: (v.value if isinstance(v, IntentState) else v) for k, v in changes.items()}
        with self._write() as db:
            row = db.execute(
                "SELECT state, attempts, deadline FROM intents WHERE id = ?", [intent_id]
            ).fetchone()
            if row is None:
                return None
            if expect_attempts is not None and row[1] != expect_attempts:
                return None
            if expect_deadline is not None and row[2] != expect_deadline:
                return None
            if expect_states is not None and row[0] not in {
                IntentState(s).value for s in expect_states
            }:
                return None
            if values:
                db.table("intents").update(intent_id, values)
            result = list(db.query("SELECT * FROM intents WHERE id = ?", [intent_id]))
        return Intent.from_row(result[0])

    def claimed_txids(self, *, exclude_intent: str | None = None) -> set[str]:
        """Txids already answering for an intent (other than ``exclude_intent``)."""
        rows = self._query(
            "SELECT txid FROM intents WHERE txid IS NOT NULL AND id IS NOT ?", [exclude_intent]
        )
        return {r["txid"] for r in rows}

    def adopt(
        self,
        intent_id: str,
        order: Order,
        *,
        synced_at: float | None,
        state_from: Iterable[IntentState],
    ) -> bool:
        """Record that ``order`` is the exchange's answer to the intent, in one transaction.

        Refuses (returns ``False``) if the txid already answers for another intent or the
        intent is no longer in one of ``state_from``.
        """
        expected = {IntentState(s).value for s in state_from}
        with self._write() as db:
            row = db.execute("SELECT state FROM intents WHERE id = ?", [intent_id]).fetchone()
            if row is None or row[0] not in expected:
                return False
            other = db.execute(
                "SELECT id FROM intents WHERE txid = ? AND id != ?", [order.txid, intent_id]
            ).fetchone()
            if other is not None:
                return False
            db.table("intents").update(
                intent_id,
                {
                    "state": IntentState.PLACED.value,
                    "txid": order.txid,
                    "error": None,
                    "updated_at": synced_at,
                },
            )
            self._upsert(db, [order], synced_at=synced_at, intent_ids={order.txid: intent_id})
        return True

    # --- orders ----------------------------------------------------------------------------

    @staticmethod
    def _upsert(
        db: sqlite_utils.Database,
        orders: Iterable[Order],
        *,
        synced_at: float | None,
        intent_ids: Mapping[str, str] | None = None,
    ) -> int:
        rows = []
        for order in orders:
            row = _order_row(order)
            row["synced_at"] = synced_at
            # Seen on the exchange again: whatever a failed lookup concluded is over.
            row["missing_at"] = None
            row["missing_note"] = None
            if intent_ids and order.txid in intent_ids:
                row["intent_id"] = intent_ids[order.txid]
            rows.append(row)
        # One read of what is cached for these txids serves both rules below.
        known: dict[str, tuple[str, int | None, str, str]] = {}
        for chunk, marks in _chunks(r["txid"] for r in rows):
            for cached in db.execute(
                f"SELECT status, userref, pair, side, txid FROM orders WHERE txid IN ({marks})",  # noqa: S608 -- placeholders only
                chunk,
            ):
                known[cached[4]] = (cached[0], cached[1], cached[2], cached[3])
        for row in rows:
            if row["txid"] in known:
                _refuse_rewrite(known[row["txid"]], row)
        # A closed order never reopens: an "open" row read before it closed (an OpenOrders
        # answer older than the ClosedOrders one) must not overwrite the final state.
        rows = [
            r
            for r in rows
            if not (
                r["status"] not in _CLOSED_VALUES
                and r["txid"] in known
                and known[r["txid"]][0] in _CLOSED_VALUES
            )
        ]
        if rows:
            # upsert keeps columns not in the row (intent_id set at placement survives a sync).
            db.table("orders").upsert_all(rows, pk="txid", alter=False)
        return len(rows)

    def upsert_orders(
        self,
        orders: Iterable[Order],
        *,
        synced_at: float | None = None,
        intent_ids: Mapping[str, str] | None = None,
    ) -> int:
        """Insert or update orders in one transaction; returns how many were written."""
        with self._write() as db:
            return self._upsert(db, orders, synced_at=synced_at, intent_ids=intent_ids)

    def apply_sync(
        self, orders: Iterable[Order], *, synced_at: float, meta: Mapping[str, str]
    ) -> int:
        """Write a sync's orders and its new cursor(s) in one transaction.

        A crash mid-way leaves the old cursor with the old rows, so the next sync fetches
        the same window again; never a new cursor without its rows.
        """
        with self._write() as db:
            written = self._upsert(db, orders, synced_at=synced_at)
            for key, value in meta.items():
                db.table("meta").upsert({"key": key, "value": value}, pk="key")
            return written

    def mark_closed(
        self,
        txids: Iterable[str],
        *,
        status: OrderStatus = OrderStatus.CANCELED,
        closetm: float,
        reason: str | None = "User requested",
    ) -> int:
        """Mark open orders as closed locally (after a confirmed cancel); returns the count."""
        ids = list(txids)
        if not ids:
            return 0
        placeholders = ", ".join("?" * len(ids))
        open_values = [s.value for s in OPEN_STATUSES]
        with self._write() as db:
            cursor = db.execute(
                f"UPDATE orders SET status = ?, closetm = ?, reason = ? "  # noqa: S608 -- placeholders only
                f"WHERE txid IN ({placeholders}) AND status IN (?, ?)",
                [OrderStatus(status).value, closetm, reason, *ids, *open_values],
            )
            return int(cursor.rowcount)

    def unsynced(self, txids: Iterable[str]) -> set[str]:
        """Those of ``txids`` known only from the placement's answer, not yet read back from
        the exchange by a sync or a lookup (their status is the ``pending`` written then)."""
        found: set[str] = set()
        for chunk, marks in _chunks(txids):
            rows = self._query(
                f"SELECT txid FROM orders WHERE synced_at IS NULL AND txid IN ({marks})",  # noqa: S608 -- placeholders only
                chunk,
            )
            found.update(r["txid"] for r in rows)
        return found

    def order(self, txid: str) -> Order | None:
        """One cached order by txid."""
        rows = self._query("SELECT * FROM orders WHERE txid = ?", [txid])
        return _order_from_row(rows[0]) if rows else None

    def _where(
        self,
        *,
        status: OrderStatus | str | Iterable[OrderStatus | str] | None,
        userref: int | None,
        group: Group | int | None,
        pair: str | None,
        side: str | None,
        since: float | None,
        until: float | None,
        txids: Iterable[str] | None,
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if group is not None:
            group_ref = group.userref if isinstance(group, Group) else group
            if userref is not None and userref != group_ref:
                raise ValidationError("userref and group disagree", field="group", rule="exclusive")
            userref = group_ref
        if userref is not None:
            clauses.append("userref = ?")
            params.append(userref)
        statuses = _status_values(status)
        if statuses:
            clauses.append(f"status IN ({', '.join('?' * len(statuses))})")
            params.extend(statuses)
            if set(statuses) & _OPEN_VALUES:
                # "Open" means "can still trade": not an order the exchange says it does not
                # know (see mark_missing); those are listed by missing_orders().
                clauses.append("missing_at IS NULL")
        if pair is not None:
            clauses.append("pair = ?")
            params.append(pair)
        if side is not None:
            clauses.append("side = ?")
            params.append(str(getattr(side, "value", side)))
        if since is not None:
            clauses.append("opentm >= ?")
            params.append(since)
        if until is not None:
            clauses.append("opentm < ?")
            params.append(until)
        if txids is not None:
            ids = list(txids)
            clauses.append(f"txid IN ({', '.join('?' * len(ids))})")
            params.extend(ids)
        return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params

    def orders(
        self,
        *,
        status: OrderStatus | str | Iterable[OrderStatus | str] | None = None,
        userref: int | None = None,
        group: Group | int | None = None,
        pair: str | None = None,
        side: str | None = None,
        since: float | None = None,
        until: float | None = None,
        txids: Iterable[str] | None = None,
        limit: int | None = None,
    ) -> list[Order]:
        """Cached orders, newest first, filtered; no network.

        ``pair`` is the altname as Kraken shows it in ``descr.pair`` (e.g. ``XBTUSD``);
        ``since``/``until`` bound the open time (``since`` inclusive, ``until`` exclusive).
        """
        where, params = self._where(
            status=status,
            userref=userref,
            group=group,
            pair=pair,
            side=side,
            since=since,
            until=until,
            txids=txids,
        )
        tail = ""
        if limit is not None:
            tail = " LIMIT ?"
            params.append(int(limit))
        rows = self._query(
            f"SELECT * FROM orders {where} ORDER BY opentm DESC, txid{tail}",  # noqa: S608 -- fixed fragments only
            params,
        )
        return [_order_from_row(r) for r in rows]

    def open_orders(self, **filters: Any) -> list[Order]:
        """Cached orders that can still trade (``pending`` or ``open``)."""
        return self.orders(status=OPEN_STATUSES, **filters)

    def closed_orders(self, **filters: Any) -> list[Order]:
        """Cached orders that are done (``closed``, ``canceled`` or ``expired``)."""
        return self.orders(status=CLOSED_STATUSES, **filters)

    def by_userref(self, userref: int) -> list[Order]:
        """Every cached order carrying ``userref`` (the "backup id" lookup), newest first."""
        return self.orders(userref=userref)

    def count(self, **filters: Any) -> int:
        where, params = self._where(
            status=filters.get("status"),
            userref=filters.get("userref"),
            group=filters.get("group"),
            pair=filters.get("pair"),
            side=filters.get("side"),
            since=filters.get("since"),
            until=filters.get("until"),
            txids=filters.get("txids"),
        )
        rows = self._query(f"SELECT count(*) AS n FROM orders {where}", params)  # noqa: S608 -- fixed fragments only
        return int(rows[0]["n"])

    def txids(
        self, *, status: OrderStatus | str | Iterable[OrderStatus | str] | None = None
    ) -> set[str]:
        """Txids of cached orders (with ``status``: as :meth:`orders` filters them)."""
        where, params = self._where(
            status=status,
            userref=None,
            group=None,
            pair=None,
            side=None,
            since=None,
            until=None,
            txids=None,
        )
        rows = self._query(f"SELECT txid FROM orders {where}", params)  # noqa: S608 -- fixed fragments only
        return {r["txid"] for r in rows}

    def mark_missing(self, notes: Mapping[str, str], *, at: float) -> int:
        """Record that the exchange does not know the cached orders ``notes`` names (asked
        for by itself, each answered its note), in one transaction, so they stop counting as
        open and stop being asked for at every sync. Seeing an order on the exchange again
        clears its mark. Returns how many cached orders were marked."""
        if not notes:
            return 0
        with self._write() as db:
            cursor = db.conn.executemany(
                "UPDATE orders SET missing_at = ?, missing_note = ? WHERE txid = ?",
                [[at, note, txid] for txid, note in notes.items()],
            )
            return int(cursor.rowcount)

    def missing_orders(self) -> list[tuple[Order, float, str]]:
        """Cached orders the exchange said it does not know: (order, when, what it said)."""
        rows = self._query(
            "SELECT * FROM orders WHERE missing_at IS NOT NULL ORDER BY missing_at, txid"
        )
        return [(_order_from_row(r), r["missing_at"], r["missing_note"]) for r in rows]

    def placed_here(self, txids: Iterable[str]) -> set[str]:
        """Which of ``txids`` this database placed (an intent answers for them)."""
        found: set[str] = set()
        for chunk, marks in _chunks(dict.fromkeys(txids)):
            rows = self._query(
                f"SELECT txid FROM intents WHERE txid IN ({marks}) "  # noqa: S608 -- placeholders only
                f"UNION SELECT txid FROM orders WHERE intent_id IS NOT NULL AND txid IN ({marks})",
                [*chunk, *chunk],
            )
            found.update(r["txid"] for r in rows)
        return found

    def members(self, userref: int) -> list[Order]:
        """Open orders of ``userref`` that this database placed (the group's own orders), as
        opposed to orders another program placed with the same userref."""
        rows = self._query(
            "SELECT * FROM orders WHERE userref = ? AND intent_id IS NOT NULL "
            "AND status IN (?, ?) AND missing_at IS NULL ORDER BY opentm DESC, txid",
            [userref, *sorted(_OPEN_VALUES)],
        )
        return [_order_from_row(r) for r in rows]

    def explain_userref_query(self) -> str:
        """SQLite's plan for the by-userref query (tests check it uses the index)."""
        rows = self._query(
            "EXPLAIN QUERY PLAN SELECT * FROM orders WHERE userref = ? ORDER BY opentm DESC", [1]
        )
        return "\n".join(str(r["detail"]) for r in rows)

    # --- which exchange and account this database belongs to -------------------------------

    def binding(self) -> tuple[str, str, str] | None:
        """``(base_url, account digest, account label)`` this database is bound to, if any."""
        url, digest, label = (self.get_meta(k) for k in _BINDING_KEYS)
        if url is None:
            return None
        return url, digest or "", label or ""

    def bind(self, base_url: str, account: AccountIdentity | None, *, rebind: bool = False) -> None:
        """Tie this database to one exchange and account, or check that it is tied to them.

        The first call records them. A later call with another base URL or account raises
        :class:`~oms.errors.DatabaseBindingError` naming both (txids and userrefs of two
        exchanges must never mix: a restarted sandbox hands out the same txids again); with
        ``rebind=True`` the new ones are recorded instead. The account is the same when the
        account names agree, or when the key is one this database has been used with (so
        naming an account later, or adding a key under the same name, needs no rebind).
        """
        url = _normal_url(base_url)
        digest = account.digest if account is not None else ""
        label = account.label if account is not None else "no key"
        key = account.key_digest if account is not None and account.key_digest else ""
        with self._write() as db:
            rows = {
                r["key"]: r["value"]
                for r in db.query(
                    "SELECT key, value FROM meta WHERE key IN (?, ?, ?, ?)",
                    [*_BINDING_KEYS, _BOUND_KEYS],
                )
            }
            bound_url = rows.get(_BINDING_KEYS[0])
            bound_digest = rows.get(_BINDING_KEYS[1], "")
            keys = {k for k in rows.get(_BOUND_KEYS, "").split(",") if k}
            if bound_url is not None and not rebind:
                same_account = (
                    not digest or not bound_digest or digest == bound_digest or key in keys
                )
                if bound_url != url or not same_account:
                    bound_label = rows.get(_BINDING_KEYS[2]) or "no key"
                    raise DatabaseBindingError(
                        f"the order database {self.path} belongs to {bound_url} ({bound_label}), "
                        f"not {url} ({label}). Its orders, txids and userrefs are that "
                        "exchange's; use another database, or rebind it (OrderManager("
                        "rebind=True), oms --rebind) if this really is the same exchange and "
                        "account"
                    )
            else:
                keys = set()
            if key:
                keys.add(key)
            values = {_BINDING_KEYS[0]: url, _BOUND_KEYS: ",".join(sorted(keys))}
            if digest:
                values[_BINDING_KEYS[1]] = digest
                values[_BINDING_KEYS[2]] = label
            for name, value in values.items():
                db.table("meta").upsert({"key": name, "value": value}, pk="key")

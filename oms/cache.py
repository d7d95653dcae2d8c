"""The SQLite order cache: orders, groups, placement intents and userref counters.

One database file holds everything the :class:`~oms.OrderManager` must remember across a
crash. It can be shared by several processes: WAL mode lets readers run beside a writer, a
busy timeout makes writers queue instead of failing, and every write (every multi-row write
included) is one ``BEGIN IMMEDIATE`` transaction, so a writer takes the lock before it reads
what it will change.

Money is stored as TEXT holding the exact decimal string, never REAL: a float column would
turn ``0.29`` into ``0.28999999999999998``. Times are REAL unix seconds (UTC).

The schema is created and upgraded by :data:`MIGRATIONS` (see :mod:`oms._cache_schema`).
The cache is cut in two: the intents (:mod:`oms._intent_store`, whose state changes follow
:data:`oms.intents.TRANSITIONS`) and the orders and groups (here, rows in
:mod:`oms._order_rows`). SQLite's exceptions never leave it: every method raises
:class:`~oms.errors.CacheError` (:class:`~oms.errors.CacheBusy` for a lock held too long)
instead.

Only the SQLite files' modules (these, :mod:`oms.account` and the history stores) touch
SQLite, all through :mod:`oms._sqlite`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from oms._cache_schema import MIGRATIONS, migrate
from oms._intent_store import IntentStore, refuse_taken
from oms._order_rows import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    OPEN_VALUES,
    chunks,
    order_from_row,
    status_values,
    upsert_orders,
)
from oms._sqlite import Database, rows, set_meta
from oms.account import AccountIdentity
from oms.errors import DatabaseBindingError, ValidationError
from oms.intents import Intent, IntentState
from oms.models import Order, OrderStatus

__all__ = [
    "CLOSED_STATUSES",
    "MIGRATIONS",
    "OPEN_STATUSES",
    "Group",
    "Intent",
    "IntentState",
    "OrderCache",
]

# The literal condition of the orders_open partial index (schema v4): a query that names it
# word for word can use the index.
_OPEN_SQL = "status IN ('pending', 'open') AND missing_at IS NULL"
_ORDER_BY = " ORDER BY opentm DESC, txid"


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


_BINDING_KEYS = ("bound.base_url", "bound.account", "bound.account_label")
# Hashes of every API key this database was used with (comma-separated).
_BOUND_KEYS = "bound.keys"


def _normal_url(url: str) -> str:
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    port = f":{parts.port}" if parts.port is not None and parts.port != default else ""
    return f"{parts.scheme.lower()}://{host}{port}"


def _where(
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
    clauses.extend(_status_clauses(status_values(status), params))
    for column, op, value in (
        ("pair", "=", pair),
        ("side", "=", None if side is None else str(getattr(side, "value", side))),
        ("opentm", ">=", since),
        ("opentm", "<", until),
    ):
        if value is not None:
            clauses.append(f"{column} {op} ?")
            params.append(value)
    if txids is not None:
        ids = list(txids)
        clauses.append(f"txid IN ({', '.join('?' * len(ids))})")
        params.extend(ids)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params


def _status_clauses(statuses: list[str], params: list[Any]) -> list[str]:
    if not statuses:
        return []
    if set(statuses) == OPEN_VALUES:
        # "Open" means "can still trade": not an order the exchange says it does not know
        # (see mark_missing); those are listed by missing_orders().
        return [_OPEN_SQL]
    params.extend(statuses)
    clauses = [f"status IN ({', '.join('?' * len(statuses))})"]
    if set(statuses) & OPEN_VALUES:
        clauses.append("missing_at IS NULL")
    return clauses


def _orders(db: Database, sql: str, params: Iterable[Any] = ()) -> list[Order]:
    return [order_from_row(r) for r in rows(db, sql, list(params))]


class OrderCache(IntentStore):
    """Orders, groups and placement intents in one SQLite file, queryable offline.

    ``path`` is a file (created if missing) or ``":memory:"`` for a private throwaway cache.
    The object may be shared by threads; use one per process (several processes may open the
    same file). Every method raises :class:`~oms.errors.CacheError` if SQLite fails.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0):
        try:
            super().__init__(path, busy_timeout=busy_timeout, migrate=migrate)
        except ValidationError as exc:
            if exc.rule == "database":
                raise
            raise ValidationError(f"{path}: {exc}", field="path", rule=exc.rule) from None

    def _unusable(self, exc: sqlite3.Error) -> Exception:
        # Opening is where a wrong file shows (not a database, read-only): the path is the
        # wrong argument. (A lock held past the busy timeout is CacheBusy instead.)
        return ValidationError(
            f"cannot use {self.path} as the order cache ({exc})", field="path", rule="database"
        )

    # --- groups ----------------------------------------------------------------------------

    def add_group(self, group: Group) -> Group:
        """Record a new group. Refuses (:class:`~oms.errors.ValidationError`, rule
        ``userref-in-use``) a userref any order, intent or group already carries; the check
        and the insert are one transaction, so of two processes choosing one userref at
        once, exactly one gets it."""
        with self._write() as db:
            refuse_taken(db, group.userref)
            db.execute(
                "INSERT INTO groups (userref, label, created_at) VALUES (?, ?, ?)",
                (group.userref, group.label, group.created_at),
            )
        return group

    def group(self, userref: int) -> Group | None:
        found = self._query("SELECT * FROM groups WHERE userref = ?", (userref,))
        return Group.from_row(found[0]) if found else None

    def groups(self, *, label: str | None = None) -> list[Group]:
        """Groups, newest first; ``label`` keeps only those with that label."""
        where, params = ("WHERE label = ?", [label]) if label is not None else ("", [])
        found = self._query(
            f"SELECT * FROM groups {where} ORDER BY created_at DESC, userref DESC",  # noqa: S608 -- fixed fragments only
            params,
        )
        return [Group.from_row(r) for r in found]

    # --- orders ----------------------------------------------------------------------------

    def upsert_orders(
        self,
        orders: Iterable[Order],
        *,
        synced_at: float | None = None,
        intent_ids: Mapping[str, str] | None = None,
    ) -> int:
        """Insert or update orders in one transaction; returns how many were written."""
        with self._write() as db:
            return upsert_orders(db, orders, synced_at=synced_at, intent_ids=intent_ids)

    def revise_orders(
        self,
        txids: Iterable[str],
        revise: Callable[[Mapping[str, Order]], Iterable[Order]],
        *,
        synced_at: float | None,
    ) -> list[Order]:
        """Read the cached orders among ``txids``, write the orders ``revise`` makes of them
        (txid -> cached order), and return them as stored: one write transaction, so nothing
        else writes in between (a live event moves the order as cached at that very moment)."""
        with self._write() as db:
            cached = {
                o.txid: o
                for chunk, marks in chunks(dict.fromkeys(txids))
                for o in _orders(db, f"SELECT * FROM orders WHERE txid IN ({marks})", chunk)  # noqa: S608 -- placeholders only
            }
            revised = list(revise(cached))
            upsert_orders(db, revised, synced_at=synced_at)
            # As stored: a revision older than the row (see the forward-only rule) is not.
            return [
                o
                for chunk, marks in chunks(dict.fromkeys(o.txid for o in revised))
                for o in _orders(db, f"SELECT * FROM orders WHERE txid IN ({marks})", chunk)  # noqa: S608 -- placeholders only
            ]

    def apply_sync(
        self, orders: Iterable[Order], *, synced_at: float, meta: Mapping[str, str]
    ) -> int:
        """Write a sync's orders and its new cursor(s) in one transaction.

        A crash mid-way leaves the old cursor with the old rows, so the next sync fetches
        the same window again; never a new cursor without its rows.
        """
        with self._write() as db:
            written = upsert_orders(db, orders, synced_at=synced_at)
            for key, value in meta.items():
                set_meta(db, key, value)
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
        ids = list(dict.fromkeys(txids))
        if not ids:
            return 0
        value = OrderStatus(status).value
        with self._write() as db:
            cursor = db.executemany(
                "UPDATE orders SET status = ?, closetm = ?, reason = ? "
                "WHERE txid = ? AND status IN ('pending', 'open')",
                [(value, closetm, reason, txid) for txid in ids],
            )
            return int(cursor.rowcount)

    def unsynced(self, txids: Iterable[str]) -> set[str]:
        """Those of ``txids`` known only from the placement's answer, not yet read back from
        the exchange by a sync or a lookup (their status is the ``pending`` written then)."""
        found: set[str] = set()
        with self._read() as db:
            for chunk, marks in chunks(txids):
                found.update(
                    r[0]
                    for r in db.execute(
                        f"SELECT txid FROM orders WHERE synced_at IS NULL AND txid IN ({marks})",  # noqa: S608 -- placeholders only
                        chunk,
                    )
                )
        return found

    def order(self, txid: str) -> Order | None:
        """One cached order by txid."""
        with self._read() as db:
            found = _orders(db, "SELECT * FROM orders WHERE txid = ?", (txid,))
        return found[0] if found else None

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
        where, params = _where(
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
        with self._read() as db:
            return _orders(db, f"SELECT * FROM orders {where}{_ORDER_BY}{tail}", params)  # noqa: S608 -- fixed fragments only

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
        keys = ("status", "userref", "group", "pair", "side", "since", "until", "txids")
        where, params = _where(**{k: filters.get(k) for k in keys})
        with self._read() as db:
            row = db.execute(f"SELECT count(*) FROM orders {where}", params).fetchone()  # noqa: S608 -- fixed fragments only
        return int(row[0])

    def txids(
        self, *, status: OrderStatus | str | Iterable[OrderStatus | str] | None = None
    ) -> set[str]:
        """Txids of cached orders (with ``status``: as :meth:`orders` filters them)."""
        params: list[Any] = []
        clauses = _status_clauses(status_values(status), params)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._read() as db:
            return {r[0] for r in db.execute(f"SELECT txid FROM orders {where}", params)}  # noqa: S608 -- fixed fragments only

    def mark_missing(self, notes: Mapping[str, str], *, at: float) -> int:
        """Record that the exchange does not know the cached orders ``notes`` names (asked
        for by itself, each answered its note), in one transaction, so they stop counting as
        open and stop being asked for at every sync. Seeing an order on the exchange again
        clears its mark. Returns how many cached orders were marked."""
        if not notes:
            return 0
        with self._write() as db:
            cursor = db.executemany(
                "UPDATE orders SET missing_at = ?, missing_note = ? WHERE txid = ?",
                [(at, note, txid) for txid, note in notes.items()],
            )
            return int(cursor.rowcount)

    def missing_orders(self) -> list[tuple[Order, float, str]]:
        """Cached orders the exchange said it does not know: (order, when, what it said)."""
        found = self._query(
            "SELECT * FROM orders WHERE missing_at IS NOT NULL ORDER BY missing_at, txid"
        )
        return [(order_from_row(r), r["missing_at"], r["missing_note"]) for r in found]

    def placed_here(self, txids: Iterable[str]) -> set[str]:
        """Which of ``txids`` this database placed (an intent answers for them)."""
        found: set[str] = set()
        with self._read() as db:
            for chunk, marks in chunks(dict.fromkeys(txids)):
                found.update(
                    r[0]
                    for r in db.execute(
                        f"SELECT txid FROM intents WHERE txid IN ({marks}) "  # noqa: S608 -- placeholders only
                        f"UNION SELECT txid FROM orders WHERE intent_id IS NOT NULL "
                        f"AND txid IN ({marks})",
                        [*chunk, *chunk],
                    )
                )
        return found

    def members(self, userref: int) -> list[Order]:
        """Open orders of ``userref`` that this database placed (the group's own orders), as
        opposed to orders another program placed with the same userref."""
        with self._read() as db:
            return _orders(
                db,
                f"SELECT * FROM orders WHERE userref = ? AND {_OPEN_SQL} "  # noqa: S608 -- fixed fragments only
                f"AND intent_id IS NOT NULL{_ORDER_BY}",
                (userref,),
            )

    def member_txids(self, userref: int) -> set[str]:
        """The txids of :meth:`members` (one index range, no order objects built): what a
        group cancel's bookkeeping needs."""
        with self._read() as db:
            found = db.execute(
                f"SELECT txid FROM orders WHERE userref = ? AND {_OPEN_SQL} "  # noqa: S608 -- fixed fragments only
                "AND intent_id IS NOT NULL",
                (userref,),
            )
            return {r[0] for r in found}

    def explain_userref_query(self) -> str:
        """SQLite's plan for the by-userref query (tests check it uses the index)."""
        found = self._query(
            "EXPLAIN QUERY PLAN SELECT * FROM orders WHERE userref = ? ORDER BY opentm DESC", [1]
        )
        return "\n".join(str(r["detail"]) for r in found)

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
            bound = dict(
                db.execute(
                    "SELECT key, value FROM meta WHERE key IN (?, ?, ?, ?)",
                    [*_BINDING_KEYS, _BOUND_KEYS],
                ).fetchall()
            )
            keys = {k for k in bound.get(_BOUND_KEYS, "").split(",") if k}
            if bound.get(_BINDING_KEYS[0]) is None or rebind:
                keys = set()
            else:
                self._check_binding(bound, url, digest, label, key in keys)
            if key:
                keys.add(key)
            values = {_BINDING_KEYS[0]: url, _BOUND_KEYS: ",".join(sorted(keys))}
            if digest:
                values[_BINDING_KEYS[1]] = digest
                values[_BINDING_KEYS[2]] = label
            for name, value in values.items():
                set_meta(db, name, value)

    def _check_binding(
        self, bound: Mapping[str, str], url: str, digest: str, label: str, known_key: bool
    ) -> None:
        bound_url = bound[_BINDING_KEYS[0]]
        bound_digest = bound.get(_BINDING_KEYS[1], "")
        same_account = not digest or not bound_digest or digest == bound_digest or known_key
        if bound_url != url or not same_account:
            bound_label = bound.get(_BINDING_KEYS[2]) or "no key"
            raise DatabaseBindingError(
                f"the order database {self.path} belongs to {bound_url} ({bound_label}), "
                f"not {url} ({label}). Its orders, txids and userrefs are that "
                "exchange's; use another database, or rebind it (OrderManager("
                "rebind=True), oms --rebind) if this really is the same exchange and "
                "account"
            )


# Kept for code that reads cached rows itself (the benchmark).
_order_from_row = order_from_row

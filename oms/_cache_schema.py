"""The order cache's schema, as the ordered migrations that build and upgrade it.

The number applied is kept in ``PRAGMA user_version``, so opening an old file upgrades it in
place and opening it from two processes at once applies each step exactly once. Append only:
a file upgraded by an old step must never see it change. The statements are the very ones
sqlite-utils wrote for versions 1 to 3 (files made by either are the same).
"""

from __future__ import annotations

from oms._sqlite import Database, Migration, migrator, script
from oms.errors import ValidationError

__all__ = ["MIGRATIONS", "migrate"]


def _create(table: str, columns: str, *, tail: str = "") -> str:
    return f'CREATE TABLE "{table}" (\n{columns}{tail}\n)'


_ORDERS = ",\n".join(
    f'   "{name}" {kind}'
    for name, kind in (
        ("txid", "TEXT PRIMARY KEY"),
        ("userref", "INTEGER"),
        ("cl_ord_id", "TEXT"),
        ("refid", "TEXT"),
        ("status", "TEXT NOT NULL"),
        ("pair", "TEXT NOT NULL"),
        ("side", "TEXT NOT NULL"),
        ("ordertype", "TEXT NOT NULL"),
        *((c, "TEXT") for c in ("price", "price2", "leverage", "descr_order", "descr_close")),
        ("vol", "TEXT NOT NULL"),
        ("vol_exec", "TEXT NOT NULL"),
        *((c, "TEXT") for c in ("cost", "fee", "avg_price", "stopprice", "limitprice")),
        ("trigger", "TEXT"),
        ("margin", "INTEGER"),
        *((c, "TEXT") for c in ("misc", "oflags", "reason", "sender_sub_id")),
        *((c, "REAL") for c in ("opentm", "closetm", "starttm", "expiretm")),
        ("intent_id", "TEXT"),
        # When the exchange last confirmed this row; NULL = written from a placement answer.
        ("synced_at", "REAL"),
    )
)

_INTENTS = ",\n".join(
    f'   "{name}" {kind}'
    for name, kind in (
        ("id", "TEXT PRIMARY KEY"),
        ("created_at", "REAL NOT NULL"),
        ("userref", "INTEGER NOT NULL"),
        *((c, "TEXT NOT NULL") for c in ("pair", "side", "ordertype", "volume")),
        ("price", "TEXT"),
        ("params", "TEXT NOT NULL"),
        ("state", "TEXT NOT NULL"),
        *((c, "INTEGER") for c in ("is_group", "validate", "attempts")),
        ("deadline", "REAL"),
        *((c, "TEXT") for c in ("txid", "owner", "error")),
        ("updated_at", "REAL"),
    )
)


def _index(name: str, table: str, columns: str, *, unique: bool = False) -> str:
    kind = "UNIQUE INDEX" if unique else "INDEX"
    return f'CREATE {kind} "{name}"\n    ON "{table}" ({columns})'


_m1_initial = script(
    _create("orders", _ORDERS),
    # userref first: "every order of this group / with this backup id" must stay an index
    # seek at millions of rows; opentm second serves the usual newest-first order.
    _index("orders_userref", "orders", '"userref", "opentm"'),
    _index("orders_status", "orders", '"status", "opentm"'),
    _index("orders_pair", "orders", '"pair", "opentm"'),
    _index("orders_opentm", "orders", '"opentm"'),
    _index("orders_intent", "orders", '"intent_id"'),
    _create(
        "groups",
        '   "userref" INTEGER PRIMARY KEY,\n   "label" TEXT NOT NULL,\n'
        '   "created_at" REAL NOT NULL',
    ),
    _index("groups_label", "groups", '"label"'),
    _create("intents", _INTENTS),
    _index("intents_state", "intents", '"state"'),
    _index("intents_userref", "intents", '"userref"'),
    # One exchange order can answer for one intent only (the group-userref adoption rule).
    _index("intents_txid", "intents", '"txid"', unique=True),
    _create(
        "userref_sequences",
        '   "name" TEXT,\n   "lo" INTEGER,\n   "hi" INTEGER,\n   "last" INTEGER NOT NULL',
        tail=',\n   PRIMARY KEY ("name", "lo", "hi")',
    ),
    _create("meta", '   "key" TEXT PRIMARY KEY,\n   "value" TEXT'),
)

# A counter and a timestamp allocator with one name shared a row (the key lacked the kind).
# Each kind continues from the shared value: at or past both, so neither repeats.
_m2_sequence_kind = script(
    "CREATE TABLE userref_sequences_v2 (kind TEXT NOT NULL, name TEXT NOT NULL, "
    "lo INTEGER NOT NULL, hi INTEGER NOT NULL, last INTEGER NOT NULL, "
    "PRIMARY KEY (kind, name, lo, hi))",
    "INSERT INTO userref_sequences_v2 (kind, name, lo, hi, last) "
    "SELECT k.kind, s.name, s.lo, s.hi, s.last FROM userref_sequences AS s "
    "CROSS JOIN (SELECT 'counter' AS kind UNION ALL SELECT 'timestamp') AS k",
    "DROP TABLE userref_sequences",
    "ALTER TABLE userref_sequences_v2 RENAME TO userref_sequences",
)

_m3_identity = script(
    # not_before: the server-confirmed lower bound of an intent's send time (clock steps).
    "ALTER TABLE intents ADD COLUMN not_before REAL",
    # An order the exchange answered "unknown" for: when, and what it said.
    "ALTER TABLE orders ADD COLUMN missing_at REAL",
    "ALTER TABLE orders ADD COLUMN missing_note TEXT",
)

_m4_open_index = script(
    # The orders that can still trade, by userref: a group's members and "open orders with
    # this userref" read only them, however many closed orders the cache holds. Partial, so
    # closed orders (the bulk of a cache) cost it nothing; the queries name the same literal
    # condition, which is what lets SQLite use it.
    "CREATE INDEX orders_open ON orders (userref, opentm) "
    "WHERE status IN ('pending', 'open') AND missing_at IS NULL",
    # missing_orders() reads the few marked rows instead of scanning the table.
    "CREATE INDEX orders_missing ON orders (missing_at) WHERE missing_at IS NOT NULL",
)

#: Schema migrations, applied in order; ``PRAGMA user_version`` counts those applied.
#: Append only: a file upgraded by an old step must never see it change.
MIGRATIONS: tuple[Migration, ...] = (
    _m1_initial,
    _m2_sequence_kind,
    _m3_identity,
    _m4_open_index,
)


def _refuse_foreign(db: Database) -> None:
    """Refuse a file another schema claims by its application id (a history database):
    migrating it would mix the two and read its ``user_version`` as ours."""
    if db.execute("PRAGMA application_id").fetchone()[0] != 0:
        raise ValidationError(
            "not an oms order cache (a history database, or another application's file?); "
            "give a new file",
            field="path",
            rule="database-kind",
        )


#: The ``migrate`` the cache opens its file with.
migrate = migrator(MIGRATIONS, what="database", before=_refuse_foreign)

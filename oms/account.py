"""Userref allocation state per Kraken account, shared by every program on this machine.

Kraken enforces no uniqueness on ``userref``, and a group cancel acts on every open order
carrying one: two programs that each count from 1 in their own order database would cancel
each other's orders. So the state that decides "this userref is free" cannot live in one
program's database. It lives here, in one small SQLite file per account, beside the nonce
state (``$OMS_DATA_DIR/accounts/`` or the user data directory), named by a hash of the
account's identity, never by the key:

- by default the identity is the API key itself (hashed), so every program using one key
  shares one sequence;
- several keys of one account are tied together by an *account name*
  (``OrderManager(account=...)``, ``$OMS_ACCOUNT``, ``oms --account``): every key given the
  same name shares the name's sequence.

Deleting and recreating an order database therefore continues the sequence instead of
starting again at 1. Userrefs seen on the exchange that this machine never handed out (an
order placed by another host or by hand, inside this program's range) are *reserved* here and
never handed out again.

Several machines on one account cannot share a file: each gets its own slice of the userref
range (:func:`oms.userref.sub_range`, ``OrderManager(userref_range=...)``, ``$OMS_USERREF_RANGE``,
``oms --userref-range``); see the userref guide.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

import attrs

from oms._sqlite import (
    Database,
    Migration,
    SequenceFile,
    advance_sequence,
    insert_sql,
    migrator,
    script,
    set_meta,
)
from oms.errors import ValidationError

__all__ = [
    "ACCOUNT_ENV",
    "RANGE_ENV",
    "AccountIdentity",
    "AccountState",
    "Reservation",
    "parse_userref_range",
]

#: Environment variable naming the account (ties several keys to one allocation state).
ACCOUNT_ENV = "OMS_ACCOUNT"
#: Environment variable giving this host its userref slice: ``LO-HI`` or ``K/N``.
RANGE_ENV = "OMS_USERREF_RANGE"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_RANGE = re.compile(r"([0-9]{1,10})-([0-9]{1,10})")
_SLICE = re.compile(r"([0-9]{1,6})/([0-9]{1,6})")


@attrs.frozen
class AccountIdentity:
    """Who the allocation state belongs to: a hash for file names and bindings, and a label
    for messages (the account name, or the key's first four characters; never the key)."""

    digest: str
    label: str
    #: A hash of the API key in use, when there is one (to recognise the key later).
    key_digest: str | None = None

    @classmethod
    def find(cls, *, key: str | None = None, name: str | None = None) -> AccountIdentity | None:
        """Like :meth:`of`, or ``None`` when there is neither a key nor a name (a public-only
        client allocates in its order cache instead)."""
        if key or name is not None or os.environ.get(ACCOUNT_ENV):
            return cls.of(key=key, name=name)
        return None

    @classmethod
    def of(cls, *, key: str | None = None, name: str | None = None) -> AccountIdentity:
        """The identity for an account ``name`` if given (else ``$OMS_ACCOUNT``), or a key."""
        if name is None:
            name = os.environ.get(ACCOUNT_ENV) or None
        key_digest = hashlib.sha256(f"key:{key}".encode()).hexdigest() if key else None
        if name is not None:
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise ValidationError(
                    "an account name is 1-64 characters: letters, digits and . _ @ -, "
                    "starting with a letter or digit",
                    field="account",
                    rule="account-name",
                )
            digest = hashlib.sha256(f"account:{name}".encode()).hexdigest()
            return cls(digest=digest, label=f"account {name!r}", key_digest=key_digest)
        if not key:
            raise ValidationError(
                "an account identity needs an API key or an account name", field="account"
            )
        assert key_digest is not None
        return cls(digest=key_digest, label=f"key {key[:4]}…", key_digest=key_digest)


@attrs.frozen
class Reservation:
    """A userref this machine must never hand out: seen on the exchange, not placed by us."""

    userref: int
    txid: str | None
    reason: str
    seen_at: float


def default_accounts_directory() -> Path:
    """``accounts/`` in the oms data directory (beside ``nonces/``)."""
    # Imported here: the nonce module decides where the data directory is, once.
    from oms.nonce import default_directory

    return default_directory().parent / "accounts"


_m1_initial = script(
    "CREATE TABLE userref_sequences (kind TEXT NOT NULL, name TEXT NOT NULL, "
    "lo INTEGER NOT NULL, hi INTEGER NOT NULL, last INTEGER NOT NULL, "
    "PRIMARY KEY (kind, name, lo, hi))",
    'CREATE TABLE "reserved" (\n   "userref" INTEGER PRIMARY KEY,\n   "txid" TEXT,\n'
    '   "reason" TEXT NOT NULL,\n   "seen_at" REAL NOT NULL\n)',
    'CREATE TABLE "meta" (\n   "key" TEXT PRIMARY KEY,\n   "value" TEXT\n)',
)


def _m2_issued(db: Database) -> None:
    # Every userref handed out here, whatever counter (kind, name, range) handed it out: two
    # counters over overlapping ranges (a host's slice and the whole range) must not both
    # hand out 1.
    db.execute("CREATE TABLE issued (userref INTEGER PRIMARY KEY)")
    db.execute("INSERT OR IGNORE INTO issued (userref) SELECT userref FROM reserved")


_MIGRATIONS: tuple[Migration, ...] = (_m1_initial, _m2_issued)
_RESERVED = ("userref", "txid", "reason", "seen_at")
_ALIAS = "alias"


_migrate = migrator(_MIGRATIONS, what="account state")


def _is_reserved(db: Database, userref: int) -> bool:
    return db.execute("SELECT 1 FROM reserved WHERE userref = ?", [userref]).fetchone() is not None


# Handed out here or reserved: one statement, two primary-key seeks.
_IN_USE = (
    "SELECT 1 FROM issued WHERE userref = :userref "
    "UNION ALL SELECT 1 FROM reserved WHERE userref = :userref"
)


def _alias(db: Database) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", [_ALIAS]).fetchone()
    return None if row is None else str(row[0])


class AccountState(SequenceFile):
    """The allocation state of one account on this machine (see the module docstring).

    Open it with :meth:`for_account`; a path is for tests and special set-ups. It offers the
    same ``advance_sequence`` as :class:`~oms.cache.OrderCache`, so every persisted allocator
    (:class:`~oms.userref.CounterAllocator`, :class:`~oms.userref.TimestampAllocator`) can keep
    its sequence here. Every value handed out is recorded, and ``skip_in_use`` steps over
    values handed out by any sequence here (whatever its range) and reserved ones.

    A key used under an account name is *tied* to the name: its own state (if it has one)
    is merged into the name's, and marked so that a program using the key without the name
    allocates from the name's state too, even one already running.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0):
        super().__init__(path, busy_timeout=busy_timeout, migrate=_migrate)
        # The account state this key's state was tied to while in use (see _tied).
        self._moved: AccountState | None = None

    @classmethod
    def for_account(
        cls,
        identity: AccountIdentity,
        *,
        directory: str | os.PathLike[str] | None = None,
    ) -> AccountState:
        """The state for ``identity``: the account name's if it has one (tying the key to it),
        else the key's (or the name's it was tied to)."""
        folder = Path(directory) if directory is not None else default_accounts_directory()
        state = cls(folder / f"{identity.digest[:40]}.sqlite")
        try:
            if identity.key_digest and identity.key_digest != identity.digest:
                with cls(folder / f"{identity.key_digest[:40]}.sqlite") as key_state:
                    key_state._tie_to(state, identity)
            else:
                alias = state.get_meta(_ALIAS)
                if alias is not None:
                    state.close()
                    state = cls(folder / f"{alias[:40]}.sqlite")
            if state.get_meta("label") is None:
                state.set_meta("label", identity.label)
        except BaseException:
            state.close()
            raise
        return state

    def _tie_to(self, named: AccountState, identity: AccountIdentity) -> None:
        """Merge this key's state into ``named`` and mark it tied, holding this file's write
        lock throughout, so no allocation from it can fall between the two."""
        with self._write() as db:
            current = _alias(db)
            if current == identity.digest:
                return
            if current is not None:
                raise ValidationError(
                    f"this API key is already tied to another account name "
                    f"({named.get_meta('label') or 'unknown'} is not it): one key, one account",
                    field="account",
                    rule="account-name",
                )
            sequences = list(db.execute("SELECT kind, name, lo, hi, last FROM userref_sequences"))
            issued = [r[0] for r in db.execute("SELECT userref FROM issued")]
            reserved = db.execute("SELECT userref, txid, reason, seen_at FROM reserved").fetchall()
            with named._write() as ndb:
                for row in sequences:
                    ndb.execute(
                        "INSERT INTO userref_sequences (kind, name, lo, hi, last) "
                        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind, name, lo, hi) "
                        "DO UPDATE SET last = max(last, excluded.last)",
                        list(row),
                    )
                ndb.executemany(
                    "INSERT OR IGNORE INTO issued (userref) VALUES (?)", [(u,) for u in issued]
                )
                ndb.executemany(insert_sql("reserved", _RESERVED, or_ignore=True), reserved)
            set_meta(db, _ALIAS, identity.digest)

    def _in_use(self, db: Database, userref: int) -> bool:
        return db.execute(_IN_USE, {"userref": userref}).fetchone() is not None

    def advance_sequence(
        self,
        name: str,
        lo: int,
        hi: int,
        step: Callable[[int | None], int],
        *,
        kind: str = "counter",
        skip_in_use: bool = False,
    ) -> int:
        """As :meth:`SequenceFile.advance_sequence <oms._sqlite.SequenceFile.advance_sequence>`,
        recording the value as issued; in the tied account's state once the key is tied."""
        if self._moved is None:
            with self._write() as db:
                alias = _alias(db)
                if alias is None:
                    in_use = (lambda v: self._in_use(db, v)) if skip_in_use else None
                    value = advance_sequence(db, (kind, name, lo, hi), step, in_use=in_use)
                    db.execute("INSERT OR IGNORE INTO issued (userref) VALUES (?)", [value])
                    return value
            self._moved = AccountState(Path(self.path).parent / f"{alias[:40]}.sqlite")
        return self._moved.advance_sequence(name, lo, hi, step, kind=kind, skip_in_use=skip_in_use)

    def close(self) -> None:
        if self._moved is not None:
            self._moved.close()
        super().close()

    def reserve(self, userref: int, *, txid: str | None, reason: str, seen_at: float) -> bool:
        """Never hand ``userref`` out again; ``False`` if it was reserved already."""
        if self._moved is not None:
            return self._moved.reserve(userref, txid=txid, reason=reason, seen_at=seen_at)
        with self._write() as db:
            if _is_reserved(db, userref):
                return False
            db.execute(insert_sql("reserved", _RESERVED), (userref, txid, reason, seen_at))
            return True

    def is_reserved(self, userref: int) -> bool:
        if self._moved is not None:
            return self._moved.is_reserved(userref)
        with self._read() as db:
            return _is_reserved(db, userref)

    def reservations(self) -> list[Reservation]:
        if self._moved is not None:
            return self._moved.reservations()
        found = self._query("SELECT * FROM reserved ORDER BY userref")
        return [Reservation(**r) for r in found]


def parse_userref_range(text: str) -> tuple[int, int]:
    """``"LO-HI"`` (inclusive) or ``"K/N"`` (slice K of N, counted from 1) as ``(lo, hi)``.

    ``"3/8"`` is the third of eight equal, disjoint slices of 1..2,147,483,647: give each of
    eight hosts its own K and their userrefs never collide.
    """
    from oms.userref import sub_range

    if not isinstance(text, str):
        raise ValidationError("a userref range is a string", field="userref_range")
    value = text.strip()
    if (match := _RANGE.fullmatch(value)) is not None:
        lo, hi = int(match[1]), int(match[2])
        return sub_range(0, 1, lo=lo, hi=hi)
    if (match := _SLICE.fullmatch(value)) is not None:
        k, n = int(match[1]), int(match[2])
        if not 1 <= k <= n:
            raise ValidationError(
                f"userref range {value!r}: K/N needs 1 <= K <= N",
                field="userref_range",
                rule="userref-range",
            )
        return sub_range(k - 1, n)
    raise ValidationError(
        f"userref range {text!r} is neither LO-HI (e.g. 1000000-1999999) nor K/N "
        "(slice K of N, e.g. 2/4)",
        field="userref_range",
        rule="userref-range",
    )

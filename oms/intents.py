"""Placement intents and the one table of how their state may change.

An :class:`Intent` is written before an AddOrder request leaves; its :class:`IntentState`
then moves along :data:`TRANSITIONS`, and only along it: the cache refuses any other write
(as a lost compare-and-set, see :meth:`oms.cache.OrderCache.update_intent`), so no caller
lists the states a change may start from by hand.

Pure: no I/O. The cache stores intents; the manager decides which transition to ask for.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from oms._decimal import fmt, to_decimal

__all__ = ["TRANSITIONS", "Intent", "IntentState", "may_become", "sources"]


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


_S = IntentState

#: Every state change an intent may make: ``TRANSITIONS[a]`` holds the states ``a`` may
#: become. A write that names a state names a transition, even to the same state (``unknown``
#: to ``unknown`` under a new owner); a write that names none (a new deadline, one more
#: attempt) changes no state and is not checked against the table.
#:
#: - ``pending``: the attempt's outcome (placed, refused, proven absent, a passed dry run), or
#:   ``unknown`` when it cannot be decided now.
#: - ``unknown``: a later lookup decides it (placed / absent), or it stays undecided under a
#:   new owner.
#: - ``absent``: only ``placed``, when the order turns up after all (Kraken's txid is the
#:   truth, whoever concluded otherwise).
#: - ``placed``, ``rejected``, ``validated``: final.
TRANSITIONS: Mapping[IntentState, frozenset[IntentState]] = {
    _S.PENDING: frozenset({_S.PLACED, _S.REJECTED, _S.ABSENT, _S.UNKNOWN, _S.VALIDATED}),
    _S.UNKNOWN: frozenset({_S.UNKNOWN, _S.PLACED, _S.ABSENT}),
    _S.ABSENT: frozenset({_S.PLACED}),
    _S.PLACED: frozenset(),
    _S.REJECTED: frozenset(),
    _S.VALIDATED: frozenset(),
}

_SOURCES: Mapping[IntentState, frozenset[IntentState]] = {
    target: frozenset(s for s, targets in TRANSITIONS.items() if target in targets)
    for target in IntentState
}


def sources(state: IntentState) -> frozenset[IntentState]:
    """Every state that may become ``state`` (the default compare-and-set of a write)."""
    return _SOURCES[IntentState(state)]


def may_become(current: IntentState, new: IntentState) -> bool:
    """Whether :data:`TRANSITIONS` lets ``current`` change into ``new``."""
    return IntentState(new) in TRANSITIONS[IntentState(current)]


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

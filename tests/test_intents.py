"""Every intent write follows the transition table: the cache allows exactly its transitions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oms.cache import OrderCache
from oms.intents import TRANSITIONS, Intent, IntentState, may_become, sources
from oms.models import Order

S = IntentState
STATES = list(IntentState)


def test_the_table_names_every_state() -> None:
    assert set(TRANSITIONS) == set(IntentState)
    for targets in TRANSITIONS.values():
        assert targets <= set(IntentState)


@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        (S.PENDING, S.PLACED, True),
        (S.PENDING, S.UNKNOWN, True),
        (S.PENDING, S.VALIDATED, True),
        (S.UNKNOWN, S.UNKNOWN, True),  # a recovery takes an undecided intent over
        (S.UNKNOWN, S.ABSENT, True),
        (S.ABSENT, S.PLACED, True),  # the order turned up after all: the txid is the truth
        (S.ABSENT, S.UNKNOWN, False),
        (S.UNKNOWN, S.REJECTED, False),
        (S.PLACED, S.ABSENT, False),
        (S.REJECTED, S.PLACED, False),
        (S.VALIDATED, S.PLACED, False),
    ],
)
def test_transitions(current: IntentState, new: IntentState, allowed: bool) -> None:
    assert may_become(current, new) is allowed
    assert (current in sources(new)) is allowed


def test_resolved_states_are_final() -> None:
    for state in (S.PLACED, S.REJECTED, S.VALIDATED):
        assert TRANSITIONS[state] == frozenset()


def _intent(intent_id: str) -> Intent:
    return Intent(
        id=intent_id,
        created_at=1_700_000_000.0,
        userref=7,
        pair="XBTUSD",
        side="buy",
        ordertype="limit",
        volume=Decimal("0.01"),
        price=Decimal("25000.1"),
        params={"pair": "XBTUSD"},
        state=S.PENDING,
    )


def _order(txid: str) -> Order:
    return Order.from_api(
        txid,
        {
            "userref": 7,
            "status": "open",
            "opentm": 1_700_000_001.0,
            "descr": {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "price": "1"},
            "vol": "0.01",
            "vol_exec": "0",
            "cost": "0",
            "fee": "0",
            "price": "0",
        },
    )


steps = st.lists(
    st.tuples(
        st.sampled_from(STATES),
        st.one_of(st.none(), st.sets(st.sampled_from(STATES))),
        st.booleans(),
    ),
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(steps=steps)
def test_the_cache_follows_the_table(steps: list[tuple[IntentState, Any, bool]]) -> None:
    """Each write is applied iff the table allows current -> new and the caller's expected
    states (when given) hold the current one; a refused write changes nothing."""
    with OrderCache(":memory:") as cache:
        cache.add_intent(_intent("i1"))
        current = S.PENDING
        for number, (new, expect, via_adopt) in enumerate(steps):
            allowed = may_become(current, new) and (expect is None or current in expect)
            if new is S.PLACED and via_adopt:
                done = cache.adopt("i1", _order(f"O{number}"), synced_at=1.0, state_from=expect)
            else:
                done = cache.update_intent("i1", expect_states=expect, state=new) is not None
            assert done is allowed, (current, new, expect)
            if done:
                current = new
            stored = cache.intent("i1")
            assert stored is not None
            assert stored.state is current


def test_a_write_that_changes_no_state_is_not_a_transition() -> None:
    with OrderCache(":memory:") as cache:
        cache.add_intent(_intent("i1"))
        assert cache.update_intent("i1", state=S.REJECTED) is not None
        changed = cache.update_intent("i1", error="seen by a person", updated_at=2.0)
        assert changed is not None
        assert changed.state is S.REJECTED
        assert changed.error == "seen by a person"

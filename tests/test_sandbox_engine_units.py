"""The sandbox engine's small parts (clock, ids, limiters, wire helpers) do what they promise."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms.sandbox.clock import Clock, ManualClock, SystemClock
from oms.sandbox.ids import IdFactory
from oms.sandbox.protocol import (
    Params,
    envelope,
    format_rfc1123,
    format_rfc3339,
    parse_form,
    parse_rfc3339,
)
from oms.sandbox.ratelimit import (
    AMEND_PENALTY,
    CANCEL_PENALTY,
    DecayingCounter,
    TokenBucket,
    age_penalty,
)


def test_manual_clock_only_moves_forward() -> None:
    clock = ManualClock(100.0)
    assert isinstance(clock, Clock)
    assert isinstance(SystemClock(), Clock)
    assert clock.advance(5) == 105.0
    clock.set(200)
    assert clock.time() == 200.0
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="forward"):
        clock.set(199)


@pytest.mark.parametrize(
    ("kind", "pattern"),
    [
        ("order", r"^O[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{6}$"),
        ("trade", r"^T[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{6}$"),
        ("amend", r"^T[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{6}$"),
        ("deposit", r"^Q[A-Z2-7]{6}-[A-Z2-7]{6}-[A-Z2-7]{6}$"),
        ("withdrawal", r"^A[A-Z2-7]{6}-[A-Z2-7]{6}-[A-Z2-7]{6}$"),
    ],
)
def test_ids_have_krakens_shapes_and_are_reproducible(kind: str, pattern: str) -> None:
    ids = IdFactory(42)
    made = [ids.next(kind) for _ in range(200)]
    assert all(re.match(pattern, x) for x in made)
    assert len(set(made)) == 200
    again = IdFactory.restore(IdFactory(42).snapshot())
    assert [again.next(kind) for _ in range(3)] == made[:3]
    resumed = IdFactory.restore(ids.snapshot())
    assert resumed.next(kind) not in made


@pytest.mark.parametrize(
    ("table", "age", "extra"),
    [
        (CANCEL_PENALTY, 0, 8),
        (CANCEL_PENALTY, 4.9, 8),
        (CANCEL_PENALTY, 5, 6),
        (CANCEL_PENALTY, 14, 5),
        (CANCEL_PENALTY, 44, 4),
        (CANCEL_PENALTY, 89, 2),
        (CANCEL_PENALTY, 299, 1),
        (CANCEL_PENALTY, 300, 0),
        (AMEND_PENALTY, 7, 2),
        (AMEND_PENALTY, 15, 0),
    ],
)
def test_age_penalties_follow_krakens_table(
    table: tuple[tuple[float, int], ...], age: float, extra: int
) -> None:
    assert age_penalty(table, age) == extra


@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0, 10)), max_size=30))
def test_decaying_counter_never_goes_negative(steps: list[tuple[float, float]]) -> None:
    counter = DecayingCounter()
    now = 0.0
    for dt, amount in steps:
        now += dt
        counter.add(now, 0.5, amount)
        assert counter.level(now, 0.5) >= 0
    assert counter.level(now + 10_000, 0.5) == 0


def test_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(2, 0.5, now=0)
    assert [bucket.take(0) for _ in range(3)] == [True, True, False]
    assert not bucket.take(1)
    assert bucket.take(2)


def test_form_parsing_keeps_close_parameters_together() -> None:
    data = parse_form("pair=XBTUSD&close%5Bordertype%5D=limit&close%5Bprice%5D=5&x=&x=2")
    assert data == {"pair": "XBTUSD", "close": {"ordertype": "limit", "price": "5"}, "x": "2"}


def test_params_read_forms_and_json() -> None:
    p = Params({"a": "5", "b": "true", "c": "x,y", "d": "false"})
    assert p.integer("a") == 5
    assert p.flag("b")
    assert not p.flag("d")
    assert p.text_list("c") == ["x", "y"]
    j = Params({"a": 5, "c": ["x", "y"], "b": True}, is_json=True)
    assert j.integer("a") == 5
    assert j.text_list("c") == ["x", "y"]
    assert j.flag("b")


@pytest.mark.parametrize(
    ("t", "text"),
    [(1591502873, "Sun,  7 Jun 20 04:07:53 +0000"), (1700000000, "Tue, 14 Nov 23 22:13:20 +0000")],
)
def test_rfc1123_looks_like_krakens(t: int, text: str) -> None:
    assert format_rfc1123(t) == text


@pytest.mark.parametrize(
    "text",
    [
        "2023-11-14T22:13:20Z",
        "2023-11-14T22:13:20.000Z",
        "2023-11-14T23:13:20+01:00",
        "2023-11-14T22:13:20.000000123Z",
    ],
)
def test_rfc3339_parsing(text: str) -> None:
    assert parse_rfc3339(text) == 1700000000.0
    assert format_rfc3339(1700000000.9) == "2023-11-14T22:13:20Z"


@pytest.mark.parametrize("text", ["2023-11-14", "yesterday", "2023-11-14T22:13:20"])
def test_rfc3339_refuses_other_formats(text: str) -> None:
    with pytest.raises(ValueError, match="RFC3339"):
        parse_rfc3339(text)


def test_envelope_omits_result_on_error() -> None:
    assert envelope(None, ["EX:y"]) == b'{"error":["EX:y"]}'
    assert envelope({"a": 1}) == b'{"error":[],"result":{"a":1}}'

"""Fault rules fire exactly as specified (count, skip, seeded probability) and are validated."""

from __future__ import annotations

import json
from typing import Any

import pytest

from oms.sandbox.faults import FaultKind, Faults, html_page, method_of


def fires(faults: Faults, method: str, n: int) -> list[bool]:
    return [faults.pick(method) is not None for _ in range(n)]


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        ({}, [True, False, False, False]),
        ({"count": 2}, [True, True, False, False]),
        ({"count": 1, "skip": 2}, [False, False, True, False]),
        ({"count": 2, "skip": 1}, [False, True, True, False]),
        ({"probability": 1.0}, [True, True, True, True]),
        ({"probability": 1.0, "count": 3}, [True, True, True, False]),
    ],
)
def test_count_and_skip(options: dict[str, Any], pattern: list[bool]) -> None:
    faults = Faults()
    faults.add(method="AddOrder", kind="busy", **options)
    assert fires(faults, "AddOrder", len(pattern)) == pattern


def test_only_matching_methods_fire_and_consume() -> None:
    faults = Faults()
    faults.add(method="AddOrder", kind="unavailable", count=1)
    assert fires(faults, "CancelOrder", 3) == [False] * 3
    assert faults.pick("addorder") is not None  # method names match case-insensitively
    assert faults.rules == []


def test_star_matches_every_method_and_rules_apply_in_order() -> None:
    faults = Faults()
    first = faults.add(method="*", kind="html", status=520, count=1)
    second = faults.add(method="Time", kind="busy", count=1)
    fault = faults.pick("Time")
    assert fault is not None
    assert fault.rule_id == first.id
    fault = faults.pick("Time")
    assert fault is not None
    assert fault.rule_id == second.id
    assert faults.pick("Time") is None
    assert [f.rule_id for f in faults.fired] == [first.id, second.id]


def test_probability_is_seeded_and_roughly_right() -> None:
    runs = []
    for _ in range(2):
        faults = Faults(seed=42)
        faults.add(method="*", kind="busy", probability=0.25)
        runs.append(fires(faults, "Balance", 400))
    assert runs[0] == runs[1]
    assert 60 < sum(runs[0]) < 140
    other = Faults(seed=43)
    other.add(method="*", kind="busy", probability=0.25)
    assert fires(other, "Balance", 400) != runs[0]


@pytest.mark.parametrize(
    ("kind", "options", "when"),
    [
        ("drop_after_commit", {}, "after"),
        ("drop_before_commit", {}, "before"),
        ("delay", {"delay": 1.0}, "after"),
        ("delay", {"delay": 1.0, "when": "before"}, "before"),
        ("html", {}, "after"),
        ("html", {"status": 403}, "before"),
        ("html", {"status": 520, "when": "before"}, "before"),
        ("unavailable", {}, "before"),
        ("unavailable", {"when": "after"}, "after"),
        ("busy", {}, "before"),
        ("rate_limit", {}, "before"),
        ("error", {"error": "EGeneral:Internal error"}, "before"),
    ],
)
def test_defaults_for_when(kind: str, options: dict[str, Any], when: str) -> None:
    rule = Faults().add(kind=kind, **options)
    assert rule.when == when
    assert rule.kind is FaultKind(kind)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kind": "explode"}, "unknown fault kind"),
        ({"kind": "delay"}, "delay > 0"),
        ({"kind": "busy", "delay": 1.0}, "only applies"),
        ({"kind": "error"}, "needs error"),
        ({"kind": "error", "error": "oops"}, "Kraken error string"),
        ({"kind": "html", "status": 200}, "4xx or 5xx"),
        ({"kind": "drop_after_commit", "when": "before"}, "drop_before_commit"),
        ({"kind": "drop_before_commit", "when": "after"}, "before commit"),
        ({"kind": "busy", "when": "during"}, "before' or 'after"),
        ({"kind": "busy", "probability": 0.0}, "probability"),
        ({"kind": "busy", "probability": 1.5}, "probability"),
        ({"kind": "busy", "count": 0}, "count"),
        ({"kind": "busy", "skip": -1}, "skip"),
        ({"kind": "busy", "method": ""}, "method"),
    ],
)
def test_invalid_rules_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Faults().add(**options)


def test_json_round_trip_and_unknown_fields() -> None:
    faults = Faults()
    rule = faults.add_dict({"method": "AddOrder", "kind": "html", "status": 502, "count": 2})
    listed = json.loads(json.dumps(faults.to_list()))
    assert listed == [rule.to_dict()]
    assert listed[0]["count"] == 2
    assert listed[0]["when"] == "after"
    with pytest.raises(ValueError, match="unknown fault field"):
        faults.add_dict({"kind": "busy", "method": "AddOrder", "times": 3})
    with pytest.raises(ValueError, match="kind"):
        faults.add_dict({"method": "AddOrder"})
    assert faults.remove(rule.id)
    assert not faults.remove(rule.id)
    faults.add(kind="busy")
    faults.clear()
    assert faults.rules == []


@pytest.mark.parametrize(
    ("method", "kind", "error", "expected"),
    [
        ("AddOrder", "rate_limit", None, "EOrder:Rate limit exceeded"),
        ("CancelOrderBatch", "rate_limit", None, "EOrder:Rate limit exceeded"),
        ("Balance", "rate_limit", None, "EAPI:Rate limit exceeded"),
        ("Ticker", "rate_limit", "EGeneral:Too many requests", "EGeneral:Too many requests"),
        ("AddOrder", "unavailable", None, "EService:Unavailable"),
        ("AddOrder", "busy", None, "EService:Busy"),
        ("AddOrder", "error", "EService:Deadline elapsed", "EService:Deadline elapsed"),
    ],
)
def test_error_replacements(method: str, kind: str, error: str | None, expected: str) -> None:
    faults = Faults()
    faults.add(method=method, kind=kind, error=error)
    fault = faults.pick(method)
    assert fault is not None
    replacement = fault.replacement()
    assert replacement is not None
    status, headers, body = replacement
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"error": [expected]}


@pytest.mark.parametrize("status", [403, 502, 504, 520])
def test_html_pages_look_like_cloudflare(status: int) -> None:
    headers, body = html_page(status)
    assert headers["server"] == "cloudflare"
    assert "cf-ray" in headers
    assert body.startswith(b"<!DOCTYPE html>")
    assert b"<title>" in body


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/0/private/AddOrder", "AddOrder"),
        ("/0/public/Time?x=1", "Time"),
        ("/0/other/Time", None),
        ("/_sandbox/faults", None),
        ("/", None),
    ],
)
def test_method_of(path: str, method: str | None) -> None:
    assert method_of(path) == method

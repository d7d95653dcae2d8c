"""Programmable faults for the sandbox: what the network and Cloudflare do to real traffic.

A :class:`Faults` object holds rules; the HTTP server and the in-process adapter ask it, for
every ``/0/...`` call, whether a fault applies (:meth:`Faults.pick`) and act it out. A rule
matches a method name (``"AddOrder"``, or ``"*"`` for every method) and fires for the next
``count`` matching calls (after letting ``skip`` of them through), or with a seeded
``probability``. Every firing is recorded in :attr:`Faults.fired`.

``when`` says whether the fault strikes *before* the exchange sees the request (nothing
happened) or *after* it committed (an order was placed, yet the client cannot know): the
second is the ambiguity a reliable client must reconcile.

=====================  ==========================================================  =========
kind                   what the client sees                                        default
=====================  ==========================================================  =========
``drop_after_commit``  the connection closes with no response (``when`` is after)  after
``drop_before_commit`` the same, but the exchange never saw the request            before
``delay``              the answer comes ``delay`` seconds late (client times out)   after
``html``               an HTML page with ``status`` (502, 520, 403, ...)            see below
``unavailable``        ``EService:Unavailable``                                    before
``busy``               ``EService:Busy``                                           before
``rate_limit``         ``EOrder:Rate limit exceeded`` on trading calls, else        before
                       ``EAPI:Rate limit exceeded`` (or ``error`` if given)
``error``              any Kraken error string given as ``error``                  before
=====================  ==========================================================  =========

``html`` defaults to *before* for 4xx (Cloudflare blocks at its edge) and *after* for 5xx
(the origin may have acted before the gateway gave up).
"""

from __future__ import annotations

import enum
import json
import random
import secrets
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

__all__ = [
    "TRADING_METHODS",
    "Fault",
    "FaultKind",
    "FaultRule",
    "Faults",
    "html_page",
    "method_of",
]

#: Methods answered by Kraken's trading-engine limiter (``EOrder:Rate limit exceeded``).
TRADING_METHODS = frozenset(
    {"AddOrder", "AddOrderBatch", "AmendOrder", "EditOrder", "CancelOrder", "CancelOrderBatch"}
)


class FaultKind(str, enum.Enum):
    DROP_AFTER_COMMIT = "drop_after_commit"
    DROP_BEFORE_COMMIT = "drop_before_commit"
    DELAY = "delay"
    HTML = "html"
    UNAVAILABLE = "unavailable"
    BUSY = "busy"
    RATE_LIMIT = "rate_limit"
    ERROR = "error"


_WHEN = ("before", "after")

_ERRORS = {
    FaultKind.UNAVAILABLE: "EService:Unavailable",
    FaultKind.BUSY: "EService:Busy",
}

_STATUS_TEXT = {
    403: "Forbidden",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    520: "Web server is returning an unknown error",
    521: "Web server is down",
    522: "Connection timed out",
    524: "A timeout occurred",
}


def method_of(path: str) -> str | None:
    """``"/0/private/AddOrder"`` → ``"AddOrder"``; None for anything outside ``/0/``."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    if len(parts) == 3 and parts[0] == "0" and parts[1] in ("public", "private"):
        return parts[2]
    return None


def html_page(status: int) -> tuple[dict[str, str], bytes]:
    """Headers and body of a Cloudflare-style error page for ``status``."""
    ray = secrets.token_hex(8)
    reason = _STATUS_TEXT.get(status, "Error")
    if status == 403:
        title = "Attention Required! | Cloudflare"
        text = (
            "<h1>Sorry, you have been blocked</h1><h2>You are unable to access api.kraken.com"
            "</h2><p>This website is using a security service to protect itself from online "
            "attacks.</p>"
        )
    else:
        title = f"api.kraken.com | {status}: {reason}"
        text = f"<h1>Error {status}</h1><h2>{reason}</h2>"
    body = (
        f"<!DOCTYPE html><html><head><title>{title}</title></head><body>{text}"
        f"<p>Cloudflare Ray ID: {ray}</p></body></html>"
    ).encode()
    headers = {
        "content-type": "text/html; charset=UTF-8",
        "server": "cloudflare",
        "cf-ray": f"{ray}-AMS",
    }
    return headers, body


@attrs.frozen
class Fault:
    """One firing of a rule: what the server or adapter must do with this call."""

    rule_id: int
    method: str
    kind: FaultKind
    when: str
    status: int = 502
    delay: float = 0.0
    error: str | None = None

    @property
    def commits(self) -> bool:
        """Whether the exchange handles the request (faults striking after commit)."""
        return self.when == "after"

    @property
    def drops(self) -> bool:
        return self.kind in (FaultKind.DROP_AFTER_COMMIT, FaultKind.DROP_BEFORE_COMMIT)

    def replacement(self) -> tuple[int, dict[str, str], bytes] | None:
        """The (status, headers, body) sent instead of the exchange's answer, if any.

        None for drops and delays, which are acted out by the transport.
        """
        if self.kind is FaultKind.HTML:
            headers, body = html_page(self.status)
            return self.status, headers, body
        if self.kind in (FaultKind.DELAY,) or self.drops:
            return None
        error = self.error or _ERRORS.get(self.kind)
        if error is None and self.kind is FaultKind.RATE_LIMIT:
            error = (
                "EOrder:Rate limit exceeded"
                if self.method in TRADING_METHODS
                else "EAPI:Rate limit exceeded"
            )
        body = json.dumps({"error": [error]}, separators=(",", ":")).encode()
        return 200, {"content-type": "application/json"}, body


@attrs.define
class FaultRule:
    """A rule: which calls it strikes and how. ``remaining`` None = until removed."""

    id: int
    method: str
    kind: FaultKind
    when: str
    remaining: int | None
    probability: float | None = None
    skip: int = 0
    status: int = 502
    delay: float = 0.0
    error: str | None = None
    fired: int = 0

    def matches(self, method: str) -> bool:
        return self.method == "*" or self.method.lower() == method.lower()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "method": self.method,
            "kind": self.kind.value,
            "when": self.when,
            "count": self.remaining,
            "probability": self.probability,
            "skip": self.skip,
            "status": self.status,
            "delay": self.delay,
            "error": self.error,
            "fired": self.fired,
        }


def _kind(kind: FaultKind | str) -> FaultKind:
    try:
        return FaultKind(kind)
    except ValueError:
        choices = ", ".join(k.value for k in FaultKind)
        raise ValueError(f"unknown fault kind {kind!r} (one of: {choices})") from None


def _count(count: int | None, probability: float | None) -> int | None:
    """How many times the rule fires: ``count``, 1 by default, unbounded for a probability."""
    if probability is not None and not 0 < probability <= 1:
        raise ValueError(f"probability must be in (0, 1], got {probability!r}")
    if probability is None and count is None:
        return 1
    if count is not None and (isinstance(count, bool) or count < 1):
        raise ValueError(f"count must be >= 1, got {count!r}")
    return count


def _when(kind: FaultKind, when: str | None, status: int) -> str:
    """``before`` or ``after`` commit: fixed for drops, else as given or the kind's default."""
    if kind is FaultKind.DROP_AFTER_COMMIT:
        if when not in (None, "after"):
            raise ValueError("drop_after_commit strikes after commit; use drop_before_commit")
        return "after"
    if kind is FaultKind.DROP_BEFORE_COMMIT:
        if when not in (None, "before"):
            raise ValueError("drop_before_commit strikes before commit")
        return "before"
    if when is None:
        late = kind is FaultKind.DELAY or (kind is FaultKind.HTML and status >= 500)
        return "after" if late else "before"
    if when not in _WHEN:
        raise ValueError(f"when must be 'before' or 'after', got {when!r}")
    return when


def _check_delay(kind: FaultKind, delay: float | None) -> None:
    if kind is FaultKind.DELAY:
        if delay is None or delay <= 0:
            raise ValueError("a delay fault needs delay > 0 (seconds)")
    elif delay is not None:
        raise ValueError("delay only applies to kind='delay'")


def _check_error(kind: FaultKind, error: str | None) -> None:
    if kind is FaultKind.ERROR and not error:
        raise ValueError("kind='error' needs error='E...:...' (a Kraken error string)")
    if error is not None and not (error.startswith("E") and ":" in error):
        raise ValueError(f"error must be a Kraken error string like 'EService:Busy': {error!r}")


class Faults:
    """The fault rules of one sandbox, thread-safe and deterministic for a given ``seed``.

    >>> faults = Faults()
    >>> rule = faults.add(method="AddOrder", kind="drop_after_commit", count=1)
    """

    def __init__(self, *, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._next_id = 1
        #: Every firing, oldest first, for tests to assert on.
        self.fired: list[Fault] = []

    def __repr__(self) -> str:
        return f"Faults(rules={len(self._rules)}, fired={len(self.fired)})"

    def add(
        self,
        *,
        kind: FaultKind | str,
        method: str = "*",
        count: int | None = None,
        probability: float | None = None,
        when: str | None = None,
        status: int | None = None,
        delay: float | None = None,
        error: str | None = None,
        skip: int = 0,
    ) -> FaultRule:
        """Add a rule and return it.

        Without ``probability`` the rule fires for the next ``count`` (default 1) matching
        calls; with it, each matching call fires with that probability (seeded), at most
        ``count`` times if given. ``skip`` lets that many matching calls through first.
        """
        fault_kind = _kind(kind)
        if not method or not isinstance(method, str):
            raise ValueError("method must be a Kraken method name or '*'")
        count = _count(count, probability)
        if skip < 0:
            raise ValueError(f"skip must be >= 0, got {skip!r}")
        status = 502 if status is None else int(status)
        if fault_kind is FaultKind.HTML and not 400 <= status <= 599:
            raise ValueError(f"html status must be 4xx or 5xx, got {status!r}")
        when = _when(fault_kind, when, status)
        _check_delay(fault_kind, delay)
        _check_error(fault_kind, error)
        with self._lock:
            rule = FaultRule(
                id=self._next_id,
                method=method,
                kind=fault_kind,
                when=when,
                remaining=count,
                probability=probability,
                skip=skip,
                status=status,
                delay=float(delay or 0.0),
                error=error,
            )
            self._next_id += 1
            self._rules.append(rule)
        return rule

    def add_dict(self, data: Mapping[str, Any]) -> FaultRule:
        """Add a rule from JSON (the admin endpoint's body); unknown keys are refused."""
        allowed = {"kind", "method", "count", "probability", "when", "status", "delay"}
        allowed |= {"error", "skip"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        if "kind" not in data:
            raise ValueError("a fault needs a 'kind'")
        return self.add(**dict(data))

    def extend(self, rules: Iterable[Mapping[str, Any]]) -> list[FaultRule]:
        return [self.add_dict(rule) for rule in rules]

    def remove(self, rule_id: int) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def clear(self) -> None:
        """Remove every rule (the record of past firings stays)."""
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return [attrs.evolve(r) for r in self._rules]

    def to_list(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.rules]

    def pick(self, method: str) -> Fault | None:
        """The fault for this call of ``method``, if a rule fires (consumes the rule's count)."""
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method):
                    continue
                if rule.skip:
                    rule.skip -= 1
                    continue
                if rule.probability is not None and self._rng.random() >= rule.probability:
                    continue
                rule.fired += 1
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                fault = Fault(
                    rule_id=rule.id,
                    method=method,
                    kind=rule.kind,
                    when=rule.when,
                    status=rule.status,
                    delay=rule.delay,
                    error=rule.error,
                )
                self.fired.append(fault)
                return fault
        return None

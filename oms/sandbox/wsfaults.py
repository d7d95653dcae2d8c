"""Faults for the sandbox's WebSocket server: what a flaky network does to a v2 stream.

===============  =====================================================================
kind             what the client sees
===============  =====================================================================
``drop``         the TCP connection ends without a close frame (code 1006 at the
                 client), at once or after ``after`` more messages
``delay``        every message leaves ``seconds`` after it was produced (order kept)
``withhold``     nothing at all for ``seconds`` (no heartbeat either: a silent
                 connection); then what was held back arrives, in order
``skip``         the next ``count`` sequenced messages (of ``channel``, or any) are
                 never sent, though their ``sequence`` numbers are used up: a gap
===============  =====================================================================

A fault applies to the connections open when it is added (``connections="open"``, the
default), to every connection opened afterwards until :meth:`clear` (``"new"``), or both
(``"all"``); ``account`` narrows it to connections subscribed with that account's token.
Delays and silences are wall-clock (network) time, not the exchange clock.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["KINDS", "ConnFaults", "WsFault"]

KINDS = ("drop", "delay", "withhold", "skip")
_SCOPES = ("open", "new", "all")


@attrs.define
class ConnFaults:
    """The faults acting on one connection now (its writer thread reads them)."""

    drop_after: int | None = None
    delay: float = 0.0
    withhold_until: float = 0.0  # time.monotonic()
    skip: dict[str, int] = attrs.Factory(dict)  # channel ("*" for any) -> messages

    def take_skip(self, channel: str) -> bool:
        """Whether this sequenced message of ``channel`` is to be swallowed."""
        for name in (channel, "*"):
            left = self.skip.get(name, 0)
            if left:
                if left == 1:
                    del self.skip[name]
                else:
                    self.skip[name] = left - 1
                return True
        return False


def _positive(name: str, value: float) -> float:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return float(value)


@attrs.frozen
class WsFault:
    """One fault as added: ``WsFault("drop", after=2)``, ``WsFault("delay", seconds=0.5)``,
    ``WsFault("withhold", seconds=3)``, ``WsFault("skip", count=1, channel="executions")``."""

    kind: str
    after: int = 0
    seconds: float = 0.0
    count: int = 1
    channel: str | None = None
    account: str | None = None
    connections: str = "open"

    def __attrs_post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown websocket fault kind {self.kind!r} (one of {KINDS})")
        if self.connections not in _SCOPES:
            raise ValueError(f"connections must be one of {_SCOPES}, got {self.connections!r}")
        if isinstance(self.after, bool) or self.after < 0:
            raise ValueError(f"after must be >= 0, got {self.after!r}")
        if isinstance(self.count, bool) or self.count < 1:
            raise ValueError(f"count must be >= 1, got {self.count!r}")
        if self.kind in ("delay", "withhold"):
            _positive("seconds", self.seconds)
        elif self.seconds:
            raise ValueError(f"seconds only applies to delay and withhold, not {self.kind}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WsFault:
        """From JSON (the admin endpoint's body); unknown keys are refused."""
        fields = {a.name for a in attrs.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"unknown websocket fault field(s): {', '.join(sorted(unknown))}")
        if "kind" not in data:
            raise ValueError("a websocket fault needs a 'kind'")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def applies_to(self, account: str | None) -> bool:
        return self.account is None or self.account == account

    def apply(self, state: ConnFaults) -> None:
        """Put this fault into a connection's state."""
        if self.kind == "drop":
            state.drop_after = self.after
        elif self.kind == "delay":
            state.delay = self.seconds
        elif self.kind == "withhold":
            state.withhold_until = max(state.withhold_until, time.monotonic() + self.seconds)
        else:
            name = self.channel or "*"
            state.skip[name] = state.skip.get(name, 0) + self.count

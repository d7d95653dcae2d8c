"""Kraken's fixed conventions that more than one part of ``oms`` applies, each in one place.

- :data:`PAGE_SIZE`: ClosedOrders pages, QueryOrders' txid limit and CancelOrderBatch's size
  are all 50; :func:`pages` counts the requests ``n`` items take, :func:`chunks` cuts them.
- :func:`check_txid`: Kraken reads a "txid" made of digits (with an optional sign) as a
  userref, and cancels **every** open order carrying it; every txid ``oms`` sends passes here.
- The dead man's switch (``CancelAllOrdersAfter``): ``0`` disarms it, arming takes
  :data:`DEAD_MANS_SWITCH_MIN` to :data:`DEAD_MANS_SWITCH_MAX` seconds.
- :data:`WS_V2_ASSETS`: the assets WebSocket v2 names otherwise than REST (``BTC/USD`` is
  REST's ``XBT/USD``); the sandbox writes them, the live stream reads them.

Pure: nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TypeVar

from oms.errors import ValidationError

__all__ = [
    "DEAD_MANS_SWITCH_DISARM",
    "DEAD_MANS_SWITCH_MAX",
    "DEAD_MANS_SWITCH_MIN",
    "PAGE_SIZE",
    "WS_V2_ASSETS",
    "check_dead_mans_switch",
    "check_txid",
    "chunks",
    "pages",
]

#: REST altnames that WebSocket v2 spells otherwise (REST ``XBT/USD`` is v2 ``BTC/USD``).
WS_V2_ASSETS: Mapping[str, str] = {"XBT": "BTC", "XDG": "DOGE"}

_T = TypeVar("_T")

#: Kraken's page and batch size: ClosedOrders pages, QueryOrders txids, CancelOrderBatch ids.
PAGE_SIZE = 50

#: ``CancelAllOrdersAfter(timeout=0)`` disarms the switch.
DEAD_MANS_SWITCH_DISARM = 0
#: The shortest and longest timeouts that arm it, in seconds (Kraken: below 86400).
DEAD_MANS_SWITCH_MIN = 1
DEAD_MANS_SWITCH_MAX = 86399


def pages(n: int, size: int = PAGE_SIZE) -> int:
    """How many requests of ``size`` items ``n`` items take (0 for none)."""
    if n < 0 or size < 1:
        raise ValueError(f"pages({n}, {size}): n must be >= 0 and size >= 1")
    return -(-n // size)


def chunks(items: Sequence[_T], size: int = PAGE_SIZE) -> Iterator[Sequence[_T]]:
    """``items`` cut into consecutive runs of at most ``size``, one per request."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def check_txid(
    value: object, field: str = "txid", *, instead: str = "pass userref= (or userrefs=)"
) -> str:
    """``value`` as a txid to send, refusing what Kraken would read as a userref.

    Kraken takes an integer in a ``txid`` parameter as a userref: ``"12"``, ``"+5"`` and
    ``"-3"`` (spaces around included) would cancel or query every order carrying it, a
    whole group where the caller meant one order. ``instead`` says what to do to mean that.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{field} must be a non-empty string", field=field, rule="type")
    text = value.strip()
    digits = text[1:] if text[0] in "+-" else text
    if digits.isdigit():
        raise ValidationError(
            f"{field} {value!r} is a number, which Kraken reads as a userref and would cancel "
            f"every open order carrying it; {instead} to mean that",
            field=field,
            rule="txid-is-userref",
        )
    return value


def check_dead_mans_switch(timeout: object, *, disarm: bool = True) -> int:
    """A ``CancelAllOrdersAfter`` timeout: ``0`` (when ``disarm`` allows it) or 1..86399 s."""
    low = DEAD_MANS_SWITCH_DISARM if disarm else DEAD_MANS_SWITCH_MIN
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int)
        or not low <= timeout <= DEAD_MANS_SWITCH_MAX
    ):
        raise ValidationError(
            f"timeout must be an int in {low}..{DEAD_MANS_SWITCH_MAX}",
            field="timeout",
            rule="range",
        )
    return timeout

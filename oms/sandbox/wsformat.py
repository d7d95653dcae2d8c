"""How the sandbox writes Kraken's WebSocket v2 messages: names, times and numbers.

WebSocket v2 differs from REST in its vocabulary: symbols are ``BTC/USD`` (REST's
``XBT``/``XDG`` become ``BTC``/``DOGE``), timestamps are RFC 3339 with microseconds, and
prices and quantities are JSON *numbers*. :func:`dumps` writes :class:`~decimal.Decimal`
values as number literals with every digit the engine has, so a client parsing with
``parse_float=Decimal`` sees exactly what REST shows as strings.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from oms.conventions import WS_V2_ASSETS

__all__ = ["dumps", "number", "rfc3339", "v2_asset", "v2_symbol"]


def v2_asset(altname: str) -> str:
    """``XBT`` → ``BTC``, ``XDG`` → ``DOGE``; any other altname unchanged."""
    return WS_V2_ASSETS.get(altname, altname)


def v2_symbol(wsname: str) -> str:
    """``XBT/USD`` (a pair's REST ``wsname``) → ``BTC/USD``."""
    base, _, quote = wsname.partition("/")
    return f"{v2_asset(base)}/{v2_asset(quote)}"


def rfc3339(t: float) -> str:
    """``2024-05-01T12:00:00.123456Z``: UTC with microseconds, as WebSocket v2 writes times."""
    micros = round(t * 1_000_000)
    moment = _dt.datetime.fromtimestamp(micros // 1_000_000, tz=_dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{micros % 1_000_000:06d}Z"


def number(value: Decimal) -> str:
    """A Decimal as a JSON number literal: no exponent, no trailing zeros (``0.5``, ``100``)."""
    if not value.is_finite():
        raise ValueError(f"{value} has no JSON number form")
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _write(value: Any, out: list[str]) -> None:
    if isinstance(value, Decimal):
        out.append(number(value))
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(json.dumps(str(key)))
            out.append(":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        out.append(json.dumps(value))


def dumps(value: Any) -> str:
    """Compact JSON of ``value`` with Decimals written as exact numbers."""
    out: list[str] = []
    _write(value, out)
    return "".join(out)

"""Kraken's wire conventions, for the sandbox: bodies, parameters, times and the envelope."""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

__all__ = [
    "ApiError",
    "Params",
    "envelope",
    "format_rfc1123",
    "format_rfc3339",
    "parse_form",
    "parse_rfc3339",
]

_CLOSE_KEY = re.compile(r"^close\[(\w+)\]$")
# ASCII digits only (\d would also take Arabic-Indic or fullwidth digits) and at most 18
# digits each side of the point: more than any amount Kraken could accept.
_PLAIN_DECIMAL = re.compile(r"[+-]?([0-9]{1,18}\.?[0-9]{0,18}|\.[0-9]{1,18})")


class ApiError(Exception):
    """A Kraken error string to put in the ``error`` array (the HTTP status stays 200)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def invalid(param: str) -> ApiError:
    return ApiError(f"EGeneral:Invalid arguments:{param}")


def parse_form(text: str) -> dict[str, object]:
    """Form fields in order; ``close[ordertype]=...`` becomes ``{"close": {...}}``.

    A repeated field keeps its last value, like most form parsers.
    """
    out: dict[str, object] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        match = _CLOSE_KEY.match(key)
        if match:
            close = out.setdefault("close", {})
            if isinstance(close, dict):
                close[match.group(1)] = value
        else:
            out[key] = value
    return out


def envelope(result: object = None, errors: list[str] | None = None) -> bytes:
    body: dict[str, object] = {"error": errors or []}
    if not errors or result is not None:
        body["result"] = result
    return json.dumps(body, separators=(",", ":")).encode()


class Params:
    """Typed access to one request's parameters (form strings or JSON values)."""

    def __init__(self, data: Mapping[str, object], *, is_json: bool = False) -> None:
        self.data = dict(data)
        self.is_json = is_json

    def __contains__(self, name: str) -> bool:
        return name in self.data and self.data[name] is not None

    def raw(self, name: str) -> object:
        return self.data.get(name)

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise invalid(name)
            return None
        if isinstance(value, (bool, dict, list)):
            raise invalid(name)
        return str(value)

    def flag(self, name: str, default: bool = False) -> bool:
        """Kraken reads any value but ``false``/``0``/empty as true (its own support says
        ``validate=anything`` validates)."""
        value = self.data.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        text = str(value).strip().lower()
        return text not in ("", "false", "0")

    def integer(
        self,
        name: str,
        *,
        required: bool = False,
        default: int | None = None,
        low: int | None = None,
        high: int | None = None,
    ) -> int | None:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise invalid(name)
            return default
        if isinstance(value, bool):
            raise invalid(name)
        if isinstance(value, int):
            number = value
        elif isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]{1,20}", value.strip()):
            number = int(value.strip())
        else:
            raise invalid(name)
        if (low is not None and number < low) or (high is not None and number > high):
            raise invalid(name)
        return number

    def number(self, name: str, *, required: bool = False) -> Decimal | None:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise invalid(name)
            return None
        return parse_decimal(value, name)

    def text_list(self, name: str) -> list[str] | None:
        """A comma list in form mode, or a JSON list or comma string."""
        value = self.data.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, list):
            return [str(v).strip() for v in value]
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return [part.strip() for part in str(value).split(",") if part.strip()]
        raise invalid(name)


def parse_decimal(value: object, name: str) -> Decimal:
    """A plain decimal (no exponent, no float) or ``EGeneral:Invalid arguments:<name>``."""
    if isinstance(value, (bool, float)):
        raise invalid(name)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        # JSON bodies are parsed with parse_float=Decimal, so a JSON number arrives exact.
        if not value.is_finite():
            raise invalid(name)
        return value
    if not isinstance(value, str) or not _PLAIN_DECIMAL.fullmatch(value.strip()):
        raise invalid(name)
    try:
        return Decimal(value.strip())
    except InvalidOperation:
        raise invalid(name) from None


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch for an RFC3339 time (``Z`` or an offset; fraction allowed)."""
    value = text.strip()
    if not re.fullmatch(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
        r"([Zz]|[+-][0-9]{2}:[0-9]{2})",
        value,
    ):
        raise ValueError(f"not RFC3339: {text!r}")
    if value[-1] in "Zz":
        value = value[:-1] + "+00:00"
    # fromisoformat on 3.10 takes at most 6 fraction digits.
    value = re.sub(r"(\.\d{6})\d+", r"\1", value)
    parsed = _dt.datetime.fromisoformat(value.replace("t", "T"))
    return parsed.timestamp()


def format_rfc3339(t: float) -> str:
    """``2023-03-24T17:41:56Z``: whole seconds, UTC, as CancelAllOrdersAfter answers."""
    moment = _dt.datetime.fromtimestamp(int(t), tz=_dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_rfc1123(t: float) -> str:
    """Kraken's ``Time.rfc1123``: ``Sun,  7 Jun 20 04:07:53 +0000`` (space-padded day,
    two-digit year); built by hand because ``strftime`` follows the locale."""
    m = _dt.datetime.fromtimestamp(int(t), tz=_dt.timezone.utc)
    return (
        f"{_DAYS[m.weekday()]}, {m.day:2d} {_MONTHS[m.month - 1]} {m.year % 100:02d} "
        f"{m.hour:02d}:{m.minute:02d}:{m.second:02d} +0000"
    )


def json_loads(body: bytes) -> Any:
    return json.loads(body.decode("utf-8"), parse_float=Decimal)

"""What every group of endpoints shares: parameter checks and what they need of the client.

The endpoint groups (:mod:`oms._calls_market`, :mod:`oms._calls_orders`,
:mod:`oms._calls_funding`) are mixed into :class:`oms.client.KrakenClient`; each asks the
client's request path for one call through :meth:`Endpoints._call`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from oms._decimal import to_decimal
from oms.errors import ValidationError
from oms.models import (
    RelativePrice,
    parse_price,
)
from oms.orders import (
    check_asset_class,
    check_cl_ord_id,
    check_userref,
)
from oms.pairs import PairCache, PairRules
from oms.retry import RetryPolicy


class Endpoints:
    """What an endpoint group needs from the client it is mixed into."""

    pairs: PairCache
    pair_rules: PairRules
    _clock: Callable[[], float]

    def _call(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        private: bool | None = None,
        retry: RetryPolicy | None = None,
    ) -> Any:
        raise NotImplementedError


_OHLC_INTERVALS = frozenset({1, 5, 15, 30, 60, 240, 1440, 10080, 21600})


def _positive_int(value: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{field} must be a positive int", field=field, rule="positive")
    return value


def _as_list(value: str | Iterable[str] | None, field: str) -> list[str] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    if not items or not all(isinstance(v, str) and v for v in items):
        raise ValidationError(f"{field} must be a non-empty string or list", field=field)
    return items


def _amount(value: object, field: str) -> Decimal:
    amount = to_decimal(value, field=field)
    if amount <= 0:
        raise ValidationError(f"{field} must be positive", field=field, rule="positive")
    return amount


def _time_param(value: float | int | str | None, field: str) -> object:
    """``start``/``end``: a unix time or a txid (Kraken accepts both), sent as an integer.

    The OpenAPI spec types both as integers (or a txid). A fractional time is widened to
    whole seconds, never narrowed: ``start`` (exclusive) down, ``end`` (inclusive) up, so an
    order the caller asked for is never left out; a wider window only ever repeats orders,
    which paging drops by txid.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValidationError(f"{field} must be a unix time or a txid", field=field, rule="type")
    if isinstance(value, int):
        return value
    if not math.isfinite(value) or not 0 <= value < 10**11:
        raise ValidationError(f"{field} must be a unix time or a txid", field=field, rule="range")
    return math.floor(value) if field == "start" else math.ceil(value)


def _opt_asset_class(value: str | None) -> str | None:
    # Kraken requires it for non-crypto pairs (`tokenized_asset` for xStocks): spec
    # partials/parameters/query/asset_class.yaml, on OHLC, Trades, Depth and Ticker.
    return None if value is None else check_asset_class(value)


def _one_of(**given: object) -> tuple[str, object]:
    present = [(k, v) for k, v in given.items() if v is not None]
    if len(present) != 1:
        names = " / ".join(given)
        raise ValidationError(f"give exactly one of {names}", field=names, rule="exclusive")
    return present[0]


def _price_param(value: object, field: str) -> object:
    if value is None:
        return None
    if isinstance(value, str) and value.strip()[:1] in ("+", "-"):
        # Relative forms ("+5", "-1.5%") are sent as Kraken defines them, once their amount
        # has passed the same bounds as any other (parse_price checks it).
        price = parse_price(value, field=field)
        if isinstance(price, RelativePrice) and price.prefix in ("+", "-"):
            return str(price)
    return _amount(value, field)


def _order_filters(*, trades: bool, userref: int | None, cl_ord_id: str | None) -> dict[str, Any]:
    return {
        "trades": True if trades else None,
        "userref": None if userref is None else check_userref(userref),
        "cl_ord_id": None if cl_ord_id is None else check_cl_ord_id(cl_ord_id),
    }


def _funding_filters(
    asset: str | None,
    aclass: str | None,
    method: str | None,
    start: float | int | str | None,
    end: float | int | str | None,
    cursor: bool | str | None,
    limit: int | None,
) -> dict[str, Any]:
    if limit is not None:
        _positive_int(limit, "limit")
    if cursor is not None and not isinstance(cursor, (bool, str)):
        raise ValidationError("cursor must be True/False or a next_cursor", field="cursor")
    return {
        "asset": asset,
        "aclass": aclass,
        "method": method,
        "start": _time_param(start, "start"),
        "end": _time_param(end, "end"),
        "cursor": cursor,
        "limit": limit,
    }

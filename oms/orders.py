"""Order requests, checked completely before anything is sent.

:class:`OrderRequest` is a frozen description of one AddOrder call. Constructing it checks
everything that can be known without the exchange (types, ranges, which parameters go with
which order type, flags); :func:`check_against_pair` adds the pair's precision rules from
AssetPairs; :meth:`OrderRequest.to_params` checks the ``deadline`` against the clock and
encodes. Every refusal is an :class:`oms.errors.ValidationError` whose ``field`` names the
argument and whose ``rule`` names the rule it breaks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import attrs

from oms._decimal import fmt
from oms._order_fields import (
    _CLOSE_TYPES,
    _EXPIRETM_MIN_RELATIVE,
    _LIMIT2,
    _PRICED,
    _TRAILING,
    _TRIGGERED,
    BATCH_MAX,
    BATCH_MIN,
    DEADLINE_MAX,
    DEADLINE_MIN,
    FOK_TYPES,
    USERREF_MAX,
    USERREF_MIN,
    _asset_class,
    _cl_ord_id,
    _close_ordertype,
    _close_price,
    _close_price2,
    _deadline,
    _displayvol,
    _expiretm,
    _is_bool,
    _leverage,
    _oflags,
    _ordertype,
    _pair_name,
    _plain,
    _price,
    _price2,
    _price_text,
    _side,
    _starttm,
    _stptype,
    _timeinforce,
    _trigger,
    _userref,
    _volume,
    check_asset_class,
    check_cl_ord_id,
    check_deadline,
    check_userref,
    format_deadline,
)
from oms._pair_checks import (
    _exact_mul,
    check_against_pair,
    quantize_price,
    quantize_volume,
)
from oms.errors import ValidationError
from oms.models import (
    AssetPair,
    OFlag,
    OrderType,
    Price,
    RelativePrice,
    Side,
    StpType,
    TimeInForce,
    Trigger,
)

__all__ = [
    "BATCH_MAX",
    "BATCH_MIN",
    "DEADLINE_MAX",
    "DEADLINE_MIN",
    "FOK_TYPES",
    "USERREF_MAX",
    "USERREF_MIN",
    "OrderRequest",
    "batch_params",
    "check_against_pair",
    "check_asset_class",
    "check_cl_ord_id",
    "check_deadline",
    "check_userref",
    "format_deadline",
    "quantize_price",
    "quantize_volume",
]


# --- the request ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class OrderRequest:
    """One AddOrder call, validated on construction.

    Strings, ints and Decimals are accepted for amounts (never floats); ``price`` and
    ``price2`` may be relative (``"+5"``, ``"-1.5%"``, ``"#2"``, or a :class:`RelativePrice`).
    ``userref`` and ``cl_ord_id`` are mutually exclusive (Kraken's rule). The ``deadline`` is
    checked against the clock when the request is encoded (:meth:`to_params`), since only
    then is "now" known.
    """

    pair: str = attrs.field(validator=_pair_name)
    side: Side = attrs.field(converter=_side)
    ordertype: OrderType = attrs.field(converter=_ordertype)
    volume: Decimal = attrs.field(converter=_volume)
    price: Price | None = attrs.field(default=None, converter=_price)
    price2: Price | None = attrs.field(default=None, converter=_price2)
    trigger: Trigger | None = attrs.field(default=None, converter=_trigger)
    leverage: int | None = attrs.field(default=None, converter=_leverage)
    reduce_only: bool = attrs.field(default=False, validator=_is_bool)
    stptype: StpType | None = attrs.field(default=None, converter=_stptype)
    oflags: tuple[OFlag, ...] = attrs.field(default=(), converter=_oflags)
    timeinforce: TimeInForce | None = attrs.field(default=None, converter=_timeinforce)
    starttm: str | None = attrs.field(default=None, converter=_starttm)
    expiretm: str | None = attrs.field(default=None, converter=_expiretm)
    displayvol: Decimal | None = attrs.field(default=None, converter=_displayvol)
    userref: int | None = attrs.field(default=None, converter=_userref)
    cl_ord_id: str | None = attrs.field(default=None, converter=_cl_ord_id)
    close_ordertype: OrderType | None = attrs.field(default=None, converter=_close_ordertype)
    close_price: Price | None = attrs.field(default=None, converter=_close_price)
    close_price2: Price | None = attrs.field(default=None, converter=_close_price2)
    deadline: datetime | None = attrs.field(default=None, converter=_deadline)
    validate: bool = attrs.field(default=False, validator=_is_bool)
    #: Required by Kraken for non-crypto pairs: ``"tokenized_asset"`` for xStocks.
    asset_class: str | None = attrs.field(default=None, converter=_asset_class)

    def __attrs_post_init__(self) -> None:
        if self.userref is not None and self.cl_ord_id is not None:
            raise ValidationError(
                "userref and cl_ord_id cannot both be set on one order (Kraken's rule): use "
                "userref to tag a group, cl_ord_id to name one order",
                field="cl_ord_id",
                rule="exclusive",
            )
        if self.cl_ord_id is not None and self.close_ordertype is not None:
            # krakenfx/kraken-api-sdk rust/docs/guides/placing-orders.md, "Conditional close":
            # "the exchange rejects both together".
            raise ValidationError(
                "cl_ord_id cannot be combined with a conditional close (close_ordertype): "
                "Kraken rejects the pair; tag the order with a userref instead",
                field="cl_ord_id",
                rule="cl_ord_id-with-close",
            )
        self._check_volumes()
        _check_prices(self.ordertype, self.price, self.price2, "price", "price2")
        self._check_close()
        self._check_flags()
        self._check_times()
        if self.trigger is not None and not (
            self.ordertype in _TRIGGERED or self.close_ordertype in _TRIGGERED
        ):
            raise _not_applicable("trigger", f"{self.ordertype.value} orders have no trigger")

    def _check_volumes(self) -> None:
        # Kraken lets a margin position be closed with volume 0 ("fill the requisite quantity").
        zero_ok = self.ordertype is OrderType.SETTLE_POSITION or self.leverage is not None
        if self.volume < 0 or (self.volume == 0 and not zero_ok):
            raise ValidationError(
                f"volume must be positive, got {fmt(self.volume)}", field="volume", rule="positive"
            )
        if self.ordertype is OrderType.ICEBERG and self.displayvol is None:
            raise ValidationError(
                "an iceberg order needs displayvol (its visible part)",
                field="displayvol",
                rule="required",
            )
        if self.displayvol is None:
            return
        if self.ordertype is not OrderType.ICEBERG:
            raise _not_applicable("displayvol", "only iceberg orders have a displayvol")
        if not 0 < self.displayvol <= self.volume:
            raise ValidationError(
                f"displayvol must be positive and at most volume ({fmt(self.volume)})",
                field="displayvol",
                rule="positive",
            )
        if _exact_mul(self.displayvol, Decimal(15)) < self.volume:
            raise ValidationError(
                f"displayvol must be at least 1/15 of volume ({fmt(self.volume)})",
                field="displayvol",
                rule="displayvol-min",
            )

    def _check_close(self) -> None:
        if self.close_ordertype is None:
            if self.close_price is not None or self.close_price2 is not None:
                raise ValidationError(
                    "close_price/close_price2 need close_ordertype",
                    field="close_ordertype",
                    rule="required",
                )
            return
        if self.close_ordertype not in _CLOSE_TYPES:
            raise ValidationError(
                f"close_ordertype cannot be {self.close_ordertype.value}",
                field="close_ordertype",
                rule="enum",
            )
        _check_prices(
            self.close_ordertype, self.close_price, self.close_price2, "close_price", "close_price2"
        )

    def _check_flags(self) -> None:
        flags = set(self.oflags)
        if OFlag.POST in flags and self.ordertype is not OrderType.LIMIT:
            raise ValidationError(
                "oflags 'post' (post-only) is only for limit orders",
                field="oflags",
                rule="post-limit-only",
            )
        if {OFlag.FCIB, OFlag.FCIQ} <= flags:
            raise ValidationError(
                "oflags 'fcib' and 'fciq' are mutually exclusive", field="oflags", rule="exclusive"
            )
        if OFlag.VIQC in flags and not (
            self.side is Side.BUY and self.ordertype is OrderType.MARKET and self.leverage is None
        ):
            raise ValidationError(
                "oflags 'viqc' (volume in quote currency) is only for non-margin buy market orders",
                field="oflags",
                rule="viqc-buy-market-only",
            )

    def _check_times(self) -> None:
        if self.timeinforce is TimeInForce.FOK and self.ordertype not in FOK_TYPES:
            raise ValidationError(
                f"timeinforce FOK is only for limit-priced order types (limit, iceberg, "
                f"stop-loss-limit, take-profit-limit, trailing-stop-limit), not "
                f"{self.ordertype.value}",
                field="timeinforce",
                rule="fok-limit-only",
            )
        if self.timeinforce is TimeInForce.GTD and self.expiretm is None:
            raise ValidationError(
                "timeinforce GTD needs expiretm", field="expiretm", rule="required"
            )
        expire = self.expiretm
        if expire is not None and expire.startswith("+") and int(expire) < _EXPIRETM_MIN_RELATIVE:
            raise ValidationError(
                f"a relative expiretm must be at least +{_EXPIRETM_MIN_RELATIVE} seconds",
                field="expiretm",
                rule="range",
            )
        start = self.starttm
        if (
            expire is not None
            and start is not None
            and not expire.startswith("+")
            and not start.startswith("+")
            and int(expire) <= int(start)
        ):
            raise ValidationError("expiretm must be after starttm", field="expiretm", rule="range")

    # --- encoding ---------------------------------------------------------------------------

    def _common(self, *, json: bool) -> dict[str, object]:
        out: dict[str, object] = {
            "type": self.side.value,
            "ordertype": self.ordertype.value,
            "volume": _plain(self.volume),
        }
        if self.price is not None:
            out["price"] = _price_text(self.price)
        if self.price2 is not None:
            out["price2"] = _price_text(self.price2)
        if self.trigger is not None:
            out["trigger"] = self.trigger.value
        if self.leverage is not None:
            out["leverage"] = str(self.leverage)
        if self.reduce_only:
            out["reduce_only"] = True if json else "true"
        if self.stptype is not None:
            out["stptype"] = self.stptype.value
        if self.oflags:
            out["oflags"] = ",".join(f.value for f in self.oflags)
        if self.timeinforce is not None:
            out["timeinforce"] = self.timeinforce.value
        if self.starttm is not None:
            out["starttm"] = self.starttm
        if self.expiretm is not None:
            out["expiretm"] = self.expiretm
        if self.displayvol is not None:
            out["displayvol"] = _plain(self.displayvol)
        if self.userref is not None:
            out["userref"] = self.userref
        if self.cl_ord_id is not None:
            out["cl_ord_id"] = self.cl_ord_id
        if self.close_ordertype is not None:
            close: dict[str, object] = {"ordertype": self.close_ordertype.value}
            if self.close_price is not None:
                close["price"] = _price_text(self.close_price)
            if self.close_price2 is not None:
                close["price2"] = _price_text(self.close_price2)
            out["close"] = close
        return out

    def to_params(self, *, now: float | datetime | None = None) -> dict[str, object]:
        """AddOrder's parameters, in a stable order, ready for :func:`oms.auth.encode_form`.

        Decimals are plain strings without exponent or fractional trailing zeros; booleans
        are ``"true"``; the conditional close is a nested ``close`` dict (the form encoder
        writes ``close[ordertype]``); ``deadline`` is RFC3339 UTC with milliseconds, checked
        against ``now`` (default: the system clock); ``validate`` appears only when true.
        """
        params: dict[str, object] = {"pair": self.pair, **self._common(json=False)}
        if self.asset_class is not None:
            params["asset_class"] = self.asset_class
        if self.deadline is not None:
            check_deadline(self.deadline, time.time() if now is None else now)
            params["deadline"] = format_deadline(self.deadline)
        if self.validate:
            params["validate"] = "true"
        return params

    def to_batch_item(self) -> dict[str, object]:
        """This order as one element of AddOrderBatch's JSON ``orders`` array.

        ``pair``, ``asset_class``, ``deadline`` and ``validate`` belong to the batch (see
        :func:`batch_params`).
        """
        return self._common(json=True)

    def check_pair(self, pair: AssetPair) -> None:
        """Raise ``ValidationError`` if this order breaks ``pair``'s precision rules."""
        check_against_pair(self, pair)


def _not_applicable(field: str, why: str) -> ValidationError:
    return ValidationError(f"{field} is not applicable: {why}", field=field, rule="not-applicable")


def _check_prices(
    ordertype: OrderType, price: Price | None, price2: Price | None, f1: str, f2: str
) -> None:
    if ordertype in _PRICED and price is None:
        raise ValidationError(f"{ordertype.value} orders need {f1}", field=f1, rule="required")
    if ordertype not in _PRICED and price is not None:
        raise _not_applicable(f1, f"{ordertype.value} orders take no price")
    if ordertype in _LIMIT2 and price2 is None:
        raise ValidationError(
            f"{ordertype.value} orders need {f2} (the limit price)", field=f2, rule="required"
        )
    if ordertype not in _LIMIT2 and price2 is not None:
        raise _not_applicable(f2, f"{ordertype.value} orders take no second price")
    for field, value in ((f1, price), (f2, price2)):
        if isinstance(value, Decimal) and value <= 0:
            raise ValidationError(
                f"{field} must be positive, got {fmt(value)} (write '-{fmt(-value)}' as a string "
                "for a relative price)",
                field=field,
                rule="positive",
            )
    if ordertype in _TRAILING and not (isinstance(price, RelativePrice) and price.prefix == "+"):
        raise ValidationError(
            f"{ordertype.value} orders need a relative {f1} with '+' (e.g. '+50' or '+1.5%'); "
            "Kraken infers the direction from the side",
            field=f1,
            rule="relative-price",
        )
    if ordertype is OrderType.TRAILING_STOP_LIMIT and not (
        isinstance(price2, RelativePrice) and price2.prefix in ("+", "-")
    ):
        raise ValidationError(
            f"trailing-stop-limit orders need {f2} as an offset from the trigger with '+' or '-' "
            "(e.g. '+0' or '-0.5%')",
            field=f2,
            rule="relative-price",
        )


# --- batches ------------------------------------------------------------------------------------


def batch_params(
    orders: Sequence[OrderRequest],
    *,
    deadline: datetime | None = None,
    validate: bool = False,
    now: float | datetime | None = None,
) -> dict[str, object]:
    """AddOrderBatch's JSON body (without ``nonce``): 2 to 15 orders for one pair.

    ``deadline`` and ``validate`` apply to the whole batch, so the orders must not carry
    their own.
    """
    if not BATCH_MIN <= len(orders) <= BATCH_MAX:
        raise ValidationError(
            f"AddOrderBatch takes {BATCH_MIN} to {BATCH_MAX} orders, got {len(orders)}",
            field="orders",
            rule="batch-size",
        )
    pair = orders[0].pair
    if any(o.pair.upper() != pair.upper() for o in orders):
        raise ValidationError(
            "all orders of a batch must be for one pair", field="pair", rule="batch-pair"
        )
    if any(o.deadline is not None or o.validate for o in orders):
        raise ValidationError(
            "deadline and validate apply to the whole batch: pass them to batch_params",
            field="deadline",
            rule="batch-level",
        )
    ids = [o.cl_ord_id for o in orders if o.cl_ord_id is not None]
    if len(ids) != len(set(ids)):
        raise ValidationError(
            "cl_ord_id values must be unique within a batch", field="cl_ord_id", rule="duplicate"
        )
    classes = {o.asset_class for o in orders}
    if len(classes) > 1:
        raise ValidationError(
            "all orders of a batch must have one asset_class (they are for one pair)",
            field="asset_class",
            rule="batch-pair",
        )
    body: dict[str, object] = {"pair": pair, "orders": [o.to_batch_item() for o in orders]}
    (asset_class,) = classes
    if asset_class is not None:
        # Beside `pair`, which it qualifies.
        body["asset_class"] = asset_class
    if deadline is not None:
        check_deadline(deadline, time.time() if now is None else now)
        body["deadline"] = format_deadline(deadline)
    if validate:
        body["validate"] = True
    return body

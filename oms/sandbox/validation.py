"""Parsing and checking AddOrder parameters the way Kraken does, one error string per rule.

Every function raises :class:`~oms.sandbox.protocol.ApiError` with Kraken's string at the
first broken rule; :func:`parse_order` returns an :class:`OrderSpec` the trading engine can
place.
"""

from __future__ import annotations

import re
from decimal import Decimal

import attrs

from oms._decimal import fmt
from oms.sandbox.book import PairLike, SandboxOrder, q_down
from oms.sandbox.protocol import ApiError, Params, invalid, parse_decimal, parse_rfc3339

__all__ = [
    "LIMIT_LIKE",
    "ORDER_TYPES",
    "TRIGGERED",
    "OrderSpec",
    "check_cl_ord_id",
    "parse_deadline",
    "parse_order",
    "parse_price",
    "parse_volume",
]

ORDER_TYPES = (
    "market",
    "limit",
    "iceberg",
    "stop-loss",
    "take-profit",
    "stop-loss-limit",
    "take-profit-limit",
    "trailing-stop",
    "trailing-stop-limit",
    "settle-position",
)
_SIMULATED = ORDER_TYPES[:7]
TRIGGERED = ("stop-loss", "take-profit", "stop-loss-limit", "take-profit-limit")
LIMIT_LIKE = ("limit", "iceberg", "stop-loss-limit", "take-profit-limit")
_CLOSE_TYPES = ORDER_TYPES[1:9]
_FOK_TYPES = ("limit", "iceberg", "stop-loss-limit", "take-profit-limit", "trailing-stop-limit")
_OFLAGS = ("post", "fcib", "fciq", "nompp", "viqc")
_TIFS = ("GTC", "IOC", "GTD", "FOK")
_INT32 = (-(2**31), 2**31 - 1)
_MONTH = 31 * 86400
_PRICE = re.compile(r"([+#-]?)([0-9]{1,18}\.?[0-9]{0,18}|\.[0-9]{1,18})(%?)")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
# "Free format ascii text up to 18 characters" (spec, AddOrder cl_ord_id): printable ASCII
# without the space, which no source shows and form encoding mangles; the client refuses it
# too. Matched whole (fullmatch: with `$` a trailing newline got in).
_FREE_TEXT = re.compile(r"[\x21-\x7e]{1,18}")


@attrs.define
class OrderSpec:
    """A validated order request (AddOrder, one AddOrderBatch item, or a conditional close)."""

    pair: PairLike
    side: str
    ordertype: str
    vol: Decimal
    price: Decimal | None = None
    price2: Decimal | None = None
    userref: int | None = None
    cl_ord_id: str | None = None
    oflags: list[str] = attrs.Factory(list)
    timeinforce: str = "GTC"
    starttm: float = 0.0
    expiretm: float = 0.0
    close: dict[str, str] | None = None
    displayvol: Decimal | None = None
    trigger: str = "last"
    deadline: float | None = None
    refid: str | None = None

    @property
    def post_only(self) -> bool:
        return "post" in self.oflags

    def preview(self) -> SandboxOrder:
        """An unsaved order, for ``descr`` texts."""
        return SandboxOrder(
            txid="",
            account="",
            pair_id=self.pair.pair_id,
            side=self.side,
            ordertype=self.ordertype,
            vol=self.vol,
            price=self.price,
            price2=self.price2,
            close=self.close,
            opentm=0.0,
            hold_asset="",
            seq=0,
            touched=0.0,
        )

    def descr(self) -> dict[str, str]:
        order = self.preview()
        out = {"order": order.descr_order(self.pair)}
        if self.close:
            out["close"] = order.descr_close(self.pair)
        return out


# -- parsing ------------------------------------------------------------------------------


def _decimals_ok(value: Decimal, places: int) -> bool:
    return value == q_down(value, places)


def parse_price(raw: object, name: str, pair: PairLike, ref: Decimal, side: str) -> Decimal:
    """An absolute or relative (``+5``, ``-1.5%``, ``#2``) price, checked like Kraken does.

    Relative prices are taken from the last trade and truncated to the pair's precision, as
    Kraken announced for ``%`` prices; absolute prices must already fit it.
    """
    secondary = name == "price2"
    bad = ApiError(
        "EOrder:Invalid price:Invalid secondary price argument"
        if secondary
        else "EOrder:Invalid price:Invalid price argument"
    )
    if isinstance(raw, Decimal) or (isinstance(raw, int) and not isinstance(raw, bool)):
        value = parse_decimal(raw, name)
    elif isinstance(raw, str):
        match = _PRICE.fullmatch(raw.strip())
        if not match:
            raise bad
        sign, number, pct = match.groups()
        amount = Decimal(number)
        if sign or pct:
            offset = ref * amount / 100 if pct else amount
            if sign == "#":
                sign = "-" if side == "buy" else "+"
            value = ref - offset if sign == "-" else (ref + offset if sign == "+" else offset)
            value = q_down(value, pair.pair_decimals)
            value -= value % pair.tick_size
        else:
            value = amount
    else:
        raise bad
    if value <= 0:
        raise invalid(name)
    if not _decimals_ok(value, pair.pair_decimals):
        raise ApiError(
            f"EOrder:Invalid price:{pair.pair_id} price can only be specified up to "
            f"{pair.pair_decimals} decimals."
        )
    if value % pair.tick_size:
        raise ApiError("EOrder:Tick size check failed")
    return value


def parse_volume(raw: object, pair: PairLike, name: str = "volume") -> Decimal:
    if raw is None or raw == "":
        raise invalid(name)
    value = parse_decimal(raw, name)
    if value <= 0 or not _decimals_ok(value, pair.lot_decimals):
        raise invalid(name)
    if value < pair.ordermin:
        raise ApiError("EOrder:Order minimum not met")
    return value


def check_cl_ord_id(value: str) -> str:
    if any(p.fullmatch(value) for p in (_UUID, _HEX32, _FREE_TEXT)):
        return value
    raise invalid("cl_ord_id")


def _time_param(p: Params, name: str, now: float) -> float:
    raw = p.raw(name)
    if raw is None or raw == "" or raw == 0 or raw == "0":
        return 0.0
    if isinstance(raw, bool):
        raise invalid(name)
    if isinstance(raw, (int, Decimal)):
        return float(raw)
    text = str(raw)
    # An unencoded "+" arrives as a space: Kraken then refuses the value, and so do we.
    if text.startswith("+"):
        rest = text[1:]
        if not re.fullmatch(r"[0-9]{1,11}(\.[0-9]{1,9})?", rest):
            raise invalid(name)
        if name == "expiretm" and float(rest) < 5:
            raise invalid(name)
        return now + float(rest)
    if not re.fullmatch(r"[0-9]{1,11}(\.[0-9]{1,9})?", text):
        raise invalid(name)
    return float(text)


def parse_deadline(p: Params, received: float) -> float | None:
    """``deadline`` (RFC3339): refused when under +2 s or beyond +60 s from receipt."""
    text = p.text("deadline")
    if text is None:
        return None
    try:
        deadline = parse_rfc3339(text)
    except ValueError:
        raise invalid("deadline") from None
    # The spec: "min now() + 2 seconds, max now() + 60 seconds".
    if deadline < received + 2 or deadline > received + 60:
        raise invalid("deadline")
    return deadline


def _side_and_type(p: Params) -> tuple[str, str]:
    side = p.text("type", required=True)
    if side not in ("buy", "sell"):
        raise invalid("type")
    ordertype = p.text("ordertype", required=True)
    if ordertype not in ORDER_TYPES:
        raise invalid("ordertype")
    if ordertype not in _SIMULATED:
        # Trailing stops and position settlement need margin/trailing logic the sandbox
        # does not simulate; refusing is better than pretending.
        raise invalid("ordertype")
    return side, ordertype


def _check_no_margin(p: Params) -> None:
    leverage = p.text("leverage")
    margin = leverage is not None and leverage.lower() not in ("none", "1", "1:1")
    if p.flag("reduce_only"):
        if not margin:
            # Kraken's official SDK: reduce_only requires leverage (placing-orders.md); the
            # string is the sandbox's choice (none documented).
            raise invalid("reduce_only")
        raise ApiError("EOrder:Reduce only:No position exists")
    if margin:
        raise ApiError("EOrder:Cannot open position")


def _oflags(p: Params, side: str, ordertype: str) -> list[str]:
    oflags: list[str] = []
    for flag in p.text_list("oflags") or []:
        if flag not in _OFLAGS:
            raise invalid("oflags")
        if flag not in oflags:
            oflags.append(flag)
    if "fcib" in oflags and "fciq" in oflags:
        raise invalid("oflags")
    if "post" in oflags and ordertype != "limit":
        # "post: post-only order (available when ordertype = limit)" - not iceberg or the
        # stop/take-profit limits.
        raise invalid("oflags")
    if "viqc" in oflags:
        # Volume in quote currency is not simulated.
        raise invalid("viqc")
    if "fcib" not in oflags and "fciq" not in oflags:
        # Kraken's defaults: fee in quote when buying, in base when selling.
        oflags.append("fciq" if side == "buy" else "fcib")
    return oflags


def _required_price(p: Params, name: str, pair: PairLike, ref: Decimal, side: str) -> Decimal:
    raw = p.raw(name)
    if raw is None or raw == "":
        raise invalid(name)
    return parse_price(raw, name, pair, ref, side)


def _prices(
    p: Params, pair: PairLike, ordertype: str, ref: Decimal, side: str
) -> tuple[Decimal | None, Decimal | None]:
    price = None if ordertype == "market" else _required_price(p, "price", pair, ref, side)
    price2 = None
    if ordertype.endswith("-limit"):
        price2 = _required_price(p, "price2", pair, ref, side)
    return price, price2


def _displayvol(p: Params, ordertype: str, vol: Decimal) -> Decimal | None:
    if ordertype != "iceberg":
        return None
    displayvol = parse_decimal(p.raw("displayvol"), "displayvol") if "displayvol" in p else None
    if displayvol is None or displayvol <= 0 or displayvol * 15 < vol or displayvol > vol:
        raise invalid("displayvol")
    return displayvol


def _identity(p: Params) -> tuple[int | None, str | None]:
    """``userref`` (a signed int32) or ``cl_ord_id``, never both."""
    userref = p.integer("userref", low=_INT32[0], high=_INT32[1])
    cl_ord_id = p.text("cl_ord_id")
    if cl_ord_id is not None:
        check_cl_ord_id(cl_ord_id)
        if userref is not None:
            raise ApiError("EGeneral:Invalid arguments:cl_ord_id and userref are exclusive")
    return userref, cl_ord_id


def _timing(p: Params, ordertype: str, oflags: list[str], now: float) -> tuple[str, float, float]:
    """``(timeinforce, starttm, expiretm)``."""
    tif = (p.text("timeinforce") or "GTC").upper()
    if tif not in _TIFS:
        raise invalid("timeinforce")
    if tif == "FOK" and ordertype not in _FOK_TYPES:
        # FOK needs a limit price (Kraken's official SDK, placing-orders.md); the string is
        # the sandbox's choice.
        raise invalid("timeinforce")
    if tif in ("IOC", "FOK") and "post" in oflags:
        raise invalid("timeinforce")
    starttm = _time_param(p, "starttm", now)
    expiretm = _time_param(p, "expiretm", now)
    if expiretm and (expiretm <= max(now, starttm) or expiretm > now + _MONTH):
        raise invalid("expiretm")
    if tif == "GTD" and not expiretm:
        raise invalid("expiretm")
    return tif, starttm, expiretm


def _trigger(p: Params) -> str:
    trigger = p.text("trigger") or "last"
    if trigger not in ("last", "index"):
        raise invalid("trigger")
    stptype = p.text("stptype")
    if stptype is not None and stptype not in ("cancel-newest", "cancel-oldest", "cancel-both"):
        raise invalid("stptype")
    return trigger


def _close(
    p: Params, pair: PairLike, ref: Decimal, side: str, cl_ord_id: str | None
) -> dict[str, str] | None:
    """The conditional close (``close[ordertype]``, ``close[price]``, ``close[price2]``)."""
    raw_close = p.raw("close")
    if not (isinstance(raw_close, dict) and raw_close):
        if raw_close not in (None, "", {}):
            raise invalid("close")
        return None
    kind = raw_close.get("ordertype")
    if kind not in _CLOSE_TYPES or kind in ("trailing-stop", "trailing-stop-limit"):
        raise invalid("close[ordertype]")
    if cl_ord_id is not None:
        # Kraken's official SDK: "the exchange rejects both together" (placing-orders.md;
        # the spec's AddOrderBatch example shows the pair, the SDK's word is taken). The
        # string is the sandbox's choice.
        raise invalid("cl_ord_id")
    close = {"ordertype": str(kind)}
    for key in ("price", "price2"):
        if raw_close.get(key) not in (None, ""):
            value = parse_price(raw_close[key], key, pair, ref, side)
            close[key] = fmt(value)
    if "price" not in close or (str(kind).endswith("-limit") and "price2" not in close):
        raise invalid("close[price]")
    return close


def parse_order(
    p: Params,
    pair: PairLike,
    *,
    now: float,
    ref: Decimal,
    received: float,
    with_deadline: bool = True,
) -> OrderSpec:
    """Validate one order's parameters against ``pair``; raise :class:`ApiError` at the first
    problem, with Kraken's string for it (the checks run in Kraken's order)."""
    side, ordertype = _side_and_type(p)
    _check_no_margin(p)
    oflags = _oflags(p, side, ordertype)
    vol = parse_volume(p.raw("volume"), pair)
    price, price2 = _prices(p, pair, ordertype, ref, side)
    cost_price = price2 if price2 is not None else (price if price is not None else ref)
    if vol * cost_price < pair.costmin:
        raise ApiError("EOrder:Cost minimum not met")
    displayvol = _displayvol(p, ordertype, vol)
    userref, cl_ord_id = _identity(p)
    tif, starttm, expiretm = _timing(p, ordertype, oflags, now)
    trigger = _trigger(p)
    close = _close(p, pair, ref, side, cl_ord_id)
    deadline = parse_deadline(p, received) if with_deadline else None
    return OrderSpec(
        pair=pair,
        side=side,
        ordertype=ordertype,
        vol=vol,
        price=price,
        price2=price2,
        userref=userref,
        cl_ord_id=cl_ord_id,
        oflags=oflags,
        timeinforce=tif,
        starttm=starttm,
        expiretm=expiretm,
        close=close,
        displayvol=displayvol,
        trigger=trigger,
        deadline=deadline,
    )

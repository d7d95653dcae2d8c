"""Shared Hypothesis strategies: decimals, identifiers, pairs, order requests, order infos."""

from __future__ import annotations

import re
import string
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from oms._decimal import MAX_FRACTION_DIGITS, MAX_INTEGER_DIGITS, fmt
from oms.models import AssetPair, Order, OrderStatus, OrderType, Side
from oms.orders import FOK_TYPES, USERREF_MAX, USERREF_MIN, OrderRequest, check_cl_ord_id

PRINTABLE_ASCII = "".join(chr(c) for c in range(0x20, 0x7F))
#: What a free-text cl_ord_id may hold: printable ASCII without the space.
CL_ORD_ID_TEXT = PRINTABLE_ASCII.replace(" ", "")


@st.composite
def decimals(draw: st.DrawFn, *, max_digits: int = 40, max_exponent: int = 40) -> Decimal:
    """Any finite Decimal, built from its parts so trailing zeros and exponents vary freely."""
    digits = draw(st.lists(st.integers(0, 9), min_size=1, max_size=max_digits))
    exponent = draw(st.integers(-max_exponent, max_exponent))
    return Decimal((draw(st.integers(0, 1)), tuple(digits), exponent))


@st.composite
def positive_decimals(draw: st.DrawFn, *, max_places: int = 12, max_value: int = 10**9) -> Decimal:
    """Positive amounts with at most ``max_places`` decimals (as Kraken strings would be)."""
    places = draw(st.integers(0, max_places))
    units = draw(st.integers(1, max_value * 10**places))
    return Decimal((0, tuple(map(int, str(units))), -places))


def userrefs() -> st.SearchStrategy[int]:
    return st.integers(USERREF_MIN, USERREF_MAX)


def not_userrefs() -> st.SearchStrategy[object]:
    """Everything ``check_userref`` must refuse: other ints, bools, floats, strings, None."""
    return st.one_of(
        st.integers(max_value=USERREF_MIN - 1),
        st.integers(min_value=USERREF_MAX + 1),
        st.booleans(),
        st.floats(),
        st.integers(USERREF_MIN, USERREF_MAX).map(str),
        st.integers(USERREF_MIN, USERREF_MAX).map(float),
        st.integers(USERREF_MIN, USERREF_MAX).map(Decimal),
        st.text(),
        st.none(),
    )


def cl_ord_ids() -> st.SearchStrategy[str]:
    """Valid ``cl_ord_id`` values: long UUIDs, short UUIDs, free ASCII text up to 18 chars."""
    return st.one_of(
        st.uuids().map(str),
        st.uuids().map(lambda u: str(u).upper()),
        st.uuids().map(lambda u: u.hex),
        st.text(alphabet=CL_ORD_ID_TEXT, min_size=1, max_size=18),
    )


def _is_valid_cl_ord_id(value: object) -> bool:
    try:
        check_cl_ord_id(value)
    except ValueError:
        return False
    return True


def not_cl_ord_ids() -> st.SearchStrategy[object]:
    """Invalid ``cl_ord_id`` values: empty, too long, non-ASCII, UUID-like but malformed."""
    malformed_uuid = (
        st.uuids()
        .map(str)
        .flatmap(
            lambda u: st.sampled_from(
                [u.replace("-", ""), u[:-1] + "g", u.replace("-", "_"), u + "0", "{" + u + "}"]
            )
        )
    )
    return st.one_of(
        st.just(""),
        st.text(alphabet=PRINTABLE_ASCII, min_size=19, max_size=60),
        st.text(min_size=1, max_size=18).filter(
            lambda s: any(ord(c) > 0x7E or ord(c) < 0x20 for c in s)
        ),
        malformed_uuid,
        st.integers(),
        st.uuids(),
        st.none(),
    ).filter(lambda v: not _is_valid_cl_ord_id(v))


@st.composite
def asset_pairs(draw: st.DrawFn) -> AssetPair:
    """An AssetPairs entry with arbitrary but self-consistent precision rules."""
    pair_decimals = draw(st.integers(0, 8))
    lot_decimals = draw(st.integers(0, 10))
    unit = Decimal(1).scaleb(-pair_decimals)
    tick = draw(st.one_of(st.none(), st.sampled_from([1, 1, 2, 5, 25]).map(lambda k: unit * k)))
    lot = Decimal(1).scaleb(-lot_decimals)
    return AssetPair(
        pair_id="XTESTZUSD",
        altname="TESTUSD",
        wsname="TEST/USD",
        base="XTEST",
        quote="ZUSD",
        pair_decimals=pair_decimals,
        lot_decimals=lot_decimals,
        cost_decimals=draw(st.integers(0, 10)),
        ordermin=draw(st.one_of(st.none(), st.integers(1, 1000).map(lambda k: lot * k))),
        costmin=draw(st.one_of(st.none(), st.sampled_from(["0.5", "5", "10"]).map(Decimal))),
        tick_size=tick,
        status="online",
    )


def pair_step(pair: AssetPair) -> Decimal:
    """The price step a pair accepts: its tick, or one unit of its last price decimal."""
    return pair.tick_size or Decimal(1).scaleb(-pair.pair_decimals)


@st.composite
def limit_requests(draw: st.DrawFn, pair: AssetPair) -> OrderRequest:
    """A limit order that satisfies every rule of ``pair``."""
    step = pair_step(pair)
    lot = Decimal(1).scaleb(-pair.lot_decimals)
    price = step * draw(st.integers(1, 10**7))
    min_units = 1
    if pair.ordermin is not None:
        min_units = max(min_units, int(pair.ordermin / lot))
    if pair.costmin is not None:
        # Enough lots that price x volume reaches costmin.
        min_units = max(min_units, int(pair.costmin / (price * lot)) + 1)
    volume = lot * draw(st.integers(min_units, min_units + 10**6))
    return OrderRequest(
        pair=pair.altname,
        side=draw(st.sampled_from(Side)),
        ordertype=OrderType.LIMIT,
        volume=volume,
        price=price,
    )


relative_prices = st.builds(
    lambda sign, amount, pct: f"{sign}{amount}{'%' if pct else ''}",
    st.sampled_from("+-#"),
    positive_decimals(max_places=4, max_value=1000),
    st.booleans(),
)


@st.composite
def order_requests(draw: st.DrawFn) -> OrderRequest:
    """Any valid OrderRequest (without deadline, which depends on the clock)."""
    ordertype = draw(st.sampled_from(OrderType))
    side = draw(st.sampled_from(Side))
    price = positive_decimals(max_places=8, max_value=10**6)
    kwargs: dict[str, Any] = {
        "pair": draw(st.sampled_from(["XBTUSD", "XXBTZUSD", "ETH/USD", "xdgusd"])),
        "side": side,
        "ordertype": ordertype,
        "volume": draw(positive_decimals(max_places=8)),
    }
    if ordertype in (OrderType.TRAILING_STOP, OrderType.TRAILING_STOP_LIMIT):
        kwargs["price"] = "+" + draw(relative_prices)[1:]
    elif ordertype not in (OrderType.MARKET, OrderType.SETTLE_POSITION):
        kwargs["price"] = draw(st.one_of(price, relative_prices))
    if ordertype is OrderType.TRAILING_STOP_LIMIT:
        kwargs["price2"] = draw(st.sampled_from("+-")) + draw(relative_prices)[1:]
    elif ordertype in (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT):
        kwargs["price2"] = draw(price)
    if ordertype is OrderType.ICEBERG:
        kwargs["displayvol"] = kwargs["volume"]
    if ordertype is OrderType.SETTLE_POSITION:
        kwargs["leverage"] = draw(st.integers(2, 5))
    if ordertype is OrderType.LIMIT and draw(st.booleans()):
        kwargs["oflags"] = draw(st.sampled_from(["post", "post,fciq", "fcib"]))
    ident = draw(st.sampled_from(["none", "userref", "cl_ord_id"]))
    if ident == "userref":
        kwargs["userref"] = draw(userrefs())
    elif ident == "cl_ord_id":
        kwargs["cl_ord_id"] = draw(cl_ord_ids())
    if draw(st.booleans()):
        kwargs["timeinforce"] = "GTD"
        kwargs["expiretm"] = "+" + str(draw(st.integers(5, 86400)))
    if (
        ordertype in (OrderType.LIMIT, OrderType.STOP_LOSS)
        and ident != "cl_ord_id"  # Kraken rejects a cl_ord_id with a conditional close
        and draw(st.booleans())
    ):
        kwargs["close_ordertype"] = "stop-loss-limit"
        kwargs["close_price"] = draw(price)
        kwargs["close_price2"] = draw(price)
    if ordertype in FOK_TYPES and "timeinforce" not in kwargs and draw(st.booleans()):
        kwargs["timeinforce"] = draw(st.sampled_from(["FOK", "IOC", "GTC"]))
    if draw(st.booleans()):
        kwargs["asset_class"] = "tokenized_asset"
    kwargs["validate"] = draw(st.booleans())
    kwargs["reduce_only"] = draw(st.booleans())
    return OrderRequest(**kwargs)


@st.composite
def order_infos(draw: st.DrawFn) -> tuple[str, dict[str, object]]:
    """A (txid, order-info dict) pair shaped like OpenOrders/ClosedOrders entries."""
    txid = "O" + draw(
        st.text(alphabet=string.ascii_uppercase + string.digits, min_size=5, max_size=5)
    )
    txid += "-" + draw(st.text(alphabet=string.ascii_uppercase, min_size=5, max_size=5)) + "-ABCDEF"
    status = draw(st.sampled_from(OrderStatus))
    vol = draw(positive_decimals(max_places=8))
    filled = draw(st.integers(0, 100))
    vol_exec = (vol * filled / 100).quantize(Decimal("0.00000001"))
    price = draw(positive_decimals(max_places=2, max_value=10**5))
    info: dict[str, object] = {
        "refid": None,
        "userref": draw(st.one_of(st.just(0), st.none(), userrefs())),
        "status": status.value,
        "opentm": draw(st.floats(1.5e9, 2e9)),
        "starttm": 0,
        "expiretm": 0,
        "descr": {
            "pair": "XBTUSD",
            "type": draw(st.sampled_from(["buy", "sell"])),
            "ordertype": "limit",
            "price": fmt(price),
            "price2": "0",
            "leverage": "none",
            "order": "",
            "close": "",
        },
        "vol": fmt(vol),
        "vol_exec": fmt(vol_exec),
        "cost": fmt(vol_exec * price),
        "fee": "0.00000",
        "price": fmt(price if vol_exec else Decimal("0.00000")),
        "stopprice": "0.00000",
        "limitprice": "0.00000",
        "misc": "",
        "oflags": "fciq",
    }
    if status in (OrderStatus.CLOSED, OrderStatus.CANCELED, OrderStatus.EXPIRED):
        info["closetm"] = draw(st.floats(2e9, 2.1e9))
    return txid, info


def orders() -> st.SearchStrategy[Order]:
    return order_infos().map(lambda pair: Order.from_api(*pair))


# --- hostile input ------------------------------------------------------------------------------

_ASCII_DECIMAL = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_NON_ASCII_DIGITS = st.characters(categories=["Nd"]).filter(lambda c: c not in string.digits)


def _is_not_amount_text(text: str) -> bool:
    # A leading +, - or # is a relative price, another notation tested on its own.
    return not _ASCII_DECIMAL.fullmatch(text) and text.strip()[:1] not in ("+", "-", "#")


def not_ascii_decimals() -> st.SearchStrategy[str]:
    """Strings that are not plain ASCII decimal notation, many of them close to it:
    Unicode digits (Arabic-Indic, fullwidth, mathematical bold...), separators, exponents,
    surrounding whitespace, or anything else."""
    digits = st.text(string.digits, min_size=1, max_size=6)
    odd = st.one_of(
        _NON_ASCII_DIGITS,
        st.sampled_from(["_", " ", "\t", "\n", ",", "e", "E", "E+", "e-", "x", "\u00a0", "'"]),
    )
    mangled = st.builds(lambda a, c, b: a + c + b, st.one_of(st.just(""), digits), odd, digits)
    unicode_number = st.text(_NON_ASCII_DIGITS, min_size=1, max_size=6)
    padded = st.builds(lambda d, pad: pad + d, digits, st.sampled_from([" ", "\n", "\t"])) | (
        st.builds(lambda d, pad: d + pad, digits, st.sampled_from([" ", "\n", "\t"]))
    )
    return st.one_of(mangled, unicode_number, padded, st.text()).filter(_is_not_amount_text)


def oversized_amounts() -> st.SearchStrategy[object]:
    """Amounts beyond anything Kraken could accept: too many digits before or after the point
    (as text, int or Decimal), or a huge exponent (as Decimal)."""
    long_int = st.integers(MAX_INTEGER_DIGITS + 1, 5000).map(lambda n: "9" * n)
    long_fraction = st.integers(MAX_FRACTION_DIGITS + 1, 5000).map(lambda n: "0." + "1" * n)
    exponent = st.integers(MAX_INTEGER_DIGITS, 10**8).map(lambda e: Decimal((0, (1,), e)))
    tiny = st.integers(MAX_FRACTION_DIGITS + 1, 10**8).map(lambda e: Decimal((0, (1,), -e)))
    huge_int = st.integers(MAX_INTEGER_DIGITS, 400).map(lambda n: 10**n)
    # Not oversized itself (zero is zero), but must cost nothing either: see test_hostile_input.
    return st.one_of(
        long_int,
        long_fraction,
        long_int.map(Decimal),
        exponent,
        tiny,
        huge_int,
        st.just("1" * 1_000_000),
    )

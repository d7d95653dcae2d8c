"""OrderRequest refuses every invalid input with a ValidationError naming the field and rule,
before any I/O, and encodes every valid one exactly (plain decimals, stable order)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from urllib.parse import parse_qsl

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import (
    asset_pairs,
    cl_ord_ids,
    decimals,
    limit_requests,
    not_cl_ord_ids,
    not_userrefs,
    order_requests,
    pair_step,
    positive_decimals,
    userrefs,
)

from oms._decimal import fmt
from oms.auth import EXAMPLE, encode_form, encode_json
from oms.errors import ValidationError
from oms.models import AssetPair, OFlag, OrderType, RelativePrice, Side
from oms.orders import (
    USERREF_MAX,
    OrderRequest,
    batch_params,
    check_against_pair,
    check_cl_ord_id,
    check_deadline,
    check_userref,
    format_deadline,
    quantize_price,
    quantize_volume,
)

NOW = 1_700_000_000.0
BASE: dict[str, Any] = {
    "pair": "XBTUSD",
    "side": "buy",
    "ordertype": "limit",
    "volume": "1.25",
    "price": "37500",
}
PARAM_ORDER = [
    "pair",
    "type",
    "ordertype",
    "volume",
    "price",
    "price2",
    "trigger",
    "leverage",
    "reduce_only",
    "stptype",
    "oflags",
    "timeinforce",
    "starttm",
    "expiretm",
    "displayvol",
    "userref",
    "cl_ord_id",
    "close",
    "asset_class",
    "deadline",
    "validate",
]
XBTUSD = AssetPair(
    pair_id="XXBTZUSD",
    altname="XBTUSD",
    wsname="XBT/USD",
    base="XXBT",
    quote="ZUSD",
    pair_decimals=1,
    lot_decimals=8,
    cost_decimals=5,
    ordermin="0.0001",
    costmin="0.5",
    tick_size="0.1",
    status="online",
)


def request(**changes: Any) -> OrderRequest:
    return OrderRequest(**{**BASE, **changes})


def at(offset: float) -> datetime:
    return datetime.fromtimestamp(NOW, timezone.utc) + timedelta(seconds=offset)


# --- formatting ---------------------------------------------------------------------------


@given(decimals())
def test_fmt_round_trips_every_decimal_without_exponent(value: Decimal) -> None:
    text = fmt(value)
    assert "e" not in text.lower()
    assert Decimal(text) == value
    if value.as_tuple().exponent <= 0 and value != 0:  # type: ignore[operator]
        assert Decimal(text).as_tuple() == value.as_tuple()  # digits and zeros kept


# --- userref ------------------------------------------------------------------------------


@given(userrefs())
def test_every_valid_userref_is_accepted(userref: int) -> None:
    assert check_userref(userref) == userref
    assert request(userref=userref).to_params()["userref"] == userref


@given(not_userrefs())
def test_every_other_userref_is_refused(value: object) -> None:
    with pytest.raises(ValidationError) as excinfo:
        check_userref(value)
    assert excinfo.value.field == "userref"
    assert excinfo.value.rule in ("type", "userref-range")


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (0, "userref-range"),
        (-1, "userref-range"),
        (-(2**31), "userref-range"),
        (2**31, "userref-range"),
        (True, "type"),
        (False, "type"),
        (1.0, "type"),
        ("27649653", "type"),
    ],
)
def test_userref_edges_are_refused_by_the_request(value: object, rule: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        request(userref=value)
    assert (excinfo.value.field, excinfo.value.rule) == ("userref", rule)


@pytest.mark.parametrize("value", [1, 27649653, USERREF_MAX])
def test_userref_edges_are_accepted(value: int) -> None:
    assert request(userref=value).userref == value


def test_userref_and_cl_ord_id_are_exclusive() -> None:
    with pytest.raises(ValidationError) as excinfo:
        request(userref=1, cl_ord_id="abc")
    assert (excinfo.value.field, excinfo.value.rule) == ("cl_ord_id", "exclusive")


def test_evolve_validates_again() -> None:
    with pytest.raises(ValidationError):
        attrs.evolve(request(userref=5), userref=0)


# --- cl_ord_id ----------------------------------------------------------------------------


@given(cl_ord_ids())
def test_every_valid_cl_ord_id_is_accepted(value: str) -> None:
    assert check_cl_ord_id(value) == value
    assert request(cl_ord_id=value).to_params()["cl_ord_id"] == value


@given(not_cl_ord_ids())
def test_every_malformed_cl_ord_id_is_refused(value: object) -> None:
    with pytest.raises(ValidationError) as excinfo:
        check_cl_ord_id(value)
    assert excinfo.value.field == "cl_ord_id"
    assert excinfo.value.rule in ("type", "cl_ord_id-format")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("6d1b345e-2821-40e2-ad83-4ecb18a06876", True),
        ("6d1b345e282140e2ad834ecb18a06876", True),
        ("6D1B345E-2821-40E2-AD83-4ECB18A06876", True),
        ("a" * 18, True),
        ("grid-1/level-3", True),
        ("grid 1 / level 3", False),  # a space: the sandbox refuses it, so does the client
        ("abc\n", False),
        ("a" * 19, False),
        ("6d1b345e-2821-40e2-ad83-4ecb18a0687g", False),
        ("6d1b345e2821-40e2-ad83-4ecb18a06876", False),
        ("", False),
        ("caf\u00e9", False),
        ("tab\there", False),
    ],
)
def test_cl_ord_id_table(value: str, ok: bool) -> None:
    if ok:
        assert check_cl_ord_id(value) == value
    else:
        with pytest.raises(ValidationError, match="cl_ord_id"):
            check_cl_ord_id(value)


# --- the request's own rules -------------------------------------------------------------

INVALID = [
    ({"volume": "0"}, "volume", "positive"),
    ({"volume": "-1"}, "volume", "positive"),
    ({"volume": 1.5}, "volume", "type"),
    ({"volume": "lots"}, "volume", "type"),
    ({"volume": "NaN"}, "volume", "type"),
    ({"price": 37500.0}, "price", "type"),
    ({"price": "0"}, "price", "positive"),
    ({"price": Decimal(-5)}, "price", "positive"),
    ({"price": "+-5"}, "price", "relative-price"),
    ({"price": None}, "price", "required"),
    ({"ordertype": "market"}, "price", "not-applicable"),
    ({"price2": "1"}, "price2", "not-applicable"),
    ({"ordertype": "stop-loss-limit"}, "price2", "required"),
    ({"ordertype": "trailing-stop", "price": "50"}, "price", "relative-price"),
    ({"ordertype": "trailing-stop", "price": "-50"}, "price", "relative-price"),
    (
        {"ordertype": "trailing-stop-limit", "price": "+50", "price2": "#1"},
        "price2",
        "relative-price",
    ),
    (
        {"ordertype": "trailing-stop-limit", "price": "+50", "price2": "1"},
        "price2",
        "relative-price",
    ),
    ({"side": "hold"}, "side", "enum"),
    ({"ordertype": "stop loss"}, "ordertype", "enum"),
    ({"timeinforce": "GTD"}, "expiretm", "required"),
    ({"timeinforce": "day"}, "timeinforce", "enum"),
    ({"expiretm": "+3"}, "expiretm", "range"),
    ({"starttm": 1700000100, "expiretm": 1700000000}, "expiretm", "range"),
    ({"starttm": "tomorrow"}, "starttm", "format"),
    ({"starttm": 1.5}, "starttm", "type"),
    ({"oflags": "post", "ordertype": "iceberg", "displayvol": "1"}, "oflags", "post-limit-only"),
    ({"oflags": "fcib,fciq"}, "oflags", "exclusive"),
    ({"oflags": ["viqc"]}, "oflags", "viqc-buy-market-only"),
    (
        {"oflags": "viqc", "ordertype": "market", "price": None, "side": "sell"},
        "oflags",
        "viqc-buy-market-only",
    ),
    ({"oflags": "bogus"}, "oflags", "enum"),
    ({"displayvol": "1"}, "displayvol", "not-applicable"),
    ({"ordertype": "iceberg"}, "displayvol", "required"),
    (
        {"ordertype": "iceberg", "volume": "15", "displayvol": "0.99"},
        "displayvol",
        "displayvol-min",
    ),
    ({"ordertype": "iceberg", "displayvol": "2"}, "displayvol", "positive"),
    ({"close_price": "1"}, "close_ordertype", "required"),
    ({"close_ordertype": "market"}, "close_ordertype", "enum"),
    ({"close_ordertype": "stop-loss"}, "close_price", "required"),
    ({"close_ordertype": "stop-loss-limit", "close_price": "1"}, "close_price2", "required"),
    ({"trigger": "index"}, "trigger", "not-applicable"),
    ({"trigger": "mark"}, "trigger", "enum"),
    ({"stptype": "cancel-all"}, "stptype", "enum"),
    ({"leverage": 0}, "leverage", "type"),
    ({"leverage": "five"}, "leverage", "type"),
    ({"deadline": datetime(2030, 1, 1)}, "deadline", "timezone"),  # naive on purpose
    ({"deadline": "2030-01-01T00:00:00Z"}, "deadline", "type"),
    ({"validate": "yes"}, "validate", "type"),
    ({"reduce_only": 1}, "reduce_only", "type"),
    ({"pair": ""}, "pair", "format"),
    ({"pair": "XBT USD"}, "pair", "format"),
]


@pytest.mark.parametrize(("changes", "field", "rule"), INVALID)
def test_invalid_requests_name_field_and_rule(
    changes: dict[str, Any], field: str, rule: str
) -> None:
    with pytest.raises(ValidationError) as excinfo:
        request(**changes)
    assert (excinfo.value.field, excinfo.value.rule) == (field, rule)
    assert isinstance(excinfo.value, ValueError)


VALID = [
    {"price": "+5"},
    {"price": "-1.5%"},
    {"price": "#2"},
    {"price": RelativePrice("#", Decimal("2"))},
    {"ordertype": "stop-loss", "price": "#5%", "trigger": "index"},
    {"ordertype": "take-profit", "price": "40000"},
    {"ordertype": "trailing-stop", "price": "+50"},
    {"ordertype": "trailing-stop", "price": "+1.5%"},
    {"ordertype": "trailing-stop-limit", "price": "+1%", "price2": "+0"},
    {"ordertype": "trailing-stop-limit", "price": "+100", "price2": "-0.5%"},
    {"ordertype": "stop-loss-limit", "price": "30000", "price2": "29900"},
    {"ordertype": "market", "price": None, "oflags": "viqc"},
    {"ordertype": "iceberg", "volume": "15", "displayvol": "1"},
    {"ordertype": "settle-position", "price": None, "volume": "0", "leverage": "2:1"},
    {"volume": "0", "leverage": 3},
    {"oflags": "post,fciq"},
    {"oflags": ["post", OFlag.POST, "nompp"]},
    {"timeinforce": "GTD", "expiretm": "+3600"},
    {"timeinforce": "IOC", "starttm": 1700000000, "expiretm": 1700000100},
    {"close_ordertype": "take-profit", "close_price": "#10%", "trigger": "last"},
    {"stptype": "cancel-both", "reduce_only": True},
]


@pytest.mark.parametrize("changes", VALID)
def test_valid_requests_encode(changes: dict[str, Any]) -> None:
    req = request(**changes)
    params = req.to_params()
    assert list(params) == [k for k in PARAM_ORDER if k in params]
    for field in ("price", "price2"):
        given_ = changes.get(field, BASE.get(field) if field == "price" else None)
        if given_ is None:
            assert field not in params
        else:
            assert params[field] == str(given_)


def test_reference_signing_example_params() -> None:
    """The docs' signing example, built as a request, gives the same parameters."""
    docs = dict(parse_qsl(EXAMPLE["data"]))
    del docs["nonce"]
    assert request().to_params() == docs


def test_form_encoding_of_close_and_relative_values() -> None:
    req = request(
        userref=7,
        expiretm="+60",
        close_ordertype="stop-loss-limit",
        close_price="-5%",
        close_price2="30000",
        validate=True,
    )
    params = req.to_params()
    assert params["close"] == {"ordertype": "stop-loss-limit", "price": "-5%", "price2": "30000"}
    assert params["validate"] == "true"
    decoded = parse_qsl(encode_form(params))
    assert ("close[ordertype]", "stop-loss-limit") in decoded
    assert ("expiretm", "+60") in decoded  # '+' survived as %2B


def test_volume_and_price_sent_without_exponent_or_trailing_zeros() -> None:
    params = request(volume=Decimal("1E-5"), price=Decimal("3.75E+4")).to_params()
    assert (params["volume"], params["price"]) == ("0.00001", "37500")
    params = request(volume="0.10000000", price="37500.0").to_params()
    assert (params["volume"], params["price"]) == ("0.1", "37500")


@given(order_requests())
def test_to_params_encodes_every_valid_request(req: OrderRequest) -> None:
    params = req.to_params()
    assert list(params) == [k for k in PARAM_ORDER if k in params]
    assert params["pair"] == req.pair
    assert params["type"] == req.side.value
    assert Decimal(str(params["volume"])) == req.volume
    for key, value in params.items():
        assert isinstance(value, (str, int, dict))
        assert not isinstance(value, bool)
        # cl_ord_id is the caller's free text ("0E0" is a fine id); amounts must be plain.
        if (
            key != "cl_ord_id"
            and isinstance(value, str)
            and re.fullmatch(r"[\d.]+[eE][\d+-]+", value)
        ):
            pytest.fail(f"exponent in {key}={value!r}")
    for field in ("price", "price2"):
        value = getattr(req, field)
        if isinstance(value, Decimal):
            assert Decimal(str(params[field])) == value
            assert "e" not in str(params[field]).lower()
        elif value is not None:
            assert params[field] == str(value)
    assert ("validate" in params) is req.validate
    assert ("reduce_only" in params) is req.reduce_only
    assert all(v in ("true", None) for v in (params.get("validate"), params.get("reduce_only")))
    assert ("userref" in params) is (req.userref is not None)
    assert dict(parse_qsl(encode_form(params)))["volume"] == params["volume"]
    item = req.to_batch_item()
    assert not {"pair", "asset_class", "deadline", "validate"} & set(item)
    assert json.loads(encode_json(item)) == item
    assert params.get("asset_class") == req.asset_class
    batch_level = ("pair", "asset_class", "validate", "reduce_only")
    form_only = {k: v for k, v in params.items() if k not in batch_level}
    assert {k: v for k, v in item.items() if k != "reduce_only"} == form_only
    assert item.get("reduce_only") is (True if req.reduce_only else None)


# --- deadline -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "ok"),
    [(-1, False), (0, False), (1.999, False), (2, True), (30, True), (60, True), (60.001, False)],
)
def test_deadline_range(offset: float, ok: bool) -> None:
    deadline = at(offset)
    req = request(deadline=deadline)
    if ok:
        assert check_deadline(deadline, NOW) == deadline
        assert req.to_params(now=NOW)["deadline"] == format_deadline(deadline)
    else:
        for call in (lambda: check_deadline(deadline, NOW), lambda: req.to_params(now=NOW)):
            with pytest.raises(ValidationError) as excinfo:
                call()
            assert (excinfo.value.field, excinfo.value.rule) == ("deadline", "deadline-range")


@given(st.integers(-120_000, 120_000))
def test_deadline_accepted_exactly_within_two_to_sixty_seconds(offset_ms: int) -> None:
    deadline = at(offset_ms / 1000)
    now_dt = datetime.fromtimestamp(NOW, timezone.utc)
    inside = 2000 <= offset_ms <= 60000
    try:
        check_deadline(deadline, now_dt)
    except ValidationError:
        assert not inside
    else:
        assert inside


def test_deadline_format_is_rfc3339_utc_with_milliseconds() -> None:
    paris = timezone(timedelta(hours=2))
    deadline = datetime(2024, 5, 1, 14, 0, 5, 250999, tzinfo=paris)
    assert format_deadline(deadline) == "2024-05-01T12:00:05.250Z"
    text = request(deadline=at(10)).to_params(now=NOW)["deadline"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(text))


def test_to_params_uses_the_clock_when_now_is_not_given() -> None:
    with pytest.raises(ValidationError, match="deadline"):
        request(deadline=at(10)).to_params()  # NOW is long past


# --- pair rules ---------------------------------------------------------------------------


@given(asset_pairs().flatmap(lambda p: st.tuples(st.just(p), limit_requests(p))))
def test_orders_aligned_to_the_pair_pass(pair_req: tuple[AssetPair, OrderRequest]) -> None:
    pair, req = pair_req
    check_against_pair(req, pair)
    req.check_pair(pair)


@given(asset_pairs(), st.integers(1, 10**6), st.integers(1, 4), st.integers(1, 9))
def test_too_many_price_decimals_names_pair_decimals(
    pair: AssetPair, units: int, extra: int, last_digit: int
) -> None:
    places = pair.pair_decimals + extra
    price = Decimal(units) + Decimal(last_digit).scaleb(-places)
    req = request(pair=pair.altname, price=price, volume="1000")
    with pytest.raises(ValidationError) as excinfo:
        check_against_pair(req, pair)
    assert (excinfo.value.field, excinfo.value.rule) == ("price", "pair_decimals")
    assert f"allows {pair.pair_decimals}" in str(excinfo.value)


@given(asset_pairs(), st.integers(1, 10**6), st.data())
def test_price_off_the_tick_names_tick_size(pair: AssetPair, n: int, data: st.DataObject) -> None:
    tick = pair.tick_size
    unit = Decimal(1).scaleb(-pair.pair_decimals)
    assume(tick is not None and tick > unit)
    assert tick is not None
    offset = unit * data.draw(st.integers(1, int(tick / unit) - 1))
    req = request(pair=pair.altname, price=tick * n + offset, volume="1000")
    with pytest.raises(ValidationError) as excinfo:
        check_against_pair(req, pair)
    assert (excinfo.value.field, excinfo.value.rule) == ("price", "tick_size")
    assert fmt(tick) in str(excinfo.value)


@given(asset_pairs(), st.integers(1, 9))
def test_too_many_volume_decimals_names_lot_decimals(pair: AssetPair, last_digit: int) -> None:
    volume = Decimal(10**6) + Decimal(last_digit).scaleb(-(pair.lot_decimals + 1))
    req = request(pair=pair.altname, price=pair_step(pair) * 1000, volume=volume)
    with pytest.raises(ValidationError) as excinfo:
        check_against_pair(req, pair)
    assert (excinfo.value.field, excinfo.value.rule) == ("volume", "lot_decimals")


PAIR_CASES = [
    ({"price": "25000.1"}, None),
    ({"price": "25000.10"}, None),
    ({"price": "25000.15"}, ("price", "pair_decimals")),
    (
        {"ordertype": "stop-loss-limit", "price": "25000", "price2": "24999.99"},
        ("price2", "pair_decimals"),
    ),
    ({"close_ordertype": "limit", "close_price": "1.23"}, ("close_price", "pair_decimals")),
    ({"volume": "0.000000001"}, ("volume", "lot_decimals")),
    ({"volume": "0.00001"}, ("volume", "ordermin")),
    ({"volume": "0.0001", "price": "1000"}, ("volume", "costmin")),
    (
        {"ordertype": "take-profit-limit", "price": "5000", "price2": "1000", "volume": "0.0001"},
        ("volume", "costmin"),
    ),
    ({"ordertype": "stop-loss", "price": "1000", "volume": "0.0001"}, None),
    (
        {"ordertype": "market", "price": None, "oflags": "viqc", "volume": "0.4"},
        ("volume", "costmin"),
    ),
    (
        {"ordertype": "market", "price": None, "oflags": "viqc", "volume": "1.000001"},
        ("volume", "cost_decimals"),
    ),
    ({"ordertype": "market", "price": None, "oflags": "viqc", "volume": "5"}, None),
    ({"price": "+5.55"}, None),
    ({"volume": "0", "leverage": 2}, None),
]


@pytest.mark.parametrize(("changes", "expected"), PAIR_CASES)
def test_pair_rules_table(changes: dict[str, Any], expected: tuple[str, str] | None) -> None:
    req = request(**changes)
    if expected is None:
        check_against_pair(req, XBTUSD)
        return
    with pytest.raises(ValidationError) as excinfo:
        check_against_pair(req, XBTUSD)
    assert (excinfo.value.field, excinfo.value.rule) == expected


@pytest.mark.parametrize(
    ("status", "changes", "ok"),
    [
        ("cancel_only", {}, False),
        ("post_only", {}, False),
        ("post_only", {"oflags": "post"}, True),
        ("limit_only", {"ordertype": "market", "price": None}, False),
        ("limit_only", {}, True),
        ("reduce_only", {}, False),
        ("reduce_only", {"reduce_only": True}, True),
        ("some_new_status", {}, True),
    ],
)
def test_pair_status(status: str, changes: dict[str, Any], ok: bool) -> None:
    pair = attrs.evolve(XBTUSD, status=status)
    if ok:
        check_against_pair(request(**changes), pair)
    else:
        with pytest.raises(ValidationError) as excinfo:
            check_against_pair(request(**changes), pair)
        assert (excinfo.value.field, excinfo.value.rule) == ("pair", "pair-status")


@given(asset_pairs(), positive_decimals(max_places=14, max_value=10**7))
def test_quantize_price_lands_on_the_tick(pair: AssetPair, price: Decimal) -> None:
    step = pair_step(pair)
    q = quantize_price(pair, price, rounding=ROUND_HALF_EVEN)
    assert abs(q - price) <= step / 2
    assume(q > 0)
    check_against_pair(
        request(pair=pair.altname, price=q, volume="1000000"), attrs.evolve(pair, costmin=None)
    )


@given(asset_pairs(), positive_decimals(max_places=14, max_value=10**7))
def test_quantize_volume_rounds_down_to_lot(pair: AssetPair, volume: Decimal) -> None:
    q = quantize_volume(pair, volume)
    assert volume - Decimal(1).scaleb(-pair.lot_decimals) < q <= volume
    assume(q > 0)
    loose = attrs.evolve(pair, ordermin=None, costmin=None, tick_size=None)
    check_against_pair(request(pair=pair.altname, price=pair_step(pair), volume=q), loose)


# --- batches ------------------------------------------------------------------------------


def test_batch_params() -> None:
    orders = [request(cl_ord_id="a"), request(side="sell", price="40000", cl_ord_id="b")]
    body = batch_params(orders, deadline=at(5), validate=True, now=NOW)
    assert body == {
        "pair": "XBTUSD",
        "orders": [o.to_batch_item() for o in orders],
        "deadline": format_deadline(at(5)),
        "validate": True,
    }
    assert "validate" not in batch_params(orders)
    json.loads(encode_json(body))


@pytest.mark.parametrize(
    ("orders", "kwargs", "rule"),
    [
        ([BASE], {}, "batch-size"),
        ([BASE] * 16, {}, "batch-size"),
        ([BASE, {**BASE, "pair": "ETHUSD"}], {}, "batch-pair"),
        ([BASE, {**BASE, "validate": True}], {}, "batch-level"),
        ([BASE, {**BASE, "deadline": at(5)}], {}, "batch-level"),
        ([{**BASE, "cl_ord_id": "x"}, {**BASE, "cl_ord_id": "x"}], {}, "duplicate"),
        ([BASE, BASE], {"deadline": at(61), "now": NOW}, "deadline-range"),
    ],
)
def test_bad_batches(orders: list[dict[str, Any]], kwargs: dict[str, Any], rule: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        batch_params([OrderRequest(**o) for o in orders], **kwargs)
    assert excinfo.value.rule == rule


def test_enums_accept_members_and_values() -> None:
    req = request(side=Side.SELL, ordertype=OrderType.LIMIT)
    assert (req.side, req.to_params()["type"]) == (Side.SELL, "sell")


# --- rules from the official SDK and the spec (issue 9) ----------------------------------------


@pytest.mark.parametrize(
    ("ordertype", "extra", "ok"),
    [
        ("limit", {"price": "100"}, True),
        ("iceberg", {"price": "100", "displayvol": "1"}, True),
        ("stop-loss-limit", {"price": "100", "price2": "99"}, True),
        ("take-profit-limit", {"price": "100", "price2": "101"}, True),
        ("trailing-stop-limit", {"price": "+5", "price2": "-1"}, True),
        ("market", {}, False),
        ("stop-loss", {"price": "100"}, False),
        ("take-profit", {"price": "100"}, False),
        ("trailing-stop", {"price": "+5"}, False),
    ],
)
def test_fok_only_on_limit_priced_types(ordertype: str, extra: dict[str, str], ok: bool) -> None:
    # krakenfx/kraken-api-sdk placing-orders.md: "FOK is valid only on limit-priced types".
    fields: dict[str, Any] = {"ordertype": ordertype, "price": None, **extra}
    if not ok:
        with pytest.raises(ValidationError) as info:
            request(timeinforce="FOK", **fields)
        assert (info.value.field, info.value.rule) == ("timeinforce", "fok-limit-only")
    else:
        assert request(timeinforce="FOK", **fields).to_params()["timeinforce"] == "FOK"
    request(timeinforce="IOC", **fields)  # IOC stays allowed on every type


def test_cl_ord_id_with_a_conditional_close_is_refused() -> None:
    # krakenfx/kraken-api-sdk placing-orders.md: the exchange rejects both together.
    with pytest.raises(ValidationError) as info:
        request(cl_ord_id="my-order", close_ordertype="limit", close_price="40000")
    assert (info.value.field, info.value.rule) == ("cl_ord_id", "cl_ord_id-with-close")
    request(userref=5, close_ordertype="limit", close_price="40000")
    request(cl_ord_id="my-order")


def test_asset_class_is_sent_with_the_order_and_at_the_top_of_a_batch() -> None:
    req = request(asset_class="tokenized_asset")
    assert req.to_params()["asset_class"] == "tokenized_asset"
    body = batch_params([req, request(asset_class="tokenized_asset", price="37000")])
    assert body["asset_class"] == "tokenized_asset"
    assert all("asset_class" not in o for o in body["orders"])  # type: ignore[attr-defined]
    with pytest.raises(ValidationError) as info:
        batch_params([req, request()])
    assert info.value.field == "asset_class"
    for bad in ("", "Tokenized Asset", "x" * 40, 1):
        with pytest.raises(ValidationError):
            request(asset_class=bad)

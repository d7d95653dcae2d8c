"""Odd or hostile values are refused by every entry point, Python and CLI, before a request is
built, by checks whose cost is bounded by construction."""

from __future__ import annotations

import decimal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fakehttp import BASE_URL, KEY, SECRET, FakeAdapter, LoopbackServer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from strategies import not_ascii_decimals, oversized_amounts

from oms._decimal import MAX_FRACTION_DIGITS, MAX_INTEGER_DIGITS, fmt, to_decimal
from oms.auth import Credentials, key_fingerprint
from oms.cli.call import call
from oms.cli.orders import cancel, orders, place
from oms.client import KrakenClient
from oms.errors import ValidationError
from oms.nonce import NonceSource
from oms.orders import OrderRequest

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@contextmanager
def no_long_arithmetic() -> Iterator[None]:
    """Any Decimal arithmetic that would need more digits than Kraken accepts raises
    ``decimal.Rounded`` instead of running: a check that does such arithmetic fails the test
    (by construction, not by timing)."""
    context = decimal.Context(
        prec=MAX_INTEGER_DIGITS + MAX_FRACTION_DIGITS + 2,
        Emax=MAX_INTEGER_DIGITS + 2,
        Emin=-(MAX_FRACTION_DIGITS + 2),
        traps=[decimal.Rounded, decimal.Overflow, decimal.InvalidOperation, decimal.Clamped],
    )
    with decimal.localcontext(context):
        yield


@pytest.fixture
def client(tmp_path: Path) -> Iterator[KrakenClient]:
    # No answers queued: any request at all fails the test with an AssertionError.
    fake = FakeAdapter()
    client = KrakenClient(
        Credentials(key=KEY, secret=SECRET),
        base_url=BASE_URL,
        nonce_source=NonceSource(key_fingerprint(KEY), directory=tmp_path),
        pair_rules="off",
        clock=lambda: 1_700_000_000.0,
        sleep=lambda s: None,
    )
    client.transport.mount(BASE_URL, fake)
    yield client
    assert fake.requests == []


def _order(**fields: Any) -> OrderRequest:
    base: dict[str, Any] = {"pair": "XBTUSD", "side": "buy", "ordertype": "limit"}
    base.setdefault("volume", "1")
    base.setdefault("price", "100")
    return OrderRequest(**{**base, **fields})


AMOUNT_FIELDS = ["volume", "price", "close_price"]


def _entry_points(client: KrakenClient) -> list[tuple[str, Callable[[object], object]]]:
    return [
        ("volume", lambda v: _order(volume=v)),
        ("price", lambda v: _order(price=v)),
        ("price2", lambda v: _order(ordertype="stop-loss-limit", price="100", price2=v)),
        (
            "displayvol",
            lambda v: _order(ordertype="iceberg", volume="1", displayvol=v),
        ),
        ("close_price", lambda v: _order(close_ordertype="limit", close_price=v)),
        (
            "volume",
            lambda v: client.add_order(pair="XBTUSD", side="buy", ordertype="market", volume=v),
        ),
        ("order_qty", lambda v: client.amend_order(txid="OABCDE-FGHIJ-KLMNOP", order_qty=v)),
        ("limit_price", lambda v: client.amend_order(txid="OABCDE-FGHIJ-KLMNOP", limit_price=v)),
        ("amount", lambda v: client.withdraw("XBT", "wallet", v)),
        ("amount", lambda v: client.withdraw_info("XBT", "wallet", v)),
        (
            "price",
            lambda v: client.call(
                "AddOrder", pair="XBTUSD", type="buy", ordertype="limit", volume="1", price=v
            ),
        ),
        (
            "volume",
            lambda v: client.call(
                "AddOrder", pair="XBTUSD", type="buy", ordertype="market", volume=v
            ),
        ),
    ]


@SETTINGS
@given(value=not_ascii_decimals(), which=st.integers(0, 11))
@example(value="1_000", which=0)
@example(value="\u0661\u0662\u0663", which=1)
@example(value="\uff11", which=0)
@example(value="\U0001d7cf", which=1)  # MATHEMATICAL BOLD DIGIT ONE
@example(value="1e3", which=5)
@example(value=" 5", which=8)
@example(value="5\n", which=10)
def test_anything_but_plain_ascii_decimal_is_refused_everywhere(
    client: KrakenClient, value: str, which: int
) -> None:
    field, call = _entry_points(client)[which]
    with no_long_arithmetic(), pytest.raises(ValidationError) as info:
        call(value)
    assert field in (info.value.field or "")


@SETTINGS
@given(value=oversized_amounts(), which=st.integers(0, 11))
@example(value="1E+99999999", which=1)  # exponent: refused as notation
@example(value=Decimal("1E+99999999"), which=1)  # once a minute of CPU in the tick check
@example(value=Decimal("1E+999999"), which=0)  # once a raw decimal.Overflow
@example(value="9" * 400, which=1)
@example(value="0." + "1" * 400, which=0)
def test_amounts_beyond_krakens_bounds_are_refused_everywhere(
    client: KrakenClient, value: object, which: int
) -> None:
    field, call = _entry_points(client)[which]
    with no_long_arithmetic(), pytest.raises(ValidationError) as info:
        call(value)
    assert field in (info.value.field or "")


@pytest.mark.parametrize("exponent", [-(10**8), -19, 19, 10**8])
def test_a_zero_with_a_huge_exponent_is_plain_zero(exponent: int) -> None:
    # 0E-99999999 passes every digit check (one digit) but would format as 10**8 zeros.
    value = to_decimal(Decimal((0, (0,), exponent)))
    assert value == 0
    assert value.as_tuple().exponent == 0
    assert fmt(value) == "0"


def test_computed_values_are_bounded_too() -> None:
    # Models built directly (a VWAP) take more places than Kraken sends, but not without end.
    from oms.models import PublicTrade

    def trade(price: Decimal, volume: Decimal) -> PublicTrade:
        return PublicTrade(price=price, volume=volume, time=1, side="buy", ordertype="limit")

    assert trade(Decimal(1) / 3, Decimal((0, (0,), -(10**8)))).volume.as_tuple().exponent == 0
    with pytest.raises(ValidationError):
        trade(Decimal((0, (1,), -(10**8))), Decimal(1))


@pytest.mark.parametrize(
    "value",
    ["1", "0.5", "123456789012345678", "0.123456789012345678", "-2", ".5", "5."],
)
def test_plain_amounts_within_bounds_still_parse(value: str) -> None:
    with no_long_arithmetic():
        assert to_decimal(value) == Decimal(value)


def test_a_raw_batch_call_checks_each_orders_amounts(client: KrakenClient) -> None:
    order = {"type": "buy", "ordertype": "limit", "volume": "1", "price": "100"}
    bad = {**order, "close": {"ordertype": "limit", "price": "1E+99999999"}}
    with pytest.raises(ValidationError) as info:
        client.call("AddOrderBatch", pair="XBTUSD", orders=[order, bad])
    assert info.value.field == "orders[1][close][price]"


@pytest.mark.parametrize("value", ["+1E+9999", "+1_0", "-\u0661", "#\uff11%", "+" + "1" * 5000])
def test_relative_prices_are_held_to_the_same_notation(client: KrakenClient, value: str) -> None:
    with no_long_arithmetic():
        with pytest.raises(ValidationError):
            _order(price=value)
        with pytest.raises(ValidationError):
            client.amend_order(txid="OABCDE-FGHIJ-KLMNOP", limit_price=value)


@pytest.mark.parametrize("value", ["+1_0", "\u0661\u0662", "1e3", " 5"])
def test_time_specs_and_leverage_take_ascii_digits_only(value: str) -> None:
    with pytest.raises(ValidationError):
        _order(starttm=value)
    with pytest.raises(ValidationError):
        _order(expiretm=value)
    with pytest.raises(ValidationError):
        _order(leverage=value)


# --- the CLI --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer().running() as srv:
        yield srv


def _cli(command: Any, args: list[str], server: LoopbackServer, tmp: Path) -> Any:
    env = {
        "KRAKEN_API_KEY": KEY,
        "KRAKEN_API_SECRET": SECRET,
        "OMS_DATA_DIR": str(tmp),
        "OMS_DB": str(tmp / "cli.db"),
    }
    before = len(server.seen)
    result = CliRunner().invoke(command, [*args, "--base-url", server.url], env=env)
    assert len(server.seen) == before, "a request was sent"
    return result


@SETTINGS
@given(
    value=not_ascii_decimals() | oversized_amounts().map(str),
    where=st.sampled_from(["volume", "--price"]),
)
@example(value="1E+999999", where="volume")
def test_cli_place_refuses_odd_amounts_as_a_usage_error(
    server: LoopbackServer, tmp_path: Path, value: str, where: str
) -> None:
    if value.startswith("-"):
        value = "x" + value  # click would read a leading '-' as an option
    args = (
        ["XBTUSD", "buy", value] if where == "volume" else ["XBTUSD", "buy", "1", "--price", value]
    )
    result = _cli(place, args, server, tmp_path)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@SETTINGS
@given(
    value=st.one_of(
        not_ascii_decimals(),
        st.sampled_from(
            ["+5", " 5", "5 ", "5_000", "\u0665", "\uff15", "0", "2147483648", "-1", "99" * 50]
        ),
    ),
    command=st.sampled_from(["place", "place-group", "orders", "cancel"]),
)
def test_cli_userref_takes_ascii_digits_only(
    server: LoopbackServer, tmp_path: Path, value: str, command: str
) -> None:
    if value.startswith("-") and value != "-1":
        value = "x" + value
    opt = f"--userref={value}" if command != "place-group" else f"--group={value}"
    cmd, args = {
        "place": (place, ["XBTUSD", "buy", "1", opt]),
        "place-group": (place, ["XBTUSD", "buy", "1", opt]),
        "orders": (orders, [opt]),
        "cancel": (cancel, [opt]),
    }[command]
    if command == "orders":
        # `oms orders` reads the cache only: no --base-url.
        result = CliRunner().invoke(cmd, args, env={"OMS_DB": str(tmp_path / "o.db")})
    else:
        result = _cli(cmd, args, server, tmp_path)
    assert result.exit_code == 2, result.output
    assert "userref" in result.output or "integer" in result.output.lower()


def test_cli_userref_still_takes_plain_digits(tmp_path: Path) -> None:
    result = CliRunner().invoke(orders, ["--userref", "42"], env={"OMS_DB": str(tmp_path / "o.db")})
    assert result.exit_code == 0, result.output


@SETTINGS
@given(
    value=not_ascii_decimals() | oversized_amounts().map(str),
    name=st.sampled_from(["price", "volume", "amount"]),
)
@example(value="1E+99999999", name="price")
def test_cli_call_refuses_odd_amounts_before_sending(
    server: LoopbackServer, tmp_path: Path, value: str, name: str
) -> None:
    method = "Withdraw" if name == "amount" else "AddOrder"
    result = _cli(call, [method, f"{name}={value}", "pair=XBTUSD"], server, tmp_path)
    assert result.exit_code == 2, result.output

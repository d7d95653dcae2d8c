"""`oms check` runs Kraken support's recommended test against the sandbox over HTTP: the key,
the nonce, a validate=true order, and with --live (only with the confirmation flag) one real
far-from-market order found, cancelled and confirmed by its userref."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from cli_support import cli_env
from click.testing import CliRunner, Result

from oms.auth import key_fingerprint
from oms.cli import main
from oms.cli.check import CONFIRM_FLAG, far_limit
from oms.models import AssetPair, OrderStatus
from oms.nonce import NonceSource
from oms.sandbox import Sandbox
from oms.sandbox.config import SandboxConfig


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox.serve(seed=11, config=SandboxConfig().without_limits()) as sandbox:
        yield sandbox


@pytest.fixture
def env(sb: Sandbox, tmp_path: Path) -> dict[str, str]:
    return cli_env(sb, tmp_path)


def oms(args: list[str], env: dict[str, str], code: int) -> Result:
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


def all_orders(sb: Sandbox) -> list[object]:
    with sb.client() as client:
        return [*client.open_orders(), *client.closed_orders().orders]


def test_check_without_live_places_nothing(sb: Sandbox, env: dict[str, str]) -> None:
    out = oms(["check"], env, 0).stdout
    for step in ("1. key: ok", "2. nonce: ok", "3. validate=true: ok"):
        assert step in out
    # No fourth step (a price like 32514.2 may contain "4." anywhere else in a line).
    assert not [line for line in out.splitlines() if line.lstrip().startswith("4.")]
    assert all_orders(sb) == []


def test_live_refuses_without_the_confirmation_flag(sb: Sandbox, env: dict[str, str]) -> None:
    result = oms(["check", "--live"], env, 2)
    assert CONFIRM_FLAG in result.stderr
    assert result.stdout == ""
    assert all_orders(sb) == []


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_live_places_finds_cancels_and_confirms(
    side: str, sb: Sandbox, env: dict[str, str]
) -> None:
    out = oms(["check", "--live", CONFIRM_FLAG, "--side", side], env, 0).stdout
    for n in range(1, 8):
        assert f"\n{n}. " in f"\n{out}"
    assert "all checks passed" in out
    (order,) = all_orders(sb)
    assert order.status is OrderStatus.CANCELED  # type: ignore[attr-defined]
    assert order.vol_exec == 0  # type: ignore[attr-defined]
    assert f"userref {order.userref}" in out  # type: ignore[attr-defined]
    assert f"CancelOrder txid={order.userref}" in out  # type: ignore[attr-defined]
    last = sb.market.last_price("XBTUSD")
    price = order.descr.price  # type: ignore[attr-defined]
    assert price <= last / 2 if side == "buy" else price >= last * 2
    # The order went through the order manager: the cache has it, cancelled.
    cached = oms(["orders", "--format", "csv"], env, 0).stdout
    assert f"{order.txid}," in cached  # type: ignore[attr-defined]
    assert "canceled" in cached


def test_a_key_that_saw_larger_nonces_is_explained(
    sb: Sandbox, env: dict[str, str], tmp_path: Path
) -> None:
    # Another program once sent this key a nonce far ahead of oms's nanoseconds.
    bigger = NonceSource(
        key_fingerprint(sb.key), directory=tmp_path / "other", clock_ns=lambda: 9 * 10**18
    )
    with sb.client(nonce_source=bigger) as other:
        other.balance()
    result = oms(["check"], env, 1)
    assert "larger nonce" in result.stderr
    assert "1. key: ok" not in result.stdout


@pytest.mark.parametrize(
    ("side", "bid", "ask"),
    [
        ("buy", Decimal("60000.1"), Decimal("60000.5")),
        ("sell", Decimal("1.2345"), Decimal("1.2350")),
    ],
)
def test_far_limit_is_far_and_big_enough(side: str, bid: Decimal, ask: Decimal) -> None:
    pair = AssetPair.from_api(
        "P",
        {
            "altname": "P", "base": "B", "quote": "Q", "pair_decimals": 4, "lot_decimals": 8,
            "cost_decimals": 5, "ordermin": "0.0001", "costmin": "5", "tick_size": "0.0001",
        },
    )  # fmt: skip
    price, volume = far_limit(pair, side, bid, ask)
    assert price <= bid / 2 if side == "buy" else price >= ask * 2
    assert volume >= Decimal("0.0001")
    assert price * volume >= 5
    assert price % Decimal("0.0001") == 0

"""One way in: a manager from the environment or on a sandbox, clock given once, client owned."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from oms import OrderManager, OrderRequest
from oms.connect import client_from_env, credentials_from_env, manager_from_env
from oms.errors import ValidationError
from oms.sandbox import ManualClock, Sandbox
from oms.transport import Transport

REQUEST = OrderRequest(pair="XBTUSD", side="buy", ordertype="limit", volume="0.001", price="1000")


class CountingTransport(Transport):
    closed = 0

    def close(self) -> None:
        type(self).closed += 1
        super().close()


def _env(monkeypatch: pytest.MonkeyPatch, sb: Sandbox) -> None:
    monkeypatch.setenv("KRAKEN_API_KEY", sb.key)
    monkeypatch.setenv("KRAKEN_API_SECRET", sb.secret)
    monkeypatch.setenv("KRAKEN_BASE_URL", sb.base_url)


@pytest.mark.parametrize("unset", [("KRAKEN_API_KEY",), ("KRAKEN_API_KEY", "KRAKEN_API_SECRET")])
def test_missing_keys_are_named(monkeypatch: pytest.MonkeyPatch, unset: tuple[str, ...]) -> None:
    monkeypatch.setenv("KRAKEN_API_KEY", "k")
    monkeypatch.setenv("KRAKEN_API_SECRET", "c2VjcmV0")
    for name in unset:
        monkeypatch.delenv(name)
    with pytest.raises(ValidationError, match=" and ".join(unset) + " not set"):
        credentials_from_env()
    with pytest.raises(ValidationError):
        OrderManager.from_env()


def test_public_client_ignores_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KRAKEN_API_KEY", raising=False)
    monkeypatch.setenv("KRAKEN_BASE_URL", "http://127.0.0.1:9")
    with client_from_env(keys="optional") as client:
        assert client.credentials is None
        assert client.base_url == "http://127.0.0.1:9"


def test_from_env_places_on_the_named_exchange(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, oms_data_dir: Path
) -> None:
    _env(monkeypatch, sandbox)
    monkeypatch.setenv("OMS_DB", str(tmp_path / "env.db"))
    with OrderManager.from_env(deadline=10) as manager:
        assert manager.client.base_url == sandbox.base_url
        assert manager.cache.path == str(tmp_path / "env.db")
        assert manager.deadline == 10
        assert manager.place(REQUEST).placed
    assert (oms_data_dir / "nonces").is_dir()


def test_a_closed_manager_closes_the_client_it_opened(sandbox_manual: Sandbox) -> None:
    transport = sandbox_manual.mount(CountingTransport())
    before = CountingTransport.closed
    manager = OrderManager.on_sandbox(sandbox_manual, client_options={"transport": transport})
    manager.close()
    assert CountingTransport.closed == before + 1


def test_a_manager_that_cannot_open_closes_its_client(
    sandbox_manual: Sandbox, tmp_path: Path
) -> None:
    transport = sandbox_manual.mount(CountingTransport())
    before = CountingTransport.closed
    with pytest.raises(ValidationError):
        OrderManager.on_sandbox(
            sandbox_manual, tmp_path / "x.db", deadline=0, client_options={"transport": transport}
        )
    assert CountingTransport.closed == before + 1


def test_on_sandbox_shares_the_manual_clock(
    sandbox_manual: Sandbox, manual_clock: ManualClock
) -> None:
    with OrderManager.on_sandbox(sandbox_manual) as manager:
        placed = manager.place(REQUEST)
        intent = manager.cache.intent(placed.intent_id)
        assert intent is not None
        # The manager's clock is the sandbox's: no real time in the record.
        assert abs(intent.created_at - manual_clock.time()) < 60


def test_a_manual_sandbox_clock_moving_on_is_time_passing_not_a_step(
    sandbox_manual: Sandbox, manual_clock: ManualClock
) -> None:
    """The manual clock stands for real time: a manager on it measures Kraken's time again
    only as often as real time would make it (a fresh floor every 15 s), not at every move
    of the clock as if the local clock had stepped."""
    with OrderManager.on_sandbox(sandbox_manual) as manager:
        for _ in range(12):
            manager.place(REQUEST)
            manual_clock.advance(5)
        # 60 s of exchange time: a Time answer per 15 s, give or take the first one.
        assert manager.requests.get("Time", 0) <= 6


def test_on_sandbox_url_uses_the_environment_keys(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    _env(monkeypatch, sandbox)
    monkeypatch.delenv("KRAKEN_BASE_URL")
    with manager_from_env(":memory:", base_url=sandbox.base_url) as by_env:
        assert by_env.client.base_url == sandbox.base_url
    with OrderManager.on_sandbox(sandbox.base_url) as manager:
        assert manager.client.balance()["ZUSD"] > Decimal(0)


@pytest.mark.parametrize("url", ["https://api.kraken.com", "http://10.0.0.1:8080"])
def test_on_sandbox_refuses_an_exchange(url: str) -> None:
    with pytest.raises(ValidationError, match="not a sandbox URL"):
        OrderManager.on_sandbox(url)


def test_the_limiter_knows_the_ages_of_orders_placed_before_this_process(
    sandbox_manual: Sandbox, manual_clock: ManualClock, tmp_path: Path
) -> None:
    db = tmp_path / "ages.db"
    with OrderManager.on_sandbox(sandbox_manual, db) as first:
        placed = first.place(REQUEST)
    assert placed.txid is not None
    manual_clock.advance(7)
    with OrderManager.on_sandbox(sandbox_manual, db) as later:
        limiter = later.client.rate_limiter
        # A fresh client never saw that order: only the cache, through the seam, knows it.
        assert limiter.order_pair is not None
        assert limiter.order_pair(placed.txid) == "XBTUSD"
        assert limiter.order_age is not None
        age = limiter.order_age(placed.txid)
        assert age is not None
        assert 7 <= age < 60

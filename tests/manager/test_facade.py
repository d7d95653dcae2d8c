"""The facade: a manager changes nothing inside the objects it is given."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from oms.manager import OrderManager
from oms.orders import OrderRequest
from oms.sandbox import ManualClock, Sandbox


def _order(sb: Sandbox) -> OrderRequest:
    price = (sb.market.last_price("XBTUSD") * Decimal("0.5")).quantize(Decimal("0.1"))
    return OrderRequest(pair="XBTUSD", side="buy", ordertype="limit", volume="0.001", price=price)


def test_a_closed_manager_leaves_its_client_fully_usable(tmp_path: Path) -> None:
    sb = Sandbox.in_process(seed=4, clock=ManualClock(1_700_000_000.0))
    clock = sb.clock
    assert isinstance(clock, ManualClock)
    client = sb.client()
    limiter = client.rate_limiter
    seams = (limiter.order_age, limiter.order_pair)
    first = OrderManager(client, tmp_path / "a.db", clock=clock.time, sleep=clock.advance)
    placed = first.place(_order(sb))
    assert (limiter.order_age, limiter.order_pair) == seams  # nothing installed into it
    first.close()
    assert placed.txid is not None
    assert client.cancel_order(txid=placed.txid).count == 1
    with OrderManager(client, tmp_path / "b.db", clock=clock.time, sleep=clock.advance) as second:
        other = second.place(_order(sb))
        assert other.txid is not None
        assert second.cancel(other.txid).count == 1

"""The facade: a manager changes nothing inside the objects it is given."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from oms.errors import ValidationError
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


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("place", ("order",)),
        ("cancel", ("OABCDE-FGHIJ-KLMNOP",)),
        ("cancel_group", (12345,)),
        ("sync", ()),
        ("recover", ()),
        ("find_by_userref", (7,)),
        ("follow", ()),
    ],
)
def test_a_closed_manager_refuses_every_call_and_sends_nothing(
    tmp_path: Path, method: str, args: tuple[object, ...]
) -> None:
    sb = Sandbox.in_process(seed=5)
    sent: list[str] = []
    with sb.client(hooks=[lambda method, *_: sent.append(method)]) as client:
        manager = OrderManager(client, tmp_path / "c.db")
        manager.close()
        before = list(sent)
        call_args = [_order(sb) if a == "order" else a for a in args]
        with pytest.raises(ValidationError, match="closed"):
            getattr(manager, method)(*call_args)
        assert sent == before

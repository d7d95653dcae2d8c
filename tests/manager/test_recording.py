"""The recorder builds the order as sent straight from the intent's checked fields; it must be
exactly what parsing Kraken's own text for that order gives."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from oms.intents import Intent, IntentState
from oms.manager.recording import placed_order
from oms.models import Order, OrderStatus

prices = st.one_of(
    st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("99999"), places=4).map(str),
    st.sampled_from(["+5", "-1.5", "#2%", "+0.5%"]),
)


@st.composite
def intents(draw: st.DrawFn) -> Intent:
    params: dict[str, Any] = {}
    ordertype = draw(st.sampled_from(["limit", "market", "stop-loss-limit", "iceberg"]))
    if ordertype != "market":
        params["price"] = draw(prices)
    if draw(st.booleans()):
        params["price2"] = draw(prices)
    flags = draw(st.lists(st.sampled_from(["post", "fciq", "nompp", "viqc"]), unique=True))
    if flags:
        params["oflags"] = ",".join(flags)
    return Intent(
        id="i",
        created_at=draw(st.floats(min_value=1e9, max_value=2e9)),
        userref=draw(st.integers(1, 2**31 - 1)),
        pair=draw(st.sampled_from(["XBTUSD", "ETHEUR"])),
        side=draw(st.sampled_from(["buy", "sell"])),
        ordertype=ordertype,
        volume=draw(
            st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("1e6"), places=8)
        ),
        price=None,
        params=params,
        state=IntentState.PENDING,
    )


@given(intents(), st.text(max_size=40))
def test_the_order_as_sent_equals_the_parsed_one(intent: Intent, descr: str) -> None:
    parsed = Order.from_api(
        "OTXID1-AAAAA-BBBBBB",
        {
            "userref": intent.userref,
            "status": OrderStatus.PENDING.value,
            "opentm": intent.created_at,
            "descr": {
                "pair": intent.pair,
                "type": intent.side,
                "ordertype": intent.ordertype,
                "price": str(intent.params.get("price", "0")),
                "price2": str(intent.params.get("price2", "0")),
                "order": descr,
            },
            "vol": format(intent.volume, "f"),
            "vol_exec": "0",
            "cost": "0",
            "fee": "0",
            "price": "0",
            "oflags": str(intent.params.get("oflags", "")),
        },
    )
    assert placed_order(intent, "OTXID1-AAAAA-BBBBBB", descr) == parsed

"""The lookup's match rule, as a property: an order answers an intent exactly when every field
the intent fixed agrees and it opened no earlier than Kraken's confirmed time before the send
(less the slack)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from oms.cache import Intent, IntentState
from oms.manager.lookup import OrderLookup
from oms.models import Order

SLACK = 5.0
NOT_BEFORE = 1_700_000_000.0


def _lookup() -> OrderLookup:
    # The match rule needs none of the lookup's collaborators: they are never called.
    return OrderLookup(None, None, None, None, match_slack=SLACK, attempts=1)  # type: ignore[arg-type]


prices = st.decimals(min_value=Decimal("0.1"), max_value=Decimal("99999"), places=1)
volumes = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("50"), places=3)


@st.composite
def intents(draw: st.DrawFn) -> Intent:
    price = draw(prices)
    flags = draw(st.sampled_from(["", "post", "fciq", "post,fciq"]))
    params: dict[str, Any] = {"price": str(price)}
    if flags:
        params["oflags"] = flags
    return Intent(
        id="i",
        created_at=NOT_BEFORE + 1,
        userref=draw(st.integers(1, 2**31 - 1)),
        pair=draw(st.sampled_from(["XBTUSD", "ETHUSD", "XDGUSD"])),
        side=draw(st.sampled_from(["buy", "sell"])),
        ordertype="limit",
        volume=draw(volumes),
        price=price,
        params=params,
        state=IntentState.PENDING,
        not_before=NOT_BEFORE,
    )


def _order(intent: Intent, **change: Any) -> Order:
    fields: dict[str, Any] = {
        "userref": intent.userref,
        "pair": intent.pair,
        "side": intent.side,
        "ordertype": intent.ordertype,
        "price": intent.params["price"],
        "vol": str(intent.volume),
        "oflags": intent.params.get("oflags", ""),
        "opentm": NOT_BEFORE,
    }
    fields.update(change)
    return Order.from_api(
        "OABCDE-FGHIJ-KLMNOP",
        {
            "userref": fields["userref"],
            "status": "open",
            "opentm": fields["opentm"],
            "descr": {
                "pair": fields["pair"],
                "type": fields["side"],
                "ordertype": fields["ordertype"],
                "price": fields["price"],
                "price2": "0",
                "order": "",
            },
            "vol": fields["vol"],
            "vol_exec": "0",
            "cost": "0",
            "fee": "0",
            "price": "0",
            "oflags": fields["oflags"],
        },
    )


@given(intents(), st.floats(min_value=-SLACK, max_value=3600))
def test_the_order_an_intent_asked_for_matches(intent: Intent, opened_after: float) -> None:
    assert _lookup().matches(intent, _order(intent, opentm=NOT_BEFORE + opened_after))


@given(intents(), st.floats(min_value=SLACK + 0.001, max_value=10 * 86400))
def test_an_order_opened_before_the_send_never_matches(intent: Intent, early: float) -> None:
    assert not _lookup().matches(intent, _order(intent, opentm=NOT_BEFORE - early))


@given(intents(), st.sampled_from(["userref", "pair", "side", "ordertype", "price", "vol"]))
def test_any_fixed_field_that_differs_never_matches(intent: Intent, field: str) -> None:
    other: dict[str, Any] = {
        "userref": intent.userref % (2**31 - 1) + 1,
        "pair": "SOLUSD",
        "side": "sell" if intent.side == "buy" else "buy",
        "ordertype": "stop-loss",
        "price": str(Decimal(intent.params["price"]) + Decimal("0.1")),
        "vol": str(intent.volume + Decimal("0.001")),
    }
    assert not _lookup().matches(intent, _order(intent, **{field: other[field]}))


@given(intents())
def test_a_flag_the_intent_set_must_be_on_the_order(intent: Intent) -> None:
    if not intent.params.get("oflags"):
        return
    assert not _lookup().matches(intent, _order(intent, oflags=""))

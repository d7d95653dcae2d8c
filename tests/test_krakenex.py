"""krakenex, unmodified in its signing and transport, places, lists and cancels orders by
userref against the sandbox over HTTP, as Kraken's support article describes."""

from __future__ import annotations

from typing import Any

import krakenex

from oms.sandbox import Sandbox

GROUP = 27649653  # the userref of Kraken's support article


class KrakenexClient(krakenex.API):  # type: ignore[misc]
    """krakenex with its millisecond nonce made strictly increasing.

    krakenex sends ``int(1000 * time.time())``; two calls on loopback can fall in the same
    millisecond, and a Kraken-faithful exchange refuses the second (EAPI:Invalid nonce).
    """

    def __init__(self, key: str, secret: str) -> None:
        super().__init__(key, secret)
        self._last = 0

    def _nonce(self) -> int:
        self._last = max(super()._nonce(), self._last + 1)
        return self._last


def ok(answer: Any) -> Any:
    assert answer["error"] == [], answer
    return answer["result"]


def test_place_list_and_cancel_by_userref(sandbox: Sandbox) -> None:
    api = KrakenexClient(sandbox.key, sandbox.secret)
    api.uri = sandbox.base_url
    try:
        assert api.session.headers["User-Agent"].startswith("krakenex/")
        assert "XXBTZUSD" in ok(api.query_public("Ticker", {"pair": "XBTUSD"}))
        placed = []
        for pair, price, volume in [
            ("XDGUSD", "0.1000000", "50"),
            ("XBTUSD", "30000.0", "0.001"),
            ("ETHUSD", "1000.00", "0.01"),
        ]:
            result = ok(
                api.query_private(
                    "AddOrder",
                    {
                        "pair": pair,
                        "type": "buy",
                        "ordertype": "limit",
                        "price": price,
                        "volume": volume,
                        "userref": GROUP,
                    },
                )
            )
            assert result["descr"]["order"].startswith(f"buy {volume}")
            placed.extend(result["txid"])
        other = ok(
            api.query_private(
                "AddOrder",
                {
                    "pair": "XBTUSD",
                    "type": "buy",
                    "ordertype": "limit",
                    "price": "31000.0",
                    "volume": "0.001",
                    "userref": GROUP + 1,
                },
            )
        )["txid"]

        listed = ok(api.query_private("OpenOrders", {"userref": GROUP}))["open"]
        assert sorted(listed) == sorted(placed)
        assert {order["userref"] for order in listed.values()} == {GROUP}

        # A userref in place of a txid cancels the whole group.
        assert ok(api.query_private("CancelOrder", {"txid": GROUP}))["count"] == 3
        assert ok(api.query_private("OpenOrders", {"userref": GROUP}))["open"] == {}
        closed = ok(api.query_private("ClosedOrders", {"userref": GROUP}))["closed"]
        assert sorted(closed) == sorted(placed)
        assert {order["status"] for order in closed.values()} == {"canceled"}
        assert list(ok(api.query_private("OpenOrders", {"userref": GROUP + 1}))["open"]) == other
    finally:
        api.close()

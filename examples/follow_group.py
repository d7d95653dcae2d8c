"""Follow a group's orders live (WebSocket v2): every event lands in the cache, then here.

    python examples/follow_group.py                      # against a built-in sandbox
    python examples/follow_group.py --base-url https://api.kraken.com   # real orders!

A ladder of three buys goes into one group, and the group is cancelled in one request. On
the sandbox a market buy in the group also fills at once. Each event is printed as the stream
delivers it, after the cache has it. On a real exchange the orders rest 2-4 % below the
market, and there is no market order.
"""

from __future__ import annotations

import threading

from _common import parser, session

from oms import OrderRequest
from oms.live.follower import OrderUpdate


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    with session(args) as s:
        m = s.manager
        ladder = m.new_group("followed")
        events: list[OrderUpdate] = []
        closed: set[str] = set()
        all_closed = threading.Event()
        expected: set[str] = set()

        def on_update(update: OrderUpdate) -> None:  # the stream's thread, in order
            events.append(update)
            order = update.order
            status = order.status.value if order is not None else update.event.order_status
            print(f"  {update.event.exec_type:<12} {update.txid}  now {status}")
            if order is not None and order.status.value in ("closed", "canceled"):
                closed.add(update.txid)
            if expected and expected <= closed:
                all_closed.set()

        m.follow(on_update, group=ladder)
        status = m.stream_status
        print(f"stream live: {bool(status and status.live)}")
        for percent in ("-2", "-3", "-4"):
            price = s.price("XBTUSD", percent)
            request = OrderRequest(
                pair="XBTUSD", side="buy", ordertype="limit", volume="0.0001", price=price
            )
            expected.add(str(m.place(request, group=ladder).txid))
        if s.sandbox is not None:
            market = OrderRequest(pair="XBTUSD", side="buy", ordertype="market", volume="0.0001")
            expected.add(str(m.place(market, group=ladder).txid))
        result = m.cancel_group(ladder)
        print(f"cancelled {result.count} (expected {result.expected}); ok: {result.ok}")
        if expected <= closed:
            all_closed.set()
        if not all_closed.wait(30):
            raise SystemExit(f"the stream did not show every order closing: {expected - closed}")
        cached = {o.txid: o.status.value for o in m.cache.orders(group=ladder)}
        exchange = {o.txid: o.status.value for o in m.client.query_orders(sorted(expected))}
        print(f"events: {len(events)}; every order closed on the stream: True")
        print(f"cache equals the exchange: {cached == exchange}")
        if cached != exchange or not result.ok:
            raise SystemExit(1)


if __name__ == "__main__":
    main()

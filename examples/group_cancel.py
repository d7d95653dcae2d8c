"""A ladder of buy orders in one group (one userref), cancelled with a single request.

    python examples/group_cancel.py                      # against a built-in sandbox
    python examples/group_cancel.py --base-url https://api.kraken.com   # real orders!

On a real exchange the orders rest 2-4 % below the market and are cancelled a moment later.
"""

from __future__ import annotations

from _common import parser, session

from oms import OrderRequest


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    with session(args) as s:
        m = s.manager
        ladder = m.new_group("ladder")
        print(f"group {ladder.label!r}: userref {ladder.userref}")
        for percent in ("-2", "-3", "-4"):
            price = s.price("XBTUSD", percent)
            placed = m.place(
                OrderRequest(
                    pair="XBTUSD", side="buy", ordertype="limit", volume="0.0001", price=price
                ),
                group=ladder,
            )
            print(f"placed {placed.txid} buy 0.0001 XBTUSD @ {price} (userref {placed.userref})")
        m.sync()
        print(f"open in the group: {len(m.cache.open_orders(group=ladder))}")

        result = m.cancel_group(ladder)  # one CancelOrder, txid = the group's userref
        print(
            f"cancelled {result.count} (expected {result.expected}); "
            f"group empty on the exchange: {result.confirmed_empty}; ok: {result.ok}"
        )
        if not result.ok:
            raise SystemExit(1)


if __name__ == "__main__":
    main()

"""A small grid as two groups, bids and asks: cancel one side alone, then both in one batch.

python examples/grid_two_groups.py
python examples/grid_two_groups.py --base-url https://api.kraken.com   # real orders!
"""

from __future__ import annotations

from _common import parser, session

from oms import OrderRequest


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    with session(args) as s:
        m = s.manager
        bids, asks = m.new_group("grid bids"), m.new_group("grid asks")
        for group, side, offsets in ((bids, "buy", ("-2", "-3")), (asks, "sell", ("3", "4"))):
            for percent in offsets:
                price = s.price("ETHUSD", percent)
                request = OrderRequest(
                    pair="ETHUSD", side=side, ordertype="limit", volume="0.002", price=price
                )
                placed = m.place(request, group=group)
                print(f"{group.label}: {side} 0.002 ETHUSD @ {price} -> {placed.txid}")

        one_side = m.cancel_group(bids)
        print(f"cancelled the bids: {one_side.count} (ok: {one_side.ok})")
        m.sync()
        still = m.cache.open_orders(pair="ETHUSD")
        print(f"still open: {len(still)} asks, userref {sorted({o.userref for o in still})}")

        both = m.cancel_groups([bids, asks])  # one CancelOrderBatch for every group
        print(
            f"batch cancel of both groups: {both.count} (expected {both.expected}, ok: {both.ok})"
        )
        if not (one_side.ok and both.ok):
            raise SystemExit(1)


if __name__ == "__main__":
    main()

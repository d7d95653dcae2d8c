"""One userref per order (the "unique id" use), and finding an order by it when its txid is lost.

python examples/unique_ids.py
python examples/unique_ids.py --base-url https://api.kraken.com   # real orders!
"""

from __future__ import annotations

import os
import tempfile

from _common import parser, session

from oms import OrderRequest


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    with session(args) as s:
        m = s.manager
        placed = []
        for percent in ("-3", "-4", "-5"):
            price = s.price("XBTUSD", percent)
            request = OrderRequest(
                pair="XBTUSD", side="buy", ordertype="limit", volume="0.0001", price=price
            )
            # No group: the allocator (a counter in the cache by default) gives a fresh userref.
            p = m.place(request)
            placed.append(p)
            print(f"userref {p.userref} -> {p.txid}")
        assert len({p.userref for p in placed}) == len(placed)

        # Backup id: a program that never saw the txid finds the order by its userref.
        with (
            tempfile.TemporaryDirectory() as other_dir,
            s.another(os.path.join(other_dir, "other.db")) as stranger,
        ):
            (found,) = stranger.find_by_userref(placed[0].userref)
        print(f"found by userref {placed[0].userref}: {found.txid} ({found.status.value})")
        if found.txid != placed[0].txid:
            raise SystemExit(1)

        # A unique userref cancels exactly one order.
        for p in placed:
            result = m.cancel_group(p.userref)
            print(f"cancel userref {p.userref}: count {result.count}")
            if result.count != 1:
                raise SystemExit(1)


if __name__ == "__main__":
    main()

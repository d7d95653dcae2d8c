"""``oms demo``: the main job, narrated, on a built-in sandbox (no keys, no network).

The ladder is planned on the sandbox's own price path, which is a pure function of the seed
and the time: the demo looks ahead for the lowest price of the coming hours and puts about
half the rungs above it (they fill when the market gets there) and the rest below it (they are
still open for the group cancel). So every run tells the whole story, whatever the wall clock
says when it starts.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import attrs
import click

from oms.cli.errors import cli_errors, need_plotting
from oms.cli.orders import order_row
from oms.cli.output import render_table
from oms.connect import manager_on_sandbox
from oms.manager import OrderManager, Placement
from oms.models import OHLCBar, Order, OrderStatus
from oms.orders import OrderRequest
from oms.rounding import decimal_text as fmt
from oms.rounding import price_step, round_to_step

__all__ = ["DemoStory", "demo", "plan_ladder"]

PAIR = "XBTUSD"
VOLUME = "0.002"
#: How far ahead the demo looks for a dip to ladder into (sandbox hours, doubled until found).
HORIZONS = (1, 2, 4, 8, 16, 32, 64)
#: The least dip worth a ladder: below this the rungs would crowd onto one tick.
MIN_DIP = Decimal("0.001")


@attrs.frozen
class DemoStory:
    """What the demo did, in sandbox time: enough to draw it (``oms demo --plot``)."""

    pair: str
    start: float
    end: float
    bars: tuple[OHLCBar, ...]
    interval: int
    rungs: tuple[tuple[str, Decimal], ...]
    fills: tuple[tuple[float, Decimal], ...]
    cancel_at: float
    cancelled: tuple[str, ...]


def plan_ladder(
    last: Decimal, low: Decimal, rungs: int, tick: Decimal
) -> tuple[list[Decimal], int]:
    """Buy prices for ``rungs`` orders: about half between ``low`` and ``last`` (the market
    trades at ``low`` later, so they fill), the rest below ``low`` (they stay open).

    Returns the prices, highest first, and how many are at or above ``low``.
    """
    above = max(1, rungs // 2)
    gap = (last - low) / (above + 1)
    prices = []
    for i in range(above):
        # Up to the tick: a rung must stay at or above the low to be reached.
        raw = low + gap * (above - i)
        prices.append(round_to_step(raw, tick, rounding=ROUND_CEILING))
    step = max(tick, round_to_step(gap, tick, rounding=ROUND_FLOOR))
    for j in range(rungs - above):
        # Down to the tick: a rung below the low must stay strictly below it.
        raw = low - step * (j + 1)
        prices.append(round_to_step(raw, tick, rounding=ROUND_FLOOR))
    return prices, above


def _say(text: str = "", **style: Any) -> None:
    style = {k: v for k, v in style.items() if v is not None}
    click.echo(click.style(text, **style) if style else text)


def _step(n: int, text: str) -> None:
    _say()
    _say(f"{n}. {text}", bold=True)


def _ladder_table(manager: OrderManager, txids: Sequence[str]) -> str:
    rows = []
    for txid in txids:
        order = manager.cache.order(txid)
        if order is not None:
            rows.append(order_row(order))
    return render_table(rows, ("txid", "userref", "side", "price", "volume", "filled", "status"))


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.splitlines())


@click.command()
@click.option("--seed", default=7, show_default=True, help="The sandbox's price path.")
@click.option(
    "--rungs",
    default=5,
    type=click.IntRange(2, 20),
    show_default=True,
    help="Orders in the ladder.",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep the demo's order cache here (default: a temporary file).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE.png",
    help="Also draw the story: price path, rungs, fills, the cancel (pip install 'oms[plot]').",
)
def demo(seed: int, rungs: int, db: Path | None, plot_path: Path | None) -> None:
    """Watch oms trade on a built-in sandbox exchange: no keys, no network.

    Starts a local exchange (real HTTP on 127.0.0.1), places a ladder of buy orders as one
    group (one userref), loses one answer on purpose to show that the order is found, not
    sent twice, lets the market move until the rungs above the coming low fill, then cancels
    the rest of the group with a single request and checks the result. The ladder is planned
    on the sandbox's own price path, so every run fills some rungs and cancels others.
    """
    from oms.sandbox import ManualClock, Sandbox

    if plot_path is not None:
        need_plotting()
    # The demo narrates what the manager logs (a lost answer, reconciled); keep the log quiet.
    logging.getLogger("oms").addHandler(logging.NullHandler())
    with tempfile.TemporaryDirectory(prefix="oms-demo-") as scratch:
        clock = ManualClock(time.time())
        # The sandbox's throwaway key gets its nonce file in the scratch directory.
        with (
            Sandbox.serve(seed=seed, clock=clock) as sb,
            cli_errors(),
            manager_on_sandbox(sb, db or Path(scratch) / "demo.db", nonce_dir=scratch) as manager,
        ):
            story = run_demo(sb, manager, clock, rungs=rungs)
    if plot_path is not None:
        from oms.plot import plot_demo

        plot_demo(story, plot_path)
        _say(f"Drawn: {plot_path}")


def _exchange_view(sb: Any, manager: OrderManager) -> dict[str, Order]:
    """Every order of the sandbox account, straight from the exchange (for the final check).

    The client shares the manager's rate limiter: two limiters pacing one key each think the
    key's REST counter is theirs, and history calls (+4) then overrun it.
    """
    client = sb.client(rate_limiter=manager.client.rate_limiter)
    try:
        found = {o.txid: o for o in client.open_orders()}
        found.update({o.txid: o for o in client.iter_closed_orders()})
    finally:
        client.close()
    return found


def _dip(sb: Any, start: float, last: Decimal) -> tuple[float, Decimal]:
    """The first horizon whose lowest price is a real dip below ``last``, and that low."""
    for hours in HORIZONS:
        end = start + hours * 3600
        found = sb.market.price_range(PAIR, start, end)
        if found is not None and found[0] <= last * (1 - MIN_DIP):
            return end, found[0]
    raise click.ClickException("the sandbox's price path has no dip to ladder into")


def run_demo(sb: Any, manager: OrderManager, clock: Any, *, rungs: int) -> DemoStory:
    _say("oms demo: order management against a local Kraken-protocol sandbox", bold=True)
    _say(f"   exchange  {sb.base_url}  (started by this command; a funded test account)")
    _say(f"   cache     {manager.cache.path}")

    _step(1, "A group: many orders, one userref")
    group = manager.new_group("demo ladder")
    _say(f"   Group {group.label!r} got userref {group.userref}. Every rung carries it, so one")
    _say("   CancelOrder with that userref cancels them all.")

    info = manager.pair(PAIR)
    start = clock.time()
    last = sb.market.last_price(PAIR)
    tick = price_step(info)
    horizon, low = _dip(sb, start, last)
    prices, above = plan_ladder(last, low, rungs, tick)
    hours = (horizon - start) / 3600
    _step(2, f"A ladder of {rungs} limit buys below the market ({PAIR} last traded {fmt(last)})")
    _say(f"   The sandbox's price path dips to {fmt(low)} within {hours:g} h: {above} rungs sit")
    _say("   above that low (they will fill), the rest below it (they will still be open).")
    lost = rungs // 2
    txids: list[str] = []
    for i, price in enumerate(prices):
        request = OrderRequest(pair=PAIR, side="buy", ordertype="limit", volume=VOLUME, price=price)
        if i == lost:
            # The exchange takes the order, but its answer never arrives.
            sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
        placed: Placement = manager.place(request, group=group)
        assert placed.txid is not None
        txids.append(placed.txid)
        line = f"   buy {VOLUME} @ {fmt(price):>9}  -> {placed.txid}"
        if placed.reconciled:
            line += click.style("  answer lost on the way!", fg="yellow")
        _say(line)
        if placed.reconciled:
            _say(
                "      oms waited until the order's deadline had passed, found it by its userref",
                fg="yellow",
            )
            _say("      in OpenOrders and adopted it: placed once, not sent twice.", fg="yellow")
    manager.sync()
    _say()
    _say(_indent(_ladder_table(manager, txids)))

    _step(3, "The market moves (sandbox time runs ahead, five minutes at a time)")
    filled: list[Order] = []
    while clock.time() < horizon:
        clock.advance(min(300.0, horizon - clock.time()))
        manager.sync()
        filled = [o for o in manager.cache.orders(txids=txids) if o.vol_exec > 0]
        if len(filled) >= above:
            break
    moved = (clock.time() - start) / 3600
    _say(
        f"   {moved:.1f} h later {PAIR} trades at {fmt(sb.market.last_price(PAIR))}: "
        f"{len(filled)} of {rungs} rungs filled (or partly filled)."
    )
    _say()
    _say(_indent(_ladder_table(manager, txids)))

    _step(4, f"Cancel the rest of the group in one request: CancelOrder txid={group.userref}")
    cancel_at = clock.time()
    result = manager.cancel_group(group)
    empty = "yes" if result.confirmed_empty else f"no, left: {', '.join(result.leftovers)}"
    _say(f"   Kraken cancelled:                 {result.count}")
    _say(f"   open members the cache expected:  {result.expected}")
    _say(f"   OpenOrders for userref {group.userref} empty:   {empty}")
    if result.ok:
        _say("   -> the group cancel checks out", fg="green")
    else:
        _say("   -> MISMATCH: see the counts above", fg="red")
    manager.sync()
    _say()
    _say(_indent(_ladder_table(manager, txids)))

    final = manager.cache.orders(txids=txids)
    done = sum(1 for o in final if o.status is OrderStatus.CLOSED)
    cancelled = [o for o in final if o.status is OrderStatus.CANCELED]
    exchange = _exchange_view(sb, manager)
    agrees = {o.txid: o for o in manager.cache.orders()} == exchange
    adds = manager.requests.get("AddOrder", 0)
    _step(5, "What happened")
    _say(
        f"   placed     {rungs} orders with {adds} AddOrder requests (one answer lost, none resent)"
    )
    _say(f"   filled     {done}")
    _say(f"   cancelled  {len(cancelled)}, with one CancelOrder request")
    _say(
        f"   cache      {len(exchange)} orders, "
        + ("identical to the exchange's" if agrees else "DIFFERENT from the exchange's"),
        fg=None if agrees else "red",
    )
    _say()
    _say("Next: `oms sandbox` runs a sandbox you keep; `oms place`, `oms orders --table`,")
    _say("`oms cancel --userref N` work against it (or Kraken) with --base-url.")
    return _story(sb, start, clock.time(), final, prices, txids, cancel_at, cancelled)


def _story(
    sb: Any,
    start: float,
    end: float,
    final: Sequence[Order],
    prices: Sequence[Decimal],
    txids: Sequence[str],
    cancel_at: float,
    cancelled: Sequence[Order],
) -> DemoStory:
    client = sb.client()
    try:
        # Bars from a little before the start: the price path the rungs met (one-minute bars
        # for a short story, five-minute ones beyond two hours).
        minutes = 1 if end - start < 7200 else 5
        page = client.ohlc(PAIR, interval=minutes, since=int(start) - 10 * 60 * minutes)
    finally:
        client.close()
    fills = [(o.closetm or cancel_at, o.price) for o in final if o.vol_exec > 0]
    return DemoStory(
        pair=PAIR,
        start=start,
        end=end,
        bars=tuple(b for b in page.bars if b.time <= end),
        interval=minutes * 60,
        rungs=tuple(zip(txids, prices, strict=True)),
        fills=tuple(sorted(fills)),
        cancel_at=cancel_at,
        cancelled=tuple(o.txid for o in cancelled),
    )

"""``oms check``: Kraken support's recommended API test, as one command.

Without ``--live`` it sends nothing that can trade: a private read (the key), a look at the
nonce, and one ``validate=true`` AddOrder (Kraken checks it and places nothing). ``--live`` then
does what the seed recommends for a real test: one minimum-size limit order far from the
market, with a fresh userref, found by that userref in OpenOrders, cancelled by it, and seen
cancelled in ClosedOrders. It refuses to run without an explicit confirmation flag.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path

import click

from oms.cli.errors import EXIT_USAGE, CliError, describe, exit_code_for
from oms.cli.options import base_url_option, db_option, identity_options, open_client, open_manager
from oms.client import KrakenClient
from oms.errors import InvalidNonce, OmsError
from oms.manager import OrderManager
from oms.models import AssetPair, OrderStatus
from oms.orders import OrderRequest
from oms.rounding import decimal_text as fmt
from oms.rounding import min_volume, round_price

__all__ = ["CONFIRM_FLAG", "check", "far_limit"]

CONFIRM_FLAG = "--i-understand-this-places-a-real-order"
#: How far from the market the live order sits (a buy at half the bid, a sell at twice the ask).
FAR = Decimal(2)


def far_limit(pair: AssetPair, side: str, bid: Decimal, ask: Decimal) -> tuple[Decimal, Decimal]:
    """A price far from the market (that will not fill) and the least volume the pair's
    rules allow at that price (``ordermin``, raised to meet ``costmin``)."""
    if side == "buy":
        price = round_price(bid / FAR, pair, rounding=ROUND_FLOOR)
    else:
        price = round_price(ask * FAR, pair, rounding=ROUND_CEILING)
    return price, min_volume(pair, price)


def _ok(n: int, text: str) -> None:
    click.echo(f"{n}. {text}")


def _fail(n: int, text: str, exc: OmsError | None = None) -> CliError:
    detail = f": {describe(exc)}" if exc is not None else ""
    return CliError(f"step {n} failed, {text}{detail}", 1 if exc is None else exit_code_for(exc))


@click.command()
@click.option("--pair", default="XBTUSD", show_default=True, help="The pair to test with.")
@click.option(
    "--side",
    type=click.Choice(["buy", "sell"]),
    default="buy",
    show_default=True,
    help="buy: at half the bid (needs a little quote currency); sell: at twice the ask.",
)
@click.option(
    "--live",
    is_flag=True,
    help="Also place, find, cancel and confirm one real minimum-size order far from the market.",
)
@click.option(
    CONFIRM_FLAG,
    "confirmed",
    is_flag=True,
    help="Required with --live: you accept that a real order is placed (and cancelled).",
)
@base_url_option
@db_option
@identity_options
def check(
    pair: str, side: str, live: bool, confirmed: bool, base_url: str, db: Path | None
) -> None:
    """Test the key, the nonce and order entry, as Kraken support recommends.

    \b
    1. key: a private read (Balance) answers;
    2. nonce: accepted (a warning if the key has seen larger nonces than oms sends);
    3. AddOrder with validate=true: Kraken checks the order, places nothing.
    With --live (and the confirmation flag), also:
    4. one minimum-size limit order far from the market, with a fresh userref;
    5. found by that userref in OpenOrders;
    6. cancelled by that userref (CancelOrder txid=USERREF);
    7. seen as canceled in ClosedOrders.

    Keys come from KRAKEN_API_KEY / KRAKEN_API_SECRET (Query Funds, Query Open/Closed Orders,
    Create & Modify Orders and Cancel/Close Orders permissions). Every step is printed; the
    first failure stops the check with exit status 1 (3 if the live order's fate is unknown:
    run `oms recover`).
    """
    if live and not confirmed:
        raise CliError(
            f"--live places a real order (then cancels it): add {CONFIRM_FLAG} to proceed",
            EXIT_USAGE,
        )
    if confirmed and not live:
        raise click.UsageError(f"{CONFIRM_FLAG} goes with --live")
    if live:
        # One object: the manager, whose client runs the basic checks first.
        with open_manager(base_url, db) as manager:
            _basic(manager.client, pair, side)
            _live(manager.client, manager, pair, side)
    else:
        with open_client(base_url, show_waits=True) as client:
            _basic(client, pair, side)
    click.echo("all checks passed")


def _basic(client: KrakenClient, pair: str, side: str) -> None:
    try:
        balance = client.balance()
    except InvalidNonce as exc:
        raise _fail(
            1,
            "Kraken refused the nonce: this key has seen a larger nonce than oms sends "
            "(another program, or a larger nonce scale, used it); give oms a key of its own",
            exc,
        ) from None
    except OmsError as exc:
        raise _fail(1, "the key cannot read the balance", exc) from None
    _ok(1, f"key: ok (Balance answered, {len(balance)} assets)")

    source = client.nonce_source
    last = source.last()
    try:
        client.open_orders()
    except InvalidNonce as exc:
        raise _fail(
            2,
            "a second nonce was refused: another program is using this key at the same time, "
            "or it has seen larger-scale nonces",
            exc,
        ) from None
    except OmsError as exc:
        raise _fail(2, "OpenOrders", exc) from None
    digits = len(str(source.last()))
    _ok(2, f"nonce: ok (increasing, {digits} digits; last before this check {last})")
    if digits < 19:
        click.echo(
            "   warning: this key's nonces are below nanosecond scale; if any other client ever "
            "sent it nanosecond nonces, Kraken will refuse these forever",
            err=True,
        )

    rules = client.pair(pair)
    tick = client.ticker(rules.altname)
    (quote,) = tick.values()
    price, volume = far_limit(rules, side, quote.bid, quote.ask)
    request = OrderRequest(
        pair=rules.altname, side=side, ordertype="limit", volume=volume, price=price, validate=True
    )
    try:
        result = client.add_order(request, pair=rules)
    except OmsError as exc:
        raise _fail(3, "AddOrder validate=true was refused", exc) from None
    if not result.validated or result.txids:
        raise _fail(3, f"a validate=true AddOrder came back with txids {list(result.txids)}")
    _ok(3, f"validate=true: ok ({result.descr_order}; nothing placed)")


def _live(client: KrakenClient, manager: OrderManager, pair: str, side: str) -> None:
    rules = client.pair(pair)
    (quote,) = client.ticker(rules.altname).values()
    price, volume = far_limit(rules, side, quote.bid, quote.ask)
    request = OrderRequest(
        pair=rules.altname, side=side, ordertype="limit", volume=volume, price=price
    )
    try:
        placed = manager.place(request)
    except OmsError as exc:
        raise _fail(4, "placing the live order", exc) from None
    userref = placed.userref
    _ok(
        4,
        f"placed: {side} {fmt(volume)} {rules.altname} @ {fmt(price)} (market bid "
        f"{fmt(quote.bid)}, ask {fmt(quote.ask)}), userref {userref}, txid {placed.txid}",
    )
    try:
        found = client.open_orders(userref=userref)
    except OmsError as exc:
        raise _fail(5, f"OpenOrders userref={userref}", exc) from None
    if [o.txid for o in found] != [placed.txid]:
        raise _fail(5, f"OpenOrders userref={userref} shows {[o.txid for o in found]}")
    _ok(5, f"found by userref in OpenOrders: {placed.txid}")
    try:
        cancelled = client.cancel_order(userref=userref)
    except OmsError as exc:
        raise _fail(6, f"CancelOrder txid={userref}", exc) from None
    if cancelled.count != 1:
        raise _fail(6, f"CancelOrder txid={userref} cancelled {cancelled.count}, not 1")
    _ok(6, f"cancelled by userref: CancelOrder txid={userref} -> count 1")
    try:
        closed = client.closed_orders(userref=userref)
    except OmsError as exc:
        raise _fail(7, f"ClosedOrders userref={userref}", exc) from None
    mine = [o for o in closed.orders if o.txid == placed.txid]
    if not mine or mine[0].status is not OrderStatus.CANCELED:
        raise _fail(7, f"{placed.txid} is not canceled in ClosedOrders userref={userref}")
    manager.sync()
    _ok(7, f"confirmed in ClosedOrders: {placed.txid} canceled ({mine[0].reason or 'no reason'})")

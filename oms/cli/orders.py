"""Order commands: ``oms place``, ``oms orders``, ``oms groups``, ``oms cancel``,
``oms recover``, ``oms sync``.

Each opens one object (:mod:`oms.cli.options`): ``orders`` and ``groups`` the order cache
(``--db``, no network), the others an :class:`~oms.manager.OrderManager` from the environment
(``--base-url``, ``KRAKEN_API_KEY`` / ``KRAKEN_API_SECRET``). Output goes through
:mod:`oms.cli.output`: JSON by default (one document, for scripts), ``--table`` for people.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from oms.cache import CLOSED_STATUSES, OPEN_STATUSES, Group, IntentState, OrderCache
from oms.cli.errors import (
    EXIT_INTERRUPTED,
    EXIT_UNKNOWN,
    EXIT_USAGE,
    CliError,
    cli_errors,
    describe,
)
from oms.cli.options import (
    USERREF,
    db_option,
    exchange_options,
    is_sandbox_url,
    open_cache,
    open_manager,
    time_option_callback,
)
from oms.cli.output import chosen_format, emit, format_options, iso, note, plain, render_table
from oms.errors import OmsError
from oms.manager import GroupCancelResult, OrderManager
from oms.models import Order, OrderStatus
from oms.orders import OrderRequest, check_userref
from oms.rounding import decimal_text as fmt

__all__ = [
    "cancel",
    "groups",
    "order_dict",
    "order_row",
    "orders",
    "place",
    "recover",
    "render_table",
    "sync",
]

ORDER_COLUMNS = (
    "txid",
    "userref",
    "status",
    "side",
    "pair",
    "price",
    "volume",
    "filled",
    "opened",
)


# --- output -----------------------------------------------------------------------------------


def order_dict(order: Order) -> dict[str, Any]:
    """One order as a flat JSON-ready dict (money as decimal strings, times as unix floats)."""
    price = order.descr.price
    return {
        "txid": order.txid,
        "userref": order.userref,
        "status": order.status.value,
        "side": order.side.value,
        "pair": order.pair,
        "ordertype": order.descr.ordertype_raw,
        "price": fmt(price) if isinstance(price, Decimal) else str(price),
        "volume": fmt(order.vol),
        "vol_exec": fmt(order.vol_exec),
        "avg_price": fmt(order.price),
        "cost": fmt(order.cost),
        "fee": fmt(order.fee),
        "opentm": order.opentm,
        "closetm": order.closetm,
        "reason": order.reason,
    }


def order_row(order: Order) -> dict[str, Any]:
    row = order_dict(order)
    row["filled"] = row.pop("vol_exec")
    row["opened"] = iso(order.opentm)
    return row


def _interrupted_placement(manager: OrderManager, known: set[str]) -> CliError:
    """What became of a placement that Ctrl-C stopped, as the error to exit with."""
    new = [i for i in manager.cache.intents() if i.id not in known]
    if not new:
        return CliError("interrupted: nothing was sent (no intent was recorded)", EXIT_INTERRUPTED)
    intent = new[-1]
    order = f"{intent.side} {intent.volume} {intent.pair}"
    what = f"intent {intent.id} (userref {intent.userref}, {order})"
    if intent.state is IntentState.PLACED:
        return CliError(
            f"interrupted after the order was placed: {what} is order {intent.txid}",
            EXIT_INTERRUPTED,
        )
    if not intent.state.unresolved:
        return CliError(f"interrupted: {what} ended {intent.state.value}", EXIT_INTERRUPTED)
    if intent.attempts == 0:
        sent = "it may not have been sent yet"
    else:
        sent = f"{intent.attempts} AddOrder request(s) went out and the answer was not read"
    return CliError(
        f"interrupted during the placement: {what} is recorded as {intent.state.value}; "
        f"{sent}. Run `oms recover` to learn whether the order exists (do not place it again "
        "by hand)",
        EXIT_UNKNOWN,
    )


# --- commands ---------------------------------------------------------------------------------


@click.command()
@click.argument("pair")
@click.argument("side", type=click.Choice(["buy", "sell"]))
@click.argument("volume")
@click.option("--price", help="Limit (or trigger) price; omit for a market order.")
@click.option("--price2", help="Second price (the limit of stop-loss-limit etc.).")
@click.option(
    "--ordertype", default=None, help="Order type (default: limit with --price, else market)."
)
@click.option("--userref", type=USERREF, help="A userref chosen by hand (default: allocated).")
@click.option(
    "--group",
    "group_ref",
    type=USERREF,
    help="Place into the group with this userref (known to the cache).",
)
@click.option(
    "--create-group",
    is_flag=True,
    help="With --group N: create the group if the cache does not know it (else refused).",
)
@click.option("--new-group", "new_group", metavar="LABEL", help="Create a group and place into it.")
@click.option("--oflags", default="", help="Comma list, e.g. post.")
@click.option("--validate", is_flag=True, help="Ask Kraken to check the order; place nothing.")
@click.option(
    "--yes",
    "-y",
    "assume_yes",
    is_flag=True,
    help="Do not ask before sending a market order to a non-sandbox --base-url.",
)
@exchange_options
@format_options
def place(
    pair: str,
    side: str,
    volume: str,
    price: str | None,
    price2: str | None,
    ordertype: str | None,
    userref: int | None,
    group_ref: int | None,
    create_group: bool,
    new_group: str | None,
    oflags: str,
    validate: bool,
    assume_yes: bool,
    base_url: str,
    deadline: float,
    db: Path | None,
    output_format: str | None,
    table: bool,
) -> None:
    """Place one order: recorded first, sent with a deadline, never sent twice.

    An ambiguous answer (timeout, 5xx) is resolved by looking the order up by its userref
    after the deadline; the command prints the placement (txid, userref, attempts). Its
    state is the placement's: placed, validated; the order's own status shows in
    `oms orders` (as "sent" until `oms sync` reads it back from the exchange).

    A market order (no --price) against anything but a local sandbox asks first; --yes
    skips the question. Ctrl-C during a placement says what became of it (exit status 3 if
    the order may exist: then run `oms recover`).
    """
    fmt_ = chosen_format(output_format, table)
    if group_ref is not None and new_group is not None:
        raise click.UsageError("--group and --new-group exclude each other")
    if create_group and group_ref is None:
        raise click.UsageError("--create-group goes with --group N")
    kind = ordertype or ("limit" if price is not None else "market")
    try:
        request = OrderRequest(
            pair=pair,
            side=side,
            ordertype=kind,
            volume=volume,
            price=price,
            price2=price2,
            userref=userref,
            oflags=oflags,
        )
    except OmsError as exc:
        raise CliError(describe(exc), EXIT_USAGE) from None
    if kind == "market" and not validate and not assume_yes and not is_sandbox_url(base_url):
        question = f"Send a MARKET {side} of {volume} {pair} to {base_url}?"
        if not sys.stdin.isatty():
            raise CliError(
                f"a market order to {base_url} needs confirmation: pass --yes (nothing was sent)",
                EXIT_USAGE,
            )
        if not click.confirm(question, default=False, err=True):
            raise CliError("not confirmed: nothing was sent", EXIT_USAGE)
    with open_manager(base_url, db, deadline=deadline) as manager:
        group: Group | int | None = group_ref
        if group_ref is not None and manager.group(group_ref) is None:
            if not create_group:
                raise CliError(
                    f"--group {group_ref}: no such group in {manager.cache.path} (see `oms "
                    "groups`); pass --create-group to create it, or --new-group LABEL",
                    EXIT_USAGE,
                )
            group = manager.new_group(f"group {group_ref}", userref=group_ref)
        if new_group is not None:
            group = manager.new_group(new_group, userref=userref)
        known = {i.id for i in manager.cache.intents()}
        try:
            result = manager.place(request, group=group, validate=validate)
        except KeyboardInterrupt:
            raise _interrupted_placement(manager, known) from None
        emit(plain(result), output_format=fmt_)


def _orders_rows(cache: OrderCache, found: Sequence[Order]) -> tuple[list[Any], list[Any]]:
    """JSON records and table rows; an order known only from its placement shows "sent"."""
    unsynced = cache.unsynced(o.txid for o in found if o.status is OrderStatus.PENDING)
    data, rows = [], []
    for order in found:
        record, row = order_dict(order), order_row(order)
        if order.txid in unsynced:
            record["status"] = row["status"] = SENT
        data.append(record)
        rows.append(row)
    return data, rows


#: The status shown for an order the exchange accepted but no sync has read back yet; not
#: Kraken's ``pending`` ("not yet on the book"), which it may still turn out to be.
SENT = "sent"


@click.command()
@click.option(
    "--status",
    type=click.Choice(["open", "closed", "all", *[s.value for s in OrderStatus]]),
    default="all",
    show_default=True,
    help="open = pending+open; closed = closed+canceled+expired; or one exact status.",
)
@click.option(
    "--userref", type=USERREF, help="Only orders with this userref (a group's, or one order's)."
)
@click.option("--pair", help="Only this pair (altname, e.g. XBTUSD).")
@click.option("--side", type=click.Choice(["buy", "sell"]))
@click.option(
    "--since",
    callback=time_option_callback,
    help="Opened at or after this time (ISO 8601, UTC unless an offset is given, or unix seconds).",
)
@click.option(
    "--until",
    callback=time_option_callback,
    help="Opened before this time (ISO 8601 or unix seconds).",
)
@click.option("--txid", help="Just this one order.")
@click.option("--limit", type=click.IntRange(1), help="At most this many (newest first).")
@click.option(
    "--follow",
    is_flag=True,
    help="Then follow live: print each new event (as `oms watch`; --userref filters it).",
)
@db_option
@format_options
@click.pass_context
def orders(
    ctx: click.Context,
    status: str,
    userref: int | None,
    pair: str | None,
    side: str | None,
    since: int | None,
    until: int | None,
    txid: str | None,
    limit: int | None,
    follow: bool,
    db: Path | None,
    output_format: str | None,
    table: bool,
) -> None:
    """Query the cached orders (no network; run `oms sync` to refresh).

    Times in the table and CSV are UTC (ISO 8601, ending in Z); JSON has unix seconds. An
    order placed by oms and not yet read back from the exchange shows status "sent". With
    --follow it then streams events as they happen (network: $KRAKEN_BASE_URL's stream)
    until Ctrl-C.
    """
    fmt_ = chosen_format(output_format, table)
    statuses: Any = {"open": OPEN_STATUSES, "closed": CLOSED_STATUSES, "all": None}.get(
        status, status
    )
    with open_cache(db) as cache:
        found = cache.orders(
            status=statuses,
            userref=userref,
            pair=pair,
            side=side,
            since=since,
            until=until,
            txids=[txid] if txid else None,
            limit=limit,
        )
        data, rows = _orders_rows(cache, found)
    emit(data, output_format=fmt_, rows=data if fmt_ == "nl" else rows, columns=ORDER_COLUMNS)
    if follow:
        from oms.cli.watch import watch
        from oms.client import DEFAULT_BASE_URL

        ctx.invoke(
            watch,
            userref=userref,
            table=table,
            base_url=os.environ.get("KRAKEN_BASE_URL") or DEFAULT_BASE_URL,
            db=db,
        )


@click.command()
@click.option("--label", help="Only groups with this label.")
@db_option
@format_options
def groups(label: str | None, db: Path | None, output_format: str | None, table: bool) -> None:
    """List the groups (one userref, many orders) with their open and total order counts."""
    fmt_ = chosen_format(output_format, table)
    with open_cache(db) as cache:
        rows = [
            {
                "userref": g.userref,
                "label": g.label,
                "created": iso(g.created_at),
                "open": cache.count(userref=g.userref, status=OPEN_STATUSES),
                "orders": cache.count(userref=g.userref),
            }
            for g in cache.groups(label=label)
        ]
    emit(
        rows,
        output_format=fmt_,
        rows=rows,
        columns=("userref", "label", "created", "open", "orders"),
    )


@click.command()
@click.option(
    "--userref",
    "userrefs",
    type=USERREF,
    multiple=True,
    help="Cancel every open order with this userref (repeat for several: one batch).",
)
@click.option("--txid", help="Cancel this one order.")
@exchange_options
@format_options
def cancel(
    userrefs: tuple[int, ...],
    txid: str | None,
    base_url: str,
    deadline: float,
    db: Path | None,
    output_format: str | None,
    table: bool,
) -> None:
    """Cancel a group (all open orders with a userref) in one request, or one order by txid.

    For a userref the result is checked: Kraken's count against the cached open members,
    then OpenOrders for the userref must be empty (`ok` says both held; exit status 1 if not).
    """
    fmt_ = chosen_format(output_format, table)
    if bool(userrefs) == bool(txid):
        raise click.UsageError("give --userref (one or more) or --txid")
    with cli_errors():
        for ref in userrefs:
            check_userref(ref)
    with open_manager(base_url, db, deadline=deadline) as manager:
        if txid:
            result: Any = manager.cancel(txid)
            emit(plain(result), output_format=fmt_)
            return
        outcome: GroupCancelResult = (
            manager.cancel_group(userrefs[0])
            if len(userrefs) == 1
            else manager.cancel_groups(userrefs)
        )
        data = {**plain(outcome), "ok": outcome.ok}
        emit(data, output_format=fmt_)
        if outcome.outsiders and not outcome.outsiders_cancelled:
            note(
                f"note: {len(outcome.outsiders)} order(s) with this userref were not placed "
                "through this database; they were left open: " + ", ".join(outcome.outsiders)
            )
        if not outcome.ok:
            raise CliError(
                "the group cancel did not check out (see leftovers, unaccounted, "
                "outsiders_cancelled and count above)"
            )


@click.command()
@exchange_options
@format_options
def recover(
    base_url: str, deadline: float, db: Path | None, output_format: str | None, table: bool
) -> None:
    """Resolve placements left undecided (a crash, a lost answer) and print what became of
    each: placed (with its txid), absent (provably never placed), or still unknown.

    Exit status 3 while any stays unknown (run it again once the exchange answers).
    """
    fmt_ = chosen_format(output_format, table)
    with open_manager(base_url, db, deadline=deadline) as manager:
        report = manager.recover()
        rows = []
        for state, ids in (
            ("placed", report.placed),
            ("absent", report.absent),
            ("unknown", report.unknown),
        ):
            for intent_id in ids:
                intent = manager.cache.intent(intent_id)
                rows.append(
                    {
                        "intent": intent_id,
                        "outcome": state,
                        "userref": intent.userref if intent else None,
                        "txid": intent.txid if intent else None,
                        "order": (
                            f"{intent.side} {fmt(intent.volume)} {intent.pair}" if intent else None
                        ),
                    }
                )
        if fmt_ == "json":
            emit({"resolved": report.resolved, "intents": rows}, output_format=fmt_)
        else:
            emit(
                rows,
                output_format=fmt_,
                rows=rows,
                columns=("intent", "outcome", "userref", "txid", "order"),
            )
        if report.unknown:
            raise CliError(
                f"{len(report.unknown)} placement(s) are still undecided: the exchange could not "
                "be asked; run `oms recover` again later",
                exit_code=EXIT_UNKNOWN,
            )


@click.command()
@exchange_options
@format_options
def sync(
    base_url: str, deadline: float, db: Path | None, output_format: str | None, table: bool
) -> None:
    """Bring the cache up to date: open orders, and orders closed since the last sync."""
    fmt_ = chosen_format(output_format, table)
    with open_manager(base_url, db, deadline=deadline) as manager:
        result = manager.sync()
        emit(plain(result), output_format=fmt_)
        if result.foreign:
            note(
                f"note: {len(result.foreign)} order(s) carry userrefs in this program's range but "
                "were not placed through this database; their userrefs are reserved: "
                + ", ".join(result.foreign)
            )
        if result.missing:
            note(
                f"note: the exchange does not know {len(result.missing)} cached open order(s); "
                "they are marked missing: " + ", ".join(result.missing)
            )

"""Order commands: ``oms demo``, ``oms place``, ``oms orders``, ``oms groups``, ``oms cancel``,
``oms sync``.

Every command except ``demo`` works on a cache database (``--db``) and, when it needs the
exchange, on ``--base-url`` with the key and secret from ``KRAKEN_API_KEY`` /
``KRAKEN_API_SECRET``. Output is JSON by default (one document, for scripts); ``--table``
prints aligned columns for people.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import attrs
import click

from oms._decimal import fmt
from oms.auth import Credentials, key_fingerprint
from oms.cache import CLOSED_STATUSES, OPEN_STATUSES, Group, OrderCache
from oms.client import DEFAULT_BASE_URL, KrakenClient
from oms.errors import OmsError
from oms.manager import GroupCancelResult, OrderManager, Placement
from oms.models import Order, OrderStatus
from oms.nonce import NonceSource, default_directory
from oms.orders import USERREF_MAX, OrderRequest, check_userref

__all__ = [
    "cancel",
    "demo",
    "groups",
    "order_dict",
    "orders",
    "place",
    "render_table",
    "sync",
]

F = TypeVar("F", bound=Callable[..., Any])

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


def default_db() -> Path:
    """``$OMS_DB``, else ``orders.db`` in ``$OMS_DATA_DIR`` or the user data directory."""
    if os.environ.get("OMS_DB"):
        return Path(os.environ["OMS_DB"])
    # The nonce directory sits in the oms data dir: one place decides where that is.
    return default_directory().parent / "orders.db"


# --- output -----------------------------------------------------------------------------------


def _when(t: float | None) -> str:
    if t is None:
        return ""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


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


def _order_row(order: Order) -> dict[str, Any]:
    row = order_dict(order)
    row["filled"] = row.pop("vol_exec")
    row["opened"] = _when(order.opentm)
    return row


def _plain(value: object) -> Any:
    """JSON-ready form of results: attrs classes, enums, decimals, tuples."""
    if attrs.has(type(value)):
        return {k: _plain(v) for k, v in attrs.asdict(value, recurse=False).items()}  # type: ignore[arg-type]
    if isinstance(value, Decimal):
        return fmt(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    enum_value = getattr(value, "value", None)
    if enum_value is not None and isinstance(value, str):
        return enum_value
    return value


def render_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Rows as aligned text columns (numbers right-aligned); a note when there are none."""
    if not rows:
        return "(none)"
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]

    def numeric(text: str) -> bool:
        return bool(text) and text.replace(".", "", 1).replace("-", "", 1).isdigit()

    header = zip(columns, widths, strict=True)
    lines = ["  ".join(c.upper().ljust(w) for c, w in header).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        parts = [t.rjust(w) if numeric(t) else t.ljust(w) for t, w in zip(row, widths, strict=True)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _emit(
    data: Any,
    *,
    table: bool,
    rows: Sequence[dict[str, Any]] | None = None,
    columns: Sequence[str] = (),
) -> None:
    if table and rows is not None:
        click.echo(render_table(rows, columns))
    elif table and isinstance(data, dict):
        click.echo(
            render_table([{"field": k, "value": v} for k, v in data.items()], ("field", "value"))
        )
    else:
        click.echo(json.dumps(_plain(data), indent=2))


# --- shared options ---------------------------------------------------------------------------


class _Userref(click.ParamType):  # type: ignore[type-arg]
    """A userref typed by hand: ASCII digits only, then the library's range check.

    ``click.INT`` goes through ``int()``, which also reads ``"+5"``, ``" 5"``, ``"5_000"`` and
    Arabic-Indic or fullwidth digits; a userref that was not typed as plain digits is a typo
    (or worse) to report, not to repair.
    """

    # Shown as INTEGER in --help, as click.INT was: the generated CLI reference stays as is.
    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif (
            isinstance(value, str) and 0 < len(value) <= 10 and all("0" <= c <= "9" for c in value)
        ):
            number = int(value)
        else:
            self.fail(f"{value!r} is not a userref (ASCII digits, 1..{USERREF_MAX})", param, ctx)
        try:
            return check_userref(number)
        except OmsError as exc:
            self.fail(str(exc), param, ctx)


_USERREF = _Userref()


def _db_option(f: F) -> F:
    return click.option(
        "--db",
        "db",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="The order cache (SQLite) [env OMS_DB; default: orders.db in the oms data dir].",
    )(f)


def _table_option(f: F) -> F:
    return click.option("--table", is_flag=True, help="Aligned columns for people, not JSON.")(f)


def _exchange_options(f: F) -> F:
    f = click.option(
        "--base-url",
        envvar="KRAKEN_BASE_URL",
        default=DEFAULT_BASE_URL,
        show_default=True,
        help="Kraken, or a local `oms sandbox` [env KRAKEN_BASE_URL].",
    )(f)
    f = click.option(
        "--deadline",
        type=click.FloatRange(3, 59),
        default=15.0,
        show_default=True,
        help="Seconds ahead of the server's clock for each AddOrder's deadline.",
    )(f)
    return _db_option(f)


@contextmanager
def _manager(base_url: str, db: Path | None, *, deadline: float = 15.0) -> Iterator[OrderManager]:
    try:
        credentials = Credentials.from_env()
    except OmsError as exc:
        raise click.ClickException(
            f"{exc} (set KRAKEN_API_KEY and KRAKEN_API_SECRET; for the sandbox, use the key "
            "and secret `oms sandbox` printed)"
        ) from None
    client = KrakenClient(credentials, base_url=base_url)
    manager = OrderManager(client, db or default_db(), deadline=deadline)
    try:
        yield manager
    except OmsError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    finally:
        manager.close()
        client.close()


@contextmanager
def _cache(db: Path | None) -> Iterator[OrderCache]:
    cache = OrderCache(db or default_db())
    try:
        yield cache
    except OmsError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    finally:
        cache.close()


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
@click.option("--userref", type=_USERREF, help="A userref chosen by hand (default: allocated).")
@click.option("--group", "group_ref", type=_USERREF, help="Place into the group with this userref.")
@click.option("--new-group", "new_group", metavar="LABEL", help="Create a group and place into it.")
@click.option("--oflags", default="", help="Comma list, e.g. post.")
@click.option("--validate", is_flag=True, help="Ask Kraken to check the order; place nothing.")
@_exchange_options
@_table_option
def place(
    pair: str,
    side: str,
    volume: str,
    price: str | None,
    price2: str | None,
    ordertype: str | None,
    userref: int | None,
    group_ref: int | None,
    new_group: str | None,
    oflags: str,
    validate: bool,
    base_url: str,
    deadline: float,
    db: Path | None,
    table: bool,
) -> None:
    """Place one order: recorded first, sent with a deadline, never sent twice.

    An ambiguous answer (timeout, 5xx) is resolved by looking the order up by its userref
    after the deadline; the command prints the placement (txid, userref, attempts).
    """
    if group_ref is not None and new_group is not None:
        raise click.UsageError("--group and --new-group exclude each other")
    try:
        request = OrderRequest(
            pair=pair,
            side=side,
            ordertype=ordertype or ("limit" if price is not None else "market"),
            volume=volume,
            price=price,
            price2=price2,
            userref=userref,
            oflags=oflags,
        )
    except OmsError as exc:
        raise click.UsageError(str(exc)) from None
    with _manager(base_url, db, deadline=deadline) as manager:
        group: Group | int | None = group_ref
        if new_group is not None:
            group = manager.new_group(new_group, userref=userref)
        result = manager.place(request, group=group, validate=validate)
        _emit(_plain(result), table=table)


@click.command()
@click.option(
    "--status",
    type=click.Choice(["open", "closed", "all", *[s.value for s in OrderStatus]]),
    default="all",
    show_default=True,
    help="open = pending+open; closed = closed+canceled+expired; or one exact status.",
)
@click.option(
    "--userref", type=_USERREF, help="Only orders with this userref (a group's, or one order's)."
)
@click.option("--pair", help="Only this pair (altname, e.g. XBTUSD).")
@click.option("--side", type=click.Choice(["buy", "sell"]))
@click.option("--since", type=float, help="Opened at or after this unix time.")
@click.option("--until", type=float, help="Opened before this unix time.")
@click.option("--txid", help="Just this one order.")
@click.option("--limit", type=click.IntRange(1), help="At most this many (newest first).")
@_db_option
@_table_option
def orders(
    status: str,
    userref: int | None,
    pair: str | None,
    side: str | None,
    since: float | None,
    until: float | None,
    txid: str | None,
    limit: int | None,
    db: Path | None,
    table: bool,
) -> None:
    """Query the cached orders (no network; run `oms sync` to refresh)."""
    statuses: Any = {"open": OPEN_STATUSES, "closed": CLOSED_STATUSES, "all": None}.get(
        status, status
    )
    with _cache(db) as cache:
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
    _emit(
        [order_dict(o) for o in found],
        table=table,
        rows=[_order_row(o) for o in found],
        columns=ORDER_COLUMNS,
    )


@click.command()
@click.option("--label", help="Only groups with this label.")
@_db_option
@_table_option
def groups(label: str | None, db: Path | None, table: bool) -> None:
    """List the groups (one userref, many orders) with their open and total order counts."""
    with _cache(db) as cache:
        rows = [
            {
                "userref": g.userref,
                "label": g.label,
                "created": _when(g.created_at),
                "open": cache.count(userref=g.userref, status=OPEN_STATUSES),
                "orders": cache.count(userref=g.userref),
            }
            for g in cache.groups(label=label)
        ]
    _emit(rows, table=table, rows=rows, columns=("userref", "label", "created", "open", "orders"))


@click.command()
@click.option(
    "--userref",
    "userrefs",
    type=_USERREF,
    multiple=True,
    help="Cancel every open order with this userref (repeat for several: one batch).",
)
@click.option("--txid", help="Cancel this one order.")
@_exchange_options
@_table_option
def cancel(
    userrefs: tuple[int, ...],
    txid: str | None,
    base_url: str,
    deadline: float,
    db: Path | None,
    table: bool,
) -> None:
    """Cancel a group (all open orders with a userref) in one request, or one order by txid.

    For a userref the result is checked: Kraken's count against the cached open members,
    then OpenOrders for the userref must be empty (`ok` says both held).
    """
    if bool(userrefs) == bool(txid):
        raise click.UsageError("give --userref (one or more) or --txid")
    with _manager(base_url, db, deadline=deadline) as manager:
        if txid:
            result: Any = manager.cancel(txid)
            _emit(_plain(result), table=table)
            return
        outcome: GroupCancelResult = (
            manager.cancel_group(userrefs[0])
            if len(userrefs) == 1
            else manager.cancel_groups(userrefs)
        )
        data = {**_plain(outcome), "ok": outcome.ok}
        _emit(data, table=table)


@click.command()
@_exchange_options
@_table_option
def sync(base_url: str, deadline: float, db: Path | None, table: bool) -> None:
    """Bring the cache up to date: open orders, and orders closed since the last sync."""
    with _manager(base_url, db, deadline=deadline) as manager:
        result = manager.sync()
        _emit(_plain(result), table=table)


# --- the demo ---------------------------------------------------------------------------------


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
            rows.append(_order_row(order))
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
    "--step",
    "step_bp",
    default=15,
    type=click.IntRange(1, 500),
    show_default=True,
    help="Distance between rungs, in basis points of the price.",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep the demo's order cache here (default: a temporary file).",
)
def demo(seed: int, rungs: int, step_bp: int, db: Path | None) -> None:
    """Watch oms trade on a built-in sandbox exchange: no keys, no network.

    Starts a local exchange (real HTTP on 127.0.0.1), places a ladder of buy orders as one
    group (one userref), loses one answer on purpose to show that the order is found, not
    sent twice, lets the market move until some orders fill, then cancels the rest of the
    group with a single request and checks the result.
    """
    from oms.sandbox import ManualClock, Sandbox

    # The demo narrates what the manager logs (a lost answer, reconciled); keep the log quiet.
    logging.getLogger("oms").addHandler(logging.NullHandler())
    with tempfile.TemporaryDirectory(prefix="oms-demo-") as scratch:
        clock = ManualClock(time.time())
        with Sandbox.serve(seed=seed, clock=clock) as sb:
            nonces = NonceSource(key_fingerprint(sb.key), directory=scratch)
            client = sb.client(nonce_source=nonces)
            manager = OrderManager(
                client, db or Path(scratch) / "demo.db", clock=clock.time, sleep=clock.advance
            )
            try:
                _run_demo(sb, manager, clock, rungs=rungs, step_bp=step_bp)
            except OmsError as exc:
                raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
            finally:
                manager.close()
                client.close()


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


def _run_demo(sb: Any, manager: OrderManager, clock: Any, *, rungs: int, step_bp: int) -> None:
    pair = "XBTUSD"
    _say("oms demo: order management against a local Kraken-protocol sandbox", bold=True)
    _say(f"   exchange  {sb.base_url}  (started by this command; a funded test account)")
    _say(f"   cache     {manager.cache.path}")

    _step(1, "A group: many orders, one userref")
    group = manager.new_group("demo ladder")
    _say(f"   Group {group.label!r} got userref {group.userref}. Every rung carries it, so one")
    _say("   CancelOrder with that userref cancels them all.")

    info = manager.pair(pair)
    last = sb.market.last_price(pair)
    tick = info.tick_size or Decimal(1).scaleb(-info.pair_decimals)
    _step(2, f"A ladder of {rungs} limit buys below the market ({pair} last traded {fmt(last)})")
    lost = rungs // 2
    txids: list[str] = []
    for i in range(rungs):
        below = last * (1 - Decimal(step_bp * (i + 1)) / 10_000)
        price = (below / tick).to_integral_value() * tick
        request = OrderRequest(
            pair=pair, side="buy", ordertype="limit", volume="0.002", price=price
        )
        if i == lost:
            # The exchange takes the order, but its answer never arrives.
            sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
        placed: Placement = manager.place(request, group=group)
        assert placed.txid is not None
        txids.append(placed.txid)
        line = f"   buy 0.002 @ {fmt(price):>9}  -> {placed.txid}"
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
    start = clock.time()
    filled: list[Order] = []
    wanted = max(1, rungs // 2)
    for _ in range(24 * 12):  # at most a day of sandbox time
        clock.advance(300)
        manager.sync()
        filled = [o for o in manager.cache.orders(txids=txids) if o.vol_exec > 0]
        if len(filled) >= wanted:
            break
    hours = (clock.time() - start) / 3600
    _say(
        f"   {hours:.1f} h later {pair} trades at {fmt(sb.market.last_price(pair))}: "
        f"{len(filled)} of {rungs} rungs filled (or partly filled)."
    )
    _say()
    _say(_indent(_ladder_table(manager, txids)))

    _step(4, f"Cancel the rest of the group in one request: CancelOrder txid={group.userref}")
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
    cancelled = sum(1 for o in final if o.status is OrderStatus.CANCELED)
    exchange = _exchange_view(sb, manager)
    agrees = {o.txid: o for o in manager.cache.orders()} == exchange
    adds = manager.requests.get("AddOrder", 0)
    _step(5, "What happened")
    _say(
        f"   placed     {rungs} orders with {adds} AddOrder requests (one answer lost, none resent)"
    )
    _say(f"   filled     {done}")
    _say(f"   cancelled  {cancelled}, with one CancelOrder request")
    _say(
        f"   cache      {len(exchange)} orders, "
        + ("identical to the exchange's" if agrees else "DIFFERENT from the exchange's"),
        fg=None if agrees else "red",
    )
    _say()
    _say("Next: `oms sandbox` runs a sandbox you keep; `oms place`, `oms orders --table`,")
    _say("`oms cancel --userref N` work against it (or Kraken) with --base-url.")

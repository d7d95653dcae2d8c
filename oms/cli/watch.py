"""``oms watch``: print order events as they happen (Kraken WebSocket v2 ``executions``).

Each event is written to the order cache first (the same database ``oms orders`` reads), then
printed: one JSON object a line by default, or a table for people. Ctrl-C stops it cleanly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from oms.cli.options import USERREF, exchange_options, open_manager
from oms.cli.output import cell, iso, note
from oms.live.follower import OrderUpdate
from oms.rounding import decimal_text as fmt

__all__ = ["update_record", "watch"]

_COLUMNS = (
    ("time", 27),
    ("exec_type", 14),
    ("order_status", 16),
    ("txid", 19),
    ("userref", 10),
    ("pair", 8),
    ("side", 4),
    ("vol", 12),
    ("vol_exec", 12),
    ("last_qty", 12),
    ("last_price", 12),
)


def update_record(update: OrderUpdate) -> dict[str, Any]:
    """The JSON record of one update: what the event said, and the order as now cached."""
    event, order = update.event, update.order
    record: dict[str, Any] = {
        "time": event.timestamp,
        "sequence": event.sequence,
        "snapshot": event.snapshot,
        "exec_type": event.exec_type,
        "order_status": event.order_status,
        "txid": event.txid,
        "userref": update.userref,
    }
    if event.exec_type == "trade":
        record.update(
            trade_id=event.trade_id,
            last_qty=_amount(event.last_qty),
            last_price=_amount(event.last_price),
            fee=fmt(event.fee),
        )
    if order is not None:
        record.update(
            status=order.status.value,
            pair=order.pair,
            side=order.side.value,
            vol=fmt(order.vol),
            vol_exec=fmt(order.vol_exec),
            cost=fmt(order.cost),
            avg_price=fmt(order.price),
        )
    return record


def _amount(value: Any) -> str | None:
    return None if value is None else fmt(value)


def _row(record: dict[str, Any]) -> str:
    shown = dict(record, time=iso(record.get("time")))
    return "  ".join(cell(shown.get(name)).ljust(width) for name, width in _COLUMNS).rstrip()


@click.command()
@click.option("--userref", type=USERREF, help="Only this userref's orders (a group's, or one).")
@click.option("--group", "group_label", metavar="LABEL", help="Only this group's orders.")
@click.option(
    "--count", type=click.IntRange(1), help="Stop after this many events (default: until Ctrl-C)."
)
@click.option("--table", is_flag=True, help="An aligned table for people instead of JSON lines.")
@click.option(
    "--ws-url", help="The WebSocket v2 URL (default: $OMS_WS_URL, Kraken's, a sandbox's)."
)
@exchange_options
def watch(
    userref: int | None,
    group_label: str | None,
    count: int | None,
    table: bool,
    ws_url: str | None,
    base_url: str,
    deadline: float,
    db: Path | None,
) -> None:
    """Follow orders live: print each event (placed, filled, cancelled, expired, amended)
    as it happens, after writing it to the cache. Ctrl-C stops."""
    with open_manager(base_url, db, deadline=deadline) as manager:
        if ws_url:
            manager.following.ws_url = ws_url
        chosen = userref
        if group_label is not None:
            found = manager.groups(label=group_label)
            if not found:
                raise click.UsageError(f"no group labelled {group_label!r} in this database")
            chosen = found[0].userref
        subscription = manager.follow(userref=chosen, wait=30.0)
        status = manager.stream_status
        if status is None or not status.live:
            note(f"note: the stream is not live yet ({status and status.last_error}); waiting")
        if table:
            click.echo("  ".join(name.ljust(width) for name, width in _COLUMNS).rstrip())
        shown = 0
        try:
            while count is None or shown < count:
                update = subscription.get(timeout=0.5)
                if update is None:
                    continue
                record = update_record(update)
                click.echo(_row(record) if table else json.dumps(record, sort_keys=True))
                shown += 1
        except KeyboardInterrupt:
            pass
        finally:
            subscription.close()

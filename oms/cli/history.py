"""History commands: ``oms trades sync|ohlc|check`` and ``oms funding sync|status``.

All of them work on a history database (``--db``, default ``history.db`` in the oms data
directory; one file may hold trades and funding). ``trades sync`` and ``trades check`` call
Kraken's public endpoints (no key needed); ``funding sync`` needs ``KRAKEN_API_KEY`` /
``KRAKEN_API_SECRET`` (Query Funds permission). ``--base-url`` points any of them at a local
``oms sandbox``. Output is JSON by default; ``--table`` prints aligned columns for people.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import click

from oms._decimal import fmt
from oms.auth import Credentials
from oms.cli.orders import render_table
from oms.client import DEFAULT_BASE_URL, KrakenClient
from oms.errors import OmsError
from oms.funding import (
    FINAL_STATUSES,
    FundingKind,
    FundingTracker,
    FundingTransition,
    TrackedFunding,
)
from oms.funding_store import FundingStore
from oms.history import OHLCCheck, SyncReport, check_recent_ohlc, ohlc_from_trades, sync_trades
from oms.history_store import HistoryDatabase, HistoryStore
from oms.models import OHLCBar
from oms.nonce import default_directory

__all__ = ["default_history_db", "funding", "parse_interval", "parse_time", "trades"]

F = TypeVar("F", bound=Callable[..., Any])
D = TypeVar("D", bound=HistoryDatabase)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_INTERVAL = re.compile(r"(\d+)\s*([smhdw]?)")
BAR_COLUMNS = ("time", "open", "high", "low", "close", "vwap", "volume", "count")
FUNDING_COLUMNS = ("refid", "kind", "asset", "amount", "fee", "status", "status_prop", "seen")
TRANSITION_COLUMNS = ("seen", "from", "to", "prop", "allowed", "problem")


def default_history_db() -> Path:
    """``$OMS_HISTORY_DB``, else ``history.db`` in ``$OMS_DATA_DIR`` or the user data dir."""
    if os.environ.get("OMS_HISTORY_DB"):
        return Path(os.environ["OMS_HISTORY_DB"])
    # The nonce directory sits in the oms data dir: one place decides where that is.
    return default_directory().parent / "history.db"


def parse_interval(text: str) -> int:
    """``"90s"``, ``"7m"``, ``"4h"``, ``"1d"``, ``"1w"`` → seconds; a bare number is minutes,
    as in Kraken's OHLC ``interval``."""
    match = _INTERVAL.fullmatch(text.strip().lower())
    seconds = int(match.group(1)) * _UNITS[match.group(2) or "m"] if match else 0
    if seconds <= 0:
        raise ValueError(f"{text!r}: use a positive whole number with s, m, h, d or w")
    return seconds


def parse_time(text: str) -> int:
    """Unix seconds, or an ISO 8601 date/time (UTC unless it has an offset) → unix seconds."""
    if text.strip().isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r}: give unix seconds or an ISO 8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp())


def _parsed(parse: Callable[[str], int]) -> Callable[..., int | None]:
    """An option callback running one of the parsers above (ValueError = usage error)."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None

    return callback


def _when(t: float | None) -> str:
    if t is None:
        return ""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


# --- JSON-ready forms -----------------------------------------------------------------------


def _bar(bar: OHLCBar) -> dict[str, Any]:
    return {
        "time": bar.time,
        "open": fmt(bar.open),
        "high": fmt(bar.high),
        "low": fmt(bar.low),
        "close": fmt(bar.close),
        "vwap": fmt(bar.vwap),
        "volume": fmt(bar.volume),
        "count": bar.count,
    }


def _report(report: SyncReport) -> dict[str, Any]:
    return {
        "pair": report.pair,
        "start_cursor": str(report.start_cursor),
        # Strings: a JSON reader with float numbers would round nanosecond cursors.
        "cursor": str(report.cursor),
        "pages": report.pages,
        "received": report.received,
        "inserted": report.inserted,
        "duplicates": report.duplicates,
        "reason": report.reason.value,
        "stalled_last": None if report.stalled_last is None else str(report.stalled_last),
    }


def _check(check: OHLCCheck) -> dict[str, Any]:
    return {
        "pair": check.pair,
        "interval": check.interval,
        "compared": check.compared,
        "ok": check.ok,
        "start": check.start,
        "end": check.end,
        "mismatches": [
            {
                "time": m.time,
                "fields": list(m.fields),
                "ours": None if m.ours is None else _bar(m.ours),
                "theirs": None if m.theirs is None else _bar(m.theirs),
            }
            for m in check.mismatches
        ],
    }


def _tracked(item: TrackedFunding) -> dict[str, Any]:
    tx = item.tx
    return {
        "refid": tx.refid,
        "kind": item.kind.value,
        "method": tx.method,
        "asset": tx.asset,
        "amount": fmt(tx.amount),
        "fee": None if tx.fee is None else fmt(tx.fee),
        "time": tx.time,
        "status": tx.status_raw,
        "status_prop": tx.status_prop_raw,
        "txid": tx.txid,
        "info": tx.info,
        "first_seen": item.first_seen,
        "last_seen": item.last_seen,
        "changed_at": item.changed_at,
    }


def _transition(t: FundingTransition) -> dict[str, Any]:
    return {
        "refid": t.refid,
        "kind": t.kind.value,
        "seen_at": t.seen_at,
        "from_status": t.from_status_raw,
        "from_prop": t.from_prop_raw,
        "to_status": t.to_status_raw,
        "to_prop": t.to_prop_raw,
        "txid": t.txid,
        "allowed": t.allowed,
        "problem": t.problem,
    }


def _emit(
    data: Any, *, table: bool, rows: Sequence[dict[str, Any]], columns: Sequence[str]
) -> None:
    if table:
        click.echo(render_table(rows, columns))
    else:
        click.echo(json.dumps(data, indent=2, default=_json_default))


def _json_default(value: object) -> Any:
    if isinstance(value, Decimal):
        return fmt(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# --- shared options ---------------------------------------------------------------------------


def _db_option(f: F) -> F:
    return click.option(
        "--db",
        "db",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="The history database (SQLite) [env OMS_HISTORY_DB; default: history.db in "
        "the oms data dir].",
    )(f)


def _table_option(f: F) -> F:
    return click.option("--table", is_flag=True, help="Aligned columns for people, not JSON.")(f)


def _base_url_option(f: F) -> F:
    return click.option(
        "--base-url",
        envvar="KRAKEN_BASE_URL",
        default=DEFAULT_BASE_URL,
        show_default=True,
        help="Kraken, or a local `oms sandbox` [env KRAKEN_BASE_URL].",
    )(f)


@contextmanager
def _opened(kind: type[D], db: Path | None) -> Iterator[D]:
    """The store, with any oms error turned into a clean message."""
    try:
        store = kind(db or default_history_db())
    except OmsError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    try:
        yield store
    except OmsError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    finally:
        store.close()


# --- oms trades -------------------------------------------------------------------------------


@click.group()
def trades() -> None:
    """Kraken's public trade history: store it without gaps, build OHLC of any interval."""


@trades.command("sync")
@click.option("--pair", required=True, help="The pair, e.g. XBTUSD.")
@click.option(
    "--since",
    type=click.IntRange(0),
    help="Start here (nanoseconds; 0 = the market's first trade) instead of the stored cursor.",
)
@click.option("--max-pages", type=click.IntRange(1), help="Stop after this many pages.")
@click.option("--count", type=click.IntRange(1, 1000), help="Trades per page (Kraken: 1000).")
@click.option(
    "--pace",
    type=click.FloatRange(0),
    default=1.0,
    show_default=True,
    help="Least seconds between two requests (Kraken allows about one public call a second).",
)
@_base_url_option
@_db_option
@_table_option
def trades_sync(
    pair: str,
    since: int | None,
    max_pages: int | None,
    count: int | None,
    pace: float,
    base_url: str,
    db: Path | None,
    table: bool,
) -> None:
    """Page Kraken's Trades into the database from the stored cursor (or --since).

    Each page and its cursor are stored together, so an interrupted sync resumes where it
    stopped. Prints why it stopped: caught_up, stalled (a page whose cursor did not
    advance), max_pages.
    """
    with _opened(HistoryStore, db) as store, KrakenClient(base_url=base_url) as client:
        report = sync_trades(
            client, store, pair, since=since, max_pages=max_pages, count=count, pace=pace
        )
    data = _report(report)
    _emit(data, table=table, rows=[{"field": k, "value": v} for k, v in data.items()],
          columns=("field", "value"))  # fmt: skip


@trades.command("ohlc")
@click.option("--pair", required=True, help="The pair, e.g. XBTUSD.")
@click.option(
    "--interval",
    callback=_parsed(parse_interval),
    required=True,
    help="Bar length: 90s, 7m, 4h, 1d, 1w... (a bare number is minutes).",
)
@click.option(
    "--start",
    callback=_parsed(parse_time),
    help="First bar at or after this time (unix seconds or ISO 8601).",
)
@click.option(
    "--end",
    callback=_parsed(parse_time),
    help="Bars starting before this time (unix seconds or ISO 8601).",
)
@click.option(
    "--carry-forward",
    is_flag=True,
    help="Show intervals without trades as bars at the previous close, volume 0.",
)
@click.option("--vwap-places", type=click.IntRange(0), help="Round vwap to this many decimals.")
@_db_option
@_table_option
def trades_ohlc(
    pair: str,
    interval: int,
    start: int | None,
    end: int | None,
    carry_forward: bool,
    vwap_places: int | None,
    db: Path | None,
    table: bool,
) -> None:
    """OHLC bars of any interval from the stored trades (no network; `oms trades sync` first)."""
    with _opened(HistoryStore, db) as store:
        # Trades before the first bar only matter for the close carried into it.
        read_from = None if start is None or carry_forward else start * 10**9
        stored = store.iter_trades(
            pair, start_ns=read_from, end_ns=None if end is None else end * 10**9
        )
        bars = ohlc_from_trades(
            stored,
            interval,
            start=start,
            end=end,
            carry_forward=carry_forward,
            vwap_places=vwap_places,
        )
    data = [_bar(b) for b in bars]
    rows = [{**row, "time": _when(row["time"])} for row in data]
    _emit(data, table=table, rows=rows, columns=BAR_COLUMNS)


@trades.command("check")
@click.option("--pair", required=True, help="The pair, e.g. XBTUSD.")
@click.option(
    "--interval",
    type=click.Choice(["1", "5", "15", "30", "60", "240", "1440", "10080", "21600"]),
    default="60",
    show_default=True,
    help="One of Kraken's OHLC intervals, in minutes.",
)
@_base_url_option
@_db_option
@_table_option
def trades_check(pair: str, interval: str, base_url: str, db: Path | None, table: bool) -> None:
    """Compare bars built from the stored trades with Kraken's recent committed OHLC bars.

    Exits with status 1 when a bar differs (or nothing could be compared: sync first).
    """
    with _opened(HistoryStore, db) as store, KrakenClient(base_url=base_url) as client:
        check = check_recent_ohlc(client, store, pair, int(interval))
    data = _check(check)
    rows = [{"time": _when(m.time), "fields": ",".join(m.fields)} for m in check.mismatches]
    if table:
        click.echo(f"{check.pair} {interval}m: {check.compared} bars compared, "
                   f"{len(check.mismatches)} differ")  # fmt: skip
    _emit(data, table=table, rows=rows, columns=("time", "fields"))
    if not check.ok:
        raise SystemExit(1)


# --- oms funding ------------------------------------------------------------------------------


@click.group()
def funding() -> None:
    """Deposits and withdrawals: every status change of every refid, recorded."""


@funding.command("sync")
@click.option("--asset", help="Only this asset (e.g. XXBT).")
@_base_url_option
@_db_option
@_table_option
def funding_sync(asset: str | None, base_url: str, db: Path | None, table: bool) -> None:
    """Poll DepositStatus and WithdrawStatus (every page) and record what changed.

    Prints the transitions recorded; a transition Kraken's lifecycle does not allow has
    allowed=false and says why.
    """
    try:
        credentials = Credentials.from_env()
    except OmsError as exc:
        raise click.ClickException(
            f"{exc} (for the sandbox, use the key and secret `oms sandbox` printed)"
        ) from None
    with _opened(FundingStore, db) as store, KrakenClient(credentials, base_url=base_url) as client:
        report = FundingTracker(client, store).sync(asset=asset)
    data = {
        "seen_at": report.seen_at,
        "deposits": report.deposits,
        "withdrawals": report.withdrawals,
        "transitions": [_transition(t) for t in report.transitions],
    }
    _emit(data, table=table, rows=_transition_rows(report.transitions, refid=True),
          columns=("refid", *TRANSITION_COLUMNS))  # fmt: skip


def _transition_rows(
    transitions: Sequence[FundingTransition], *, refid: bool = False
) -> list[dict[str, Any]]:
    rows = []
    for t in transitions:
        row = {
            "seen": _when(t.seen_at),
            "from": t.from_status_raw or "",
            "to": t.to_status_raw,
            "prop": t.to_prop_raw or "",
            "allowed": "yes" if t.allowed else "NO",
            "problem": t.problem or "",
        }
        if refid:
            row["refid"] = t.refid
        rows.append(row)
    return rows


@funding.command("status")
@click.option("--refid", help="One transaction, with every transition recorded.")
@click.option("--pending", is_flag=True, help="Only transactions not yet Success or Failure.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    help="Only these statuses (Kraken's spelling, any case; repeatable).",
)
@click.option("--kind", type=click.Choice([k.value for k in FundingKind]))
@_db_option
@_table_option
def funding_status(
    refid: str | None,
    pending: bool,
    statuses: tuple[str, ...],
    kind: str | None,
    db: Path | None,
    table: bool,
) -> None:
    """Tracked deposits and withdrawals as last seen (no network; `oms funding sync` first)."""
    with _opened(FundingStore, db) as store:
        tracker = FundingTracker(None, store)
        if refid is not None:
            item = tracker.get(refid)
            if item is None:
                raise click.ClickException(f"{refid!r} is not tracked (run `oms funding sync`)")
            history = tracker.history(refid)
            data = {"transaction": _tracked(item), "history": [_transition(t) for t in history]}
            _emit(data, table=table, rows=_transition_rows(history), columns=TRANSITION_COLUMNS)
            return
        want = FundingKind(kind) if kind is not None else None
        items = tracker.by_status(*statuses, kind=want) if statuses else tracker.all(kind=want)
    if pending:
        items = [i for i in items if i.status not in FINAL_STATUSES]
    data_rows = [_tracked(i) for i in items]
    table_rows = [
        {**row, "seen": _when(row["changed_at"]), "status_prop": row["status_prop"] or ""}
        for row in data_rows
    ]
    _emit(data_rows, table=table, rows=table_rows, columns=FUNDING_COLUMNS)

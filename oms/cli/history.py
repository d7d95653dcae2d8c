"""History commands: ``oms trades sync|ohlc|check`` and ``oms funding sync|status``.

All of them work on a history database (``--db``, default ``history.db`` in the oms data
directory; one file may hold trades and funding). ``trades sync`` and ``trades check`` call
Kraken's public endpoints (no key needed); ``funding sync`` needs ``KRAKEN_API_KEY`` /
``KRAKEN_API_SECRET`` (Query Funds permission). ``--base-url`` points any of them at a local
``oms sandbox``. Output is JSON by default; ``--table`` prints aligned columns for people.
"""

from __future__ import annotations

import json
import re
import time as _time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import click

from oms.cli.errors import CliError, cli_errors, need_plotting
from oms.cli.options import (
    base_url_option,
    history_db_option,
    open_history,
    open_tracker,
    parse_time,
    parsed,
)
from oms.cli.output import chosen_format, emit, format_options, iso, note
from oms.cli.progress import StatusLine, SyncProgress
from oms.funding import (
    FINAL_STATUSES,
    FundingKind,
    FundingSyncReport,
    FundingTracker,
    FundingTransition,
    TrackedFunding,
)
from oms.history import OHLCCheck, SyncReport
from oms.models import OHLCBar
from oms.rounding import decimal_text as fmt

__all__ = ["funding", "parse_interval", "parse_time", "trades"]

F = TypeVar("F", bound=Callable[..., Any])

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_UNITS_DESC = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_INTERVAL = re.compile(r"(\d+)\s*([smhdw]?)")
BAR_COLUMNS = ("time", "open", "high", "low", "close", "vwap", "volume", "count")
FUNDING_COLUMNS = ("refid", "kind", "asset", "amount", "fee", "status", "status_prop", "seen")
TRANSITION_COLUMNS = ("seen", "from", "to", "prop", "allowed", "problem")


def parse_interval(text: str) -> int:
    """``"90s"``, ``"7m"``, ``"4h"``, ``"1d"``, ``"1w"`` → seconds; a bare number is minutes,
    as in Kraken's OHLC ``interval``."""
    match = _INTERVAL.fullmatch(text.strip().lower())
    seconds = int(match.group(1)) * _UNITS[match.group(2) or "m"] if match else 0
    if seconds <= 0:
        raise ValueError(f"{text!r}: use a positive whole number with s, m, h, d or w")
    return seconds


# --- JSON-ready forms -----------------------------------------------------------------------


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _bar(bar: OHLCBar, vwap_places: int | None = None) -> dict[str, Any]:
    # Without --vwap-places, the vwap gets the decimals the exchange quotes the pair's prices
    # in (as the stored trades carry them), not 28 significant digits.
    places = vwap_places if vwap_places is not None else _places(bar.close)
    return {
        "time": bar.time,
        "open": fmt(bar.open),
        "high": fmt(bar.high),
        "low": fmt(bar.low),
        "close": fmt(bar.close),
        "vwap": fmt(round(bar.vwap, places)),
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


def parse_since(text: str) -> int:
    """A trades cursor: ISO 8601 or unix seconds, or Kraken's nanosecond ``last`` as printed
    by a sync (more than 12 digits); 0 is the market's first trade."""
    stripped = text.strip()
    if stripped.isascii() and stripped.isdigit() and len(stripped.lstrip("0")) > 12:
        return int(stripped)
    return parse_time(text) * 10**9


# --- oms trades -------------------------------------------------------------------------------


@click.group()
def trades() -> None:
    """Kraken's public trade history: store it without gaps, build OHLC of any interval."""


@trades.command("sync")
@click.option("--pair", required=True, help="The pair, e.g. XBTUSD.")
@click.option(
    "--since",
    callback=parsed(parse_since),
    help="Start here instead of the stored cursor: ISO 8601 or unix seconds (0 = the market's "
    "first trade), or a nanosecond cursor as printed by a sync.",
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
@base_url_option
@history_db_option
@format_options
def trades_sync(
    pair: str,
    since: int | None,
    max_pages: int | None,
    count: int | None,
    pace: float,
    base_url: str,
    db: Path | None,
    output_format: str | None,
    table: bool,
) -> None:
    """Page Kraken's Trades into the database from the stored cursor (or --since).

    Each page and its cursor are stored together, so an interrupted sync resumes where it
    stopped. Prints why it stopped: caught_up, stalled (a page whose cursor did not
    advance), max_pages.
    """
    fmt_ = chosen_format(output_format, table)
    progress = SyncProgress(pair)
    with open_history(db, base_url) as history:
        if progress.enabled:
            progress.now = history.server_time()
        try:
            report = history.sync(
                pair,
                since=since,
                max_pages=max_pages,
                count=count,
                pace=pace,
                on_page=progress,
            )
        finally:
            progress.close()
    data = _report(report)
    emit(data, output_format=fmt_, rows=[{"field": k, "value": v} for k, v in data.items()],
          columns=("field", "value"))  # fmt: skip


@trades.command("ohlc")
@click.option("--pair", required=True, help="The pair, e.g. XBTUSD.")
@click.option(
    "--interval",
    callback=parsed(parse_interval),
    required=True,
    help="Bar length: 90s, 7m, 4h, 1d, 1w... (a bare number is minutes).",
)
@click.option(
    "--start",
    callback=parsed(parse_time),
    help="First bar at or after this time (unix seconds or ISO 8601).",
)
@click.option(
    "--end",
    callback=parsed(parse_time),
    help="Bars starting before this time (unix seconds or ISO 8601).",
)
@click.option(
    "--carry-forward",
    is_flag=True,
    help="Show intervals without trades as bars at the previous close, volume 0.",
)
@click.option(
    "--vwap-places",
    type=click.IntRange(0),
    help="Round vwap to this many decimals (default: as many as the pair's prices have).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE.png",
    help="Also draw the bars as candles with volume (pip install 'oms[plot]').",
)
@history_db_option
@format_options
def trades_ohlc(
    pair: str,
    interval: int,
    start: int | None,
    end: int | None,
    carry_forward: bool,
    vwap_places: int | None,
    plot_path: Path | None,
    db: Path | None,
    output_format: str | None,
    table: bool,
) -> None:
    """OHLC bars of any interval from the stored trades (no network; `oms trades sync` first).

    Bar times are their start, in UTC. --plot FILE.png draws them too (1200x750 pixels).
    """
    fmt_ = chosen_format(output_format, table)
    if plot_path is not None:
        need_plotting()
    with open_history(db) as history:
        bars = history.ohlc(
            pair,
            interval,
            start=start,
            end=end,
            carry_forward=carry_forward,
            vwap_places=vwap_places,
        )
    data = [_bar(b, vwap_places) for b in bars]
    rows = [{**row, "time": iso(row["time"])} for row in data]
    emit(data, output_format=fmt_, rows=rows, columns=BAR_COLUMNS)
    if plot_path is not None:
        from oms.plot import plot_ohlc

        unit, size = next((u, n) for u, n in _UNITS_DESC if interval % n == 0)
        label = f"{interval // size}{unit}"
        plot_ohlc(bars, interval, plot_path, title=f"{pair} {label} bars (UTC)")
        note(f"drawn: {plot_path}")


@trades.command("check")
@click.option("--pair", required=True, help="The pair, e.g. XBTUSD.")
@click.option(
    "--interval",
    type=click.Choice(["1", "5", "15", "30", "60", "240", "1440", "10080", "21600"]),
    default="60",
    show_default=True,
    help="One of Kraken's OHLC intervals, in minutes.",
)
@base_url_option
@history_db_option
@format_options
def trades_check(
    pair: str,
    interval: str,
    base_url: str,
    db: Path | None,
    output_format: str | None,
    table: bool,
) -> None:
    """Compare bars built from the stored trades with Kraken's recent committed OHLC bars.

    Exits with status 1 when a bar differs (or nothing could be compared: sync first).
    """
    fmt_ = chosen_format(output_format, table)
    with open_history(db, base_url) as history:
        check = history.check(pair, int(interval))
    data = _check(check)
    rows = [{"time": iso(m.time), "fields": ",".join(m.fields)} for m in check.mismatches]
    if fmt_ == "table":
        click.echo(f"{check.pair} {interval}m: {check.compared} bars compared, "
                   f"{len(check.mismatches)} differ")  # fmt: skip
    emit(data, output_format=fmt_, rows=rows, columns=("time", "fields"))
    if not check.ok:
        raise CliError(
            f"{len(check.mismatches)} of {check.compared} bars differ"
            if check.compared
            else "nothing to compare: run `oms trades sync` first"
        )


# --- oms funding ------------------------------------------------------------------------------


@click.group()
def funding() -> None:
    """Deposits and withdrawals: every status change of every refid, recorded."""


@funding.command("sync")
@click.option("--asset", help="Only this asset (e.g. XXBT).")
@base_url_option
@history_db_option
@format_options
def funding_sync(
    asset: str | None, base_url: str, db: Path | None, output_format: str | None, table: bool
) -> None:
    """Poll DepositStatus and WithdrawStatus (every page) and record what changed.

    Prints the transitions recorded; a transition Kraken's lifecycle does not allow has
    allowed=false and says why.
    """
    fmt_ = chosen_format(output_format, table)
    with open_tracker(db, base_url) as tracker:
        report = _funding_once(tracker, asset)
    data = _funding_report(report)
    emit(data, output_format=fmt_, rows=_transition_rows(report.transitions, refid=True),
          columns=("refid", *TRANSITION_COLUMNS))  # fmt: skip


def _funding_once(tracker: FundingTracker, asset: str | None) -> FundingSyncReport:
    line = StatusLine()
    try:
        with cli_errors():
            return tracker.sync(
                asset=asset,
                on_item=lambda kind, n: line.show(f"funding sync: {n} {kind.value}s read"),
            )
    finally:
        line.clear()


def _funding_report(report: FundingSyncReport) -> dict[str, Any]:
    return {
        "seen_at": report.seen_at,
        "deposits": report.deposits,
        "withdrawals": report.withdrawals,
        "transitions": [_transition(t) for t in report.transitions],
    }


@funding.command("watch")
@click.option("--asset", help="Only this asset (e.g. XXBT).")
@click.option(
    "--every",
    type=click.FloatRange(0),
    default=60.0,
    show_default=True,
    help="Seconds between two polls.",
)
@click.option("--count", type=click.IntRange(1), help="Stop after this many polls.")
@base_url_option
@history_db_option
def funding_watch(
    asset: str | None, every: float, count: int | None, base_url: str, db: Path | None
) -> None:
    """Poll like `oms funding sync` until Ctrl-C, printing each transition as it is recorded.

    One JSON object per line (as --format nl), so the output can be piped to a program.
    """
    polls = 0
    with open_tracker(db, base_url) as tracker:
        try:
            while True:
                report = _funding_once(tracker, asset)
                for t in report.transitions:
                    click.echo(json.dumps(_transition(t), separators=(",", ":")))
                polls += 1
                if count is not None and polls >= count:
                    return
                line = StatusLine()
                line.show(f"funding watch: {polls} polls; next in {every:g} s (Ctrl-C stops)")
                _time.sleep(every)
                line.clear()
        except KeyboardInterrupt:
            return


def _transition_rows(
    transitions: Sequence[FundingTransition], *, refid: bool = False
) -> list[dict[str, Any]]:
    rows = []
    for t in transitions:
        row = {
            "seen": iso(t.seen_at),
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
@history_db_option
@format_options
def funding_status(
    refid: str | None,
    pending: bool,
    statuses: tuple[str, ...],
    kind: str | None,
    db: Path | None,
    output_format: str | None,
    table: bool,
) -> None:
    """Tracked deposits and withdrawals as last seen (no network; `oms funding sync` first)."""
    fmt_ = chosen_format(output_format, table)
    with open_tracker(db) as tracker:
        if refid is not None:
            item = tracker.get(refid)
            if item is None:
                raise CliError(f"{refid!r} is not tracked (run `oms funding sync`)")
            history = tracker.history(refid)
            data = {"transaction": _tracked(item), "history": [_transition(t) for t in history]}
            emit(
                data, output_format=fmt_, rows=_transition_rows(history), columns=TRANSITION_COLUMNS
            )
            return
        want = FundingKind(kind) if kind is not None else None
        items = tracker.by_status(*statuses, kind=want) if statuses else tracker.all(kind=want)
    if pending:
        items = [i for i in items if i.status not in FINAL_STATUSES]
    data_rows = [_tracked(i) for i in items]
    table_rows = [
        {**row, "seen": iso(row["changed_at"]), "status_prop": row["status_prop"] or ""}
        for row in data_rows
    ]
    emit(data_rows, output_format=fmt_, rows=table_rows, columns=FUNDING_COLUMNS)

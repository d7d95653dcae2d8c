"""How every ``oms`` command prints: one result on stdout in the format asked for, notes and
logs on stderr.

Output is JSON by default (one document, for scripts); ``--table`` (aligned columns, times in
UTC), ``--format csv`` and ``--format nl`` (one JSON object per line) as in sqlite-utils.
Money is printed as Kraken writes it (decimal strings, no exponent), times as ISO 8601 in UTC.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, TypeVar

import attrs
import click

from oms.rounding import decimal_text as fmt

__all__ = [
    "FORMATS",
    "cell",
    "chosen_format",
    "configure_logging",
    "emit",
    "format_options",
    "iso",
    "note",
    "plain",
    "quiet",
    "render_table",
]

F = TypeVar("F", bound=Callable[..., Any])


def quiet() -> bool:
    """Whether ``oms -q`` was given (no progress, no notes on stderr)."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().meta.get("oms.quiet"))


def note(text: str) -> None:
    """A note for people on stderr (what the result alone does not say), unless ``-q``."""
    if not quiet():
        click.echo(text, err=True)


def iso(t: float | None) -> str:
    """A unix time as ISO 8601 in UTC, labelled ``Z`` (``2026-12-03T17:04:51Z``)."""
    if t is None:
        return ""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- output -----------------------------------------------------------------------------------

FORMATS = ("json", "table", "csv", "nl")


def plain(value: object) -> Any:
    """JSON-ready form of results: attrs classes, enums, decimals (no exponent), tuples."""
    if attrs.has(type(value)):
        return {k: plain(v) for k, v in attrs.asdict(value, recurse=False).items()}  # type: ignore[arg-type]
    if isinstance(value, Decimal):
        return fmt(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    enum_value = getattr(value, "value", None)
    if enum_value is not None and isinstance(value, str):
        return enum_value
    return value


def cell(value: object) -> str:
    """One value as text for a table or CSV cell: no Python reprs."""
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def render_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows as aligned text columns (numbers right-aligned); a note when there are none."""
    if not rows:
        return "(none)"
    cells = [[cell(r.get(c)) for c in columns] for r in rows]
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


def format_options(f: F) -> F:
    """``--format json|table|csv|nl`` (sqlite-utils' names) and ``--table`` (= table)."""
    f = click.option(
        "--table",
        "table",
        is_flag=True,
        help="Aligned columns for people (same as --format table).",
    )(f)
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(FORMATS),
        default=None,
        help="json (default: one document), table (aligned columns, times in UTC), "
        "csv (header + rows), nl (one JSON object per line).",
    )(f)


def chosen_format(output_format: str | None, table: bool) -> str:
    if table and output_format not in (None, "table"):
        raise click.UsageError("--table and --format exclude each other")
    return "table" if table else (output_format or "json")


def emit(
    data: Any,
    *,
    output_format: str,
    rows: Sequence[Mapping[str, Any]] | None = None,
    columns: Sequence[str] = (),
) -> None:
    """Print a result: ``data`` as JSON, or ``rows`` (by ``columns``) as a table, CSV or lines.

    A result that is one record (a dict) without ``rows`` shows as field/value rows.
    """
    data = plain(data)
    if rows is None:
        if isinstance(data, dict):
            rows = [{"field": k, "value": v} for k, v in data.items()]
            columns = ("field", "value")
        elif isinstance(data, list):
            rows = data
            columns = columns or (tuple(data[0]) if data else ())
    if output_format == "json" or rows is None:
        click.echo(json.dumps(data, indent=2))
    elif output_format == "nl":
        for row in data if isinstance(data, list) else [data]:
            click.echo(json.dumps(row, separators=(",", ":")))
    elif output_format == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([cell(row.get(c)) for c in columns])
        click.echo(out.getvalue(), nl=False)
    else:
        click.echo(render_table(rows, columns))


# --- logging and waiting ------------------------------------------------------------------


class _LastMessage(logging.Handler):
    """Remembers the latest oms log line: what the next wait is for."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.text = ""

    def emit(self, record: logging.LogRecord) -> None:
        # The per-request lines say what was done, not what is awaited.
        if record.name != "oms.requests":
            self.text = record.getMessage()


def configure_logging(verbose: int, is_quiet: bool) -> _LastMessage:
    """Route the ``oms`` logger: silent by default (the CLI reports errors itself, once);
    ``-v`` one line per request and every note and warning on stderr; ``-vv`` adds the
    transport's debug lines."""
    log = logging.getLogger("oms")
    for handler in list(log.handlers):
        if getattr(handler, "_oms_cli", False):
            log.removeHandler(handler)
    last = _LastMessage()
    last._oms_cli = True  # type: ignore[attr-defined]
    log.addHandler(last)
    # Without a handler of ours Python's last-resort handler would print warnings a second time
    # next to the CLI's own message.
    log.propagate = False
    if verbose and not is_quiet:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%SZ")
        )
        stream.formatter.converter = time.gmtime  # type: ignore[union-attr]
        stream._oms_cli = True  # type: ignore[attr-defined]
        log.addHandler(stream)
        log.setLevel(logging.INFO if verbose == 1 else logging.DEBUG)
    else:
        log.setLevel(logging.INFO)
    return last

"""What every ``oms`` command shares: exit statuses, error wording, output formats, times.

Exit statuses (one table for every command, printed in ``oms --help``):

=====  =========================================================================================
0      done as asked
1      the exchange refused, or the result is not as expected (e.g. a group cancel not ``ok``)
2      a usage or validation error found before any order or cancel was sent
3      the outcome is unknown (an intent awaits recovery: run ``oms recover``)
130    interrupted by Ctrl-C before anything was left in doubt
=====  =========================================================================================

Library errors speak Python (``recover()``, ``KrakenClient.from_env()``); :func:`cli_errors`
translates them once, at the command's edge, into the CLI's words and one of these statuses.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, TypeVar

import attrs
import click

from oms._decimal import fmt
from oms.errors import (
    KrakenError,
    OmsError,
    OutcomeUnknownError,
    TransportError,
    UnknownAssetPair,
    ValidationError,
)

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_STATUS_HELP",
    "EXIT_UNKNOWN",
    "EXIT_USAGE",
    "CliError",
    "cli_errors",
    "credentials_from_env",
    "emit",
    "format_options",
    "iso",
    "parse_time",
    "plain",
    "quiet",
    "render_table",
]

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNKNOWN = 3
EXIT_INTERRUPTED = 130

#: The table, as it appears in ``oms --help`` and so in the generated CLI reference.
EXIT_STATUS_HELP = """\b
Exit status (every command):
  0    done as asked
  1    the exchange refused, or the result is not as expected
       (e.g. a group cancel that is not ok, a trades check that differs)
  2    a usage or validation error found before any order or cancel was sent
       (a bad option, missing keys, an amount that breaks the pair's rules,
       an unknown pair, a file that is not the right kind of database)
  3    the outcome is unknown (an intent awaits recovery, run `oms recover`;
       for `oms call`: no answer came, the request may have reached Kraken)
  130  interrupted (Ctrl-C) with nothing left in doubt"""


class CliError(click.ClickException):
    """A message for the user (printed once, as ``Error: ...``) with an exit status."""

    def __init__(self, message: str, exit_code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        # click declares exit_code a class variable; each error here carries its own.
        self.__dict__["exit_code"] = exit_code


#: Library names → what a shell user types instead.
_WORDS = (
    ("use KrakenClient.from_env()", "export them"),
    ("KrakenClient.from_env()", "the environment"),
    ("Use cancel_group(userref) for that", "Use `oms cancel --userref N` for that"),
    ("cancel_group(userref)", "`oms cancel --userref N`"),
    ("recover() (run before the next placement)", "`oms recover` (or the next `oms place`)"),
    ("recover()", "`oms recover`"),
    ("OrderManager.recover", "`oms recover`"),
    ("rebind it (OrderManager(rebind=True), oms --rebind)", "pass --rebind"),
    ("OrderManager(account=...)", "--account"),
)


def cli_words(text: str) -> str:
    """A library message with the Python names a shell user cannot type replaced."""
    for python, shell in _WORDS:
        text = text.replace(python, shell)
    return text


def exit_code_for(exc: OmsError) -> int:
    """The exit status for an error the library raised (see the module's table)."""
    if isinstance(exc, (ValidationError, UnknownAssetPair)):
        # An unknown pair is a typo the user can fix, found before any order was sent.
        return EXIT_USAGE
    if isinstance(exc, OutcomeUnknownError) or not exc.outcome_known:
        return EXIT_UNKNOWN
    if isinstance(exc, (KrakenError, TransportError)):
        return EXIT_REFUSED
    return EXIT_REFUSED


def describe(exc: OmsError) -> str:
    """One line for the user: what went wrong and, if it matters, what to do next."""
    text = cli_words(str(exc))
    if isinstance(exc, KrakenError):
        text = f"Kraken refused: {text}"
    elif isinstance(exc, TransportError) and exc.outcome_known:
        text = f"no connection: {text} (nothing was sent)"
    elif isinstance(exc, TransportError):
        text = f"no answer: {text} (the request may have reached Kraken)"
    if isinstance(exc, OutcomeUnknownError) and "oms recover" not in text:
        text += ". Run `oms recover` to resolve it before placing again"
    return text


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn library errors into one clean message and the table's exit status."""
    try:
        yield
    except OmsError as exc:
        raise CliError(describe(exc), exit_code_for(exc)) from None


def credentials_from_env() -> Any:
    """Credentials from KRAKEN_API_KEY / KRAKEN_API_SECRET, or a usage error saying so."""
    from oms.auth import Credentials

    missing = [v for v in ("KRAKEN_API_KEY", "KRAKEN_API_SECRET") if not os.environ.get(v)]
    if missing:
        raise CliError(
            f"{' and '.join(missing)} not set: export KRAKEN_API_KEY and KRAKEN_API_SECRET "
            "(Kraken: Settings, API; for `oms sandbox`, the key and secret it printed)",
            EXIT_USAGE,
        )
    try:
        return Credentials.from_env()
    except ValidationError as exc:
        raise CliError(f"KRAKEN_API_KEY / KRAKEN_API_SECRET: {exc}", EXIT_USAGE) from None


def need_plotting() -> None:
    """Fail early, before any work, if ``--plot`` cannot be honoured: a usage error saying
    how to install the ``plot`` extra."""
    from oms.plot import PlotUnavailable, require_matplotlib

    try:
        require_matplotlib()
    except PlotUnavailable as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def quiet() -> bool:
    """Whether ``oms -q`` was given (no progress, no notes on stderr)."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().meta.get("oms.quiet"))


# --- times ------------------------------------------------------------------------------------


def parse_time(text: str) -> int:
    """Unix seconds, or an ISO 8601 date/time (UTC unless it has an offset) → unix seconds."""
    stripped = text.strip()
    if stripped.isascii() and stripped.isdigit():
        return int(stripped)
    try:
        parsed = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r}: give unix seconds or an ISO 8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp())


def time_option_callback(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> int | None:
    """A click callback for options that take a time (ValueError → usage error)."""
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


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


def _format_callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    return value


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

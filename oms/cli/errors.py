"""What every ``oms`` command shares when something goes wrong: exit statuses and wording.

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

from collections.abc import Iterator
from contextlib import contextmanager

import click

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
    "cli_words",
    "describe",
    "exit_code_for",
    "need_plotting",
]

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


def need_plotting() -> None:
    """Fail early, before any work, if ``--plot`` cannot be honoured: a usage error saying
    how to install the ``plot`` extra."""
    from oms.plot import PlotUnavailable, require_matplotlib

    try:
        require_matplotlib()
    except PlotUnavailable as exc:
        raise CliError(str(exc), EXIT_USAGE) from None

"""The ``oms`` command line: one group, subcommands loaded on first use.

Each area keeps its commands in its own module (``oms/cli/<area>.py``); loading them lazily
keeps ``oms sign`` and ``oms --help`` fast and lets an area's dependencies stay out of the way
of the others.
"""

from __future__ import annotations

import importlib
import sqlite3
from typing import Any

import click

from oms import __version__
from oms.cli.errors import EXIT_INTERRUPTED, EXIT_STATUS_HELP, CliError
from oms.cli.output import configure_logging

__all__ = ["main"]

#: command name → "module:attribute" of its click command.
COMMANDS: dict[str, str] = {
    "balance": "oms.cli.market:balance",
    "call": "oms.cli.call:call",
    "check": "oms.cli.check:check",
    "cancel": "oms.cli.orders:cancel",
    "demo": "oms.cli.demo:demo",
    "funding": "oms.cli.history:funding",
    "groups": "oms.cli.orders:groups",
    "orders": "oms.cli.orders:orders",
    "place": "oms.cli.orders:place",
    "recover": "oms.cli.orders:recover",
    "sandbox": "oms.cli.sandbox:sandbox",
    "sign": "oms.cli.sign:sign",
    "sync": "oms.cli.orders:sync",
    "ticker": "oms.cli.market:ticker",
    "trades": "oms.cli.history:trades",
    "watch": "oms.cli.watch:watch",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, attr = COMMANDS[cmd_name].split(":")
            command: Any = getattr(importlib.import_module(module_name), attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            # Commands that can leave something in doubt (a placement) say what themselves;
            # anything else was interrupted with nothing left unknown.
            raise CliError("interrupted", EXIT_INTERRUPTED) from None
        except (OSError, sqlite3.Error) as exc:
            # Conditions of the machine, not bugs: a file that cannot be written (--plot,
            # --transcript), a database locked or read-only past its busy timeout, a full
            # disk. The library translates what it can where it happens (opening a file of
            # the wrong kind is a ValidationError); what only shows at run time ends here, as
            # one line instead of a traceback. `oms -vv` keeps the traceback for debugging.
            if ctx.find_root().meta.get("oms.verbose", 0) >= 2:
                raise
            where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename else ""
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise CliError(f"{reason}{where}") from None


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_STATUS_HELP,
)
@click.version_option(__version__, prog_name="oms")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Log one line per request (method, URL path, status, latency) and every warning "
    "to stderr; never keys, signatures or bodies.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress and no notes on stderr.")
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Order management for the Kraken spot REST API.

    Commands that talk to an exchange take --base-url (default Kraken; point it at
    `oms sandbox` to trade offline) and read KRAKEN_API_KEY / KRAKEN_API_SECRET.
    Times are given as ISO 8601 (UTC unless an offset is given) or unix seconds, and shown
    in UTC. Progress shows on stderr when it is a terminal.
    """
    ctx.meta["oms.quiet"] = quiet
    ctx.meta["oms.verbose"] = verbose
    ctx.meta["oms.last_log"] = configure_logging(verbose, quiet)

"""The ``oms`` command line: one group, subcommands loaded on first use.

Each area keeps its commands in its own module (``oms/cli/<area>.py``); loading them lazily
keeps ``oms sign`` and ``oms --help`` fast and lets an area's dependencies stay out of the way
of the others.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from oms._version import __version__

__all__ = ["main"]

#: command name → "module:attribute" of its click command.
COMMANDS: dict[str, str] = {
    "call": "oms.cli.call:call",
    "cancel": "oms.cli.orders:cancel",
    "demo": "oms.cli.orders:demo",
    "funding": "oms.cli.history:funding",
    "groups": "oms.cli.orders:groups",
    "orders": "oms.cli.orders:orders",
    "place": "oms.cli.orders:place",
    "recover": "oms.cli.orders:recover",
    "sandbox": "oms.cli.sandbox:sandbox",
    "sign": "oms.cli.sign:sign",
    "sync": "oms.cli.orders:sync",
    "trades": "oms.cli.history:trades",
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


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="oms")
def main() -> None:
    """Order management for the Kraken spot REST API.

    Commands that talk to an exchange take --base-url (default Kraken; point it at
    `oms sandbox` to trade offline) and read KRAKEN_API_KEY / KRAKEN_API_SECRET.
    """

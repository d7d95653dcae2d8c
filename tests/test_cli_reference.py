"""docs/cli-reference.rst is the commands' current --help, and names every command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from oms.cli import COMMANDS

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_reference_is_up_to_date() -> None:
    # A fresh interpreter: click caches each command's help option on first use, so tests that
    # invoke a command on its own would otherwise change how its help renders here.
    result = subprocess.run(
        [sys.executable, str(DOCS / "generate_cli_reference.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_command_has_a_section() -> None:
    text = (DOCS / "cli-reference.rst").read_text()
    for name in COMMANDS:
        assert f"\noms {name}\n" in text, name

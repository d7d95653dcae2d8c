"""docs/cli-reference.rst is the commands' current --help, and names every command."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from oms.cli import COMMANDS

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen", DOCS / "generate_cli_reference.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_is_up_to_date() -> None:
    gen = _generator()
    assert gen.PAGE.read_text() == gen.render(), "run: python docs/generate_cli_reference.py"


def test_every_command_has_a_section() -> None:
    text = (DOCS / "cli-reference.rst").read_text()
    for name in COMMANDS:
        assert f"\noms {name}\n" in text, name

"""The CLI is thin: it imports no private module and builds no client or manager by hand."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CLI = Path(__file__).resolve().parent.parent / "oms" / "cli"
MODULES = sorted(CLI.glob("*.py"))
#: Built only by oms.connect (and the sandbox's own factory), never by a command.
BUILT_ELSEWHERE = {"Credentials", "KrakenClient", "NonceSource", "OrderManager"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_private_module_is_imported(path: Path) -> None:
    for node in ast.walk(_tree(path)):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            if name == "__future__":
                continue
            private = [part for part in name.split(".") if part.startswith("_")]
            assert not private, f"{path.name}:{node.lineno} imports {name}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_nothing_is_built_by_hand(path: Path) -> None:
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in BUILT_ELSEWHERE, f"{path.name}:{node.lineno}"


def test_no_module_is_too_long_to_read() -> None:
    for path in MODULES:
        assert len(path.read_text().splitlines()) < 600, path.name

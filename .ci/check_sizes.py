"""Fail when library code outgrows what a newcomer can read in one sitting.

Limits (issue #8), for every module under ``oms/``:

- a module over 600 lines (the modules in ``MODULE_EXCEPTIONS`` aside, each with its reason);
- a class over 400 lines;
- a function or method above radon's cyclomatic grade C (complexity over 20).

Run by tox's lint env (``python .ci/check_sizes.py``); prints one line per breach and exits 1
if there is any. Needs radon.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from radon.complexity import cc_rank, cc_visit

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "oms"

MAX_MODULE_LINES = 600
MAX_CLASS_LINES = 400
WORST_GRADE = "C"

#: Modules allowed past the line limit (and only that limit), with the reason.
MODULE_EXCEPTIONS: dict[str, str] = {
    "oms/sandbox/assets.py": "data table: every asset the sandbox models, one entry each",
    "oms/sandbox/pairs.py": "data table: every pair's AssetPairs fields, one entry each",
    "oms/errors.py": (
        "the one exception tree (every OmsError subclass, as issue #8 asks) and Kraken's "
        "error-string table: declarative, one small class per exchange error"
    ),
}


def _breaches(path: Path) -> list[str]:
    name = path.relative_to(ROOT).as_posix()
    source = path.read_text(encoding="utf-8")
    found: list[str] = []
    lines = len(source.splitlines())
    if lines > MAX_MODULE_LINES and name not in MODULE_EXCEPTIONS:
        found.append(f"{name}: {lines} lines (module limit {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(source, filename=name)):
        if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
            size = node.end_lineno - node.lineno + 1
            if size > MAX_CLASS_LINES:
                found.append(
                    f"{name}:{node.lineno}: class {node.name} is {size} lines"
                    f" (class limit {MAX_CLASS_LINES})"
                )
    for block in cc_visit(source):
        grade = cc_rank(block.complexity)
        if grade > WORST_GRADE:
            found.append(
                f"{name}:{block.lineno}: {block.fullname} has cyclomatic complexity"
                f" {block.complexity} (grade {grade}; limit {WORST_GRADE})"
            )
    return found


def main(argv: list[str]) -> int:
    paths = [Path(a).resolve() for a in argv] or sorted(PACKAGE.rglob("*.py"))
    breaches = [line for path in paths for line in _breaches(path)]
    for line in breaches:
        print(line)
    for name in MODULE_EXCEPTIONS:
        if not (ROOT / name).is_file():
            print(f"{name}: listed in MODULE_EXCEPTIONS but missing")
            breaches.append(name)
    return 1 if breaches else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The exception tree drawn at the top of oms/errors.py is the real class tree, in full."""

from __future__ import annotations

import inspect
import re

from oms import errors

_NAME = re.compile(r"[A-Z][A-Za-z]+")


def _drawn_tree() -> dict[str, str | None]:
    """Each class in the docstring's drawing → the class drawn as its parent."""
    doc = errors.__doc__ or ""
    block = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    parents: dict[str, str | None] = {}
    stack: list[str] = []
    for line in block.splitlines():
        match = _NAME.search(line)
        assert match is not None, line
        depth = (match.start() - 4) // 4
        del stack[depth:]
        parents[match.group()] = stack[-1] if stack else None
        stack.append(match.group())
    return parents


def _real_tree() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name, cls in vars(errors).items():
        if inspect.isclass(cls) and issubclass(cls, errors.OmsError):
            bases = [b for b in cls.__bases__ if issubclass(b, errors.OmsError)]
            found[name] = bases[0].__name__ if bases else None
    return found


def test_the_drawing_shows_every_class_under_its_parent() -> None:
    assert _drawn_tree() == _real_tree()


def test_every_error_class_is_exported() -> None:
    assert set(_real_tree()) <= set(errors.__all__)

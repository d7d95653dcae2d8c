"""Progress for people, and nothing for pipes.

Progress goes to stderr, and only when stderr is a terminal (and ``oms -q`` was not given):
a script reading stdout or a log collecting stderr sees exactly what it saw before.

Bars use click's own ``click.progressbar``: click is already a dependency, so progress costs
no install and no import time, and the bar already hides itself when the stream is not a
terminal. Waits show as one status line that counts down, saying what they wait for (the
latest line the library logged: a deadline after a lost answer, pacing for rate limits).
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import click

from oms.cli.output import iso, quiet

__all__ = ["StatusLine", "SyncProgress", "show_progress", "waiting_sleep"]

#: Waits shorter than this pass without a word.
WAIT_NOTICE = 2.0


def _stream() -> TextIO:
    return sys.stderr


def show_progress() -> bool:
    """Whether to draw progress: stderr is a terminal and ``-q`` was not given."""
    return not quiet() and _stream().isatty()


class StatusLine:
    """One line of stderr rewritten in place; cleared when done. Silent off a terminal."""

    def __init__(self, *, enabled: bool | None = None) -> None:
        self.enabled = show_progress() if enabled is None else enabled
        self._width = 0

    def show(self, text: str) -> None:
        if not self.enabled:
            return
        # One line: a status longer than the terminal would wrap and never be overwritten.
        text = text[: max(20, shutil.get_terminal_size().columns - 1)]
        stream = _stream()
        stream.write("\r" + text.ljust(self._width))
        stream.flush()
        self._width = len(text)

    def clear(self) -> None:
        if self.enabled and self._width:
            stream = _stream()
            stream.write("\r" + " " * self._width + "\r")
            stream.flush()
            self._width = 0


def _reason() -> str:
    ctx = click.get_current_context(silent=True)
    last = None if ctx is None else ctx.find_root().meta.get("oms.last_log")
    return str(getattr(last, "text", "") or "")


def waiting_sleep(
    sleep: Callable[[float], Any] = time.sleep, clock: Callable[[], float] = time.monotonic
) -> Callable[[float], None]:
    """A ``sleep`` for the library that shows a countdown for any wait over two seconds."""

    def wait(seconds: float) -> None:
        if seconds < WAIT_NOTICE or not show_progress():
            sleep(seconds)
            return
        line = StatusLine(enabled=True)
        reason = _reason()
        end = clock() + seconds
        try:
            while (left := end - clock()) > 0:
                text = f"waiting {left:4.0f} s"
                line.show(f"{text}: {reason}" if reason else text)
                sleep(min(1.0, left))
        finally:
            line.clear()

    return wait


class SyncProgress:
    """A bar over the time span the sync covers, from its first cursor to now (click's bar:
    it draws only on a terminal; pages, trades and the rate ride along as its item text)."""

    def __init__(self, pair: str) -> None:
        self.pair = pair
        self.enabled = show_progress()
        self.bar: Any = None
        self.started = time.monotonic()
        self.at = 0.0
        self.text = ""
        #: "Now" for the bar's end: the exchange's clock (set by the caller), else ours.
        self.now: float | None = None

    def __call__(self, pages: int, received: int, inserted: int, cursor: int) -> None:
        if not self.enabled:
            return
        at = cursor / 1e9
        if self.bar is None:
            now = self.now if self.now is not None else time.time()
            self.at = min(at, now)
            self.bar = click.progressbar(
                length=max(1, int(now - self.at)),
                label=f"{self.pair} trades",
                file=sys.stderr,
                show_pos=False,
                show_eta=True,
                item_show_func=lambda _: self.text,
            )
            self.bar.__enter__()
        rate = received / max(time.monotonic() - self.started, 1e-6)
        self.text = f"{pages} pages, {received} trades ({rate:.0f}/s), at {iso(at)}"
        step = int(at - self.at)
        if step > 0:
            self.at += step
        self.bar.update(max(step, 0), current_item=pages)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)

"""Pictures: OHLC candles with volume, and the demo's story. Needs the ``plot`` extra.

matplotlib is imported here, on first use, and only here: ``import oms`` and every command
that draws nothing never load it. It draws with the Agg back-end (files, no display), so it
works on a server, in CI and over SSH alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

# PlotUnavailable lives in the one error tree; importable from here, where it is raised.
from oms.errors import PlotUnavailable

if TYPE_CHECKING:
    from oms.cli.demo import DemoStory
    from oms.models import OHLCBar

__all__ = ["PlotUnavailable", "plot_demo", "plot_ohlc", "require_matplotlib"]

#: The size of every picture, in inches at :data:`DPI` (1200 x 750 pixels).
SIZE = (12.0, 7.5)
DPI = 100

INSTALL_HINT = "plotting needs matplotlib: pip install 'oms[plot]'"


def require_matplotlib() -> Any:
    """matplotlib's ``pyplot`` on the Agg back-end, or :class:`PlotUnavailable` saying how to
    install it. Call before any long work, so a missing extra is found first."""
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailable(INSTALL_HINT) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _dates() -> Any:
    # Typed as Any: matplotlib's date helpers are unannotated, and CI's type check runs
    # without the plot extra installed.
    import matplotlib.dates

    return matplotlib.dates


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


def _candles(ax: Any, bars: Sequence[OHLCBar], interval: int) -> None:
    """One candle per bar, centred on the middle of its interval (a bar's time is its start)."""
    width_days = interval / 86400 * 0.7
    for bar in bars:
        x = _utc(bar.time + interval / 2)
        up = bar.close >= bar.open
        color = "#26a269" if up else "#c01c28"
        ax.vlines(x, float(bar.low), float(bar.high), color=color, linewidth=0.8)
        bottom = float(min(bar.open, bar.close))
        height = float(abs(bar.close - bar.open)) or float(bar.close) * 1e-6
        ax.bar(x, height, width_days, bottom=bottom, color=color, edgecolor=color)


def plot_ohlc(bars: Sequence[OHLCBar], interval: int, path: str | Path, *, title: str) -> None:
    """Candles with a volume panel beneath, for bars of ``interval`` seconds, to a PNG."""
    plt = require_matplotlib()
    mdates = _dates()

    fig, (price_ax, volume_ax) = plt.subplots(
        2, 1, sharex=True, figsize=SIZE, dpi=DPI, gridspec_kw={"height_ratios": [3, 1]}
    )
    try:
        _candles(price_ax, bars, interval)
        volume_ax.bar(
            [_utc(b.time + interval / 2) for b in bars],
            [float(b.volume) for b in bars],
            interval / 86400 * 0.7,
            color="#5e81ac",
        )
        price_ax.set_title(title)
        price_ax.set_ylabel("price")
        volume_ax.set_ylabel("volume")
        volume_ax.set_xlabel("time (UTC)")
        volume_ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d\n%H:%M"))
        price_ax.grid(alpha=0.3)
        if not bars:
            price_ax.text(0.5, 0.5, "no trades in this range", transform=price_ax.transAxes,
                          ha="center")  # fmt: skip
        fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)


def plot_demo(story: DemoStory, path: str | Path) -> None:
    """The demo's story: the price path, each rung's limit price, the fills, the cancel."""
    plt = require_matplotlib()
    mdates = _dates()

    fig, ax = plt.subplots(figsize=SIZE, dpi=DPI)
    try:
        _candles(ax, story.bars, story.interval)
        start, cancel = _utc(story.start), _utc(story.cancel_at)
        cancelled = set(story.cancelled)
        for txid, price in story.rungs:
            style = "--" if txid in cancelled else "-"
            ax.hlines(float(price), start, cancel, colors="#e5a50a", linestyles=style, linewidth=1)
        if story.fills:
            ax.scatter(
                [_utc(t) for t, _ in story.fills],
                [float(p) for _, p in story.fills],
                marker="^",
                s=90,
                color="#1c71d8",
                zorder=3,
                label=f"fills ({len(story.fills)})",
            )
        ax.axvline(cancel, color="#c01c28", linewidth=1.5,
                   label=f"group cancel ({len(cancelled)} cancelled)")  # fmt: skip
        ax.plot([], [], color="#e5a50a", label="rung: limit price (dashed: cancelled)")
        ax.set_title(f"oms demo: a ladder of {len(story.rungs)} buys on {story.pair}")
        ax.set_ylabel("price")
        ax.set_xlabel("sandbox time (UTC)")
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right")
        fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)

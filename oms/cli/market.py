"""``oms balance`` and ``oms ticker PAIR``: the two questions asked before any order."""

from __future__ import annotations

from typing import Any

import click

from oms.cli.options import base_url_option, open_client
from oms.cli.output import chosen_format, emit, format_options
from oms.rounding import decimal_text as fmt

__all__ = ["balance", "ticker"]


@click.command()
@click.option("--all", "show_all", is_flag=True, help="Also assets with a zero balance.")
@base_url_option
@format_options
def balance(show_all: bool, base_url: str, output_format: str | None, table: bool) -> None:
    """The account's balance per asset (Kraken's asset ids, e.g. ZUSD, XXBT).

    Needs KRAKEN_API_KEY / KRAKEN_API_SECRET (Query Funds permission).
    """
    fmt_ = chosen_format(output_format, table)
    with open_client(base_url) as client:
        amounts = client.balance()
    rows = [
        {"asset": asset, "amount": fmt(amount)}
        for asset, amount in sorted(amounts.items())
        if show_all or amount != 0
    ]
    data: Any = {row["asset"]: row["amount"] for row in rows}
    emit(
        data if fmt_ == "json" else rows, output_format=fmt_, rows=rows, columns=("asset", "amount")
    )


TICKER_COLUMNS = ("pair", "bid", "ask", "last", "low_24h", "high_24h", "vwap_24h", "volume_24h")


@click.command()
@click.argument("pairs", nargs=-1, required=True)
@base_url_option
@format_options
def ticker(pairs: tuple[str, ...], base_url: str, output_format: str | None, table: bool) -> None:
    """Best bid and ask, last trade and the last 24 hours of PAIRS (public: no key needed).

    VWAP is shown to the pair's price decimals.
    """
    fmt_ = chosen_format(output_format, table)
    with open_client(base_url, keys="none") as client:
        found = client.ticker(list(pairs))
        rows = []
        for name, tick in found.items():
            places = client.pair(name).pair_decimals
            rows.append(
                {
                    "pair": name,
                    "bid": fmt(tick.bid),
                    "ask": fmt(tick.ask),
                    "last": fmt(tick.last),
                    "low_24h": fmt(tick.low_24h),
                    "high_24h": fmt(tick.high_24h),
                    "vwap_24h": fmt(round(tick.vwap_24h, places)),
                    "volume_24h": fmt(tick.volume_24h),
                    "trades_24h": tick.trades_24h,
                }
            )
    emit(rows, output_format=fmt_, rows=rows, columns=TICKER_COLUMNS)

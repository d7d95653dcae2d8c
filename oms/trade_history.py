"""A pair's public trade history kept in a store: sync it, build OHLC from it, check it.

:class:`TradeHistory` is the one object a program (or ``oms trades ...``) opens for trades:
the exchange to fill the store from (any :class:`HistorySource`, usually a
:class:`~oms.client.KrakenClient`; ``None`` to answer from the store alone) and the
:class:`~oms.history_store.HistoryStore`. The work itself is :func:`oms.history.sync_trades`,
:func:`oms.history.ohlc_from_trades` and :func:`oms.history.check_recent_ohlc`.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from typing import Any, Protocol

from oms._owning import OwnsClientAndStore
from oms.errors import ValidationError
from oms.history import (
    OHLCCheck,
    OHLCSource,
    SyncReport,
    TradesSource,
    check_recent_ohlc,
    ohlc_from_trades,
    sync_trades,
)
from oms.history_store import HistoryStore
from oms.models import OHLCBar, ServerTime

__all__ = ["HistorySource", "TradeHistory"]

_NS = 10**9


class HistorySource(TradesSource, OHLCSource, Protocol):
    """What a trade history reads from the exchange: Trades, OHLC and the server's time."""

    def time(self) -> ServerTime: ...

    def close(self) -> None: ...


class TradeHistory(OwnsClientAndStore):
    """Public trades of any pairs in ``store``, filled from ``client``.

    With ``owns`` (what :meth:`from_env` gives), :meth:`close` closes the client and the
    store too. ``clock`` and ``sleep`` pace the syncs (inject the sandbox's in tests).
    """

    def __init__(
        self,
        client: HistorySource | None,
        store: HistoryStore,
        *,
        owns: bool = False,
        clock: Callable[[], float] = _time.time,
        sleep: Callable[[float], object] = _time.sleep,
    ) -> None:
        self.client = client
        self.store = store
        self._owns = owns
        self._clock = clock
        self._sleep = sleep

    @classmethod
    def from_env(
        cls,
        db: Any = None,
        *,
        base_url: str | None = None,
        offline: bool = False,
        **client_options: Any,
    ) -> TradeHistory:
        """The history database ``db`` (default :func:`oms.paths.history_db`) and a client
        on ``base_url`` (default ``$KRAKEN_BASE_URL``, else Kraken; public endpoints, no
        key), or none when ``offline``; see :func:`oms.connect.trade_history_from_env`."""
        from oms.connect import trade_history_from_env

        return trade_history_from_env(db, base_url=base_url, offline=offline, **client_options)

    def __repr__(self) -> str:
        return f"TradeHistory({self.store!r})"

    def _source(self) -> HistorySource:
        if self.client is None:
            raise ValidationError("this trade history has no client to ask", field="client")
        return self.client

    def server_time(self) -> int:
        """Kraken's clock now (unix seconds): where a sync from the stored cursor ends."""
        return self._source().time().unixtime

    def sync(self, pair: str, **options: Any) -> SyncReport:
        """Page ``pair``'s trades into the store from the stored cursor (or ``since``);
        the keywords are :func:`oms.history.sync_trades`'."""
        options.setdefault("clock", self._clock)
        options.setdefault("sleep", self._sleep)
        return sync_trades(self._source(), self.store, pair, **options)

    def ohlc(
        self,
        pair: str,
        interval: int,
        *,
        start: int | None = None,
        end: int | None = None,
        carry_forward: bool = False,
        vwap_places: int | None = None,
    ) -> list[OHLCBar]:
        """Bars of ``interval`` seconds from the stored trades (no network); ``start`` and
        ``end`` are unix seconds, as :func:`oms.history.ohlc_from_trades` takes them."""
        # Trades before the first bar only matter for the close carried into it.
        read_from = None if start is None or carry_forward else start * _NS
        stored = self.store.iter_trades(
            pair, start_ns=read_from, end_ns=None if end is None else end * _NS
        )
        return list(
            ohlc_from_trades(
                stored,
                interval,
                start=start,
                end=end,
                carry_forward=carry_forward,
                vwap_places=vwap_places,
            )
        )

    def check(self, pair: str, interval_minutes: int) -> OHLCCheck:
        """Compare the stored trades' bars with Kraken's committed OHLC bars (one request)."""
        return check_recent_ohlc(self._source(), self.store, pair, interval_minutes)

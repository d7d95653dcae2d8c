"""Kraken's public market-data endpoints, mixed into :class:`oms.client.KrakenClient`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from oms._params import (
    _OHLC_INTERVALS,
    Endpoints,
    _as_list,
    _opt_asset_class,
    _positive_int,
)
from oms.errors import ValidationError
from oms.models import (
    Asset,
    AssetPair,
    OHLCPage,
    OrderBook,
    PublicTrade,
    ServerTime,
    SystemStatus,
    Ticker,
    TradesPage,
)

__all__ = ["MarketCalls"]


class MarketCalls(Endpoints):
    """Time, status, assets, pairs, ticker, OHLC, trades and the book (no key needed)."""

    # --- public market data ---------------------------------------------------------------

    def time(self) -> ServerTime:
        return ServerTime.from_api(self._call("Time", {}))

    def system_status(self) -> SystemStatus:
        return SystemStatus.from_api(self._call("SystemStatus", {}))

    def assets(
        self, assets: str | Iterable[str] | None = None, *, aclass: str | None = None
    ) -> dict[str, Asset]:
        params = {"asset": _as_list(assets, "assets"), "aclass": aclass}
        return Asset.map_from_api(self._call("Assets", params))

    def asset_pairs(
        self,
        pairs: str | Iterable[str] | None = None,
        *,
        info: str | None = None,
        aclass_base: str | None = None,
        country_code: str | None = None,
    ) -> dict[str, AssetPair]:
        """Every pair's rules, keyed by pair id. ``info`` may only be ``"info"`` (the default,
        the whole entry): Kraken's ``leverage``/``fees``/``margin`` views leave out the
        fields an :class:`~oms.models.AssetPair` needs (all of them are in the whole entry;
        ``call("AssetPairs", info=...)`` gives the raw view)."""
        if info not in (None, "info"):
            raise ValidationError(
                f"info={info!r} answers a partial entry that is not an AssetPair: leave info "
                "out (the whole entry has the leverage, fees and margin fields too) or use "
                "call('AssetPairs', info=...)",
                field="info",
                rule="enum",
            )
        names = _as_list(pairs, "pairs")
        params = {
            "pair": names,
            "info": info,
            "aclass_base": aclass_base,
            "country_code": country_code,
        }
        found = AssetPair.map_from_api(self._call("AssetPairs", params))
        self.pairs.learn(found.values(), asked=names or ())
        return found

    def ticker(
        self, pairs: str | Iterable[str] | None = None, *, asset_class: str | None = None
    ) -> dict[str, Ticker]:
        params = {"pair": _as_list(pairs, "pairs"), "asset_class": _opt_asset_class(asset_class)}
        return Ticker.map_from_api(self._call("Ticker", params))

    def ohlc(
        self,
        pair: str,
        *,
        interval: int = 1,
        since: int | None = None,
        asset_class: str | None = None,
    ) -> OHLCPage:
        """At most the 720 latest bars (older ones are unreachable through this endpoint)."""
        if interval not in _OHLC_INTERVALS:
            raise ValidationError(
                f"interval must be one of {sorted(_OHLC_INTERVALS)} minutes",
                field="interval",
                rule="range",
            )
        params = {
            "pair": pair,
            "interval": interval,
            "since": since,
            "asset_class": _opt_asset_class(asset_class),
        }
        return OHLCPage.from_api(self._call("OHLC", params))

    def trades(
        self,
        pair: str,
        *,
        since: int | None = None,
        count: int | None = None,
        asset_class: str | None = None,
    ) -> TradesPage:
        """One page of the public tape. ``since`` is a nanosecond cursor (``TradesPage.last``)."""
        if count is not None and not 1 <= _positive_int(count, "count") <= 1000:
            raise ValidationError("count must be 1..1000", field="count", rule="range")
        params = {
            "pair": pair,
            "since": since,
            "count": count,
            "asset_class": _opt_asset_class(asset_class),
        }
        return TradesPage.from_api(self._call("Trades", params))

    def iter_trades(
        self,
        pair: str,
        since: int = 0,
        *,
        count: int | None = None,
        max_pages: int | None = None,
        asset_class: str | None = None,
    ) -> Iterator[PublicTrade]:
        """Every public trade from ``since`` (nanoseconds; 0 = the market's first trade) on.

        Pages follow Kraken's exact ``last`` cursor (never a rounded time). A trade repeated
        at a page boundary is yielded once. Stops when a page is empty, ``last`` is empty
        (Kraken's end of pagination) or does not advance (the present is reached).
        """
        cursor = since
        previous: set[object] = set()
        pages = 0
        while max_pages is None or pages < max_pages:
            page = self.trades(pair, since=cursor, count=count, asset_class=asset_class)
            pages += 1
            for trade in page.trades:
                if _trade_key(trade) not in previous:
                    yield trade
            if not page.trades or page.last is None or page.last <= cursor:
                return
            previous = {_trade_key(t) for t in page.trades}
            cursor = page.last

    def depth(
        self, pair: str, *, count: int | None = None, asset_class: str | None = None
    ) -> OrderBook:
        if count is not None and not 1 <= _positive_int(count, "count") <= 500:
            raise ValidationError("count must be 1..500", field="count", rule="range")
        params = {"pair": pair, "count": count, "asset_class": _opt_asset_class(asset_class)}
        return OrderBook.from_api(self._call("Depth", params))


def _trade_key(trade: PublicTrade) -> object:
    if trade.trade_id is not None:
        return trade.trade_id
    return (trade.price, trade.volume, trade.time, trade.side, trade.ordertype, trade.misc)

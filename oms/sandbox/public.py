"""The public endpoints, answered from the market (and the exchange's asset table)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from oms._decimal import fmt
from oms.sandbox.assets import AssetTable
from oms.sandbox.protocol import ApiError, Params, format_rfc1123, format_rfc3339, invalid
from oms.sandbox.trading import MarketLike

__all__ = ["PublicApi"]

_OHLC_INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)


class PublicApi:
    """``Time``, ``SystemStatus``, ``Assets``, ``AssetPairs``, ``Ticker``, ``OHLC``,
    ``Trades``, ``Depth`` and ``Spread``. Results are keyed by pair id whatever name the
    request used."""

    def __init__(
        self, *, market: MarketLike, assets: AssetTable, status: Callable[[], str]
    ) -> None:
        self.market = market
        self.assets = assets
        self.status = status
        self.methods: dict[str, Callable[[Params, float], Any]] = {
            "Time": self._time,
            "SystemStatus": self._system_status,
            "Assets": self._assets,
            "AssetPairs": self._asset_pairs,
            "Ticker": self._ticker,
            "OHLC": self._ohlc,
            "Trades": self._trades,
            "Depth": self._depth,
            "Spread": self._spread,
        }

    def pair(self, name: str | None) -> Any:
        """The pair called ``name`` or ``EQuery:Unknown asset pair``."""
        if name is None:
            raise invalid("pair")
        pair = self.market.pair(name)
        if pair is None:
            raise ApiError("EQuery:Unknown asset pair")
        return pair

    def _pairs(self, p: Params) -> list[Any]:
        names = p.text_list("pair")
        if not names:
            return list(self.market.pairs)
        return [self.pair(n) for n in names]

    def _time(self, p: Params, now: float) -> Any:
        return {"unixtime": int(now), "rfc1123": format_rfc1123(now)}

    def _system_status(self, p: Params, now: float) -> Any:
        return {"status": self.status(), "timestamp": format_rfc3339(now)}

    def _assets(self, p: Params, now: float) -> Any:
        names = p.text_list("asset")
        if names:
            specs = []
            for name in names:
                spec = self.assets.get(name)
                if spec is None:
                    raise ApiError("EQuery:Unknown asset")
                specs.append(spec)
        else:
            specs = self.assets.all()
        out: dict[str, Any] = {}
        for spec in specs:
            entry: dict[str, Any] = {
                "aclass": "currency",
                "altname": spec.altname,
                "decimals": spec.decimals,
                "display_decimals": spec.display_decimals,
            }
            if spec.collateral_value is not None:
                entry["collateral_value"] = float(spec.collateral_value)
            entry["status"] = "enabled"
            out[spec.asset_id] = entry
        return out

    def _asset_pairs(self, p: Params, now: float) -> Any:
        info = p.text("info") or "info"
        if info not in ("info", "leverage", "fees", "margin"):
            raise invalid("info")
        out: dict[str, Any] = {}
        for pair in self._pairs(p):
            full = self._pair_info(pair)
            if info == "leverage":
                full = {k: full[k] for k in ("leverage_buy", "leverage_sell")}
            elif info == "fees":
                full = {k: full[k] for k in ("fees", "fees_maker", "fee_volume_currency")}
            elif info == "margin":
                full = {k: full[k] for k in ("margin_call", "margin_stop")}
            out[pair.pair_id] = full
        return out

    @staticmethod
    def _pair_info(pair: Any) -> dict[str, Any]:
        made = getattr(pair, "asset_pair_info", None)
        if callable(made):
            info: dict[str, Any] = made()
            return info
        return {
            "altname": pair.altname,
            "wsname": getattr(pair, "wsname", pair.altname),
            "aclass_base": "currency",
            "base": pair.base,
            "aclass_quote": "currency",
            "quote": pair.quote,
            "lot": "unit",
            "cost_decimals": pair.cost_decimals,
            "pair_decimals": pair.pair_decimals,
            "lot_decimals": pair.lot_decimals,
            "lot_multiplier": 1,
            "leverage_buy": [],
            "leverage_sell": [],
            "fees": [[0, float(pair.fees_taker)]],
            "fees_maker": [[0, float(pair.fees_maker)]],
            "fee_volume_currency": "ZUSD",
            "margin_call": 80,
            "margin_stop": 40,
            "ordermin": fmt(pair.ordermin),
            "costmin": fmt(pair.costmin),
            "tick_size": fmt(pair.tick_size),
            "status": pair.status,
        }

    def _ticker(self, p: Params, now: float) -> Any:
        return {pair.pair_id: self.market.ticker(pair.pair_id, now) for pair in self._pairs(p)}

    def _ohlc(self, p: Params, now: float) -> Any:
        pair = self.pair(p.text("pair"))
        interval = p.integer("interval", default=1)
        if interval not in _OHLC_INTERVALS:
            raise invalid("interval")
        since = p.integer("since", low=0)
        rows, last = self.market.ohlc(pair.pair_id, interval, since, now)
        return {pair.pair_id: rows, "last": last}

    def _trades(self, p: Params, now: float) -> Any:
        pair = self.pair(p.text("pair"))
        since = p.integer("since", low=0)
        count = p.integer("count", default=1000, low=1, high=1000)
        assert count is not None
        since_ns = None if since is None else (since * 10**9 if 0 < since < 10**12 else since)
        trades, last = self.market.trades(pair.pair_id, since_ns, count)
        return {pair.pair_id: [t.to_row() for t in trades], "last": str(last)}

    def _depth(self, p: Params, now: float) -> Any:
        pair = self.pair(p.text("pair"))
        count = p.integer("count", default=100, low=1, high=500)
        assert count is not None
        return {pair.pair_id: self.market.depth(pair.pair_id, count)}

    def _spread(self, p: Params, now: float) -> Any:
        pair = self.pair(p.text("pair"))
        book = self.market.depth(pair.pair_id, 1)
        return {
            pair.pair_id: [[int(now), book["bids"][0][0], book["asks"][0][0]]],
            "last": int(now),
        }

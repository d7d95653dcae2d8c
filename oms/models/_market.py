"""Public market data and exchange metadata (see :mod:`oms.models`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from oms.errors import ResponseShapeError
from oms.models._fields import (
    OrderType,
    Side,
    SystemState,
    _dec,
    _enum,
    _int,
    _list,
    _money,
    _obj,
    _opt_dec,
    _opt_int,
    _opt_money,
    _opt_str,
    _ratio,
    _req,
    _rfc3339,
    _secs,
    _single_pair,
    _str,
    _time,
)

# --- public ---------------------------------------------------------------------------------


@attrs.frozen
class ServerTime:
    unixtime: int
    rfc1123: str

    @classmethod
    def from_api(cls, result: object) -> ServerTime:
        r = _obj(result, "Time")
        return cls(
            _int(_req(r, "unixtime", "Time"), "Time.unixtime"),
            _str(_req(r, "rfc1123", "Time"), "Time.rfc1123"),
        )


@attrs.frozen
class SystemStatus:
    status: SystemState
    timestamp: datetime

    @classmethod
    def from_api(cls, result: object) -> SystemStatus:
        r = _obj(result, "SystemStatus")
        return cls(
            _enum(SystemState, _req(r, "status", "SystemStatus"), "SystemStatus.status"),
            _rfc3339(_req(r, "timestamp", "SystemStatus"), "SystemStatus.timestamp"),
        )


@attrs.frozen(kw_only=True)
class Asset:
    """One entry of Assets. ``status`` is kept as Kraken's text (e.g. ``enabled``)."""

    asset_id: str
    altname: str
    aclass: str
    decimals: int
    display_decimals: int
    collateral_value: Decimal | None = None
    status: str | None = None

    @classmethod
    def from_api(cls, asset_id: str, data: object) -> Asset:
        d = _obj(data, f"asset {asset_id}")
        lbl = f"asset {asset_id}"
        collateral = d.get("collateral_value")
        return cls(
            asset_id=asset_id,
            altname=_str(_req(d, "altname", lbl), f"{lbl}.altname"),
            aclass=_str(d.get("aclass", "currency"), f"{lbl}.aclass"),
            decimals=_int(_req(d, "decimals", lbl), f"{lbl}.decimals"),
            display_decimals=_int(d.get("display_decimals", 0), f"{lbl}.display_decimals"),
            collateral_value=None
            if collateral is None
            else _ratio(collateral, f"{lbl}.collateral_value"),
            status=_opt_str(d.get("status"), f"{lbl}.status"),
        )

    @classmethod
    def map_from_api(cls, result: object) -> dict[str, Asset]:
        return {k: cls.from_api(k, v) for k, v in _obj(result, "Assets").items()}


@attrs.frozen
class FeeTier:
    """From 30-day ``volume`` up, the fee is ``percent`` % of the cost."""

    volume: Decimal
    percent: Decimal


def _fee_tiers(value: object, label: str) -> tuple[FeeTier, ...]:
    tiers = []
    for row in _list(value if value is not None else [], label):
        volume, percent = _list(row, label)[:2]
        tiers.append(FeeTier(_ratio(volume, label), _ratio(percent, label)))
    return tuple(tiers)


@attrs.frozen(kw_only=True)
class AssetPair:
    """One entry of AssetPairs with its precision rules.

    ``pair_decimals`` limits price decimals, ``lot_decimals`` volume decimals,
    ``cost_decimals`` cost decimals; ``tick_size`` (price step), ``ordermin`` (minimum
    volume, base) and ``costmin`` (minimum price x volume, quote) are ``None`` when Kraken
    does not publish them. :func:`oms.orders.check_against_pair` applies them to a request.
    """

    pair_id: str
    altname: str
    wsname: str | None = None
    aclass_base: str = "currency"
    base: str
    aclass_quote: str = "currency"
    quote: str
    pair_decimals: int
    lot_decimals: int
    cost_decimals: int | None = None
    lot_multiplier: int = 1
    ordermin: Decimal | None = attrs.field(default=None, converter=_opt_money)
    costmin: Decimal | None = attrs.field(default=None, converter=_opt_money)
    tick_size: Decimal | None = attrs.field(default=None, converter=_opt_money)
    status: str | None = None
    fees: tuple[FeeTier, ...] = ()
    fees_maker: tuple[FeeTier, ...] = ()
    fee_volume_currency: str | None = None
    leverage_buy: tuple[int, ...] = ()
    leverage_sell: tuple[int, ...] = ()
    margin_call: int | None = None
    margin_stop: int | None = None
    long_position_limit: int | None = None
    short_position_limit: int | None = None

    @classmethod
    def from_api(cls, pair_id: str, data: object) -> AssetPair:
        d = _obj(data, f"pair {pair_id}")
        lbl = f"pair {pair_id}"

        def ints(key: str) -> tuple[int, ...]:
            return tuple(_int(v, f"{lbl}.{key}") for v in _list(d.get(key, []), f"{lbl}.{key}"))

        return cls(
            pair_id=pair_id,
            altname=_str(_req(d, "altname", lbl), f"{lbl}.altname"),
            wsname=_opt_str(d.get("wsname"), f"{lbl}.wsname"),
            aclass_base=_str(d.get("aclass_base", "currency"), f"{lbl}.aclass_base"),
            base=_str(_req(d, "base", lbl), f"{lbl}.base"),
            aclass_quote=_str(d.get("aclass_quote", "currency"), f"{lbl}.aclass_quote"),
            quote=_str(_req(d, "quote", lbl), f"{lbl}.quote"),
            pair_decimals=_int(_req(d, "pair_decimals", lbl), f"{lbl}.pair_decimals"),
            lot_decimals=_int(_req(d, "lot_decimals", lbl), f"{lbl}.lot_decimals"),
            cost_decimals=_opt_int(d.get("cost_decimals"), f"{lbl}.cost_decimals"),
            lot_multiplier=_int(d.get("lot_multiplier", 1), f"{lbl}.lot_multiplier"),
            ordermin=_opt_dec(d.get("ordermin"), f"{lbl}.ordermin"),
            costmin=_opt_dec(d.get("costmin"), f"{lbl}.costmin"),
            tick_size=_opt_dec(d.get("tick_size"), f"{lbl}.tick_size"),
            status=_opt_str(d.get("status"), f"{lbl}.status"),
            fees=_fee_tiers(d.get("fees"), f"{lbl}.fees"),
            fees_maker=_fee_tiers(d.get("fees_maker"), f"{lbl}.fees_maker"),
            fee_volume_currency=_opt_str(d.get("fee_volume_currency"), f"{lbl}.fvc"),
            leverage_buy=ints("leverage_buy"),
            leverage_sell=ints("leverage_sell"),
            margin_call=_opt_int(d.get("margin_call"), f"{lbl}.margin_call"),
            margin_stop=_opt_int(d.get("margin_stop"), f"{lbl}.margin_stop"),
            long_position_limit=_opt_int(d.get("long_position_limit"), f"{lbl}.long_limit"),
            short_position_limit=_opt_int(d.get("short_position_limit"), f"{lbl}.short_limit"),
        )

    @classmethod
    def map_from_api(cls, result: object) -> dict[str, AssetPair]:
        """AssetPairs' whole result, keyed by pair id."""
        return {k: cls.from_api(k, v) for k, v in _obj(result, "AssetPairs").items()}

    def matches(self, name: str) -> bool:
        """Whether ``name`` is this pair's id, altname or wsname (case-insensitive)."""
        wanted = name.strip().upper()
        return wanted in {n.upper() for n in (self.pair_id, self.altname, self.wsname) if n}


@attrs.frozen(kw_only=True)
class Ticker:
    """One pair of Ticker. ``*_today`` counts from 00:00 UTC; ``*_24h`` is rolling."""

    pair: str
    ask: Decimal
    ask_volume: Decimal
    bid: Decimal
    bid_volume: Decimal
    last: Decimal
    last_volume: Decimal
    volume_today: Decimal
    volume_24h: Decimal
    vwap_today: Decimal
    vwap_24h: Decimal
    trades_today: int
    trades_24h: int
    low_today: Decimal
    low_24h: Decimal
    high_today: Decimal
    high_24h: Decimal
    open: Decimal

    @classmethod
    def from_api(cls, pair: str, data: object) -> Ticker:
        d = _obj(data, f"ticker {pair}")
        lbl = f"ticker {pair}"

        def arr(key: str) -> list[Any]:
            return _list(_req(d, key, lbl), f"{lbl}.{key}")

        def dec(key: str, i: int) -> Decimal:
            return _dec(arr(key)[i], f"{lbl}.{key}[{i}]")

        return cls(
            pair=pair,
            ask=dec("a", 0),
            ask_volume=dec("a", 2),
            bid=dec("b", 0),
            bid_volume=dec("b", 2),
            last=dec("c", 0),
            last_volume=dec("c", 1),
            volume_today=dec("v", 0),
            volume_24h=dec("v", 1),
            vwap_today=dec("p", 0),
            vwap_24h=dec("p", 1),
            trades_today=_int(arr("t")[0], f"{lbl}.t[0]"),
            trades_24h=_int(arr("t")[1], f"{lbl}.t[1]"),
            low_today=dec("l", 0),
            low_24h=dec("l", 1),
            high_today=dec("h", 0),
            high_24h=dec("h", 1),
            open=_dec(_req(d, "o", lbl), f"{lbl}.o"),
        )

    @classmethod
    def map_from_api(cls, result: object) -> dict[str, Ticker]:
        return {k: cls.from_api(k, v) for k, v in _obj(result, "Ticker").items()}


@attrs.frozen
class BookLevel:
    price: Decimal = attrs.field(converter=_money)
    volume: Decimal = attrs.field(converter=_money)
    timestamp: float = attrs.field(converter=_time)


@attrs.frozen
class OrderBook:
    """Depth for one pair: asks ascending, bids descending, as Kraken sends them."""

    pair: str
    asks: tuple[BookLevel, ...]
    bids: tuple[BookLevel, ...]

    @classmethod
    def from_api(cls, result: object) -> OrderBook:
        pair, body = _single_pair(_obj(result, "Depth"), "Depth")
        b = _obj(body, f"Depth {pair}")

        def levels(side: str) -> tuple[BookLevel, ...]:
            out = []
            for row in _list(_req(b, side, f"Depth {pair}"), f"Depth {pair}.{side}"):
                cells = _list(row, f"Depth {pair}.{side}")
                lbl = f"Depth {pair}.{side}"
                out.append(
                    BookLevel(_dec(cells[0], lbl), _dec(cells[1], lbl), _secs(cells[2], lbl))
                )
            return tuple(out)

        return cls(pair, levels("asks"), levels("bids"))


_TRADE_SIDES = {"b": Side.BUY, "s": Side.SELL}
_TRADE_TYPES = {"m": OrderType.MARKET, "l": OrderType.LIMIT}
_TRADE_SIDE_CODES = {v: k for k, v in _TRADE_SIDES.items()}
_TRADE_TYPE_CODES = {v: k for k, v in _TRADE_TYPES.items()}


def _opt_side(value: Side | str | None) -> Side | None:
    return None if value is None else Side(value)


def _opt_ordertype(value: OrderType | str | None) -> OrderType | None:
    return None if value is None else OrderType(value)


@attrs.frozen(kw_only=True)
class PublicTrade:
    """One row of the public Trades tape. ``time`` is only for display and bucketing;
    paging uses :attr:`TradesPage.last`, which is exact.

    ``side``/``ordertype`` are ``None`` for a value this library does not know (Kraken's
    tape has ``b``/``s`` and ``m``/``l`` today); ``side_raw``/``ordertype_raw`` keep Kraken's
    text either way, so one odd row never fails a whole page.
    """

    price: Decimal = attrs.field(converter=_money)
    volume: Decimal = attrs.field(converter=_money)
    time: float = attrs.field(converter=_time)
    side: Side | None = attrs.field(converter=_opt_side)
    ordertype: OrderType | None = attrs.field(converter=_opt_ordertype)
    misc: str = ""
    trade_id: int | None = None
    side_raw: str = attrs.field()
    ordertype_raw: str = attrs.field()

    @side_raw.default
    def _side_raw(self) -> str:
        return "" if self.side is None else _TRADE_SIDE_CODES[self.side]

    @ordertype_raw.default
    def _ordertype_raw(self) -> str:
        if self.ordertype is None:
            return ""
        return _TRADE_TYPE_CODES.get(self.ordertype, self.ordertype.value)

    @classmethod
    def from_row(cls, row: object, *, label: str = "trade") -> PublicTrade:
        cells = _list(row, label)
        if len(cells) < 6:
            raise ResponseShapeError(f"{label}: expected at least 6 cells, got {len(cells)}")
        side_raw = _str(cells[3], f"{label}.side")
        type_raw = _str(cells[4], f"{label}.ordertype")
        return cls(
            price=_dec(cells[0], f"{label}.price"),
            volume=_dec(cells[1], f"{label}.volume"),
            time=_secs(cells[2], f"{label}.time"),
            side=_TRADE_SIDES.get(side_raw),
            ordertype=_TRADE_TYPES.get(type_raw),
            misc=_str(cells[5], f"{label}.misc"),
            trade_id=_int(cells[6], f"{label}.trade_id") if len(cells) > 6 else None,
            side_raw=side_raw,
            ordertype_raw=type_raw,
        )


@attrs.frozen
class TradesPage:
    """A page of public trades. ``last`` is the nanosecond cursor for the next ``since``,
    parsed from Kraken's string exactly (a float would round away the last digits), or
    ``None`` when Kraken sends an empty ``last``: the end of pagination."""

    pair: str
    trades: tuple[PublicTrade, ...]
    last: int | None

    @classmethod
    def from_api(cls, result: object) -> TradesPage:
        r = _obj(result, "Trades")
        pair, rows = _single_pair(r, "Trades")
        raw_last = _req(r, "last", "Trades")
        # Kraken's official SDK documents an empty "last" as end-of-pagination
        # (krakenfx/kraken-api-sdk rust/docs/guides/wire-quirks.md, "`last` cursors"); the
        # OpenAPI spec's example shows a digit string. Both are accepted.
        # _int refuses floats: a float cursor would already have lost its last digits.
        last = None if raw_last == "" else _int(raw_last, "Trades.last")
        trades = tuple(
            PublicTrade.from_row(row, label=f"Trades[{i}]")
            for i, row in enumerate(_list(rows, "Trades"))
        )
        return cls(pair, trades, last)


@attrs.frozen(kw_only=True)
class OHLCBar:
    """One OHLC row; ``time`` is the bar's start (unix seconds)."""

    time: int
    open: Decimal = attrs.field(converter=_money)
    high: Decimal = attrs.field(converter=_money)
    low: Decimal = attrs.field(converter=_money)
    close: Decimal = attrs.field(converter=_money)
    vwap: Decimal = attrs.field(converter=_money)
    volume: Decimal = attrs.field(converter=_money)
    count: int

    @classmethod
    def from_row(cls, row: object, *, label: str = "ohlc") -> OHLCBar:
        c = _list(row, label)
        if len(c) < 8:
            raise ResponseShapeError(f"{label}: expected 8 cells, got {len(c)}")
        return cls(
            time=_int(c[0], f"{label}.time"),
            open=_dec(c[1], f"{label}.open"),
            high=_dec(c[2], f"{label}.high"),
            low=_dec(c[3], f"{label}.low"),
            close=_dec(c[4], f"{label}.close"),
            vwap=_dec(c[5], f"{label}.vwap"),
            volume=_dec(c[6], f"{label}.volume"),
            count=_int(c[7], f"{label}.count"),
        )


@attrs.frozen
class OHLCPage:
    """At most 720 most-recent bars; the last one is the current, uncommitted bar."""

    pair: str
    bars: tuple[OHLCBar, ...]
    last: int

    @classmethod
    def from_api(cls, result: object) -> OHLCPage:
        r = _obj(result, "OHLC")
        pair, rows = _single_pair(r, "OHLC")
        bars = tuple(
            OHLCBar.from_row(row, label=f"OHLC[{i}]") for i, row in enumerate(_list(rows, "OHLC"))
        )
        return cls(pair, bars, _int(_req(r, "last", "OHLC"), "OHLC.last"))

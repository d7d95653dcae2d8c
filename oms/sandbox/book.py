"""Sandbox orders: their state, Kraken's order-info rendering, and the per-pair resting book."""

from __future__ import annotations

import bisect
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Context,
    Decimal,
)
from typing import Any, Protocol

from oms._decimal import fmt

__all__ = [
    "PairBook",
    "PairLike",
    "SandboxOrder",
    "average_price",
    "q_down",
    "q_even",
    "q_half_up",
    "q_up",
]

_EXP: dict[int, Decimal] = {}


def _exp(places: int) -> Decimal:
    exp = _EXP.get(places)
    if exp is None:
        exp = _EXP[places] = Decimal(1).scaleb(-places)
    return exp


def q_even(value: Decimal, places: int) -> Decimal:
    return value.quantize(_exp(places), rounding=ROUND_HALF_EVEN)


def q_up(value: Decimal, places: int) -> Decimal:
    return value.quantize(_exp(places), rounding=ROUND_UP)


def q_down(value: Decimal, places: int) -> Decimal:
    return value.quantize(_exp(places), rounding=ROUND_DOWN)


def q_half_up(value: Decimal, places: int) -> Decimal:
    # Unlike half-even, shifting the value by whole units shifts the result by as much, so
    # a running total rounded after every fill never moves more than its rounded-up part.
    return value.quantize(_exp(places), rounding=ROUND_HALF_UP)


# Enough digits that the directed rounding of the quotient is the rounding of the exact value.
_AVERAGE_PRECISION = 60


def average_price(notional: Decimal, volume: Decimal, side: str, places: int) -> Decimal:
    """``notional / volume`` on ``places`` decimals, rounded in the order's favour: down for
    a buy, up for a sell. Every fill of a limit order is at or better than the limit, so the
    exact average is too, and rounding towards the better side keeps the shown one there."""
    rounding = ROUND_FLOOR if side == "buy" else ROUND_CEILING
    exact = Context(prec=_AVERAGE_PRECISION, rounding=rounding).divide(notional, volume)
    return exact.quantize(_exp(places), rounding=rounding)


class PairLike(Protocol):
    """What the engine reads from a market's pair spec (see ``oms.sandbox.market.PairSpec``)."""

    @property
    def pair_id(self) -> str: ...
    @property
    def altname(self) -> str: ...
    @property
    def base(self) -> str: ...
    @property
    def quote(self) -> str: ...
    @property
    def pair_decimals(self) -> int: ...
    @property
    def lot_decimals(self) -> int: ...
    @property
    def cost_decimals(self) -> int: ...
    @property
    def ordermin(self) -> Decimal: ...
    @property
    def costmin(self) -> Decimal: ...
    @property
    def tick_size(self) -> Decimal: ...
    @property
    def fees_taker(self) -> Decimal: ...
    @property
    def fees_maker(self) -> Decimal: ...
    @property
    def status(self) -> str: ...


_ORDER_WORDS = {
    "stop-loss": "stop loss",
    "take-profit": "take profit",
    "stop-loss-limit": "stop loss",
    "take-profit-limit": "take profit",
}

# Fields of SandboxOrder that hold Decimals (for snapshots).
_DECIMAL_FIELDS = (
    "vol",
    "vol_exec",
    "cost",
    "notional",
    "fee",
    "fee_base",
    "price",
    "price2",
    "hold",
    "seg_price",
    "seg_exec",
    "seg_cost0",
    "seg_fee0",
    "seg_feeb0",
    "stopprice",
    "limitprice",
    "displayvol",
)
_PLAIN_FIELDS = (
    "txid",
    "account",
    "pair_id",
    "side",
    "ordertype",
    "userref",
    "cl_ord_id",
    "oflags",
    "timeinforce",
    "starttm",
    "expiretm",
    "opentm",
    "closetm",
    "status",
    "reason",
    "misc",
    "hold_asset",
    "seq",
    "touched",
    "refid",
    "trades",
    "triggered",
    "close",
    "trigger",
    "deadline",
)


class SandboxOrder:
    """One order. Mutable; only the trading engine changes it, under the exchange lock.

    Costs and fees are kept exactly as shown to the user (quantised to the pair's
    ``cost_decimals``); balances move by them rounded to the asset's ``decimals`` (see
    :meth:`oms.sandbox.trading.Trading.booked`). ``notional`` is the exact sum of volume times
    price, which the average ``price`` comes from.

    Within a *segment* (since placement or the last price amend) every resting fill is at
    the same limit price, so the cumulative cost is ``round(seg_exec * seg_price)`` and the
    cumulative fee ``round_up(cost * rate)``: the sum of the fills never exceeds the hold
    taken for them, however the volume is split.
    """

    __slots__ = (*_DECIMAL_FIELDS, *_PLAIN_FIELDS)

    txid: str
    account: str
    pair_id: str
    side: str
    ordertype: str
    vol: Decimal
    vol_exec: Decimal
    cost: Decimal
    notional: Decimal  # exact sum of volume * price over the fills, for the average price
    fee: Decimal  # in quote, as Kraken's order info shows it
    fee_base: Decimal  # fee actually charged in base (fcib), else 0
    price: Decimal | None  # limit or trigger price
    price2: Decimal | None
    userref: int | None
    cl_ord_id: str | None
    oflags: list[str]
    timeinforce: str
    starttm: float
    expiretm: float
    opentm: float
    closetm: float | None
    status: str
    reason: str | None
    misc: list[str]
    hold_asset: str
    hold: Decimal
    seq: int
    touched: float  # created or last amended (trading-counter penalties)
    refid: str | None
    trades: list[str]
    triggered: bool
    close: dict[str, str] | None
    trigger: str
    deadline: float | None
    seg_price: Decimal
    seg_exec: Decimal
    seg_cost0: Decimal
    seg_fee0: Decimal
    seg_feeb0: Decimal
    stopprice: Decimal
    limitprice: Decimal
    displayvol: Decimal | None

    def __init__(self, **values: Any) -> None:
        defaults: dict[str, Any] = {
            "vol_exec": Decimal(0),
            "cost": Decimal(0),
            "notional": Decimal(0),
            "fee": Decimal(0),
            "fee_base": Decimal(0),
            "price": None,
            "price2": None,
            "userref": None,
            "cl_ord_id": None,
            "oflags": [],
            "timeinforce": "GTC",
            "starttm": 0.0,
            "expiretm": 0.0,
            "closetm": None,
            "status": "pending",
            "reason": None,
            "misc": [],
            "hold": Decimal(0),
            "refid": None,
            "trades": [],
            "triggered": False,
            "close": None,
            "trigger": "last",
            "deadline": None,
            "seg_price": Decimal(0),
            "seg_exec": Decimal(0),
            "seg_cost0": Decimal(0),
            "seg_fee0": Decimal(0),
            "seg_feeb0": Decimal(0),
            "stopprice": Decimal(0),
            "limitprice": Decimal(0),
            "displayvol": None,
        }
        defaults.update(values)
        for name in self.__slots__:
            setattr(self, name, defaults[name])

    @property
    def remaining(self) -> Decimal:
        return self.vol - self.vol_exec

    @property
    def is_open(self) -> bool:
        return self.status in ("open", "pending")

    @property
    def fee_in_base(self) -> bool:
        return "fcib" in self.oflags

    @property
    def post_only(self) -> bool:
        return "post" in self.oflags

    @property
    def limit_price(self) -> Decimal | None:
        """The price this order rests at, once active (None for market-like orders)."""
        if self.ordertype in ("limit", "iceberg"):
            return self.price
        if self.ordertype in ("stop-loss-limit", "take-profit-limit") and self.triggered:
            return self.price2
        return None

    # -- rendering -----------------------------------------------------------------------

    def descr_order(self, pair: PairLike) -> str:
        vol = fmt(q_down(self.vol, pair.lot_decimals))
        text = f"{self.side} {vol} {pair.altname} @ "
        if self.ordertype == "market":
            return text + "market"
        price = fmt(q_even(self.price or Decimal(0), pair.pair_decimals))
        if self.ordertype in ("limit", "iceberg"):
            return f"{text}{self.ordertype} {price}"
        word = _ORDER_WORDS.get(self.ordertype, self.ordertype)
        text = f"{text}{word} {price}"
        if self.ordertype.endswith("-limit") and self.price2 is not None:
            text += f" -> limit {fmt(q_even(self.price2, pair.pair_decimals))}"
        return text

    def descr_close(self, pair: PairLike) -> str:
        if not self.close:
            return ""
        kind = self.close["ordertype"]
        word = _ORDER_WORDS.get(kind, kind)

        def px(key: str) -> str:
            return fmt(q_even(Decimal(self.close[key]), pair.pair_decimals)) if self.close else ""

        text = f"close position @ {word} {px('price')}"
        if kind.endswith("-limit") and self.close.get("price2"):
            text += f" -> limit {px('price2')}"
        return text

    def info(self, pair: PairLike, *, trades: bool = False) -> dict[str, Any]:
        """Kraken's order-info object, fields in Kraken's order."""
        cd = pair.cost_decimals
        zero_cost = fmt(q_down(Decimal(0), cd))
        out: dict[str, Any] = {"refid": self.refid}
        if self.cl_ord_id is not None:
            # Orders carrying a cl_ord_id show userref null (seen in Kraken's newer answers);
            # orders with neither show 0, as in older answers.
            out["userref"] = self.userref
            out["cl_ord_id"] = self.cl_ord_id
        else:
            out["userref"] = self.userref if self.userref is not None else 0
        out["status"] = self.status
        if self.status in ("closed", "canceled", "expired"):
            out["reason"] = self.reason
        out["opentm"] = self.opentm
        if self.closetm is not None:
            out["closetm"] = self.closetm
        # Kraken shows an unset start/expiry as the integer 0.
        out["starttm"] = self.starttm or 0
        out["expiretm"] = self.expiretm or 0
        price = "0" if self.price is None else fmt(q_even(self.price, pair.pair_decimals))
        price2 = "0" if self.price2 is None else fmt(q_even(self.price2, pair.pair_decimals))
        out["descr"] = {
            "pair": pair.altname,
            "type": self.side,
            "ordertype": self.ordertype,
            "price": price if self.ordertype != "market" else "0",
            "price2": price2,
            "leverage": "none",
            "order": self.descr_order(pair),
            "close": self.descr_close(pair),
        }
        out["vol"] = fmt(q_down(self.vol, pair.lot_decimals))
        out["vol_exec"] = fmt(q_down(self.vol_exec, pair.lot_decimals))
        out["cost"] = fmt(q_down(self.cost, cd))
        out["fee"] = fmt(q_down(self.fee, cd))
        if self.vol_exec:
            out["price"] = fmt(average_price(self.notional, self.vol_exec, self.side, cd))
        else:
            out["price"] = zero_cost
        out["stopprice"] = fmt(q_down(self.stopprice, cd))
        out["limitprice"] = fmt(q_down(self.limitprice, cd))
        if self.trigger != "last":
            out["trigger"] = self.trigger
        out["misc"] = ",".join(self.misc)
        out["oflags"] = ",".join(self.oflags)
        if trades and self.trades:
            out["trades"] = list(self.trades)
        return out

    # -- persistence ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in _DECIMAL_FIELDS:
            value = getattr(self, name)
            out[name] = None if value is None else fmt(value)
        for name in _PLAIN_FIELDS:
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, list) else value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxOrder:
        values: dict[str, Any] = {}
        for name in _DECIMAL_FIELDS:
            raw = data.get(name)
            values[name] = None if raw is None else Decimal(raw)
        if values["notional"] is None:
            # Snapshots from before the exact notional was kept: the rounded cost is closest.
            values["notional"] = values["cost"]
        for name in _PLAIN_FIELDS:
            values[name] = data.get(name)
        values["oflags"] = list(values["oflags"] or [])
        values["misc"] = list(values["misc"] or [])
        values["trades"] = list(values["trades"] or [])
        return cls(**values)


class PairBook:
    """Resting limit orders of one pair, best first: bids by price descending, asks by price
    ascending, then by arrival (``seq``). Insert and remove are a bisect plus a list shift."""

    __slots__ = ("asks", "bids", "triggers")

    def __init__(self) -> None:
        self.bids: list[tuple[Decimal, int, str]] = []  # (-price, seq, txid)
        self.asks: list[tuple[Decimal, int, str]] = []  # (price, seq, txid)
        # Orders waiting for their trigger price (stop-loss/take-profit families).
        self.triggers: dict[str, None] = {}

    def _key(self, order: SandboxOrder, price: Decimal) -> tuple[Decimal, int, str]:
        return (-price if order.side == "buy" else price, order.seq, order.txid)

    def add(self, order: SandboxOrder, price: Decimal) -> None:
        side = self.bids if order.side == "buy" else self.asks
        bisect.insort(side, self._key(order, price))

    def remove(self, order: SandboxOrder, price: Decimal) -> bool:
        side = self.bids if order.side == "buy" else self.asks
        key = self._key(order, price)
        i = bisect.bisect_left(side, key)
        if i < len(side) and side[i] == key:
            del side[i]
            return True
        return False

    def __len__(self) -> int:
        return len(self.bids) + len(self.asks)

"""A client-side model of Kraken's two rate limiters, used to pace calls before they are made.

Kraken sends no rate-limit headers, so the only way to stay under its limits is to keep the
counters ourselves (reference §6):

- the **REST counter**, one per API key: +1 per private call (+4 by default for the history
  calls), decaying by a tier-dependent rate; ``AddOrder``/``CancelOrder`` and the batch add /
  cancel calls are counted by the trading engine instead;
- the **trading counter**, one per pair: a fixed cost per add/amend/edit plus a penalty for
  amending or cancelling a *young* order (an order cancelled within 5 s of its creation costs 8).

Everything here is pure: time comes in as ``now`` (unix seconds), nothing sleeps. The client
asks :meth:`RateLimiter.reserve` how long to wait, sleeps that long with its injected sleep,
then sends. ``reserve`` books the call at the moment it will be sent, so threads sharing one
limiter queue up behind each other instead of all seeing the same free capacity.
"""

from __future__ import annotations

import enum
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

import attrs

from oms.errors import ValidationError

__all__ = [
    "AMEND_PENALTY",
    "CANCEL_PENALTY",
    "DEFAULT_HISTORY_COST",
    "EDIT_PENALTY",
    "HISTORY_METHODS",
    "REST_EXEMPT",
    "REST_LIMITS",
    "TRADING_LIMITS",
    "Counter",
    "OrderAges",
    "RateLimiter",
    "Tier",
    "TradingLimits",
    "age_penalty",
]


class Tier(str, enum.Enum):
    """Kraken's verification tiers, which set both limiters' sizes."""

    STARTER = "starter"
    INTERMEDIATE = "intermediate"
    PRO = "pro"


@attrs.frozen
class Counter:
    """A counter that decays linearly by ``decay`` per second and never goes below zero.

    ``value`` is the level at time ``at``. ``at`` may lie in the future: a reservation books
    the cost at the moment the call will be sent, and the level seen *before* that moment is
    then higher (it has not decayed yet), which is what makes later callers wait behind it.
    """

    maximum: float
    decay: float
    value: float = 0.0
    at: float = 0.0

    def level(self, now: float) -> float:
        return max(0.0, self.value - self.decay * (now - self.at))

    def wait(self, cost: float, now: float) -> float:
        """Seconds from ``now`` until ``cost`` fits under the maximum.

        A cost larger than the maximum can never fit; the best is to wait for an empty counter.
        """
        excess = self.level(now) + min(cost, self.maximum) - self.maximum
        return max(0.0, excess / self.decay)

    def add(self, cost: float, now: float) -> Counter:
        # Built directly: attrs.evolve re-reads every field by name, on every paced call.
        return Counter(self.maximum, self.decay, self.level(now) + cost, now)

    def saturate(self, now: float) -> Counter:
        """Kraken said the limit is exceeded: assume the counter is (at least) full."""
        return attrs.evolve(self, value=max(self.level(now), self.maximum), at=now)


@attrs.frozen
class TradingLimits:
    threshold: float
    decay: float
    max_open_orders: int


#: REST counter per tier: (maximum, decay per second). Starter's values come from the older
#: docs (the current page lists only Intermediate and Pro).
REST_LIMITS: Mapping[Tier, tuple[float, float]] = {
    Tier.STARTER: (15.0, 0.33),
    Tier.INTERMEDIATE: (20.0, 0.5),
    Tier.PRO: (20.0, 1.0),
}

#: Trading counter per tier (reference §6.2).
TRADING_LIMITS: Mapping[Tier, TradingLimits] = {
    Tier.STARTER: TradingLimits(threshold=60, decay=1.0, max_open_orders=60),
    Tier.INTERMEDIATE: TradingLimits(threshold=125, decay=2.34, max_open_orders=80),
    Tier.PRO: TradingLimits(threshold=180, decay=3.75, max_open_orders=225),
}

#: Calls that cost more on the REST counter ("ledger/trade history").
HISTORY_METHODS = frozenset({"ClosedOrders", "TradesHistory", "Ledgers", "QueryLedgers"})
#: Calls the REST counter does not count: the trading engine's limiter covers them. Kraken's
#: guide names AddOrder and CancelOrder; the batch forms are the same transactions on the
#: trading counter. AmendOrder and EditOrder are counted (+1): no source exempts AmendOrder,
#: and counting a call that is free only paces a little early. The sandbox exempts the same
#: set (``oms.sandbox.engine.REST_EXEMPT``).
REST_EXEMPT = frozenset({"AddOrder", "CancelOrder", "AddOrderBatch", "CancelOrderBatch"})
#: What a history call adds by default. Kraken's current docs say +4, older copies +2: pacing
#: for 4 only waits a little longer where 2 is right, while pacing for 2 where 4 is right runs
#: into ``EAPI:Rate limit exceeded`` (reference §6.1, "pick conservatively").
DEFAULT_HISTORY_COST = 4.0

#: (order younger than N seconds, penalty) for the trading counter, reference §6.2.
AMEND_PENALTY: tuple[tuple[float, int], ...] = ((5, 3), (10, 2), (15, 1))
EDIT_PENALTY: tuple[tuple[float, int], ...] = ((5, 6), (10, 5), (15, 4), (45, 2), (90, 1))
CANCEL_PENALTY: tuple[tuple[float, int], ...] = (
    (5, 8),
    (10, 6),
    (15, 5),
    (45, 4),
    (90, 2),
    (300, 1),
)
# Past the longest band no penalty applies, so remembered orders older than this are dropped.
_MEMORY_SECONDS = 300.0


def age_penalty(table: Iterable[tuple[float, int]], age: float | None) -> int:
    """The penalty for touching an order ``age`` seconds old.

    An unknown age costs nothing here: pacing on a guessed worst case would delay cancels (the
    calls a trading program least wants delayed) for orders that are most often old. If the
    guess is wrong Kraken answers ``EOrder:Rate limit exceeded`` and the counter is saturated.
    """
    if age is None:
        return 0
    for younger_than, penalty in table:
        if age < younger_than:
            return penalty
    return 0


def _pair_key(pair: object) -> str:
    # "XBT/USD", "xbtusd" and "XBTUSD" name one pair; ids ("XXBTZUSD") stay distinct, which
    # only matters if one program mixes spellings for the same pair.
    return str(pair).replace("/", "").upper()


def _ref_key(ref: object) -> str:
    return str(ref)


_T = TypeVar("_T")
OrderAge = Callable[[str], float | None]
OrderPair = Callable[[str], str | None]


class OrderAges(Protocol):
    """What the limiter may ask about orders it did not see placed (the manager's cache).

    ``ref`` is a txid, userref or cl_ord_id; ``None`` means "not known". Given to the limiter
    (or to :class:`~oms.client.KrakenClient`) when it is built, never assigned afterwards;
    an answer that fails is treated as ``None``, so the client stays usable whatever
    happens to the object behind it (a closed manager, a closed cache).
    """

    def order_age(self, ref: str) -> float | None: ...

    def order_pair(self, ref: str) -> str | None: ...


class RateLimiter:
    """Both counters for one API key, plus a short memory of recent orders for cancel penalties.

    ``order_book`` (optional, an :class:`OrderAges`) says how many seconds ago the order with
    a txid, userref or cl_ord_id was created or last amended, and its pair; the order manager
    supplies one from its cache (``order_age``/``order_pair``, two callables, do the same).
    Orders placed through the client owning this limiter are remembered for 300 s without
    them.

    ``history_cost`` is what ``ClosedOrders``, ``TradesHistory``, ``Ledgers`` and
    ``QueryLedgers`` add to the REST counter (default :data:`DEFAULT_HISTORY_COST`, 4; pass 2
    to pace by the older docs); ``costs`` overrides any method's REST cost.
    """

    def __init__(
        self,
        tier: Tier | str = Tier.STARTER,
        *,
        history_cost: float = DEFAULT_HISTORY_COST,
        costs: Mapping[str, float] | None = None,
        order_age: OrderAge | None = None,
        order_pair: OrderPair | None = None,
        order_book: OrderAges | None = None,
    ):
        try:
            self.tier = Tier(tier)
        except ValueError:
            raise ValidationError(
                f"tier must be one of {[t.value for t in Tier]}, not {tier!r}",
                field="tier",
                rule="type",
            ) from None
        if history_cost < 0:
            raise ValidationError("history_cost must be >= 0", field="history_cost")
        self.history_cost = history_cost
        self.costs: dict[str, float] = dict(costs or {})
        if order_book is not None and (order_age is not None or order_pair is not None):
            raise ValidationError(
                "give order_book= or order_age=/order_pair=, not both",
                field="order_book",
                rule="exclusive",
            )
        if order_book is not None:
            order_age, order_pair = order_book.order_age, order_book.order_pair
        # Given once, when built; read-only afterwards (nothing installs callbacks later).
        self._order_age = order_age
        self._order_pair = order_pair
        maximum, decay = REST_LIMITS[self.tier]
        self._rest = Counter(maximum=maximum, decay=decay)
        self._trading_limits = TRADING_LIMITS[self.tier]
        self._trading: dict[str, Counter] = {}
        # ref -> (pair, time created or last amended), oldest first: forgetting the stale
        # ones looks at the front only, not at every remembered order on every call.
        self._orders: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def order_age(self) -> OrderAge | None:
        """The order-age source given when the limiter was built (read-only)."""
        return self._order_age

    @property
    def order_pair(self) -> OrderPair | None:
        """The order-pair source given when the limiter was built (read-only)."""
        return self._order_pair

    def __repr__(self) -> str:
        return f"RateLimiter(tier={self.tier.value!r})"

    # --- costs ----------------------------------------------------------------------------

    def rest_cost(self, method: str) -> float:
        """Points this private call adds to the REST counter."""
        if method in self.costs:
            return self.costs[method]
        if method in REST_EXEMPT:
            return 0.0
        if method in HISTORY_METHODS:
            return self.history_cost
        return 1.0

    def trading_costs(
        self, method: str, params: Mapping[str, Any] | None, *, now: float
    ) -> dict[str, float]:
        """Points this call adds to each pair's trading counter (pairs it cannot name: none).

        Pairs the call touches at no cost are listed with 0 points.
        """
        params = params or {}
        charges: dict[str, float] = {}

        def charge(pair: str | None, points: float) -> None:
            if pair is not None:
                key = _pair_key(pair)
                charges[key] = charges.get(key, 0.0) + points

        if method == "AddOrder":
            charge(params.get("pair"), 1)
        elif method == "AddOrderBatch":
            charge(params.get("pair"), len(params.get("orders") or ()) / 2)
        elif method in ("AmendOrder", "EditOrder"):
            ref = params.get("txid", params.get("cl_ord_id"))
            table = AMEND_PENALTY if method == "AmendOrder" else EDIT_PENALTY
            pair = params.get("pair") or self._pair_of(ref)
            charge(pair, 1 + age_penalty(table, self._age_of(ref, now)))
        elif method == "CancelOrder":
            ref = params.get("txid", params.get("cl_ord_id"))
            charge(self._pair_of(ref), age_penalty(CANCEL_PENALTY, self._age_of(ref, now)))
        elif method == "CancelOrderBatch":
            for ref in _batch_refs(params):
                charge(self._pair_of(ref), age_penalty(CANCEL_PENALTY, self._age_of(ref, now)))
        return charges

    def _age_of(self, ref: object, now: float) -> float | None:
        if ref is None:
            return None
        key = _ref_key(ref)
        age = _ask(self._order_age, key)
        if age is not None:
            return age
        remembered = self._orders.get(key)
        return None if remembered is None else max(0.0, now - remembered[1])

    def _pair_of(self, ref: object) -> str | None:
        if ref is None:
            return None
        key = _ref_key(ref)
        remembered = self._orders.get(key)
        if remembered is not None:
            return remembered[0]
        return _ask(self._order_pair, key)

    # --- planning -------------------------------------------------------------------------

    def plan(self, method: str, params: Mapping[str, Any] | None = None, *, now: float) -> float:
        """Seconds to wait before ``method`` can be sent without exceeding either counter."""
        with self._lock:
            return self._plan(method, params, now)[0]

    def reserve(self, method: str, params: Mapping[str, Any] | None = None, *, now: float) -> float:
        """Like :meth:`plan`, and book the call's cost at ``now + wait``."""
        with self._lock:
            wait, rest, trading = self._plan(method, params, now)
            at = now + wait
            if rest:
                self._rest = self._rest.add(rest, at)
            for pair, points in trading.items():
                if points:
                    self._trading[pair] = self._trading_counter(pair).add(points, at)
            return wait

    def _plan(
        self, method: str, params: Mapping[str, Any] | None, now: float
    ) -> tuple[float, float, dict[str, float]]:
        rest = self.rest_cost(method)
        trading = self.trading_costs(method, params, now=now)
        wait = self._rest.wait(rest, now) if rest else 0.0
        # A batch cancel is accepted even over the threshold (reference §6.2): book, never wait.
        if method != "CancelOrderBatch":
            for pair, points in trading.items():
                if points:
                    wait = max(wait, self._trading_counter(pair).wait(points, now))
        return wait, rest, trading

    def _trading_counter(self, pair: str) -> Counter:
        counter = self._trading.get(pair)
        if counter is None:
            limits = self._trading_limits
            counter = Counter(maximum=limits.threshold, decay=limits.decay)
        return counter

    # --- feedback -------------------------------------------------------------------------

    def exceeded(
        self,
        *,
        now: float,
        trading: bool = False,
        method: str = "",
        params: Mapping[str, Any] | None = None,
    ) -> None:
        """Kraken answered a rate-limit error: treat the matching counter(s) as full."""
        with self._lock:
            if not trading:
                self._rest = self._rest.saturate(now)
                return
            for pair in self.trading_costs(method, params, now=now) or _explicit_pair(params):
                self._trading[pair] = self._trading_counter(pair).saturate(now)

    def record(
        self, method: str, params: Mapping[str, Any] | None, result: Any, *, now: float
    ) -> None:
        """Remember what a successful call did to orders, for later cancel/amend penalties."""
        params = params or {}
        with self._lock:
            self._forget_old(now)
            if method == "AddOrder" and isinstance(result, Mapping):
                refs = [*_as_list(result.get("txid")), params.get("userref")]
                refs.append(params.get("cl_ord_id"))
                self._remember(params.get("pair"), refs, now)
            elif method == "AddOrderBatch" and isinstance(result, Mapping):
                orders = params.get("orders") or ()
                answers = result.get("orders") or ()
                # Answers come in request order; a shorter answer list just remembers fewer.
                for order, answer in zip(orders, answers, strict=False):
                    refs = [order.get("userref"), order.get("cl_ord_id")]
                    if isinstance(answer, Mapping):
                        refs.extend(_as_list(answer.get("txid")))
                    self._remember(params.get("pair"), refs, now)
            elif method in ("AmendOrder", "EditOrder"):
                ref = params.get("txid", params.get("cl_ord_id"))
                pair = self._pair_of(ref) or params.get("pair")
                self._remember(pair, [ref], now)
            elif method == "CancelOrder":
                self._orders.pop(_ref_key(params.get("txid", params.get("cl_ord_id"))), None)

    def _remember(self, pair: object, refs: Iterable[object], now: float) -> None:
        if pair is None:
            return
        for ref in refs:
            if ref is not None and ref != "":
                key = _ref_key(ref)
                self._orders[key] = (_pair_key(pair), now)
                self._orders.move_to_end(key)

    def _forget_old(self, now: float) -> None:
        # Oldest first; a clock that stepped back only keeps some a little longer.
        while self._orders:
            key, (_, at) = next(iter(self._orders.items()))
            if now - at < _MEMORY_SECONDS:
                return
            del self._orders[key]

    # --- inspection -----------------------------------------------------------------------

    def rest_level(self, now: float) -> float:
        with self._lock:
            return self._rest.level(now)

    def trading_level(self, pair: str, now: float) -> float:
        with self._lock:
            return self._trading_counter(_pair_key(pair)).level(now)


def _ask(question: Callable[[str], _T | None] | None, ref: str) -> _T | None:
    # Another object's knowledge is a hint: if asking fails (its cache closed, say), pace
    # without it rather than fail the call.
    if question is None:
        return None
    try:
        return question(ref)
    except Exception:  # any failure of the hint means "not known"
        return None


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _batch_refs(params: Mapping[str, Any]) -> list[object]:
    refs: list[object] = []
    for item in params.get("orders") or ():
        refs.append(item.get("txid") if isinstance(item, Mapping) else item)
    for item in params.get("cl_ord_ids") or ():
        refs.append(item.get("cl_ord_id") if isinstance(item, Mapping) else item)
    return refs


def _explicit_pair(params: Mapping[str, Any] | None) -> list[str]:
    pair = (params or {}).get("pair")
    return [] if pair is None else [_pair_key(pair)]

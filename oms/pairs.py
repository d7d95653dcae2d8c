"""One cache of learned pair rules (AssetPairs answers), shared by the client and the manager.

:class:`PairCache` remembers every :class:`~oms.models.AssetPair` it is shown, by pair id,
altname and wsname in any case, and the pair of each order placed through the client (for
AmendOrder's checks). :meth:`PairCache.get` asks AssetPairs **once** per name however many
threads want it at the same time. The client owns one (``client.pairs``); the order manager
uses that same object, so a pair is learned once per client.

What the cache applies is said by the client's ``pair_rules`` mode (:data:`PAIR_RULES_MODES`):
``"fetch"`` asks AssetPairs for a pair not learned yet, ``"known"`` checks only pairs already
learned, ``"off"`` never checks on its own.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Literal

import attrs

from oms.errors import OmsError, PairRulesUnavailable, ValidationError
from oms.models import AssetPair
from oms.orders import OrderRequest, check_against_pair

__all__ = ["ORDER_MEMORY", "PAIR_RULES_MODES", "PairCache", "PairRules", "check_amend"]

#: How the client applies a pair's rules to an order before sending it: ``"fetch"`` asks
#: AssetPairs once for a pair it has not learned yet, ``"known"`` checks only pairs already
#: learned, ``"off"`` never checks on its own.
PairRules = Literal["fetch", "known", "off"]
PAIR_RULES_MODES: tuple[PairRules, ...] = ("fetch", "known", "off")
#: Orders whose pair the cache remembers (for amend checks); the oldest are dropped.
ORDER_MEMORY = 10_000


def _key(name: str) -> str:
    return name.strip().upper()


class PairCache:
    """Learned pair rules, and the pair of recent orders; thread-safe.

    ``fetch(name)`` asks the exchange for one pair's rules and returns the answer (pair id ->
    rules); the client passes its :meth:`~oms.client.KrakenClient.asset_pairs`.
    """

    def __init__(self, fetch: Callable[[str], Mapping[str, AssetPair]]) -> None:
        self._fetch = fetch
        self._pairs: dict[str, AssetPair] = {}
        # One gate per name: threads ordering on a new pair wait for a single AssetPairs
        # call instead of each making one.
        self._gates: dict[str, threading.Lock] = {}
        self._order_pairs: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PairCache({len(set(map(id, self._pairs.values())))} pairs)"

    def known(self, name: str) -> AssetPair | None:
        """The rules learned for ``name`` (pair id, altname or wsname, any case), if any."""
        with self._lock:
            return self._pairs.get(_key(name))

    def learn(self, pairs: Iterable[AssetPair], *, asked: Sequence[str] = ()) -> None:
        """Remember ``pairs`` under each of their names (and the one ``asked``, if one)."""
        entries = list(pairs)
        with self._lock:
            for entry in entries:
                for alias in (entry.pair_id, entry.altname, entry.wsname):
                    if alias:
                        self._pairs[_key(alias)] = entry
            if len(asked) == 1 and len(entries) == 1:
                # Kraken resolved a name that is none of the entry's own (e.g. "BTCUSD"):
                # without this the next order on that name would ask again.
                self._pairs.setdefault(_key(asked[0]), entries[0])

    def get(self, name: str) -> AssetPair:
        """The rules for ``name``: the learned ones, else AssetPairs' answer (asked once).

        Raises :class:`~oms.errors.PairRulesUnavailable` when AssetPairs failed without a
        definite answer about the pair; a definite one (``EQuery:Unknown asset pair``) is
        raised as it is.
        """
        known = self.known(name)
        if known is not None:
            return known
        with self._lock:
            gate = self._gates.setdefault(_key(name), threading.Lock())
        with gate:
            # Another thread may have learned it while this one waited.
            known = self.known(name)
            return known if known is not None else self._ask(name)

    def _ask(self, name: str) -> AssetPair:
        try:
            found = self._fetch(name)
        except OmsError as exc:
            if exc.outcome_known:
                raise  # Kraken's definite word (EQuery:Unknown asset pair), or bad input
            # The order this is for was not sent: say so rather than pass on an error whose
            # "may have reached Kraken" concerns only AssetPairs.
            raise PairRulesUnavailable(
                f"could not learn the rules of pair {name!r} from AssetPairs "
                f"({type(exc).__name__}: {exc}); nothing was sent for the order"
            ) from exc
        self.learn(found.values(), asked=[name])
        known = self.known(name)
        if known is None:
            raise PairRulesUnavailable(
                f"AssetPairs answered for {name!r} without an entry by that name; nothing was "
                "sent for the order"
            )
        return known

    def rules_for(self, name: str, given: AssetPair | None, mode: PairRules) -> AssetPair | None:
        """The rules to check an order on ``name`` against (``None``: do not check)."""
        if given is not None:
            if not isinstance(given, AssetPair):
                raise ValidationError(
                    "pair must be an oms.models.AssetPair (the pair's rules)",
                    field="pair",
                    rule="type",
                )
            if not given.matches(name):
                raise ValidationError(
                    f"the rules given are {given.altname}'s but the order is for {name!r}",
                    field="pair",
                    rule="pair-mismatch",
                )
            return given
        if mode == "off":
            return None
        if mode == "known":
            return self.known(name)
        return self.get(name)

    # --- orders and their pairs -----------------------------------------------------------

    def remember_orders(self, pair: str, refs: Iterable[str | None]) -> None:
        """Remember that the orders ``refs`` (txids, cl_ord_ids) are on ``pair``."""
        with self._lock:
            for ref in refs:
                if ref:
                    self._order_pairs[ref] = pair
                    self._order_pairs.move_to_end(ref)
            while len(self._order_pairs) > ORDER_MEMORY:
                self._order_pairs.popitem(last=False)

    def order_pair(self, ref: str) -> str | None:
        """The pair the order ``ref`` was placed on through this cache's client, if known."""
        with self._lock:
            return self._order_pairs.get(ref)

    def amend_rules(
        self, ref: str, pair: str | AssetPair | None, mode: PairRules
    ) -> AssetPair | None:
        """The rules an amend of ``ref`` is checked against (``None``: do not check)."""
        placed_on = self.order_pair(ref)
        if isinstance(pair, AssetPair):
            return self.rules_for(placed_on or pair.altname, pair, mode)
        name = pair if pair is not None else placed_on
        return None if name is None else self.rules_for(name, None, mode)


def check_amend(changes: Mapping[str, object], pair: AssetPair) -> None:
    """Apply the rules that hold for any order to an amend's new absolute values.

    Each value is put in a one-field probe order so :func:`check_against_pair` does the
    checking. ``ordermin``/``costmin`` and the pair's status are left out: an ``order_qty``
    below the filled quantity is Kraken's way to cancel the rest, and the order's own price
    and type (which costmin needs) are not known here.
    """
    rules = attrs.evolve(pair, ordermin=None, costmin=None, status=None)
    for field, value in changes.items():
        if not isinstance(value, Decimal):
            continue  # absent, or a relative price that Kraken resolves
        if field in ("limit_price", "trigger_price"):
            probe = OrderRequest(
                pair=pair.altname, side="buy", ordertype="limit", volume=1, price=value
            )
        else:
            probe = OrderRequest(pair=pair.altname, side="buy", ordertype="market", volume=value)
        try:
            check_against_pair(probe, rules)
        except ValidationError as exc:
            raise ValidationError(f"{field}: {exc}", field=field, rule=exc.rule) from None

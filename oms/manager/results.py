"""What the order manager's calls return: plain frozen values, no behaviour beyond reading."""

from __future__ import annotations

import attrs

from oms.intents import IntentState

__all__ = ["GroupCancelResult", "Placement", "RecoveryReport", "SyncResult"]


@attrs.frozen
class Placement:
    """What :meth:`OrderManager.place` did.

    ``reconciled`` is true when the txid was not in an answer but found by looking the order
    up after an ambiguous outcome; ``attempts`` counts AddOrder requests sent.
    """

    intent_id: str
    userref: int
    state: IntentState
    txid: str | None
    attempts: int
    reconciled: bool = False
    descr: str | None = None

    @property
    def placed(self) -> bool:
        return self.state is IntentState.PLACED

    @property
    def validated(self) -> bool:
        return self.state is IntentState.VALIDATED


@attrs.frozen
class GroupCancelResult:
    """A group cancel, checked order by order against the exchange.

    ``count`` is what Kraken reported cancelled and ``expected`` how many open members the
    cache knew. *Members* are the orders this database placed with the userref(s); any other
    order carrying one is an *outsider* (another program's, or placed by hand). What each
    order became is asked from Kraken (OpenOrders before and after, QueryOrders for the
    rest), written to the cache, and reported:

    - ``cancelled``: the members this request cancelled;
    - ``closed``: members that were no longer open when it came (filled, expired or cancelled
      elsewhere), not counted in ``count``;
    - ``outsiders``: orders carrying the userref(s) that are not members. When any was open
      before the cancel, the members were cancelled by txid (``by_txid``) and the outsiders
      left open;
    - ``outsiders_cancelled``: outsiders this request cancelled all the same (one placed with
      the userref between the check and a by-userref cancel): reported, never hidden;
    - ``leftovers``: members still open afterwards (``confirmed_empty`` is false);
    - ``unaccounted``: members Kraken's answers did not mention at all;
    - ``missing``: members the exchange says it does not know (marked so in the cache);
    - ``count_known``: false when ``count`` is below the cancels confirmed (a lost answer:
      the client repeated the cancel and the repeat found nothing left, answering 0 or
      ``EOrder:Unknown order``); the confirmation decides then.

    ``ok``: every member was cancelled or had closed, no outsider was cancelled, no member is
    left open (OpenOrders after the cancel, not assumed), none is unaccounted for, and a
    trustworthy ``count`` matches what was cancelled. Outsiders left open do not make it
    false: they were never the group's. A mismatch is reported, never hidden.
    """

    userrefs: tuple[int, ...]
    count: int
    expected: int
    confirmed_empty: bool
    leftovers: tuple[str, ...] = ()
    pending: bool = False
    cancelled: tuple[str, ...] = ()
    closed: tuple[str, ...] = ()
    outsiders: tuple[str, ...] = ()
    unaccounted: tuple[str, ...] = ()
    count_known: bool = True
    outsiders_cancelled: tuple[str, ...] = ()
    by_txid: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        done = len(self.cancelled) + len(self.outsiders_cancelled)
        counted = not self.count_known or self.count == done
        return (
            self.confirmed_empty
            and not self.outsiders_cancelled
            and not self.unaccounted
            and counted
        )


@attrs.frozen
class SyncResult:
    """What :meth:`OrderManager.sync` fetched: open orders, newly closed ones, and orders the
    cache thought open that had to be asked for by txid.

    ``foreign``: orders first seen in this sync whose userref lies in this program's userref
    range but which this database never placed (another program, another host, a hand-placed
    order): their userrefs are reserved in the account state and never handed out.
    ``missing``: cached open orders the exchange answered it does not know (each asked by
    itself); they are marked in the cache (:meth:`oms.cache.OrderCache.missing_orders`) and
    no longer count as open.
    """

    open: int
    closed: int
    refreshed: int
    at: float
    foreign: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


@attrs.frozen
class RecoveryReport:
    """Intents resolved by :meth:`OrderManager.recover`, by outcome (intent ids)."""

    placed: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()

    @property
    def resolved(self) -> int:
        return len(self.placed) + len(self.absent)

"""Cached orders as rows of the ``orders`` table, and back (used by :mod:`oms.cache`).

Money is TEXT holding the exact decimal string; times are REAL unix seconds (UTC). Reading a
row builds the :class:`~oms.models.Order` directly (no detour through the API's shape): at
thousands of open orders the conversion is most of a query's cost.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from oms._decimal import check_amount_text, fmt
from oms._sqlite import Database, upsert_sql
from oms.errors import DatabaseBindingError
from oms.models import (
    Order,
    OrderDescr,
    OrderStatus,
    OrderType,
    Price,
    Side,
    Trigger,
    checked,
    parse_price,
)

__all__ = [
    "CLOSED_STATUSES",
    "COLUMNS",
    "OPEN_STATUSES",
    "chunks",
    "order_from_row",
    "order_row",
    "status_values",
    "upsert_orders",
]

#: Statuses of orders that can still trade (``pending`` = accepted, not yet on the book).
OPEN_STATUSES = (OrderStatus.PENDING, OrderStatus.OPEN)
#: Statuses of orders that are done.
CLOSED_STATUSES = (OrderStatus.CLOSED, OrderStatus.CANCELED, OrderStatus.EXPIRED)
CLOSED_VALUES = frozenset(s.value for s in CLOSED_STATUSES)
# How far along its life an order is: it only ever moves forward.
_RANK = {"pending": 0, "open": 1, **dict.fromkeys(CLOSED_VALUES, 2)}
OPEN_VALUES = frozenset(s.value for s in OPEN_STATUSES)

#: The columns an order writes, in :func:`order_row`'s order (``intent_id`` only when known).
COLUMNS = (
    "txid",
    "userref",
    "cl_ord_id",
    "refid",
    "status",
    "pair",
    "side",
    "ordertype",
    "price",
    "price2",
    "leverage",
    "descr_order",
    "descr_close",
    "vol",
    "vol_exec",
    "cost",
    "fee",
    "avg_price",
    "stopprice",
    "limitprice",
    "trigger",
    "margin",
    "misc",
    "oflags",
    "reason",
    "sender_sub_id",
    "opentm",
    "closetm",
    "starttm",
    "expiretm",
    # Seen on the exchange again: whatever a failed lookup concluded is over.
    "synced_at",
    "missing_at",
    "missing_note",
)
# Where the checks below find their fields in a row tuple.
_TXID, _USERREF, _STATUS, _PAIR, _SIDE = 0, 1, 4, 5, 6
_VOL_EXEC = COLUMNS.index("vol_exec")
# An upsert keeps columns not in the row: intent_id set at placement survives a sync.
# userref, pair and side never change for a txid (_refuse_rewrite checks it): not assigning
# them spares the indexes on them on every update of a cached order. (Not opentm: a row
# written from a placement's answer holds an estimate until the exchange's time is read.)
_FIXED = ("userref", "pair", "side")
_UPSERT = upsert_sql("orders", COLUMNS, ("txid",), keep=_FIXED)
_UPSERT_WITH_INTENT = upsert_sql("orders", (*COLUMNS, "intent_id"), ("txid",), keep=_FIXED)
# A cached order whose open time is already the exchange's changes only in what trading and
# amending change: its update leaves the indexed columns that cannot have moved (txid, the
# fixed ones, opentm) unassigned, so SQLite leaves the indexes on them alone. Four of the six
# indexes on orders lead with them; at a 10,000-member group cancel this halves the write.
_MOVING = tuple(c for c in COLUMNS if c not in ("txid", *_FIXED, "opentm"))
_moving = operator.itemgetter(*(COLUMNS.index(c) for c in _MOVING))
_UPDATE_MOVING = 'UPDATE orders SET {} WHERE "txid" = ?'.format(  # noqa: S608 -- our column names
    ", ".join(f'"{c}" = ?' for c in _MOVING)
)


def _dec(value: Decimal | None) -> str | None:
    return fmt(value) if value is not None else None


def _price_text(value: Price) -> str:
    # A relative price ("+5%") keeps Kraken's own notation; an absolute one is plain decimal.
    return fmt(value) if isinstance(value, Decimal) else str(value)


def order_row(order: Order, *, synced_at: float | None) -> tuple[Any, ...]:
    """The values of :data:`COLUMNS` for ``order``."""
    descr = order.descr
    return (
        order.txid,
        order.userref,
        order.cl_ord_id,
        order.refid,
        order.status.value,
        descr.pair,
        descr.side.value,
        descr.ordertype_raw,
        _price_text(descr.price),
        _price_text(descr.price2),
        descr.leverage,
        descr.order,
        descr.close,
        fmt(order.vol),
        fmt(order.vol_exec),
        fmt(order.cost),
        fmt(order.fee),
        fmt(order.price),
        _dec(order.stopprice),
        _dec(order.limitprice),
        order.trigger.value if order.trigger is not None else None,
        None if order.margin is None else int(order.margin),
        ",".join(order.misc),
        ",".join(order.oflags),
        order.reason,
        order.sender_sub_id,
        order.opentm,
        order.closetm,
        order.starttm,
        order.expiretm,
        synced_at,
        None,
        None,
    )


_ORDER_TYPES = {t.value: t for t in OrderType}
_SIDES = {s.value: s for s in Side}
_STATUSES = {s.value: s for s in OrderStatus}


@functools.lru_cache(maxsize=4096)
def _money(text: str) -> Decimal:
    # The bounds (a regex on the text) still hold for a file someone else wrote into. Cached:
    # Decimals are immutable, and an order book's amounts repeat ("0.00000", a lot size).
    return Decimal(check_amount_text(text, field="cached amount"))


def _opt_money(text: str | None) -> Decimal | None:
    return None if text is None else _money(text)


def _price(text: str | None) -> Price:
    if not text:
        return Decimal(0)
    # A relative price keeps Kraken's notation ("+5%", "#1.5"), as parse_price reads it.
    return parse_price(text) if text[0] in "+-#" else _money(text)


def _csv(text: str | None) -> tuple[str, ...]:
    return tuple(part for part in text.split(",") if part) if text else ()


def order_from_row(row: Mapping[str, Any]) -> Order:
    """The :class:`~oms.models.Order` a row of ``orders`` holds (as the exchange reported it).

    The row's text was written by :func:`order_row` from a checked order, so it is read back
    with the enums' tables and ``Decimal()`` (amounts still within Kraken's bounds, a cheap
    regex) and built without the models' converters (:func:`~oms.models.checked`), rather
    than parsed as an untrusted answer.
    """
    raw_type = row["ordertype"]
    descr = checked(
        OrderDescr,
        pair=row["pair"],
        side=_SIDES[row["side"]],
        ordertype=_ORDER_TYPES.get(raw_type),
        ordertype_raw=raw_type,
        price=_price(row["price"]),
        price2=_price(row["price2"]),
        leverage=row["leverage"] or "none",
        order=row["descr_order"] or "",
        close=row["descr_close"] or None,
    )
    stop, limit, trigger, margin = (
        row["stopprice"],
        row["limitprice"],
        row["trigger"],
        row["margin"],
    )
    return checked(
        Order,
        txid=row["txid"],
        status=_STATUSES[row["status"]],
        descr=descr,
        vol=_money(row["vol"]),
        vol_exec=_money(row["vol_exec"]),
        cost=_money(row["cost"] or "0"),
        fee=_money(row["fee"] or "0"),
        price=_money(row["avg_price"] or "0"),
        opentm=row["opentm"],
        stopprice=_opt_money(stop),
        limitprice=_opt_money(limit),
        refid=row["refid"],
        userref=row["userref"] or None,
        cl_ord_id=row["cl_ord_id"] or None,
        starttm=row["starttm"] or None,
        expiretm=row["expiretm"] or None,
        closetm=row["closetm"] or None,
        reason=row["reason"],
        trigger=None if trigger is None else Trigger(trigger),
        margin=None if margin is None else bool(margin),
        misc=_csv(row["misc"]),
        oflags=_csv(row["oflags"]),
        sender_sub_id=row["sender_sub_id"],
    )


def status_values(status: OrderStatus | str | Iterable[OrderStatus | str] | None) -> list[str]:
    if status is None:
        return []
    if isinstance(status, (str, OrderStatus)):
        status = [status]
    return [OrderStatus(s).value for s in status]


def chunks(ids: Iterable[str], size: int = 500) -> Iterator[tuple[list[str], str]]:
    """``ids`` in slices SQLite's parameter limit allows, each with its ``?, ?, ...``."""
    wanted = list(ids)
    for i in range(0, len(wanted), size):
        chunk = wanted[i : i + size]
        yield chunk, ", ".join("?" * len(chunk))


def _refuse_rewrite(known: Sequence[Any], new: Sequence[Any]) -> None:
    """An order's userref, pair and side never change on Kraken: a row that says otherwise
    for a cached txid comes from another exchange (or account), and must not overwrite the
    order this database knows."""
    _, userref, pair, side = known
    if (userref, pair, side) != (new[_USERREF], new[_PAIR], new[_SIDE]):
        txid = new[_TXID]
        raise DatabaseBindingError(
            f"the exchange reports order {txid} as userref {new[_USERREF]} "
            f"{new[_SIDE]} {new[_PAIR]}, but this database knows {txid} as userref "
            f"{userref} {side} {pair}: it holds another exchange's or account's orders. "
            "Nothing was overwritten; use a database of its own for this exchange"
        )


_SELECT_KNOWN = ", ".join(f'"{c}"' for c in (*COLUMNS, "intent_id"))
_SYNCED = COLUMNS.index("synced_at")
_OPENTM = COLUMNS.index("opentm")
_MISSING = COLUMNS.index("missing_at")
_INTENT = len(COLUMNS)


def _known(db: Database, txids: Iterable[str]) -> dict[str, tuple[Any, ...]]:
    """The cached rows (:data:`COLUMNS` and ``intent_id``) of those of ``txids`` cached."""
    known: dict[str, tuple[Any, ...]] = {}
    for chunk, marks in chunks(txids):
        for cached in db.execute(
            f"SELECT {_SELECT_KNOWN} FROM orders WHERE txid IN ({marks})",  # noqa: S608 -- placeholders only
            chunk,
        ):
            known[cached[_TXID]] = cached
    return known


def _up_to_date(row: tuple[Any, ...], cached: tuple[Any, ...], intent_id: str | None) -> bool:
    """Whether writing ``row`` would change nothing that is read: the same order, already
    confirmed by the exchange (only "confirmed or not" is read from ``synced_at``), not
    marked missing, answering for the same intent."""
    return (
        row[:_SYNCED] == cached[:_SYNCED]
        and row[_SYNCED] is not None
        and cached[_SYNCED] is not None
        and cached[_MISSING] is None
        and (intent_id is None or intent_id == cached[_INTENT])
    )


def _behind(row: tuple[Any, ...], cached: tuple[Any, ...]) -> bool:
    """Whether ``row`` is an older view of the cached order: an order only goes forward
    (pending, open, then closed, canceled or expired) and its executed volume only grows. A
    closed one never reopens (an OpenOrders answer older than the ClosedOrders one); an open
    one is never pending again, nor less filled (a placement's answer, a REST read or a live
    event landing after a newer one)."""
    new, old = _RANK.get(row[_STATUS], 0), _RANK.get(cached[_STATUS], 0)
    if new != old:
        return new < old
    if row[_VOL_EXEC] == cached[_VOL_EXEC]:
        return False
    return Decimal(row[_VOL_EXEC]) < Decimal(cached[_VOL_EXEC])


def _to_write(
    rows: list[tuple[Any, ...]], known: Mapping[str, tuple[Any, ...]], ids: Mapping[str, str]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[str, str]], int]:
    """The rows to write in full, the rows to update in what moves only (see
    :data:`_UPDATE_MOVING`), the (intent id, txid) links to set on rows kept as cached, and
    how many more are already as they would be written."""
    written, moved, links, current = [], [], [], 0
    for row in rows:
        txid = row[_TXID]
        cached = known.get(txid)
        if cached is None:
            written.append(row)
            continue
        _refuse_rewrite((cached[_STATUS], cached[_USERREF], cached[_PAIR], cached[_SIDE]), row)
        if _behind(row, cached):
            # Kept as cached; but which intent it answers is news (a live event wrote the
            # row before the placement's answer came back).
            if txid in ids and cached[_INTENT] != ids[txid]:
                links.append((ids[txid], txid))
            continue
        # A sync reads back mostly what is cached: rewriting it would only cost index work.
        if _up_to_date(row, cached, ids.get(txid)):
            current += 1
        elif txid not in ids and row[_OPENTM] == cached[_OPENTM]:
            moved.append((*_moving(row), txid))
        else:
            written.append(row)
    return written, moved, links, current


def upsert_orders(
    db: Database,
    orders: Iterable[Order],
    *,
    synced_at: float | None,
    intent_ids: Mapping[str, str] | None = None,
) -> int:
    """Insert or update ``orders`` (inside the caller's write transaction); returns how many
    are now as given (written, or found already so)."""
    rows = [order_row(order, synced_at=synced_at) for order in orders]
    ids = intent_ids or {}
    # One read of what is cached for these txids serves every rule in _to_write.
    written, moved, links, current = _to_write(rows, _known(db, (r[_TXID] for r in rows)), ids)
    placed = [(*r, ids[r[_TXID]]) for r in written if r[_TXID] in ids]
    synced = [r for r in written if r[_TXID] not in ids]
    if placed:
        db.executemany(_UPSERT_WITH_INTENT, placed)
    if synced:
        db.executemany(_UPSERT, synced)
    if moved:
        db.executemany(_UPDATE_MOVING, moved)
    if links:
        db.executemany('UPDATE orders SET "intent_id" = ? WHERE "txid" = ?', links)
    return len(written) + len(moved) + current

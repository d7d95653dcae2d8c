"""Kraken's account and order endpoints, mixed into :class:`oms.client.KrakenClient`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from oms._params import (
    Endpoints,
    _amount,
    _as_list,
    _one_of,
    _order_filters,
    _price_param,
    _time_param,
)
from oms.conventions import PAGE_SIZE, check_dead_mans_switch, check_txid, chunks
from oms.errors import ValidationError
from oms.models import (
    AddOrderResult,
    AmendResult,
    AssetPair,
    Balance,
    BatchOrderResult,
    CancelResult,
    DeadMansSwitch,
    Order,
    OrdersPage,
    WebSocketToken,
)
from oms.orders import (
    OrderRequest,
    batch_params,
    check_against_pair,
    check_cl_ord_id,
    check_deadline,
    check_userref,
    format_deadline,
)
from oms.pairs import check_amend
from oms.retry import RetryPolicy

__all__ = ["OrderCalls"]


class OrderCalls(Endpoints):
    """Balance, placing, amending, cancelling and reading orders."""

    # --- account and orders ---------------------------------------------------------------

    def balance(self) -> Balance:
        return Balance.from_api(self._call("Balance", {}))

    def websockets_token(self) -> WebSocketToken:
        """A token for Kraken's authenticated WebSocket v2 (GetWebSocketsToken; the key needs
        the "WebSocket interface" permission). Use it within ``expires`` seconds to subscribe;
        a subscription made with it stays. Never logged: it is as good as the key for reading."""
        return WebSocketToken.from_api(self._call("GetWebSocketsToken", {}))

    def add_order(
        self,
        request: OrderRequest | None = None,
        /,
        *,
        pair: AssetPair | str | None = None,
        now: float | None = None,
        retry: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> AddOrderResult:
        """Place (or, with ``validate=True``, only check) one order.

        Pass an :class:`oms.orders.OrderRequest`, or its fields as keyword arguments. ``pair``
        may be the pair's :class:`~oms.models.AssetPair`: its rules are then applied (with
        keyword arguments the order is for its altname); a string is the order's pair field.
        Otherwise the rules come from ``pair_rules`` (see the class). A broken rule raises
        :class:`~oms.errors.ValidationError` naming it, before AddOrder is sent. Not retried
        once it may have reached Kraken: on a timeout or 5xx the order may exist, and
        :class:`oms.OrderManager` reconciles by userref / cl_ord_id.

        ``now`` is the exchange's time to check a ``deadline`` against (default: the client's
        clock); the order manager passes its estimate of Kraken's clock, by which it set the
        deadline, so a local clock that stepped cannot refuse it. ``retry`` replaces the
        client's policy for this call: :meth:`RetryPolicy.none() <oms.retry.RetryPolicy.none>`
        sends exactly one request, for a caller that owns the retrying (the order manager).
        """
        rules = pair if isinstance(pair, AssetPair) else None
        if request is None:
            if pair is not None:
                kwargs["pair"] = pair if rules is None else rules.altname
            request = OrderRequest(**kwargs)
        elif kwargs or (pair is not None and rules is None):
            raise ValidationError(
                "give an OrderRequest or keyword arguments, not both", field="request"
            )
        # Everything that needs no I/O first: a request wrong anyway fetches no rules.
        sent_at = self._clock() if now is None else now
        params = request.to_params(now=sent_at)
        found = self.pairs.rules_for(request.pair, rules, self.pair_rules)
        if found is not None:
            check_against_pair(request, found)
        if now is None:
            # Encoded again after a possible AssetPairs call, so the deadline is checked
            # against the clock as sent (a given ``now`` is the caller's: nothing moved).
            params = request.to_params(now=self._clock())
        answer = AddOrderResult.from_api(
            self._call("AddOrder", params, retry=retry), validate=request.validate
        )
        self.pairs.remember_orders(request.pair, [*answer.txids, request.cl_ord_id])
        return answer

    def add_order_batch(
        self,
        orders: Sequence[OrderRequest],
        *,
        pair: AssetPair | None = None,
        deadline: datetime | None = None,
        validate: bool = False,
        retry: RetryPolicy | None = None,
    ) -> BatchOrderResult:
        """Place 2 to 15 orders for one pair in one call (sent as JSON); never retried once
        it may have reached Kraken (``retry`` replaces the client's policy for this call, as
        for :meth:`add_order`).

        Every order is checked against the pair's rules first (``pair``, or as
        ``pair_rules`` says); one broken rule refuses the whole batch before anything is sent.
        """
        batch_params(orders, deadline=deadline, validate=validate, now=self._clock())
        found = self.pairs.rules_for(orders[0].pair, pair, self.pair_rules)
        if found is not None:
            for i, order in enumerate(orders):
                try:
                    check_against_pair(order, found)
                except ValidationError as exc:
                    raise ValidationError(
                        f"orders[{i}]: {exc}", field=exc.field, rule=exc.rule
                    ) from None
        body = batch_params(orders, deadline=deadline, validate=validate, now=self._clock())
        result = BatchOrderResult.from_api(
            self._call("AddOrderBatch", body, retry=retry),
            validate=validate,
            expected=len(orders),
        )
        refs = [item.txid for item in result.items] + [o.cl_ord_id for o in orders]
        self.pairs.remember_orders(orders[0].pair, refs)
        return result

    def amend_order(
        self,
        *,
        txid: str | None = None,
        cl_ord_id: str | None = None,
        order_qty: object = None,
        display_qty: object = None,
        limit_price: object = None,
        trigger_price: object = None,
        post_only: bool | None = None,
        pair: str | AssetPair | None = None,
        deadline: datetime | None = None,
    ) -> AmendResult:
        """Change an order in place (txid, userref-free identifiers and queue priority kept
        where possible). Prices may be relative (``"+5"``, ``"-1%"``) as Kraken allows.

        New absolute prices are checked against the pair's ``pair_decimals`` and
        ``tick_size``, new quantities against ``lot_decimals``, when the pair is known: from
        ``pair`` (a string is also sent to Kraken, which needs it for xStocks; an
        :class:`~oms.models.AssetPair` only supplies the rules), else from the order having
        been placed through this client. ``pair_rules`` applies as for :meth:`add_order`.
        """
        key, ref = _one_of(txid=txid, cl_ord_id=cl_ord_id)
        if key == "cl_ord_id":
            check_cl_ord_id(ref)
        else:
            check_txid(ref, "txid")
        if not isinstance(ref, str) or not ref:
            raise ValidationError(f"{key} must be a non-empty string", field=key)
        changes = {
            "order_qty": None if order_qty is None else _amount(order_qty, "order_qty"),
            "display_qty": None if display_qty is None else _amount(display_qty, "display_qty"),
            "limit_price": _price_param(limit_price, "limit_price"),
            "trigger_price": _price_param(trigger_price, "trigger_price"),
        }
        if all(v is None for v in changes.values()):
            raise ValidationError(
                "nothing to amend: give order_qty, display_qty, limit_price or trigger_price",
                field="order_qty",
                rule="required",
            )
        if pair is not None and not isinstance(pair, (str, AssetPair)):
            raise ValidationError("pair must be a pair name or an AssetPair", field="pair")
        sent_pair = pair if isinstance(pair, str) else None
        params: dict[str, object] = {key: ref, **changes, "post_only": post_only, "pair": sent_pair}
        if deadline is not None:
            check_deadline(deadline, self._clock())  # before a possible AssetPairs call
        found = self.pairs.amend_rules(ref, pair, self.pair_rules)
        if found is not None:
            check_amend(changes, found)
        if deadline is not None:
            # Again as sent: learning the pair's rules may have taken a while.
            check_deadline(deadline, self._clock())
            params["deadline"] = format_deadline(deadline)
        return AmendResult.from_api(self._call("AmendOrder", params))

    def cancel_order(
        self,
        *,
        txid: str | None = None,
        userref: int | None = None,
        cl_ord_id: str | None = None,
    ) -> CancelResult:
        """Cancel one order by txid or cl_ord_id, or **every** open order tagged ``userref``.

        Kraken takes a userref in the ``txid`` parameter, as an integer. Retried on transport
        errors: a repeat of a cancel that already happened answers ``EOrder:Unknown order`` or
        ``EOrder:Invalid order`` (both raised as :class:`oms.errors.UnknownOrder`; the second
        as its subclass :class:`~oms.errors.InvalidOrder`), which means the order is gone
        either way.
        """
        key, ref = _one_of(txid=txid, userref=userref, cl_ord_id=cl_ord_id)
        if key == "userref":
            params: dict[str, object] = {"txid": check_userref(ref)}
        elif key == "cl_ord_id":
            params = {"cl_ord_id": check_cl_ord_id(ref)}
        else:
            params = {"txid": check_txid(ref, "txid")}
        return CancelResult.from_api(self._call("CancelOrder", params))

    def cancel_order_batch(
        self,
        *,
        txids: Iterable[str] = (),
        userrefs: Iterable[int] = (),
        cl_ord_ids: Iterable[str] = (),
    ) -> CancelResult:
        """Cancel up to 50 orders (txids, userrefs and cl_ord_ids together) in one JSON call."""
        orders: list[object] = [check_txid(t, "txids") for t in dict.fromkeys(txids)]
        orders.extend(dict.fromkeys(check_userref(u) for u in userrefs))
        ids = list(dict.fromkeys(check_cl_ord_id(c) for c in cl_ord_ids))
        total = len(orders) + len(ids)
        if not 1 <= total <= PAGE_SIZE:
            raise ValidationError(
                f"CancelOrderBatch takes 1 to {PAGE_SIZE} ids, got {total}",
                field="txids",
                rule="batch-size",
            )
        params: dict[str, object] = {}
        if orders:
            params["orders"] = orders
        if ids:
            # The OpenAPI spec (krakenfx/api-specs spot-rest, CancelOrderBatch) types
            # `cl_ord_ids` as an array of {"cl_ord_id": ...} objects, while `orders` takes
            # plain txids/userrefs as its own example shows; WebSocket's batch_cancel takes
            # plain strings. The REST spec's shape is what is sent (the sandbox takes both).
            params["cl_ord_ids"] = [{"cl_ord_id": c} for c in ids]
        return CancelResult.from_api(self._call("CancelOrderBatch", params))

    def cancel_all(self) -> CancelResult:
        return CancelResult.from_api(self._call("CancelAll", {}))

    def cancel_all_orders_after(self, timeout: int) -> DeadMansSwitch:
        """Arm (or with 0, disarm) the dead man's switch: all orders are cancelled when
        ``timeout`` seconds pass without another call. Call again every 15-30 s."""
        check_dead_mans_switch(timeout)
        return DeadMansSwitch.from_api(self._call("CancelAllOrdersAfter", {"timeout": timeout}))

    def open_orders(
        self, *, trades: bool = False, userref: int | None = None, cl_ord_id: str | None = None
    ) -> OrdersPage:
        params = _order_filters(trades=trades, userref=userref, cl_ord_id=cl_ord_id)
        return OrdersPage.from_api(self._call("OpenOrders", params))

    def closed_orders(
        self,
        *,
        trades: bool = False,
        userref: int | None = None,
        cl_ord_id: str | None = None,
        start: float | int | str | None = None,
        end: float | int | str | None = None,
        ofs: int | None = None,
        closetime: str | None = None,
        consolidate_taker: bool | None = None,
        without_count: bool | None = None,
    ) -> OrdersPage:
        """One page (50, newest first). ``start``/``end`` take a unix time or a txid."""
        if closetime not in (None, "open", "close", "both"):
            raise ValidationError("closetime must be open, close or both", field="closetime")
        if ofs is not None and (isinstance(ofs, bool) or not isinstance(ofs, int) or ofs < 0):
            raise ValidationError("ofs must be an int >= 0", field="ofs")
        params = {
            **_order_filters(trades=trades, userref=userref, cl_ord_id=cl_ord_id),
            "start": _time_param(start, "start"),
            "end": _time_param(end, "end"),
            "ofs": ofs,
            "closetime": closetime,
            "consolidate_taker": consolidate_taker,
            "without_count": without_count,
        }
        return OrdersPage.from_api(self._call("ClosedOrders", params))

    def iter_closed_orders(
        self,
        *,
        trades: bool = False,
        userref: int | None = None,
        cl_ord_id: str | None = None,
        start: float | int | str | None = None,
        end: float | int | str | None = None,
        closetime: str | None = None,
        consolidate_taker: bool | None = None,
        max_pages: int | None = None,
    ) -> Iterator[Order]:
        """Every closed order matching the filters, newest first, each once.

        Pages of 50 by offset, with ``end`` pinned to the newest close time of the first page
        and, unless ``closetime="open"`` was asked for, the window taken by close time:
        orders closing while we page (even ones opened long before) fall outside it, so
        offsets do not shift and nothing is skipped. Duplicates (from any remaining shift,
        e.g. with a caller's own ``end``) are dropped by txid; a shift only ever repeats
        orders, so paging goes on until Kraken's ``count`` is reached.
        """
        seen: set[str] = set()
        ofs = 0
        pages = 0
        window = closetime
        while max_pages is None or pages < max_pages:
            page = self.closed_orders(
                trades=trades,
                userref=userref,
                cl_ord_id=cl_ord_id,
                start=start,
                end=end,
                ofs=ofs,
                closetime=window,
                consolidate_taker=consolidate_taker,
            )
            pages += 1
            fresh = [o for o in page.orders if o.txid not in seen]
            if end is None and page.orders:
                end = max(o.closetm if o.closetm is not None else o.opentm for o in page.orders)
                if window in (None, "both"):
                    # "both" (Kraken's default) matches an order by its opentm too: one opened
                    # before `end` that closes while we page would be matched and inserted
                    # ahead of our offset. Within the pinned window "close" selects the same
                    # orders as the first page did, and none that close later.
                    window = "close"
            for order in fresh:
                seen.add(order.txid)
                yield order
            ofs += len(page.orders)
            done = len(page.orders) < PAGE_SIZE or (page.count is not None and ofs >= page.count)
            # Without a count, a page of nothing new is the only sign of a server that
            # ignores `ofs`; with one, such a page is a shift and later pages still matter.
            if done or (page.count is None and not fresh):
                return

    def query_orders(
        self,
        txids: str | Iterable[str],
        *,
        trades: bool = False,
        userref: int | None = None,
        consolidate_taker: bool | None = None,
    ) -> OrdersPage:
        """Orders by txid (open or closed), asked 50 at a time; one page with all answers."""
        wanted = [check_txid(t, "txids") for t in dict.fromkeys(_as_list(txids, "txids") or [])]
        found: dict[str, Order] = {}
        for batch in chunks(wanted):
            params = {
                "txid": list(batch),
                **_order_filters(trades=trades, userref=userref, cl_ord_id=None),
                "consolidate_taker": consolidate_taker,
            }
            page = OrdersPage.from_api(self._call("QueryOrders", params))
            found.update(page.by_txid())
        return OrdersPage(tuple(found.values()))

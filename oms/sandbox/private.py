"""The private endpoints: balances, order entry and queries, cancels, funding.

Each handler takes the authenticated account, the request's parameters, the time the
exchange is at and the time the request arrived (``received``; a delayed request's
``deadline`` is judged against it). The exchange has checked key, signature, nonce and the
REST counter first (:mod:`oms.sandbox.gate`).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from oms._decimal import fmt
from oms.sandbox import queries
from oms.sandbox.accounts import Account
from oms.sandbox.assets import AssetTable
from oms.sandbox.book import SandboxOrder, q_down
from oms.sandbox.config import SandboxConfig
from oms.sandbox.funding import Funding
from oms.sandbox.ids import IdFactory
from oms.sandbox.protocol import ApiError, Params, format_rfc3339, invalid
from oms.sandbox.public import PublicApi
from oms.sandbox.trading import MarketLike, Trading
from oms.sandbox.validation import OrderSpec, parse_deadline, parse_order

__all__ = ["WS_TOKEN_TTL", "PrivateApi", "WsTokens"]

#: Seconds a WebSocket token may wait for its first subscription (GetWebSocketsToken).
WS_TOKEN_TTL = 900

_DIGITS = re.compile(r"-?[0-9]{1,11}")
_PAGE = 50

Handler = Callable[[Account, Params, float, float], Any]


class WsTokens:
    """Tokens GetWebSocketsToken handed out: token -> (account key, issue time, used).

    As on Kraken, a token must be used within :data:`WS_TOKEN_TTL` seconds (exchange
    clock); once a subscription used it, it stays good. Unused stale tokens are forgotten
    when the next one is issued. Only touched under the exchange lock.
    """

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, float, bool]] = {}

    def issue(self, token: str, key: str, now: float) -> None:
        stale = [
            t for t, (_, at, used) in self._tokens.items() if not used and now - at > WS_TOKEN_TTL
        ]
        for t in stale:
            del self._tokens[t]
        self._tokens[token] = (key, now, False)

    def account(self, token: str, now: float) -> str | None:
        """The account a still-valid ``token`` belongs to, or None."""
        found = self._tokens.get(token)
        if found is None:
            return None
        key, at, used = found
        return key if used or now - at <= WS_TOKEN_TTL else None

    def use(self, token: str) -> None:
        """A subscription used ``token``: it no longer expires."""
        found = self._tokens.get(token)
        if found is not None:
            self._tokens[token] = (found[0], found[1], True)


class PrivateApi:
    """The handlers of ``/0/private/<Method>``, by name in :attr:`methods`."""

    def __init__(
        self,
        *,
        trading: Trading,
        funding: Funding,
        public: PublicApi,
        assets: AssetTable,
        ids: IdFactory,
        market: MarketLike,
        config: Callable[[], SandboxConfig],
    ) -> None:
        self.trading = trading
        self.funding = funding
        self.public = public
        self.assets = assets
        self.ids = ids
        self.market = market
        self._config = config
        self.ws_tokens = WsTokens()
        self.methods: dict[str, Handler] = {
            "Balance": self._balance,
            "BalanceEx": self._balance_ex,
            "OpenOrders": self._open_orders,
            "ClosedOrders": self._closed_orders,
            "QueryOrders": self._query_orders,
            "TradesHistory": self._trades_history,
            "QueryTrades": self._query_trades,
            "AddOrder": self._add_order,
            "AddOrderBatch": self._add_order_batch,
            "AmendOrder": self._amend_order,
            "CancelOrder": self._cancel_order,
            "CancelOrderBatch": self._cancel_order_batch,
            "CancelAll": self._cancel_all,
            "CancelAllOrdersAfter": self._cancel_all_after,
            "DepositMethods": self._deposit_methods,
            "DepositAddresses": self._deposit_addresses,
            "DepositStatus": self._deposit_status,
            "WithdrawInfo": self._withdraw_info,
            "Withdraw": self._withdraw,
            "WithdrawStatus": self._withdraw_status,
            "WithdrawCancel": self._withdraw_cancel,
            "WithdrawAddresses": self._withdraw_addresses,
            "GetWebSocketsToken": self._ws_token,
        }

    @property
    def config(self) -> SandboxConfig:
        """The exchange's settings now (they can change while it runs)."""
        return self._config()

    def _check_mode(self, pair: Any, spec: OrderSpec | None = None) -> None:
        """System and pair status: maintenance stops trading, cancel_only refuses new
        orders and amends, post_only refuses orders that are not post-only."""
        status = self.config.system_status
        if status == "maintenance":
            raise ApiError("EService:Unavailable")
        pair_status = getattr(pair, "status", "online") if pair is not None else "online"
        if "cancel_only" in (status, pair_status):
            raise ApiError("EService:Market in cancel_only mode")
        if spec is not None:
            if "post_only" in (status, pair_status) and not spec.post_only:
                raise ApiError("EService:Market in post_only mode")
            if pair_status == "limit_only" and spec.ordertype not in (
                "limit",
                "iceberg",
                "stop-loss-limit",
                "take-profit-limit",
            ):
                raise ApiError("EService:Market in limit_only mode")
            if pair_status == "reduce_only":
                raise ApiError("EService:Market in reduce_only mode")

    # -- private: balances ---------------------------------------------------------------

    def _fmt_amount(self, asset: str, amount: Decimal) -> str:
        # Exact: the engine keeps balances and holds on the asset's decimals (the rounding
        # down only matters for a state saved by an older sandbox).
        return fmt(q_down(amount, self.assets.ensure(asset).decimals))

    def _balance(self, acct: Account, p: Params, now: float, received: float) -> Any:
        return {asset: self._fmt_amount(asset, v) for asset, v in acct.balances.items()}

    def _balance_ex(self, acct: Account, p: Params, now: float, received: float) -> Any:
        out: dict[str, Any] = {}
        for asset, amount in acct.balances.items():
            zero = self._fmt_amount(asset, Decimal(0))
            out[asset] = {
                "balance": self._fmt_amount(asset, amount),
                "credit": zero,
                "credit_used": zero,
                "hold_trade": self._fmt_amount(asset, acct.hold(asset)),
            }
        return out

    # -- private: order queries ----------------------------------------------------------

    def _open_orders(self, acct: Account, p: Params, now: float, received: float) -> Any:
        return queries.open_orders(self.trading, acct, p)

    def _closed_orders(self, acct: Account, p: Params, now: float, received: float) -> Any:
        return queries.closed_orders(self.trading, acct, p)

    def _query_orders(self, acct: Account, p: Params, now: float, received: float) -> Any:
        return queries.query_orders(self.trading, acct, p)

    def _trades_history(self, acct: Account, p: Params, now: float, received: float) -> Any:
        return queries.trades_history(acct, p)

    def _query_trades(self, acct: Account, p: Params, now: float, received: float) -> Any:
        return queries.query_trades(acct, p)

    # -- private: placing ----------------------------------------------------------------

    def _add_order(self, acct: Account, p: Params, now: float, received: float) -> Any:
        pair = self.public.pair(p.text("pair"))
        validate = p.flag("validate")
        if not validate:
            # The fixed count is charged on receipt, even if validation then fails (Kraken's
            # trading rate-limit guide). A validate-only request changes nothing at all.
            self.trading.charge(acct, pair.pair_id, 1, now, force=False)
        spec = parse_order(
            p, pair, now=now, ref=self.trading.ref_price(pair.pair_id), received=received
        )
        self._check_mode(pair, spec)
        if spec.deadline is not None and now > spec.deadline:
            raise ApiError("EService:Deadline elapsed")
        descr = spec.descr()
        if validate:
            return {"descr": descr}
        order = self.trading.place(acct, spec, now)
        return {"descr": descr, "txid": [order.txid]}

    def _add_order_batch(self, acct: Account, p: Params, now: float, received: float) -> Any:
        items = p.raw("orders")
        if not p.is_json or not isinstance(items, list) or not 2 <= len(items) <= 15:
            raise invalid("orders")
        if not all(isinstance(item, dict) for item in items):
            raise invalid("orders")
        pair = self.public.pair(p.text("pair"))
        validate = p.flag("validate")
        if not validate:
            self.trading.charge(acct, pair.pair_id, len(items) / 2, now, force=False)
        deadline = parse_deadline(p, received)
        ref = self.trading.ref_price(pair.pair_id)
        # The whole batch is validated first: one bad order rejects all of them.
        specs = [
            parse_order(
                Params(item, is_json=True),
                pair,
                now=now,
                ref=ref,
                received=received,
                with_deadline=False,
            )
            for item in items
        ]
        for spec in specs:
            self._check_mode(pair, spec)
        if deadline is not None and now > deadline:
            raise ApiError("EService:Deadline elapsed")
        if validate:
            return {"orders": [{"descr": spec.descr()} for spec in specs]}
        results: list[dict[str, Any]] = []
        for spec in specs:
            spec.deadline = deadline
            try:
                order = self.trading.place(acct, spec, now)
            except ApiError as exc:
                results.append({"error": exc.code})
            else:
                results.append({"txid": order.txid, "descr": spec.descr()})
        return {"orders": results}

    def _amend_order(self, acct: Account, p: Params, now: float, received: float) -> Any:
        txid = p.text("txid")
        cl_ord_id = p.text("cl_ord_id")
        if (txid is None) == (cl_ord_id is None):
            raise invalid("txid")
        if txid is not None:
            order = acct.open.get(txid)
        else:
            found = acct.open_by_cl_ord_id.get(cl_ord_id or "")
            order = acct.open.get(found) if found is not None else None
        if not any(n in p for n in ("order_qty", "limit_price", "trigger_price", "display_qty")):
            raise invalid("order_qty")
        deadline = parse_deadline(p, received)
        if order is None:
            raise ApiError("EOrder:Unknown order")
        self._check_mode(self.market.pair(order.pair_id))
        if deadline is not None and now > deadline:
            raise ApiError("EService:Deadline elapsed")
        self.trading.amend(acct, order, p, now)
        return {"amend_id": self.ids.next("amend")}

    # -- private: cancelling -------------------------------------------------------------

    def _cancel_ref(self, raw: object, is_json: bool) -> str | int:
        """CancelOrder's ``txid``: a userref when it is a JSON integer or, in a form body, a
        string of digits; otherwise an order txid."""
        if isinstance(raw, bool) or raw is None:
            raise invalid("txid")
        if isinstance(raw, int):
            return raw
        if isinstance(raw, str):
            text = raw.strip()
            if not text:
                raise invalid("txid")
            if not is_json and _DIGITS.fullmatch(text):
                return int(text)
            return text
        raise invalid("txid")

    def _cancel_order(self, acct: Account, p: Params, now: float, received: float) -> Any:
        raw = p.raw("txid")
        cl_ord_id = p.text("cl_ord_id")
        if (raw in (None, "")) == (cl_ord_id is None):
            raise invalid("txid")
        if self.config.system_status == "maintenance":
            raise ApiError("EService:Unavailable")
        ref: str | int | None = None
        if cl_ord_id is not None:
            orders = self.trading.find_for_cancel(acct, cl_ord_id, by_cl_ord_id=True)
        else:
            ref = self._cancel_ref(raw, p.is_json)
            orders = self.trading.find_for_cancel(acct, ref)
        if not orders:
            if isinstance(ref, str) and ref in acct.orders:
                # An order that was open and is no more (cancelled, filled, expired): Kraken's
                # official SDK documents "EOrder:Invalid order" for this (error-handling.md);
                # an id never seen is "EOrder:Unknown order" (CCXT, hummingbot).
                raise ApiError("EOrder:Invalid order")
            raise ApiError("EOrder:Unknown order")
        count = self.trading.cancel(acct, orders, now, force=len(orders) > 1)
        return {"count": count, "pending": False}

    def _cancel_order_batch(self, acct: Account, p: Params, now: float, received: float) -> Any:
        if not p.is_json:
            # Kraken answers a form-encoded batch cancel exactly like this (it needs JSON).
            raise invalid("orders")
        refs: list[str | int] = []
        cl_ids: list[str] = []
        raw_orders = p.raw("orders")
        raw_cl = p.raw("cl_ord_ids")
        if raw_orders is not None:
            if not isinstance(raw_orders, list):
                raise invalid("orders")
            for item in raw_orders:
                value = item.get("txid") if isinstance(item, dict) else item
                refs.append(self._cancel_ref(value, True))
        if raw_cl is not None:
            if not isinstance(raw_cl, list):
                raise invalid("cl_ord_ids")
            for item in raw_cl:
                value = item.get("cl_ord_id") if isinstance(item, dict) else item
                if not isinstance(value, str) or not value:
                    raise invalid("cl_ord_ids")
                cl_ids.append(value)
        refs = list(dict.fromkeys(refs))
        cl_ids = list(dict.fromkeys(cl_ids))
        total = len(refs) + len(cl_ids)
        if total == 0 or total > _PAGE:
            raise invalid("orders")
        if self.config.system_status == "maintenance":
            raise ApiError("EService:Unavailable")
        orders: list[SandboxOrder] = []
        for ref in refs:
            orders.extend(self.trading.find_for_cancel(acct, ref))
        for cl in cl_ids:
            orders.extend(self.trading.find_for_cancel(acct, cl, by_cl_ord_id=True))
        count = self.trading.cancel(acct, orders, now, force=True)
        return {"count": count}

    def _cancel_all(self, acct: Account, p: Params, now: float, received: float) -> Any:
        if self.config.system_status == "maintenance":
            raise ApiError("EService:Unavailable")
        count = self.trading.cancel(acct, list(acct.open.values()), now, force=True, charge=False)
        return {"count": count, "pending": False}

    def _cancel_all_after(self, acct: Account, p: Params, now: float, received: float) -> Any:
        timeout = p.integer("timeout", required=True, low=0, high=86399)
        assert timeout is not None
        trigger = self.trading.arm_dead_mans_switch(acct, timeout, now)
        return {
            "currentTime": format_rfc3339(now),
            # Disabled: Kraken is reported to answer "0" (not confirmed).
            "triggerTime": format_rfc3339(trigger) if trigger is not None else "0",
        }

    # -- private: funding ----------------------------------------------------------------

    def _deposit_methods(self, acct: Account, p: Params, now: float, received: float) -> Any:
        return self.funding.methods(p)

    def _deposit_addresses(self, acct: Account, p: Params, now: float, received: float) -> Any:
        spec = self.funding.asset(p.text("asset", required=True))
        method = p.text("method", required=True)
        if method != spec.method:
            raise ApiError("EFunding:No funding method")
        return [
            {
                "address": self.funding.address(acct, spec),
                "expiretm": "0",
                "new": p.flag("new"),
            }
        ]

    def _deposit_status(self, acct: Account, p: Params, now: float, received: float) -> Any:
        return self.funding.status(acct, "deposit", p)

    def _withdraw_status(self, acct: Account, p: Params, now: float, received: float) -> Any:
        return self.funding.status(acct, "withdrawal", p)

    def _withdraw_info(self, acct: Account, p: Params, now: float, received: float) -> Any:
        return self.funding.withdraw_info(acct, p)

    def _withdraw(self, acct: Account, p: Params, now: float, received: float) -> Any:
        tx = self.funding.withdraw(acct, p, now)
        return {"refid": tx.refid}

    def _withdraw_cancel(self, acct: Account, p: Params, now: float, received: float) -> Any:
        return self.funding.cancel(acct, p, now)

    def _withdraw_addresses(self, acct: Account, p: Params, now: float, received: float) -> Any:
        name = p.text("asset")
        specs = [self.funding.asset(name)] if name is not None else self.assets.all()
        out: list[dict[str, Any]] = []
        for spec in specs:
            for key, address in self.funding.withdraw_keys(acct, spec).items():
                out.append(
                    {
                        "address": address,
                        "asset": spec.altname,
                        "method": spec.method,
                        "key": key,
                        "verified": True,
                    }
                )
        return out

    def _ws_token(self, acct: Account, p: Params, now: float, received: float) -> Any:
        return self.ws_token(acct, now)

    def ws_token(self, acct: Account, now: float) -> dict[str, Any]:
        """Issue a WebSocket token bound to ``acct``: GetWebSocketsToken's result."""
        token = base64.b64encode(bytes.fromhex(self.ids.hex("ws-token", 24))).decode()
        self.ws_tokens.issue(token, acct.key, now)
        return {"token": token, "expires": WS_TOKEN_TTL}

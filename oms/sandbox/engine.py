"""The sandbox exchange: Kraken's spot REST protocol over an in-memory matching engine.

:meth:`Exchange.handle` takes one HTTP request (:class:`SandboxRequest`) and answers it
(:class:`SandboxResponse`) the way ``api.kraken.com`` does: ``{"error": [...], "result": ...}``
with HTTP 200 for API errors, ``API-Key``/``API-Sign`` checked over the exact body bytes,
per-key nonces, Kraken's rate limiters, and the Cloudflare 403 page for a request without a
``User-Agent``. No sockets here: the HTTP server and the requests adapter wrap this class.

Time comes from an injected clock; every request first brings the exchange up to it
(:meth:`Exchange.advance`): the market's new trades fill resting orders, then expiries,
scheduled starts, the dead man's switch and funding progress happen in time order.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from oms._decimal import fmt, to_decimal
from oms.auth import sign
from oms.sandbox import queries
from oms.sandbox.accounts import Account, AccountConfig
from oms.sandbox.assets import DEFAULT_ASSETS, AssetSpec, AssetTable
from oms.sandbox.book import SandboxOrder, q_down
from oms.sandbox.clock import Clock
from oms.sandbox.config import SandboxConfig
from oms.sandbox.funding import OUTCOMES, Funding, FundingTx
from oms.sandbox.ids import IdFactory
from oms.sandbox.protocol import (
    ApiError,
    Params,
    envelope,
    format_rfc3339,
    invalid,
    json_loads,
    parse_form,
)
from oms.sandbox.public import PublicApi
from oms.sandbox.ratelimit import DecayingCounter, TokenBucket
from oms.sandbox.trading import MarketLike, Trading
from oms.sandbox.validation import OrderSpec, parse_deadline, parse_order

__all__ = ["REST_EXEMPT", "Exchange", "SandboxRequest", "SandboxResponse"]

logger = logging.getLogger(__name__)

_PATH = re.compile(r"^/0/(public|private)/([A-Za-z]+)$")
# ASCII digits ([0-9]; \d would take other scripts' digits too), matched whole.
_NONCE = re.compile(r"[0-9]{1,20}")
_DIGITS = re.compile(r"-?[0-9]{1,11}")
_HISTORY = frozenset({"ClosedOrders", "TradesHistory", "Ledgers", "QueryLedgers"})
#: Calls the REST counter does not count (the trading engine's limiter does). Kraken's
#: rate-limit guide names AddOrder and CancelOrder; their batch forms are the same
#: transactions on the trading counter (and CCXT weighs them 0 too). No source exempts
#: AmendOrder, so it counts +1 here, as EditOrder does; the client paces the same set
#: (:data:`oms.ratelimit.REST_EXEMPT`, kept equal by a test).
REST_EXEMPT = frozenset({"AddOrder", "AddOrderBatch", "CancelOrder", "CancelOrderBatch"})
_PAGE = 50
_SNAPSHOT_VERSION = 1

_CLOUDFLARE_403 = """<!DOCTYPE html>
<html lang="en-US">
<head><meta charset="UTF-8"><title>Attention Required! | Cloudflare</title></head>
<body>
<div id="cf-wrapper">
<h1>Sorry, you have been blocked</h1>
<h2>You are unable to access api.kraken.com</h2>
<p>This website is using a security service to protect itself from online attacks. The action
you just performed triggered the security solution.</p>
<p>Cloudflare Ray ID: <strong>{ray}</strong> &bull; Performance &amp; security by Cloudflare</p>
</div>
</body>
</html>
"""

_NOT_FOUND = (
    b"<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>"
)


@attrs.frozen
class SandboxRequest:
    """One HTTP request as the exchange sees it.

    ``headers`` keys are lower case. ``client`` names the caller for the public rate limit
    (the HTTP server passes the peer address). ``received_at`` is the clock time at which
    the request arrived, when a transport delayed it before handing it over: a ``deadline``
    already past on arrival is refused as an invalid argument, one that passed while the
    request waited gives ``EService:Deadline elapsed``.
    """

    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes = b""
    client: str = "local"
    received_at: float | None = None


@attrs.frozen
class SandboxResponse:
    """One HTTP response: status, headers (lower-case keys) and the body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (decimals stay strings, as Kraken sends them)."""
        return json.loads(self.body)


def _json_response(result: Any = None, errors: list[str] | None = None) -> SandboxResponse:
    return SandboxResponse(
        200, {"content-type": "application/json; charset=utf-8"}, envelope(result, errors)
    )


class Exchange:
    """A Kraken-protocol exchange in memory. Thread-safe: one lock around everything.

    ``accounts`` are opened at construction (more with :meth:`add_account`). ``market`` is an
    :class:`oms.sandbox.market.Market` (or anything with its interface).
    """

    def __init__(
        self,
        *,
        clock: Clock,
        market: MarketLike,
        accounts: Iterable[AccountConfig] = (),
        config: SandboxConfig | None = None,
        assets: Iterable[AssetSpec] = DEFAULT_ASSETS,
    ) -> None:
        self.clock = clock
        self.market = market
        self.config = config if config is not None else SandboxConfig()
        #: Raise engine bugs instead of answering ``EGeneral:Internal error`` (for tests).
        self.propagate_errors = False
        self._lock = threading.RLock()
        self.assets = AssetTable(assets)
        for pair in market.pairs:
            self.assets.ensure(pair.base)
            self.assets.ensure(pair.quote)
        self.ids = IdFactory(self.config.seed)
        self.accounts: dict[str, Account] = {}
        self.trading = Trading(
            market=market,
            accounts=self.accounts,
            ids=self.ids,
            config=self.config,
            assets=self.assets,
        )
        self.funding = Funding(assets=self.assets, ids=self.ids, config=self.config)
        self.funding.accounts = self.accounts
        self._auth_failures: dict[str, int] = {}
        self._lockouts: dict[str, float] = {}
        self._public: dict[str, TokenBucket] = {}
        for account in accounts:
            self.add_account(account)
        self._private: dict[str, Callable[[Account, Params, float, float], Any]] = {
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
        self.public = PublicApi(
            market=market, assets=self.assets, status=lambda: self.config.system_status
        )

    def __repr__(self) -> str:
        return f"Exchange(accounts={len(self.accounts)}, clock={self.clock!r})"

    # -- Python API ----------------------------------------------------------------------

    def add_account(
        self,
        key: str | AccountConfig,
        secret: str | None = None,
        balances: Mapping[str, Decimal | str | int] | None = None,
        *,
        tier: str = "starter",
        nonce_window: int | None = None,
    ) -> AccountConfig:
        """Open an account: ``add_account(AccountConfig(...))`` or
        ``add_account(key, secret, {"ZUSD": "1000"}, tier="pro")``. Returns its config."""
        if isinstance(key, AccountConfig):
            config = key
        else:
            if secret is None:
                raise ValueError("add_account(key, secret, balances): the secret is missing")
            config = AccountConfig(
                key, secret, dict(balances or {}), tier=tier, nonce_window=nonce_window
            )
        with self._lock:
            if config.key in self.accounts:
                raise ValueError("an account with this API key already exists")
            for asset, amount in config.balances.items():
                self._check_places(asset, amount, "balance")
            now = self.clock.time()
            acct = Account(config, created=now)
            self.accounts[config.key] = acct
            if self.config.seed_funding_history:
                self.funding.seed_history(acct, now)
        return config

    def _check_places(self, asset: str, amount: Decimal, what: str) -> None:
        """Refuse an amount the asset cannot hold: balances are exact on its decimals."""
        places = self.assets.ensure(asset).decimals
        if amount != q_down(amount, places):
            raise ValueError(
                f"a {what} of {fmt(amount)} {asset} has more than the asset's {places} decimals"
            )

    def _account(self, key: str) -> Account:
        acct = self.accounts.get(key)
        if acct is None:
            raise KeyError("no sandbox account has that API key")
        return acct

    def deposit(
        self,
        key: str,
        asset: str,
        amount: Decimal | str | int,
        *,
        outcome: str = "success",
    ) -> str:
        """Start a deposit into the account with API key ``key``; returns its refid.

        It shows as ``Settled`` at once and becomes ``Success`` (and is credited)
        ``config.deposit_success_after`` seconds later; ``outcome="failure"`` ends in
        ``Failure`` without credit; ``"onhold"`` stays on hold until :meth:`release_funding`.
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        value = to_decimal(amount, field="amount")
        with self._lock:
            self.advance()
            acct = self._account(key)
            spec = self.assets.get(asset)
            if spec is None:
                raise ValueError(f"unknown asset {asset!r}")
            self._check_places(spec.asset_id, value, "deposit")
            tx = self.funding.deposit(
                acct, spec.asset_id, value, outcome=outcome, now=self.clock.time()
            )
            return tx.refid

    def release_funding(self, key: str, refid: str, *, outcome: str = "success") -> None:
        """Take a deposit or withdrawal off hold; it continues to ``outcome``."""
        with self._lock:
            self.advance()
            self.funding.release(self._account(key), refid, outcome, self.clock.time())

    def next_withdrawal_outcome(self, key: str, outcome: str) -> None:
        """Make the account's next ``Withdraw`` end in ``outcome`` (failure or onhold)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        with self._lock:
            self._account(key).next_withdraw_outcome.append(outcome)

    def set_system_status(self, status: str) -> None:
        """``online``, ``maintenance``, ``cancel_only`` or ``post_only`` (SystemStatus)."""
        with self._lock:
            self.config = attrs.evolve(self.config, system_status=status)
            self.trading.config = self.config
            self.funding.config = self.config

    def configure(self, **changes: Any) -> SandboxConfig:
        """Change settings on a running exchange (``attrs.evolve`` of the config)."""
        with self._lock:
            self.config = attrs.evolve(self.config, **changes)
            self.trading.config = self.config
            self.funding.config = self.config
            return self.config

    # The reads below first bring the exchange up to its clock, as a request would: what
    # they show is the state at clock.time(), even if no request came since a timer fired.

    def balances(self, key: str) -> dict[str, Decimal]:
        """The account's balances (held funds included), each on its asset's decimals."""
        with self._lock:
            self.advance()
            return dict(self._account(key).balances)

    def holds(self, key: str) -> dict[str, Decimal]:
        """What open orders reserve, per asset (``BalanceEx``'s ``hold_trade``)."""
        with self._lock:
            self.advance()
            return dict(self._account(key).holds)

    def order(self, key: str, txid: str) -> dict[str, Any] | None:
        """The order-info object of one order (as QueryOrders shows it), or None."""
        with self._lock:
            self.advance()
            order = self._account(key).orders.get(txid)
            return self.trading.info(order, trades=True) if order is not None else None

    def open_orders(self, key: str) -> dict[str, dict[str, Any]]:
        """The account's open (and pending) orders, as OpenOrders shows them."""
        with self._lock:
            self.advance()
            acct = self._account(key)
            return {t: self.trading.info(o) for t, o in acct.open.items()}

    def check_invariants(self) -> None:
        """Raise AssertionError if the books do not add up (used by the property tests)."""
        with self._lock:
            for acct in self.accounts.values():
                holds: dict[str, Decimal] = {}
                for order in acct.open.values():
                    assert order.is_open, order.txid
                    assert Decimal(0) <= order.vol_exec <= order.vol, order.txid
                    assert order.hold >= 0, order.txid
                    holds[order.hold_asset] = holds.get(order.hold_asset, Decimal(0)) + order.hold
                for asset, amount in acct.balances.items():
                    assert amount >= 0, f"negative balance {asset}"
                    places = self.assets.ensure(asset).decimals
                    assert amount == q_down(amount, places), f"{asset} balance {amount}"
                for asset, held in acct.holds.items():
                    assert held >= 0, f"negative hold {asset}"
                    places = self.assets.ensure(asset).decimals
                    assert held == q_down(held, places), f"{asset} hold {held}"
                    assert held <= acct.balance(asset), f"hold above balance {asset}"
                    assert holds.get(asset, Decimal(0)) == held, f"hold mismatch {asset}"
                for asset, held in holds.items():
                    assert acct.hold(asset) == held, f"hold mismatch {asset}"
                for userref, group in acct.open_by_userref.items():
                    for txid in group:
                        assert acct.open[txid].userref == userref
                for order in acct.closed.values():
                    assert not order.is_open, order.txid
                    assert order.hold == 0, order.txid
                    assert order.vol_exec <= order.vol, order.txid

    # -- time ----------------------------------------------------------------------------

    def advance(self) -> None:
        """Bring matching, expiries, scheduled starts, the dead man's switch and funding up
        to ``clock.time()``."""
        with self._lock:
            now = self.clock.time()
            self.trading.advance(now)
            self.funding.advance(now)

    # -- the protocol --------------------------------------------------------------------

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Answer one request exactly as Kraken would (HTTP 200 + JSON envelope, or the
        Cloudflare 403 page, or 404 for a path outside ``/0/public`` and ``/0/private``)."""
        with self._lock:
            try:
                return self._handle(request)
            except Exception:
                if self.propagate_errors:
                    raise
                logger.exception("sandbox engine error on %s", request.path)
                return _json_response(errors=["EGeneral:Internal error"])

    def _handle(self, request: SandboxRequest) -> SandboxResponse:
        headers = request.headers
        if self.config.require_user_agent and not headers.get("user-agent", "").strip():
            return self._cloudflare_403()
        match = _PATH.match(request.path)
        if match is None:
            return SandboxResponse(404, {"content-type": "text/html"}, _NOT_FOUND)
        scope, method = match.groups()
        self.advance()
        now = self.clock.time()
        try:
            if scope == "public":
                result = self._handle_public(request, method, now)
            else:
                result = self._handle_private(request, method, now)
        except ApiError as exc:
            return _json_response(errors=[exc.code])
        return _json_response(result)

    def _cloudflare_403(self) -> SandboxResponse:
        ray = f"{self.ids.hex('cf-ray', 8)[:16]}"
        body = _CLOUDFLARE_403.replace("{ray}", ray).encode()
        return SandboxResponse(
            403,
            {"content-type": "text/html; charset=UTF-8", "server": "cloudflare", "cf-ray": ray},
            body,
        )

    def _parse_params(self, request: SandboxRequest) -> Params:
        content_type = request.headers.get("content-type", "").lower()
        if request.method.upper() == "GET" or not request.body:
            data: dict[str, object] = parse_form(request.query) if request.query else {}
            if request.body and not content_type.startswith("application/json"):
                data.update(parse_form(request.body.decode("utf-8", "replace")))
            return Params(data)
        if content_type.startswith("application/json"):
            try:
                loaded = json_loads(request.body)
            except (ValueError, UnicodeDecodeError):
                raise ApiError("EGeneral:Invalid arguments") from None
            if not isinstance(loaded, dict):
                raise ApiError("EGeneral:Invalid arguments")
            return Params(loaded, is_json=True)
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError("EGeneral:Invalid arguments") from None
        return Params(parse_form(text))

    # -- public --------------------------------------------------------------------------

    def _handle_public(self, request: SandboxRequest, method: str, now: float) -> Any:
        handler = self.public.methods.get(method)
        if handler is None or request.method.upper() != "GET":
            # Kraken serves /0/public/* to GET only; a POST there is an unknown method.
            raise ApiError("EGeneral:Unknown method")
        if self.config.public_rate_limit:
            bucket = self._public.get(request.client)
            if bucket is None:
                bucket = self._public[request.client] = TokenBucket(
                    self.config.public_burst, self.config.public_rate, now
                )
            if not bucket.take(now):
                raise ApiError("EGeneral:Too many requests")
        params = self._parse_params(request)
        return handler(params, now)

    # -- private: authentication and limits ----------------------------------------------

    def _handle_private(self, request: SandboxRequest, method: str, now: float) -> Any:
        handler = self._private.get(method)
        if handler is None:
            raise ApiError("EGeneral:Unknown method")
        key = request.headers.get("api-key", "")
        until = self._lockouts.get(key)
        if until is not None:
            if now < until:
                raise ApiError("EGeneral:Temporary lockout")
            del self._lockouts[key]
        params = self._parse_params(request)
        acct = self._authenticate(request, key, params)
        if self.config.rest_rate_limit and method not in REST_EXEMPT:
            cost = self.config.history_cost if method in _HISTORY else 1
            limits = acct.limits
            if acct.rest.would_exceed(now, limits.rest_decay, cost, limits.rest_max):
                # Calls made while limited keep the counter up ("for a few seconds, or longer
                # if calls continue"), capped so that it always drains.
                level = acct.rest.level(now, limits.rest_decay)
                acct.rest.value = min(level + cost, 2 * limits.rest_max)
                acct.rest.at = now
                raise ApiError("EAPI:Rate limit exceeded")
            acct.rest.add(now, limits.rest_decay, cost)
        received = request.received_at if request.received_at is not None else now
        return handler(acct, params, now, received)

    def _auth_failed(self, key: str, code: str) -> ApiError:
        limit = self.config.lockout_after
        if limit:
            count = self._auth_failures.get(key, 0) + 1
            self._auth_failures[key] = count
            if count >= limit:
                self._auth_failures.pop(key, None)
                self._lockouts[key] = self.clock.time() + self.config.lockout_seconds
        return ApiError(code)

    def _authenticate(self, request: SandboxRequest, key: str, params: Params) -> Account:
        acct = self.accounts.get(key) if key else None
        if acct is None:
            raise self._auth_failed(key, "EAPI:Invalid key")
        raw_nonce = params.raw("nonce")
        nonce_text = "" if raw_nonce is None else str(raw_nonce)
        given = request.headers.get("api-sign", "")
        if not self._signature_ok(acct, request, nonce_text, given):
            raise self._auth_failed(key, "EAPI:Invalid signature")
        if isinstance(raw_nonce, bool) or not _NONCE.fullmatch(nonce_text):
            raise self._auth_failed(key, "EAPI:Invalid nonce")
        nonce = int(nonce_text)
        if nonce >= 2**64 or nonce == 0:
            raise self._auth_failed(key, "EAPI:Invalid nonce")
        window = acct.config.nonce_window
        if window is None:
            window = self.config.nonce_window
        if nonce <= acct.last_nonce and not (window and nonce > acct.last_nonce - window):
            raise self._auth_failed(key, "EAPI:Invalid nonce")
        acct.last_nonce = max(acct.last_nonce, nonce)
        self._auth_failures.pop(key, None)
        return acct

    @staticmethod
    def _signature_ok(acct: Account, request: SandboxRequest, nonce: str, given: str) -> bool:
        try:
            provided = base64.b64decode(given, validate=True)
        except (binascii.Error, ValueError):
            return False
        if not provided:
            return False
        paths = [request.path]
        if request.query:
            # Kraken's Go SDK signs the request URI, query string included.
            paths.append(f"{request.path}?{request.query}")
        for path in paths:
            expected = base64.b64decode(sign(acct.config.secret, path, nonce, request.body))
            if hmac.compare_digest(expected, provided):
                return True
        return False

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
        token = base64.b64encode(bytes.fromhex(self.ids.hex("ws-token", 24))).decode()
        return {"token": token, "expires": 900}

    # -- persistence ---------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """All state as a JSON-able dict (decimals as strings), for ``--state FILE``.

        The market is not included (it has its own ``snapshot()``). Secrets are: the file
        is as sensitive as the sandbox's keys.
        """
        with self._lock:
            accounts: list[dict[str, Any]] = []
            for acct in self.accounts.values():
                orders = [o.to_json() for o in acct.closed.values()]
                orders.extend(o.to_json() for o in acct.open.values())
                accounts.append(
                    {
                        "config": acct.config.to_json(),
                        "created": acct.created,
                        "balances": {k: fmt(v) for k, v in acct.balances.items()},
                        "holds": {k: fmt(v) for k, v in acct.holds.items()},
                        "last_nonce": str(acct.last_nonce),
                        "rest": acct.rest.to_json(),
                        "trading": {k: c.to_json() for k, c in acct.trading.items()},
                        "dms_trigger": acct.dms_trigger,
                        "orders": orders,
                        "fills": [[tid, info] for tid, info in acct.fills.items()],
                        "funding": [tx.to_json() for tx in acct.funding.values()],
                        "withdraw_keys": acct.withdraw_keys,
                        "next_withdraw_outcome": list(acct.next_withdraw_outcome),
                    }
                )
            return {
                "version": _SNAPSHOT_VERSION,
                "time": self.clock.time(),
                "config": self.config.to_json(),
                "ids": self.ids.snapshot(),
                "seq": self.trading.seq,
                "accounts": accounts,
            }

    @classmethod
    def restore(
        cls,
        data: Mapping[str, Any],
        *,
        clock: Clock,
        market: MarketLike,
        assets: Iterable[AssetSpec] = DEFAULT_ASSETS,
    ) -> Exchange:
        """Rebuild an exchange from :meth:`snapshot` (books, indexes and timers included)."""
        if data.get("version") != _SNAPSHOT_VERSION:
            raise ValueError(f"unsupported exchange snapshot version {data.get('version')!r}")
        config = SandboxConfig.from_json(dict(data["config"]))
        exchange = cls(clock=clock, market=market, config=config, assets=assets)
        exchange.ids = IdFactory.restore(dict(data["ids"]))
        exchange.trading.ids = exchange.ids
        exchange.funding.ids = exchange.ids
        for entry in data["accounts"]:
            acct = Account(AccountConfig.from_json(entry["config"]), created=entry["created"])
            acct.balances = {k: Decimal(v) for k, v in entry["balances"].items()}
            acct.holds = {k: Decimal(v) for k, v in entry["holds"].items()}
            acct.last_nonce = int(entry["last_nonce"])
            acct.rest = DecayingCounter.from_json(entry["rest"])
            acct.trading = {k: DecayingCounter.from_json(v) for k, v in entry["trading"].items()}
            acct.withdraw_keys = {k: dict(v) for k, v in entry["withdraw_keys"].items()}
            acct.next_withdraw_outcome = list(entry["next_withdraw_outcome"])
            exchange.accounts[acct.key] = acct
            for asset in acct.balances:
                exchange.assets.ensure(asset)
            for raw in entry["orders"]:
                exchange.trading.restore_order(acct, SandboxOrder.from_json(raw))
            for tid, info in entry["fills"]:
                acct.fills[tid] = info
            for raw_tx in entry["funding"]:
                exchange.funding.restore_tx(acct, FundingTx.from_json(raw_tx))
            if entry.get("dms_trigger") is not None:
                acct.dms_trigger = float(entry["dms_trigger"])
                exchange.trading._push_timer(acct.dms_trigger, "dms", acct.key)
        # Timers pushed above drew sequence numbers; they only break ties, so the saved
        # counter (which orders' queue priority continues from) wins.
        exchange.trading.seq = int(data.get("seq", exchange.trading.seq))
        return exchange

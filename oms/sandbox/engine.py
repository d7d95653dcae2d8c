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

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from oms._decimal import fmt, to_decimal
from oms.sandbox import snapshot as _snapshot
from oms.sandbox.accounts import Account, AccountConfig
from oms.sandbox.assets import DEFAULT_ASSETS, AssetSpec, AssetTable
from oms.sandbox.book import q_down
from oms.sandbox.clock import Clock
from oms.sandbox.config import SandboxConfig
from oms.sandbox.funding import OUTCOMES, Funding
from oms.sandbox.gate import REST_EXEMPT, Gate, parse_params
from oms.sandbox.ids import IdFactory
from oms.sandbox.invariants import check_account
from oms.sandbox.private import PrivateApi
from oms.sandbox.protocol import ApiError, envelope
from oms.sandbox.public import PublicApi
from oms.sandbox.trading import MarketLike, Trading

__all__ = ["REST_EXEMPT", "Exchange", "SandboxRequest", "SandboxResponse"]

logger = logging.getLogger(__name__)

_PATH = re.compile(r"^/0/(public|private)/([A-Za-z]+)$")

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
        #: Called (under the lock) after every request and every advance: the WebSocket
        #: feed registers here while it has subscribers, and only then.
        self.observers: list[Callable[[], None]] = []
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
        self.gate = Gate(accounts=self.accounts, config=lambda: self.config)
        for account in accounts:
            self.add_account(account)
        self.public = PublicApi(
            market=market, assets=self.assets, status=lambda: self.config.system_status
        )
        self.private = PrivateApi(
            trading=self.trading,
            funding=self.funding,
            public=self.public,
            assets=self.assets,
            ids=self.ids,
            market=market,
            config=lambda: self.config,
        )

    def __repr__(self) -> str:
        return f"Exchange(accounts={len(self.accounts)}, clock={self.clock!r})"

    @property
    def lock(self) -> threading.RLock:
        """The one lock around all state (re-entrant); hold it to read a consistent view."""
        return self._lock

    def _notify(self) -> None:
        for observer in list(self.observers):
            try:
                observer()
            except Exception:
                if self.propagate_errors:
                    raise
                logger.exception("sandbox observer failed")

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

    def issue_ws_token(self, key: str) -> str:
        """A WebSocket token for the account ``key`` (what GetWebSocketsToken hands out)."""
        with self._lock:
            return str(self.private.ws_token(self._account(key), self.clock.time())["token"])

    def check_invariants(self) -> None:
        """Raise AssertionError if the books do not add up (used by the property tests)."""
        with self._lock:
            for acct in self.accounts.values():
                check_account(acct, self.assets)

    # -- time ----------------------------------------------------------------------------

    def advance(self) -> None:
        """Bring matching, expiries, scheduled starts, the dead man's switch and funding up
        to ``clock.time()``."""
        with self._lock:
            now = self.clock.time()
            self.trading.advance(now)
            self.funding.advance(now)
            if self.observers:
                self._notify()

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
            finally:
                if self.observers:
                    self._notify()

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

    # -- public --------------------------------------------------------------------------

    def _handle_public(self, request: SandboxRequest, method: str, now: float) -> Any:
        handler = self.public.methods.get(method)
        if handler is None or request.method.upper() != "GET":
            # Kraken serves /0/public/* to GET only; a POST there is an unknown method.
            raise ApiError("EGeneral:Unknown method")
        self.gate.admit_public(request.client, now)
        return handler(parse_params(request), now)

    def _handle_private(self, request: SandboxRequest, method: str, now: float) -> Any:
        handler = self.private.methods.get(method)
        if handler is None:
            raise ApiError("EGeneral:Unknown method")
        acct, params = self.gate.admit_private(request, method, now)
        received = request.received_at if request.received_at is not None else now
        return handler(acct, params, now, received)

    # -- persistence ---------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """All state as a JSON-able dict (decimals as strings), for ``--state FILE``.

        The market is not included (it has its own ``snapshot()``). Secrets are: the file
        is as sensitive as the sandbox's keys.
        """
        with self._lock:
            return _snapshot.dump(self)

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
        config = _snapshot.config_of(data)
        exchange = cls(clock=clock, market=market, config=config, assets=assets)
        _snapshot.load(exchange, data)
        return exchange

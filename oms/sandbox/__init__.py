"""A local exchange that speaks Kraken's spot REST protocol, for tests and strategy dry runs.

::

    from oms.sandbox import Sandbox

    with Sandbox.serve() as sb:           # real HTTP on a free 127.0.0.1 port
        client = sb.client()              # an oms KrakenClient bound to it
        print(client.balance())

    sb = Sandbox.in_process()             # the same exchange, answered inside this process
    sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)

Any Kraken client works against :meth:`Sandbox.serve`: point it at ``sb.base_url`` with
``sb.key`` / ``sb.secret``. See ``docs/sandbox.rst``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from oms.auth import Credentials
from oms.sandbox.accounts import AccountConfig
from oms.sandbox.adapter import SandboxAdapter
from oms.sandbox.clock import Clock, ManualClock, SystemClock
from oms.sandbox.config import SandboxConfig
from oms.sandbox.engine import Exchange, SandboxRequest, SandboxResponse
from oms.sandbox.faults import Fault, FaultKind, FaultRule, Faults
from oms.sandbox.market import DEFAULT_PAIRS, Market, MarketTrade, PairSpec
from oms.sandbox.server import TICK_INTERVAL, SandboxServer, admin_request

if TYPE_CHECKING:
    from oms.client import KrakenClient
    from oms.sandbox.websocket import SandboxWebSocket

__all__ = [
    "DEFAULT_BALANCES",
    "DEFAULT_PAIRS",
    "IN_PROCESS_URL",
    "AccountConfig",
    "Clock",
    "Exchange",
    "Fault",
    "FaultKind",
    "FaultRule",
    "Faults",
    "ManualClock",
    "Market",
    "MarketTrade",
    "PairSpec",
    "Sandbox",
    "SandboxAdapter",
    "SandboxConfig",
    "SandboxRequest",
    "SandboxResponse",
    "SandboxServer",
    "SystemClock",
    "admin_request",
]

#: Where in-process clients send their requests; ``.invalid`` never resolves (RFC 2606), so
#: a request that escaped the adapter could not reach anything.
IN_PROCESS_URL = "http://sandbox.invalid"

#: What a generated account starts with: enough quote currency and some of each base asset
#: to trade every default pair at once.
DEFAULT_BALANCES: Mapping[str, str] = {
    "ZUSD": "100000.0000",
    "XXBT": "2.0000000000",
    "XETH": "20.0000000000",
    "XXDG": "100000.00000000",
}

_FaultsLike = Faults | Iterable[Mapping[str, Any]] | None


def _faults(value: _FaultsLike, seed: int) -> Faults:
    if isinstance(value, Faults):
        return value
    faults = Faults(seed=seed)
    if value is not None:
        faults.extend(value)
    return faults


def _accounts(value: Sequence[AccountConfig] | int | None, seed: int) -> list[AccountConfig]:
    if value is None:
        value = 1
    if isinstance(value, int):
        if value < 1:
            raise ValueError("a sandbox needs at least one account")
        return [Sandbox.generated_account(seed, n) for n in range(value)]
    accounts = list(value)
    if not accounts:
        raise ValueError("a sandbox needs at least one account")
    return accounts


class Sandbox:
    """One sandbox exchange and the ways to reach it (use :meth:`serve` or :meth:`in_process`).

    ``accounts`` is a list of :class:`AccountConfig` or a number of accounts to generate
    (default 1, funded with :data:`DEFAULT_BALANCES`; keys derived from ``seed``). The first
    account's keys are :attr:`key`/:attr:`secret`/:attr:`credentials`.
    """

    def __init__(
        self,
        exchange: Exchange,
        *,
        faults: Faults,
        base_url: str,
        server: SandboxServer | None = None,
        adapter: SandboxAdapter | None = None,
    ):
        if not exchange.accounts:
            raise ValueError("a sandbox needs at least one account")
        self.exchange = exchange
        self.faults = faults
        self.base_url = base_url
        self.server = server
        self.adapter = adapter

    def __repr__(self) -> str:
        return f"Sandbox({self.base_url!r}, accounts={len(self.accounts)})"

    # -- construction ------------------------------------------------------------------

    @staticmethod
    def generated_account(
        seed: int | str = 0, n: int = 0, *, balances: Mapping[str, object] | None = None
    ) -> AccountConfig:
        """The ``n``-th account a sandbox with this ``seed`` generates (same seed, same keys),
        funded with ``balances`` (default :data:`DEFAULT_BALANCES`)."""
        return AccountConfig.generate(
            f"{seed}/{n}", balances=balances if balances is not None else DEFAULT_BALANCES
        )

    @staticmethod
    def build_exchange(
        *,
        seed: int = 0,
        clock: Clock | None = None,
        accounts: Sequence[AccountConfig] | int | None = None,
        config: SandboxConfig | None = None,
        market: Market | None = None,
    ) -> Exchange:
        """A fresh exchange with its accounts, as :meth:`serve`/:meth:`in_process` make it."""
        clock = clock if clock is not None else SystemClock()
        if market is None:
            market = Market(seed=seed, genesis=clock.time())
        if config is None:
            config = SandboxConfig(seed=seed)
        return Exchange(
            clock=clock, market=market, accounts=_accounts(accounts, seed), config=config
        )

    @classmethod
    def serve(
        cls,
        *,
        seed: int = 0,
        clock: Clock | None = None,
        accounts: Sequence[AccountConfig] | int | None = None,
        config: SandboxConfig | None = None,
        faults: _FaultsLike = None,
        host: str = "127.0.0.1",
        port: int = 0,
        exchange: Exchange | None = None,
        allow_remote: bool = False,
        tick: float | None = TICK_INTERVAL,
        websocket: bool = True,
    ) -> Sandbox:
        """Start an HTTP server for a new (or the given) exchange in a background thread.

        On the system clock the exchange also advances by itself every ``tick`` seconds
        (see :class:`SandboxServer`), so timers fire on time without a request. Use it as a
        context manager (or call :meth:`close`) to stop the server and its ticker.

        It also serves Kraken's WebSocket v2 at :attr:`ws_url` (``websocket=False``: not);
        its faults are :attr:`ws` methods (see ``docs/sandbox.rst``).
        """
        if exchange is None:
            exchange = cls.build_exchange(seed=seed, clock=clock, accounts=accounts, config=config)
        elif not exchange.accounts:
            raise ValueError("a sandbox needs at least one account")
        fault_set = _faults(faults, seed)
        server = SandboxServer(
            exchange,
            faults=fault_set,
            host=host,
            port=port,
            allow_remote=allow_remote,
            tick=tick,
            websocket=websocket,
        ).start()
        return cls(
            exchange,
            faults=fault_set,
            base_url=server.base_url,
            server=server,
        )

    @classmethod
    def in_process(
        cls,
        *,
        seed: int = 0,
        clock: Clock | None = None,
        accounts: Sequence[AccountConfig] | int | None = None,
        config: SandboxConfig | None = None,
        faults: _FaultsLike = None,
    ) -> Sandbox:
        """The same exchange without sockets: clients get a transport with the adapter mounted.

        With a :class:`ManualClock`, time a client would spend waiting on a delayed answer
        moves the clock instead of sleeping.
        """
        exchange = cls.build_exchange(seed=seed, clock=clock, accounts=accounts, config=config)
        fault_set = _faults(faults, seed)
        sandbox_clock = exchange.clock
        sleep = sandbox_clock.advance if isinstance(sandbox_clock, ManualClock) else None
        adapter = SandboxAdapter(exchange, faults=fault_set, sleep=sleep)
        return cls(
            exchange,
            faults=fault_set,
            base_url=IN_PROCESS_URL,
            adapter=adapter,
        )

    # -- what users need ---------------------------------------------------------------

    @property
    def ws(self) -> SandboxWebSocket:
        """The WebSocket v2 server of a served sandbox (faults: ``sb.ws.drop()``, ...)."""
        ws = self.server.ws if self.server is not None else None
        if ws is None:
            raise RuntimeError("this sandbox serves no WebSocket (use Sandbox.serve())")
        return ws

    @property
    def ws_url(self) -> str | None:
        """``ws://127.0.0.1:PORT/v2`` of a served sandbox; None in process."""
        return self.server.ws_url if self.server is not None else None

    def ws_token(self, account: int | str = 0) -> str:
        """A fresh WebSocket token for an account, issued by the exchange as
        GetWebSocketsToken would (bound to that account, good for 900 s)."""
        key = self.credentials_for(account).key
        return self.exchange.issue_ws_token(key)

    @property
    def clock(self) -> Clock:
        clock: Clock = self.exchange.clock
        return clock

    @property
    def market(self) -> Market:
        market = self.exchange.market
        if not isinstance(market, Market):
            raise TypeError("this sandbox's exchange runs on a custom market")
        return market

    @property
    def accounts(self) -> list[AccountConfig]:
        """Every account's configuration, oldest first."""
        return [acct.config for acct in self.exchange.accounts.values()]

    @property
    def credentials(self) -> Credentials:
        """The first account's key pair."""
        return self.credentials_for(0)

    def credentials_for(self, account: int | str = 0) -> Credentials:
        """Key pair of the account at index ``account`` (or with that API key)."""
        if isinstance(account, str):
            found = self.exchange.accounts.get(account)
            if found is None:
                raise KeyError("no sandbox account has that key")
            config = found.config
        else:
            config = self.accounts[account]
        return Credentials(key=config.key, secret=config.secret)

    @property
    def key(self) -> str:
        return self.credentials.key

    @property
    def secret(self) -> str:
        return self.credentials.secret

    def add_account(
        self, config: AccountConfig | None = None, *, balances: Mapping[str, object] | None = None
    ) -> AccountConfig:
        """Open one more account (generated and funded with :data:`DEFAULT_BALANCES` unless
        ``config`` is given); returns its configuration."""
        if config is None:
            n = len(self.exchange.accounts)
            config = self.generated_account(self.exchange.config.seed, n, balances=balances)
        return self.exchange.add_account(config)

    def mount(self, transport: Any) -> Any:
        """Mount the in-process adapter on an :class:`oms.transport.Transport`; return it."""
        if self.adapter is not None:
            transport.mount(IN_PROCESS_URL, self.adapter)
        return transport

    def client(self, *, account: int | str = 0, **kwargs: Any) -> KrakenClient:
        """An :class:`oms.client.KrakenClient` bound to this sandbox and an account's keys.

        Keyword arguments go to ``KrakenClient``. For an in-process sandbox the transport has
        the adapter mounted; with a :class:`ManualClock`, the client's clock and sleep are
        the sandbox clock's (its pauses move sandbox time instead of sleeping).
        """
        from oms.client import KrakenClient
        from oms.transport import Transport

        kwargs.setdefault("credentials", self.credentials_for(account))
        kwargs.setdefault("base_url", self.base_url)
        if self.adapter is not None and "transport" not in kwargs:
            timeout = kwargs.get("timeout")
            transport = Transport(timeout=timeout) if timeout is not None else Transport()
            kwargs["transport"] = self.mount(transport)
        clock = self.clock
        if isinstance(clock, ManualClock):
            kwargs.setdefault("clock", clock.time)
            kwargs.setdefault("sleep", clock.advance)
        credentials = kwargs.pop("credentials")
        return KrakenClient(credentials, **kwargs)

    def close(self) -> None:
        """Stop the HTTP server, if any."""
        if self.server is not None:
            self.server.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

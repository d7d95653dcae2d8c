"""One way to open a client or a manager: from the environment, or on a sandbox.

A strategy, the ``oms`` command and every example build what they trade through with the
same few functions (also reachable as :meth:`OrderManager.from_env
<oms.manager.OrderManager.from_env>` and :meth:`OrderManager.on_sandbox
<oms.manager.OrderManager.on_sandbox>`)::

    with OrderManager.from_env() as manager:          # KRAKEN_API_KEY, KRAKEN_API_SECRET, ...
        manager.place(request)

    with Sandbox.serve(clock=ManualClock()) as sb, OrderManager.on_sandbox(sb) as manager:
        ...                                           # the sandbox's clock, given once

What the environment supplies: ``KRAKEN_API_KEY`` / ``KRAKEN_API_SECRET`` (the key pair),
``KRAKEN_BASE_URL`` (default Kraken), ``OMS_ACCOUNT`` and ``OMS_USERREF_RANGE`` (read by the
manager), ``OMS_DB`` and ``OMS_DATA_DIR`` (where files go, see :mod:`oms.paths`). The clock
and ``sleep`` are given once and reach the client and the manager alike. A manager opened
here owns its client: closing the manager closes the client.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from oms import paths
from oms.auth import Credentials
from oms.cache import OrderCache
from oms.client import DEFAULT_BASE_URL, KrakenClient
from oms.errors import ValidationError
from oms.manager import OrderManager
from oms.manager.ages import CacheOrderBook
from oms.nonce import NonceSource

if TYPE_CHECKING:
    from oms.funding import FundingTracker
    from oms.sandbox import Sandbox
    from oms.trade_history import TradeHistory

    CacheLike = OrderCache | str | os.PathLike[str]
    PathLike = str | os.PathLike[str]

__all__ = [
    "Keys",
    "base_url_from_env",
    "client_from_env",
    "credentials_from_env",
    "funding_tracker_from_env",
    "manager_from_env",
    "manager_on_sandbox",
    "trade_history_from_env",
]

#: Whether a client needs the key pair: ``"required"`` (private calls), ``"optional"`` (used
#: when set), ``"none"`` (public endpoints only, the environment's keys are ignored).
Keys = Literal["required", "optional", "none"]

KEY_VARS = ("KRAKEN_API_KEY", "KRAKEN_API_SECRET")


def credentials_from_env() -> Credentials:
    """The key pair from ``KRAKEN_API_KEY`` / ``KRAKEN_API_SECRET``.

    :raises ValidationError: naming the variables that are missing, or what is wrong with them.
    """
    missing = [name for name in KEY_VARS if not os.environ.get(name)]
    if missing:
        raise ValidationError(
            f"{' and '.join(missing)} not set: export KRAKEN_API_KEY and KRAKEN_API_SECRET "
            "(Kraken: Settings, API; for `oms sandbox`, the key and secret it printed)",
            field=missing[0],
            rule="missing",
        )
    try:
        return Credentials.from_env()
    except ValidationError as exc:
        raise ValidationError(
            f"KRAKEN_API_KEY / KRAKEN_API_SECRET: {exc}", field="KRAKEN_API_KEY"
        ) from None


def base_url_from_env() -> str:
    """``$KRAKEN_BASE_URL``, else Kraken's own."""
    return os.environ.get("KRAKEN_BASE_URL") or DEFAULT_BASE_URL


def _credentials(keys: Keys) -> Credentials | None:
    if keys not in ("required", "optional", "none"):
        raise ValidationError(f"keys must be required, optional or none, got {keys!r}")
    wanted = keys == "required" or (
        keys == "optional" and any(os.environ.get(name) for name in KEY_VARS)
    )
    return credentials_from_env() if wanted else None


def _clocked(
    options: dict[str, Any],
    clock: Callable[[], float] | None,
    sleep: Callable[[float], Any] | None,
) -> dict[str, Any]:
    if clock is not None:
        options.setdefault("clock", clock)
    if sleep is not None:
        options.setdefault("sleep", sleep)
    return options


def client_from_env(
    *,
    base_url: str | None = None,
    keys: Keys = "required",
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Any] | None = None,
    nonce_dir: str | os.PathLike[str] | None = None,
    **client_options: Any,
) -> KrakenClient:
    """A :class:`~oms.client.KrakenClient` on ``base_url`` (default ``$KRAKEN_BASE_URL``,
    else Kraken) with the environment's key pair (see :data:`Keys`).

    ``nonce_dir`` keeps the key's nonce file elsewhere than :func:`oms.paths.nonce_dir`
    (a throwaway sandbox key). Other keywords go to ``KrakenClient``.
    """
    credentials = _credentials(keys)
    if nonce_dir is not None and credentials is not None:
        client_options.setdefault(
            "nonce_source", NonceSource(credentials.fingerprint, directory=nonce_dir)
        )
    return KrakenClient(
        credentials,
        base_url=base_url or base_url_from_env(),
        **_clocked(client_options, clock, sleep),
    )


def _manager(
    make_client: Callable[[dict[str, Any]], KrakenClient],
    cache: CacheLike,
    client_options: dict[str, Any],
    options: Callable[[], dict[str, Any]],
    *,
    book_clock: Callable[[], float],
) -> OrderManager:
    """The manager, its client and its cache, opened together; each closed if a later one
    fails. The cache is opened first so that the client's rate limiter is built knowing the
    ages of orders placed before this process (the ``order_book`` seam)."""
    opened = not isinstance(cache, OrderCache)
    store = cache if isinstance(cache, OrderCache) else OrderCache(cache)
    try:
        if "rate_limiter" not in client_options:
            client_options.setdefault("order_book", CacheOrderBook(store, clock=book_clock))
        client = make_client(client_options)
    except BaseException:
        if opened:
            store.close()
        raise
    try:
        return OrderManager(client, store, owns_client=True, owns_cache=opened, **options())
    except BaseException:
        client.close()
        if opened:
            store.close()
        raise


def manager_from_env(
    cache: CacheLike | None = None,
    *,
    base_url: str | None = None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Any] | None = None,
    client_options: Mapping[str, Any] | None = None,
    **manager_options: Any,
) -> OrderManager:
    """An :class:`~oms.manager.OrderManager` on the exchange the environment names.

    ``cache`` is an order cache or its path (default :func:`oms.paths.orders_db`:
    ``$OMS_DB``, else ``orders.db`` in the data directory). ``clock`` and ``sleep`` go to the
    client and the manager alike; ``client_options`` to ``KrakenClient``, the other keywords
    (``deadline``, ``account``, ``userref_range``, ``rebind``...) to ``OrderManager``.
    """
    options = _clocked(dict(manager_options), clock, sleep)
    return _manager(
        lambda opts: client_from_env(base_url=base_url, clock=clock, sleep=sleep, **opts),
        cache if cache is not None else paths.orders_db(),
        dict(client_options or {}),
        lambda: options,
        book_clock=clock or time.time,
    )


def _sandbox_client(
    sandbox: Sandbox | str,
    *,
    account: int | str,
    nonce_dir: str | os.PathLike[str] | None,
    options: dict[str, Any],
) -> tuple[KrakenClient, dict[str, Callable[..., Any]]]:
    """A client on ``sandbox``, and the clocks (``clock``, ``sleep``, ``monotonic``) its
    manager must share with it."""
    given = {k: options[k] for k in ("clock", "sleep") if options.get(k) is not None}
    if isinstance(sandbox, str):
        from urllib.parse import urlsplit

        from oms.sandbox.server import is_loopback_host

        if not is_loopback_host(urlsplit(sandbox).hostname or ""):
            raise ValidationError(
                f"{sandbox!r} is not a sandbox URL (a loopback host such as 127.0.0.1)",
                field="sandbox",
                rule="loopback",
            )
        return client_from_env(base_url=sandbox, nonce_dir=nonce_dir, **options), given
    from oms.sandbox import ManualClock

    if nonce_dir is not None and "nonce_source" not in options:
        fingerprint = sandbox.credentials_for(account).fingerprint
        options["nonce_source"] = NonceSource(fingerprint, directory=nonce_dir)
    client = sandbox.client(account=account, **options)
    clock = sandbox.clock
    if isinstance(clock, ManualClock):
        # Time a client or manager would wait moves the sandbox's clock instead. That clock
        # stands for real time, so it is also the one no step moves (else every wait that
        # moves it would look like a step of the local clock).
        return client, {"clock": clock.time, "sleep": clock.advance, "monotonic": clock.time}
    return client, given


def manager_on_sandbox(
    sandbox: Sandbox | str,
    cache: CacheLike = ":memory:",
    *,
    account: int | str = 0,
    nonce_dir: str | os.PathLike[str] | None = None,
    client_options: Mapping[str, Any] | None = None,
    **manager_options: Any,
) -> OrderManager:
    """An :class:`~oms.manager.OrderManager` on a sandbox exchange.

    ``sandbox`` is an :class:`oms.sandbox.Sandbox` (served or in-process: the client is
    bound to it with ``account``'s keys) or the URL of one (``oms sandbox``; the keys come
    from the environment). On a sandbox whose clock is a
    :class:`~oms.sandbox.ManualClock` the client and the manager share that clock, and
    their waits move it instead of sleeping. ``cache`` defaults to an in-memory database.
    ``nonce_dir`` keeps the throwaway key's nonce file out of the user's data directory.
    """
    shared: dict[str, Any] = {}
    ws_url = getattr(sandbox, "ws_url", None)
    if ws_url is not None:
        # A served sandbox streams too: follow() connects to its WebSocket server.
        manager_options.setdefault("ws_url", ws_url)

    def make_client(opts: dict[str, Any]) -> KrakenClient:
        client, shared["clocks"] = _sandbox_client(
            sandbox, account=account, nonce_dir=nonce_dir, options=opts
        )
        return client

    def book_clock() -> float:
        return (shared.get("clocks", {}).get("clock") or time.time)()

    def options() -> dict[str, Any]:
        # Read once the client is made: the manager shares the clocks the client got.
        return {**shared["clocks"], **manager_options}

    return _manager(make_client, cache, dict(client_options or {}), options, book_clock=book_clock)


# --- the history database: trades and funding ------------------------------------------------


def _history_parts(
    open_store: Callable[[PathLike], Any],
    db: PathLike | None,
    *,
    offline: bool,
    keys: Keys,
    base_url: str | None,
    clock: Callable[[], float] | None,
    sleep: Callable[[float], Any] | None,
    client_options: dict[str, Any],
) -> tuple[Any, KrakenClient | None]:
    """The history database ``db`` (default :func:`oms.paths.history_db`) opened with
    ``open_store``, and a client unless ``offline``; the store is closed again if the client
    cannot be made."""
    store = open_store(db if db is not None else paths.history_db())
    if offline:
        return store, None
    try:
        client = client_from_env(
            base_url=base_url, keys=keys, clock=clock, sleep=sleep, **client_options
        )
    except BaseException:
        store.close()
        raise
    return store, client


def trade_history_from_env(
    db: PathLike | None = None,
    *,
    base_url: str | None = None,
    offline: bool = False,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Any] | None = None,
    **client_options: Any,
) -> TradeHistory:
    """A :class:`~oms.trade_history.TradeHistory` on the history database ``db`` (default
    :func:`oms.paths.history_db`) that owns its store and its client: a client on
    ``base_url`` for Kraken's public endpoints (no key needed), or none when ``offline``
    (OHLC from the stored trades only). ``clock`` and ``sleep`` reach the client and the
    syncs' pacing alike; other keywords go to ``KrakenClient``."""
    from oms.history_store import HistoryStore
    from oms.trade_history import TradeHistory

    store, client = _history_parts(
        HistoryStore,
        db,
        offline=offline,
        keys="none",
        base_url=base_url,
        clock=clock,
        sleep=sleep,
        client_options=client_options,
    )
    return TradeHistory(
        client, store, owns=True, clock=clock or time.time, sleep=sleep or time.sleep
    )


def funding_tracker_from_env(
    db: PathLike | None = None,
    *,
    base_url: str | None = None,
    offline: bool = False,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Any] | None = None,
    **client_options: Any,
) -> FundingTracker:
    """A :class:`~oms.funding.FundingTracker` on the history database ``db`` (default
    :func:`oms.paths.history_db`) that owns its store and its client: a client on
    ``base_url`` with the environment's key pair (DepositStatus and WithdrawStatus need
    Query Funds), or none when ``offline`` (answers from the store only). ``clock`` stamps
    what a sync sees and reaches the client with ``sleep``."""
    from oms.funding import FundingTracker
    from oms.funding_store import FundingStore

    store, client = _history_parts(
        FundingStore,
        db,
        offline=offline,
        keys="required",
        base_url=base_url,
        clock=clock,
        sleep=sleep,
        client_options=client_options,
    )
    return FundingTracker(client, store, owns=True, clock=clock or time.time)

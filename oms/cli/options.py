"""What every ``oms`` command shares on the way in: options, and the one object each opens.

Options are defined once here (``--db``, ``--base-url``, ``--deadline``, the identity
options, times, userrefs); each command opens one library object through :mod:`oms.connect`
or a store's constructor with :func:`open_manager`, :func:`open_client`, :func:`open_cache`,
:func:`open_history`, :func:`open_tracker` or :func:`open_store`, which close it and turn
library errors into the CLI's messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import click

from oms import paths
from oms.cache import OrderCache
from oms.cli.errors import cli_errors
from oms.cli.progress import waiting_sleep
from oms.client import DEFAULT_BASE_URL, KrakenClient
from oms.connect import (
    Keys,
    client_from_env,
    funding_tracker_from_env,
    manager_from_env,
    trade_history_from_env,
)
from oms.errors import OmsError
from oms.funding import FundingTracker
from oms.manager import OrderManager
from oms.orders import USERREF_MAX, check_userref
from oms.trade_history import TradeHistory

__all__ = [
    "USERREF",
    "base_url_option",
    "db_option",
    "exchange_options",
    "history_db_option",
    "identity_options",
    "identity_settings",
    "is_sandbox_url",
    "open_cache",
    "open_client",
    "open_history",
    "open_manager",
    "open_store",
    "open_tracker",
    "parse_time",
    "parsed",
    "time_option_callback",
]

F = TypeVar("F", bound=Callable[..., Any])


class _Closable(Protocol):
    def close(self) -> None: ...


S = TypeVar("S", bound=_Closable)

# --- times ------------------------------------------------------------------------------------


def parse_time(text: str) -> int:
    """Unix seconds, or an ISO 8601 date/time (UTC unless it has an offset) → unix seconds."""
    stripped = text.strip()
    if stripped.isascii() and stripped.isdigit():
        return int(stripped)
    try:
        parsed_at = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r}: give unix seconds or an ISO 8601 time") from None
    if parsed_at.tzinfo is None:
        parsed_at = parsed_at.replace(tzinfo=timezone.utc)
    return int(parsed_at.timestamp())


def parsed(parse: Callable[[str], int]) -> Callable[..., int | None]:
    """An option callback running ``parse`` on the option's text (ValueError = usage error)."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None

    return callback


#: A click callback for options that take a time.
time_option_callback = parsed(parse_time)

# --- userrefs ---------------------------------------------------------------------------------


class _Userref(click.ParamType):  # type: ignore[type-arg]
    """A userref typed by hand: ASCII digits only, then the library's range check.

    ``click.INT`` goes through ``int()``, which also reads ``"+5"``, ``" 5"``, ``"5_000"`` and
    Arabic-Indic or fullwidth digits; a userref that was not typed as plain digits is a typo
    (or worse) to report, not to repair.
    """

    # Shown as INTEGER in --help, as click.INT was: the generated CLI reference stays as is.
    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif (
            isinstance(value, str) and 0 < len(value) <= 10 and all("0" <= c <= "9" for c in value)
        ):
            number = int(value)
        else:
            self.fail(f"{value!r} is not a userref (ASCII digits, 1..{USERREF_MAX})", param, ctx)
        try:
            return check_userref(number)
        except OmsError as exc:
            self.fail(str(exc), param, ctx)


USERREF = _Userref()

# --- where: databases and exchanges -----------------------------------------------------------


def db_option(f: F) -> F:
    """``--db``: the order cache."""
    return click.option(
        "--db",
        "db",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="The order cache (SQLite) [env OMS_DB; default: orders.db in the oms data dir].",
    )(f)


def history_db_option(f: F) -> F:
    """``--db``: the history database (trades, funding)."""
    return click.option(
        "--db",
        "db",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="The history database (SQLite) [env OMS_HISTORY_DB; default: history.db in "
        "the oms data dir].",
    )(f)


def base_url_option(f: F) -> F:
    """``--base-url``: Kraken, or a local sandbox."""
    return click.option(
        "--base-url",
        envvar="KRAKEN_BASE_URL",
        default=DEFAULT_BASE_URL,
        show_default=True,
        help="Kraken, or a local `oms sandbox` [env KRAKEN_BASE_URL].",
    )(f)


def _remember(name: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def store(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        ctx.meta[f"oms.{name}"] = value
        return value

    return store


def identity_options(f: F) -> F:
    """``--account``, ``--userref-range`` and ``--rebind``, read back by
    :func:`identity_settings` (not passed to the command function)."""
    f = click.option(
        "--rebind",
        is_flag=True,
        expose_value=False,
        callback=_remember("rebind"),
        help=(
            "Bind the database to this --base-url and key/account although it belongs to "
            "another (only when it really is the same exchange and account)."
        ),
    )(f)
    f = click.option(
        "--userref-range",
        envvar="OMS_USERREF_RANGE",
        metavar="LO-HI|K/N",
        expose_value=False,
        callback=_remember("userref_range"),
        help=(
            "This host's slice of the userrefs: LO-HI, or K/N (slice K of N equal slices), "
            "when several machines trade one account [env OMS_USERREF_RANGE]."
        ),
    )(f)
    f = click.option(
        "--account",
        "account_name",
        envvar="OMS_ACCOUNT",
        metavar="NAME",
        expose_value=False,
        callback=_remember("account"),
        help=(
            "Name of the Kraken account: keys given the same name share one userref "
            "sequence on this machine [env OMS_ACCOUNT; default: the API key]."
        ),
    )(f)
    return f


def identity_settings() -> dict[str, Any]:
    """The OrderManager keywords the identity options set for the running command."""
    meta = click.get_current_context().meta
    return {
        "account": meta.get("oms.account") or None,
        "userref_range": meta.get("oms.userref_range") or None,
        "rebind": bool(meta.get("oms.rebind")),
    }


def exchange_options(f: F) -> F:
    """What a command that trades takes: identity, ``--base-url``, ``--deadline``, ``--db``."""
    f = identity_options(f)
    f = base_url_option(f)
    f = click.option(
        "--deadline",
        type=click.FloatRange(3, 59),
        default=15.0,
        show_default=True,
        help="Seconds ahead of the server's clock for each AddOrder's deadline.",
    )(f)
    return db_option(f)


def is_sandbox_url(base_url: str) -> bool:
    """Whether ``base_url`` is a local sandbox (a loopback host), not an exchange."""
    from oms.sandbox.server import is_loopback_host

    return is_loopback_host(urlsplit(base_url).hostname or "")


# --- the one object a command opens ------------------------------------------------------------


@contextmanager
def open_manager(
    base_url: str, db: Path | None, *, deadline: float = 15.0
) -> Iterator[OrderManager]:
    """The order manager (and its client) on ``base_url`` with the environment's keys,
    waiting visibly; closed on the way out."""
    with cli_errors():
        manager = manager_from_env(
            db or paths.orders_db(),
            base_url=base_url,
            sleep=waiting_sleep(),
            deadline=deadline,
            **identity_settings(),
        )
    try:
        with cli_errors():
            yield manager
    finally:
        manager.close()


@contextmanager
def open_client(
    base_url: str, *, keys: Keys = "required", show_waits: bool = False, **options: Any
) -> Iterator[KrakenClient]:
    """A client on ``base_url``, with the environment's keys if ``keys`` asks for them;
    ``show_waits`` counts long waits down on the terminal (not under a progress bar)."""
    if show_waits:
        options["sleep"] = waiting_sleep()
    with cli_errors():
        client = client_from_env(base_url=base_url, keys=keys, **options)
    try:
        with cli_errors():
            yield client
    finally:
        client.close()


@contextmanager
def _opened(open_: Callable[[], S]) -> Iterator[S]:
    """What ``open_`` opens, closed on the way out; library errors become the CLI's."""
    with cli_errors():
        opened = open_()
    try:
        with cli_errors():
            yield opened
    finally:
        opened.close()


def open_store(
    open_: Callable[[Path], S], db: Path | None, default: Path
) -> AbstractContextManager[S]:
    """A database (an order cache, a history or funding store), closed on the way out."""
    return _opened(lambda: open_(db or default))


def open_history(
    db: Path | None, base_url: str | None = None
) -> AbstractContextManager[TradeHistory]:
    """The trade history in ``--db`` with a client on ``base_url`` (public endpoints), or
    from the stored trades alone without one."""
    return _opened(lambda: trade_history_from_env(db, base_url=base_url, offline=base_url is None))


def open_tracker(
    db: Path | None, base_url: str | None = None
) -> AbstractContextManager[FundingTracker]:
    """The funding tracker on ``--db`` with a client on ``base_url`` and the environment's
    keys, or answering from the database alone without one."""
    return _opened(
        lambda: funding_tracker_from_env(db, base_url=base_url, offline=base_url is None)
    )


def open_cache(db: Path | None) -> AbstractContextManager[OrderCache]:
    """The order cache at ``--db`` (or the default), for commands that need no exchange."""
    return open_store(OrderCache, db, paths.orders_db())

"""``oms sandbox``: run the local Kraken-protocol exchange, and steer a running one.

``oms sandbox`` serves until SIGINT/SIGTERM. When it is ready it prints exactly one JSON line,
``{"base_url": ..., "ws_url": ..., "key": ..., "secret": ...}``, so a script can start it and
read where to connect (REST at ``base_url``, WebSocket v2 at ``ws_url``).
``oms sandbox fault|clock|advance`` talk to a running sandbox's admin API.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import click

from oms.cli.errors import EXIT_USAGE, CliError
from oms.cli.options import parse_time
from oms.sandbox import DEFAULT_BALANCES, AccountConfig, Sandbox
from oms.sandbox.clock import Clock, ManualClock, SystemClock
from oms.sandbox.config import SandboxConfig
from oms.sandbox.engine import Exchange
from oms.sandbox.faults import FaultKind
from oms.sandbox.market import Market
from oms.sandbox.server import admin_request, is_loopback_host

__all__ = ["sandbox"]

_STATE_VERSION = 1


def _account_option(value: str) -> tuple[str, str]:
    key, sep, secret = value.partition(":")
    if not sep or not key or not secret:
        raise click.BadParameter("expected KEY:SECRET", param_hint="--account")
    return key, secret


def _load_state(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("version") != _STATE_VERSION:
        raise click.ClickException(f"{path} is not an oms sandbox state file (version 1)")
    return data


def _save_state(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    # The state holds the accounts' secrets: readable by the owner only.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(data, separators=(",", ":"), default=str))
    # Atomic: a crash while saving leaves the previous state, never half of one.
    os.replace(tmp, path)


@click.group(name="sandbox", invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=0, type=click.IntRange(0, 65535), help="Port (0: a free port).")
@click.option("--key", help="API key of the first account (default: generated).")
@click.option("--secret", help="Its base64 secret (required with --key).")
@click.option(
    "--account",
    "extra_accounts",
    multiple=True,
    metavar="KEY:SECRET",
    help="Another funded account (repeatable).",
)
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Load the exchange from FILE if it exists; save it there on exit.",
)
@click.option(
    "--seed",
    type=click.IntRange(0),
    help=(
        "Price path, keys and ids (default: a fresh random seed, so each start is a new "
        "exchange that no order database can mistake for an earlier one)."
    ),
)
@click.option("--no-rate-limits", is_flag=True, help="Switch off every Kraken limiter.")
@click.option(
    "--manual-clock",
    is_flag=True,
    help="Freeze sandbox time; move it with `oms sandbox clock --advance S`.",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help=(
        "Allow a non-loopback --host. Off by default: anyone who can reach the port can "
        "trade with the sandbox keys, and the sandbox speaks plain HTTP."
    ),
)
@click.pass_context
def sandbox(
    ctx: click.Context,
    host: str,
    port: int,
    key: str | None,
    secret: str | None,
    extra_accounts: tuple[str, ...],
    state: Path | None,
    seed: int | None,
    no_rate_limits: bool,
    manual_clock: bool,
    allow_remote: bool,
) -> None:
    """Run a local exchange that speaks Kraken's spot REST protocol.

    Prints one JSON line {"base_url", "ws_url", "key", "secret"} when ready, then serves
    until Ctrl-C or SIGTERM (exit status 0). Point any Kraken client at base_url, and a
    WebSocket v2 client at ws_url.
    """
    if ctx.invoked_subcommand is not None:
        return
    if not allow_remote and not is_loopback_host(host):
        raise click.BadParameter(
            f"{host} is not a loopback address; pass --allow-remote to expose the sandbox",
            param_hint="--host",
        )
    if (key is None) != (secret is None):
        raise click.BadParameter("give --key and --secret together", param_hint="--key")
    first_wanted = (key, secret) if key is not None and secret is not None else None
    if seed is None:
        # Its own identity (keys, secret, txid space) each start: a restarted sandbox must
        # never look like the one an order database was bound to. --state keeps the old one.
        seed = secrets.randbelow(2**31)
    extra = [_account_option(a) for a in extra_accounts]

    # Handlers first: a SIGTERM that arrives while the server starts still stops it cleanly
    # (and saves the state) instead of killing the process.
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            exchange = _open_exchange(
                state, first_wanted, extra, seed, no_rate_limits, manual_clock
            )
            sb = Sandbox.serve(
                exchange=exchange, seed=seed, host=host, port=port, allow_remote=allow_remote
            )
        except OSError as e:
            # A busy port, an address not on this machine: found before anything started.
            where = f"{host}:{port}" if port else host
            raise CliError(f"cannot listen on {where}: {e.strerror or e}", EXIT_USAGE) from None
        except ValueError as e:
            raise CliError(str(e), EXIT_USAGE) from None
        try:
            # --key if given, else the first account (generated, or the oldest in --state);
            # --account only ever adds accounts besides it.
            first = sb.credentials_for(key if key is not None else 0)
            line = {
                "base_url": sb.base_url,
                "ws_url": sb.ws_url,
                "key": first.key,
                "secret": first.secret,
            }
            click.echo(json.dumps(line))
            sys.stdout.flush()
            while not stop.wait(0.5):
                pass
        finally:
            sb.close()
            if state is not None:
                _save_state(
                    state,
                    {
                        "version": _STATE_VERSION,
                        "market": sb.market.snapshot(),
                        "exchange": sb.exchange.snapshot(),
                    },
                )
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _open_exchange(
    state: Path | None,
    first: tuple[str, str] | None,
    extra: list[tuple[str, str]],
    seed: int,
    no_rate_limits: bool,
    manual_clock: bool,
) -> Exchange:
    """The exchange to serve: restored from ``state`` if it exists, else a new one whose
    first account is ``first`` (or generated from ``seed``), followed by ``extra``."""
    saved = _load_state(state) if state is not None else None
    configs = [AccountConfig(k, s, balances=DEFAULT_BALANCES) for k, s in extra]
    if first is not None:
        configs.insert(0, AccountConfig(first[0], first[1], balances=DEFAULT_BALANCES))
    clock: Clock = SystemClock()
    if saved is None:
        if manual_clock:
            clock = ManualClock(float(int(time.time())))
        settings = SandboxConfig(seed=seed)
        if first is None:
            # The same account `Sandbox.serve(seed=...)` generates, whatever else is added.
            configs.insert(0, Sandbox.generated_account(seed))
        return Sandbox.build_exchange(
            seed=seed,
            clock=clock,
            accounts=configs,
            config=settings.without_limits() if no_rate_limits else settings,
        )
    if manual_clock:
        clock = ManualClock(max(time.time(), float(saved["exchange"]["time"])))
    exchange = Exchange.restore(
        saved["exchange"], clock=clock, market=Market.restore(saved["market"])
    )
    for config in configs:
        if config.key not in exchange.accounts:
            exchange.add_account(config)
    if no_rate_limits:
        exchange.configure(**exchange.config.without_limits().to_json())
    return exchange


# -- steering a running sandbox ------------------------------------------------------------

_URL = click.option(
    "--url",
    envvar=["OMS_SANDBOX_URL", "KRAKEN_BASE_URL"],
    required=True,
    help="The sandbox's base_url [env OMS_SANDBOX_URL, else KRAKEN_BASE_URL].",
)


def _call(url: str, path: str, payload: object = None, method: str | None = None) -> None:
    try:
        result = admin_request(url, path, payload, method=method)
    except (RuntimeError, ValueError, OSError) as e:
        raise CliError(f"{url}: {e}") from None
    click.echo(json.dumps(result))


@sandbox.group()
def fault() -> None:
    """Inject faults into a running sandbox (see docs/sandbox.rst)."""


@fault.command("add")
@_URL
@click.option("--method", default="*", show_default=True, help="Kraken method, or * for all.")
@click.option(
    "--kind",
    required=True,
    type=click.Choice([kind.value for kind in FaultKind]),
)
@click.option("--count", type=click.IntRange(min=1), help="Fire for the next N calls.")
@click.option("--probability", type=click.FloatRange(0, 1, min_open=True), help="Seeded.")
@click.option("--when", type=click.Choice(["before", "after"]), help="Relative to commit.")
@click.option("--status", type=int, help="HTTP status of an html fault (502, 520, 403...).")
@click.option("--delay", type=float, help="Seconds, for kind=delay.")
@click.option("--error", help="Kraken error string, for kind=error or rate_limit.")
@click.option("--skip", type=click.IntRange(min=0), default=0, help="Let N calls through first.")
def fault_add(url: str, **options: Any) -> None:
    """Add a fault rule; prints the rule."""
    payload = {k: v for k, v in options.items() if v is not None and not (k == "skip" and v == 0)}
    _call(url, "/faults", payload)


@fault.command("list")
@_URL
def fault_list(url: str) -> None:
    """Print the fault rules in force."""
    _call(url, "/faults")


@fault.command("clear")
@_URL
def fault_clear(url: str) -> None:
    """Remove every fault rule."""
    _call(url, "/faults", method="DELETE")


@fault.command("remove")
@_URL
@click.argument("rule_id", type=int)
def fault_remove(url: str, rule_id: int) -> None:
    """Remove one fault rule by id."""
    _call(url, f"/faults/{rule_id}", method="DELETE")


def _time_or_unix(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)  # unix seconds, fractions allowed
    except ValueError:
        pass
    try:
        return float(parse_time(value))
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@sandbox.command()
@_URL
@click.option("--advance", type=float, help="Move a --manual-clock sandbox forward S seconds.")
@click.option(
    "--set",
    "set_to",
    callback=_time_or_unix,
    help="Move it to time T (ISO 8601, UTC unless an offset is given, or unix seconds).",
)
def clock(url: str, advance: float | None, set_to: float | None) -> None:
    """Show, advance or set the sandbox clock."""
    payload: dict[str, float] = {}
    if advance is not None:
        payload["advance"] = advance
    if set_to is not None:
        payload["set"] = set_to
    _call(url, "/clock", payload or None)


@sandbox.command()
@_URL
def advance(url: str) -> None:
    """Run matching, expiries and funding up to the sandbox's current time."""
    _call(url, "/advance", {})

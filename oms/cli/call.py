"""``oms call``: any Kraken REST method from the shell, in the style of Kraken's ``./krakenapi``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

import click

from oms.cli.errors import CliError, describe
from oms.cli.options import base_url_option
from oms.client import KrakenClient
from oms.connect import client_from_env
from oms.errors import TransportError, ValidationError, kraken_error
from oms.retry import NO_RETRY
from oms.transport import DEFAULT_TIMEOUT, Transcript, Transport

__all__ = ["call", "parse_params"]

#: Exit status when Kraken answered with an error (the envelope is still printed).
EXIT_KRAKEN_ERROR = 1
#: Exit status when no answer came (a transport error: timeout, 5xx, Cloudflare page...).
EXIT_NO_ANSWER = 3


def parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``name=value`` words → parameters, in order. Values starting with ``[`` or ``{`` are
    JSON (for AddOrderBatch's ``orders``); everything else stays text, exactly as typed."""
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.UsageError(f"parameters are name=value, got {pair!r}")
        if name in params:
            raise click.UsageError(f"parameter {name!r} given twice")
        if value[:1] in ("[", "{"):
            try:
                params[name] = json.loads(value)
            except ValueError as exc:
                raise click.UsageError(f"{name}: not valid JSON ({exc})") from None
        else:
            params[name] = value
    return params


def _open_private(path: Path) -> IO[str]:
    # The transcript holds account data (orders, balances): readable by its owner only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8")


@click.command()
@click.argument("method")
@click.argument("params", nargs=-1)
@base_url_option
@click.option(
    "--transcript",
    "transcript_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the full request(s) and response(s), credentials redacted, for Kraken support.",
)
@click.option(
    "--private/--public",
    "private",
    default=None,
    help="Override whether METHOD is signed (known public methods are not).",
)
@click.option(
    "--timeout",
    nargs=2,
    type=float,
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Connect and read timeouts in seconds.",
)
@click.option("--no-retry", is_flag=True, help="Send once, even for reads.")
def call(
    method: str,
    params: tuple[str, ...],
    base_url: str,
    transcript_path: Path | None,
    private: bool | None,
    timeout: tuple[float, float],
    no_retry: bool,
) -> None:
    """Call METHOD with name=value PARAMS and print Kraken's JSON answer.

    \b
      oms call Time
      oms call AddOrder pair=xdgusd type=buy ordertype=limit price=0.1 volume=50 userref=27649653
      oms call OpenOrders userref=27649653
      oms call CancelOrder txid=27649653

    The key and secret come from KRAKEN_API_KEY and KRAKEN_API_SECRET. The whole answer
    (envelope) is printed as Kraken sent it. Exit status: 0 on success, 1 if Kraken answered
    with an error (also written to stderr), 2 for bad usage, 3 if no answer came back (the
    request may still have reached Kraken).

    If Kraken answers 403, run again with --transcript FILE and send FILE to Kraken support:
    it has every header of each request and response, with the secret, the signature and
    all but the first four characters of the key removed.
    """
    parsed = parse_params(params)
    key = os.environ.get("KRAKEN_API_KEY", "")
    secret = os.environ.get("KRAKEN_API_SECRET", "")
    stream = _open_private(transcript_path) if transcript_path is not None else None
    try:
        transcript = None if stream is None else Transcript(stream, redact=(secret, key))
        try:
            client = client_from_env(
                base_url=base_url,
                keys="optional",
                transport=Transport(timeout=timeout, transcript=transcript),
                retry=NO_RETRY if no_retry else None,
            )
        except ValidationError as exc:
            raise click.UsageError(str(exc)) from None
        with client:
            _run(client, method, parsed, private)
    finally:
        if stream is not None:
            stream.close()


def _run(client: KrakenClient, method: str, params: dict[str, Any], private: bool | None) -> None:
    try:
        response = client.request(method, params, private=private, raise_errors=False)
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from None
    except TransportError as exc:
        # A call's outcome is unknown once it may have reached Kraken; one that never left
        # still gets 3 here: `oms call` cannot tell a read from a write.
        raise CliError(describe(exc), EXIT_NO_ANSWER) from None
    click.echo(response.text.rstrip("\n"))
    failures = [e for e in response.payload["error"] if not e.startswith("W")]
    if failures:
        raise CliError(describe(kraken_error(failures[0], failures)), EXIT_KRAKEN_ERROR)

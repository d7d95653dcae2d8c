"""``oms sign``: the REST API authentication calculator, in the shell."""

from __future__ import annotations

import click

from oms import auth
from oms.cli.errors import EXIT_USAGE, CliError
from oms.errors import ValidationError


@click.command()
@click.option(
    "--secret", envvar="KRAKEN_API_SECRET", help="API secret (base64) [env KRAKEN_API_SECRET]."
)
@click.option("--path", "urlpath", help="URI path, e.g. /0/private/AddOrder.")
@click.option("--nonce", help="The nonce, exactly as in the body.")
@click.option("--data", help="The exact request body (form-encoded or JSON text).")
@click.option(
    "--example", is_flag=True, help="Use Kraken's documented example and check the result."
)
@click.option("--expect", help="A signature to compare with (e.g. what your own code computed).")
def sign(
    secret: str | None,
    urlpath: str | None,
    nonce: str | None,
    data: str | None,
    example: bool,
    expect: str | None,
) -> None:
    """Compute an API-Sign value, like Kraken's authentication calculator.

    Compare the last line with what your own code computes for the same inputs (they must
    match exactly). Use a temporary API key for this, as Kraken recommends, and delete it after.
    """
    if example:
        ex = auth.EXAMPLE
        # The example's own secret, even if KRAKEN_API_SECRET is set: the point is to check
        # the algorithm against Kraken's published numbers.
        secret = ex["secret"]
        urlpath, nonce, data = urlpath or ex["path"], nonce or ex["nonce"], data or ex["data"]
        expect = expect or ex["signature"]
        click.echo("Kraken's documented example:")
        click.echo(f"  path:      {urlpath}")
        click.echo(f"  nonce:     {nonce}")
        click.echo(f"  data:      {data}")
        click.echo(f"  expected:  {expect}")
    given = {"--secret": secret, "--path": urlpath, "--nonce": nonce, "--data": data}
    missing = [name for name, value in given.items() if value is None]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)} (or use --example)")
    assert secret is not None
    assert urlpath is not None
    assert nonce is not None
    assert data is not None
    try:
        signature = auth.sign(secret, urlpath, nonce, data)
    except ValidationError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if expect is not None:
        verdict = "MATCH" if signature == expect else "MISMATCH"
        click.echo(f"  computed:  {signature}")
        click.echo(f"  result:    {verdict}")
        if verdict == "MISMATCH":
            click.echo(signature)
            raise CliError("the signatures differ (see computed and expected above)")
    click.echo(signature)

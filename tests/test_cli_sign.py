"""`oms sign` computes the same signature as oms.auth.sign and checks Kraken's example."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from oms.auth import EXAMPLE, sign
from oms.cli import main


def test_example_matches() -> None:
    result = CliRunner().invoke(main, ["sign", "--example"])
    assert result.exit_code == 0, result.output
    assert "MATCH" in result.output
    assert result.output.strip().splitlines()[-1] == EXAMPLE["signature"]


def test_custom_inputs_last_line_is_signature() -> None:
    args = ["--secret", EXAMPLE["secret"], "--path", "/0/private/Balance"]
    args += ["--nonce", "7", "--data", "nonce=7"]
    result = CliRunner().invoke(main, ["sign", *args])
    assert result.exit_code == 0, result.output
    expected = sign(EXAMPLE["secret"], "/0/private/Balance", 7, "nonce=7")
    assert result.output.strip().splitlines()[-1] == expected


def test_mismatch_exits_nonzero() -> None:
    args = ["--secret", EXAMPLE["secret"], "--path", "/0/private/Balance", "--nonce", "7"]
    args += ["--data", "nonce=7", "--expect", "AAAA"]
    result = CliRunner().invoke(main, ["sign", *args])
    assert result.exit_code == 1
    assert "MISMATCH" in result.output


def test_missing_inputs_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["sign", "--path", "/0/private/Balance"], env={})
    assert result.exit_code == 2
    assert "--nonce" in result.output


def test_secret_from_env_not_printed() -> None:
    env = {"KRAKEN_API_SECRET": EXAMPLE["secret"]}
    args = ["sign", "--path", "/0/private/Balance", "--nonce", "1", "--data", "nonce=1"]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    assert EXAMPLE["secret"] not in result.output


def test_installed_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "oms", "sign", "--example"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip().splitlines()[-1] == EXAMPLE["signature"]

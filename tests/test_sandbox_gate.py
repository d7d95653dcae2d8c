"""Requests pass Kraken's door: signature over the exact bytes, nonces, lockouts for private
calls; a token bucket per client for public ones."""

from __future__ import annotations

import base64
import json

import pytest
import sandbox_engine_support as support

from oms.auth import EXAMPLE, sign
from oms.sandbox.accounts import AccountConfig
from oms.sandbox.clock import ManualClock
from oms.sandbox.config import SandboxConfig
from oms.sandbox.engine import Exchange, SandboxRequest

T0 = support.T0
make = support.make
limit = support.limit


def test_signature_is_checked_over_the_exact_form_bytes() -> None:
    exchange, caller, _, _ = make()
    assert caller.ok("Balance")
    # Same parameters, different order: a different body, so the old signature is wrong.
    body = b"nonce=5000&asset=ZUSD"
    signed_over = "asset=ZUSD&nonce=5000"
    headers = {
        "user-agent": "x",
        "api-key": caller.account.key,
        "api-sign": sign(caller.account.secret, "/0/private/Balance", 5000, signed_over),
    }
    response = exchange.handle(SandboxRequest("POST", "/0/private/Balance", "", headers, body))
    assert response.json() == {"error": ["EAPI:Invalid signature"]}


def test_kraken_documented_signature_vector_is_accepted() -> None:
    clock = ManualClock(T0)
    account = AccountConfig("doc-key", EXAMPLE["secret"], {"ZUSD": "100000"})
    exchange = Exchange(
        clock=clock,
        market=support.StubMarket({"XXBTZUSD": "40000.0"}),
        accounts=[account],
    )
    headers = {
        "user-agent": "x",
        "api-key": "doc-key",
        "api-sign": EXAMPLE["signature"],
        "content-type": "application/x-www-form-urlencoded",
    }
    request = SandboxRequest("POST", EXAMPLE["path"], "", headers, EXAMPLE["data"].encode())
    answer = exchange.handle(request).json()
    assert answer["error"] == []
    assert answer["result"]["descr"]["order"] == "buy 1.25000000 XBTUSD @ limit 37500.0"


def test_json_bodies_are_signed_with_the_nonce_member_as_prefix() -> None:
    _, caller, _, _ = make()
    assert caller.ok("Balance", json_body=True)["XXBT"] == "10.0000000000"
    text = json.dumps({"nonce": "7777", "asset": "XBT"})
    headers = {
        "user-agent": "x",
        "api-key": caller.account.key,
        "api-sign": sign(caller.account.secret, "/0/private/Balance", "7777", text),
        "content-type": "application/json",
    }
    response = caller.exchange.handle(
        SandboxRequest("POST", "/0/private/Balance", "", headers, text.encode())
    )
    assert response.json()["error"] == []


@pytest.mark.parametrize(
    ("key", "secret", "sign_header", "error"),
    [
        ("unknown", None, None, "EAPI:Invalid key"),
        ("", None, None, "EAPI:Invalid key"),
        (None, base64.b64encode(b"x" * 64).decode(), None, "EAPI:Invalid signature"),
        (None, None, "not base64!", "EAPI:Invalid signature"),
        (None, None, "", "EAPI:Invalid signature"),
    ],
)
def test_bad_credentials(
    key: str | None, secret: str | None, sign_header: str | None, error: str
) -> None:
    _, caller, _, _ = make()
    headers = {"api-sign": sign_header} if sign_header is not None else None
    assert caller.err("Balance", key=key, secret=secret, headers=headers) == error


def test_nonces_must_increase_per_key() -> None:
    _, caller, _, _ = make()
    caller.ok("Balance", nonce=100)
    for nonce in (100, 99, 1):
        assert caller.err("Balance", nonce=nonce) == "EAPI:Invalid nonce"
    caller.ok("Balance", nonce=101)


@pytest.mark.parametrize("raw", ["abc", "-5", "0", "1.5", str(2**64)])
def test_malformed_nonces_are_invalid(raw: str) -> None:
    exchange, caller, _, _ = make()
    body = f"nonce={raw}"
    headers = {
        "user-agent": "x",
        "api-key": caller.account.key,
        "api-sign": sign(caller.account.secret, "/0/private/Balance", raw, body),
    }
    response = exchange.handle(
        SandboxRequest("POST", "/0/private/Balance", "", headers, body.encode())
    )
    assert response.json() == {"error": ["EAPI:Invalid nonce"]}


def test_nonce_window_accepts_a_slightly_older_nonce() -> None:
    _, caller, _, _ = make(config=SandboxConfig(nonce_window=10))
    caller.ok("Balance", nonce=100)
    caller.ok("Balance", nonce=95)  # inside the window
    caller.ok("Balance", nonce=95)  # replays inside the window are accepted, as warned
    assert caller.err("Balance", nonce=90) == "EAPI:Invalid nonce"


def test_repeated_auth_failures_lock_the_key_out_for_a_while() -> None:
    _, caller, clock, _ = make(config=SandboxConfig(lockout_after=3, lockout_seconds=60))
    wrong = base64.b64encode(b"y" * 64).decode()
    for _ in range(3):
        assert caller.err("Balance", secret=wrong) == "EAPI:Invalid signature"
    assert caller.err("Balance") == "EGeneral:Temporary lockout"
    clock.advance(61)
    assert caller.ok("Balance")


def test_a_success_resets_the_failure_streak() -> None:
    _, caller, _, _ = make(config=SandboxConfig(lockout_after=3))
    wrong = base64.b64encode(b"y" * 64).decode()
    for _ in range(5):
        caller.err("Balance", secret=wrong)
        caller.err("Balance", secret=wrong)
        caller.ok("Balance")


def test_query_string_signing_like_the_go_sdk_is_accepted() -> None:
    exchange, caller, _, _ = make()
    body = "nonce=5"
    headers = {
        "user-agent": "x",
        "api-key": caller.account.key,
        "api-sign": sign(caller.account.secret, "/0/private/Balance?x=1", 5, body),
    }
    response = exchange.handle(
        SandboxRequest("POST", "/0/private/Balance", "x=1", headers, body.encode())
    )
    assert response.json()["error"] == []


def test_a_non_json_body_declared_json_is_invalid_arguments() -> None:
    exchange, caller, _, _ = make()
    headers = {"user-agent": "x", "api-key": caller.account.key, "content-type": "application/json"}
    response = exchange.handle(SandboxRequest("POST", "/0/private/Balance", "", headers, b"{nope"))
    assert response.json() == {"error": ["EGeneral:Invalid arguments"]}


def test_public_calls_are_throttled_per_client_with_a_token_bucket() -> None:
    exchange, caller, clock, _ = make(config=SandboxConfig(public_burst=3, public_rate=1))
    for _ in range(3):
        assert caller.public("Time")["error"] == []
    assert caller.public("Time") == {"error": ["EGeneral:Too many requests"]}
    other = exchange.handle(
        SandboxRequest("GET", "/0/public/Time", "", {"user-agent": "x"}, client="10.0.0.2")
    )
    assert other.json()["error"] == []
    clock.advance(1)
    assert caller.public("Time")["error"] == []

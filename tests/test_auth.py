"""Signing reproduces Kraken's algorithm and documented example; secrets never leak."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from decimal import Decimal
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms import auth
from oms.errors import ValidationError

EX = auth.EXAMPLE


def _reference(secret: str, path: str, nonce: str, body: bytes) -> str:
    # Kraken's published recipe, step by step, written independently of oms.auth.
    inner = hashlib.sha256(nonce.encode() + body).digest()
    mac = hmac.new(base64.b64decode(secret), path.encode() + inner, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


def test_documented_example() -> None:
    assert auth.sign(EX["secret"], EX["path"], EX["nonce"], EX["data"]) == EX["signature"]


def test_mapping_is_encoded_in_order_like_the_example() -> None:
    params = dict(parse_qsl(EX["data"]))
    assert auth.encode_form(params) == EX["data"]
    assert auth.sign(EX["secret"], EX["path"], int(EX["nonce"]), params) == EX["signature"]


def test_parameter_order_matters() -> None:
    params = dict(reversed(parse_qsl(EX["data"])))
    assert auth.sign(EX["secret"], EX["path"], EX["nonce"], params) != EX["signature"]


@given(
    secret=st.binary(min_size=16, max_size=64).map(lambda b: base64.b64encode(b).decode()),
    method=st.sampled_from(["AddOrder", "Balance", "CancelOrder", "QueryOrders"]),
    nonce=st.integers(min_value=1, max_value=2**64 - 1),
    body=st.text(max_size=200),
)
def test_sign_matches_reference_recipe(secret: str, method: str, nonce: int, body: str) -> None:
    path = f"/0/private/{method}"
    assert auth.sign(secret, path, nonce, body) == _reference(
        secret, path, str(nonce), body.encode()
    )


def test_json_body_is_signed_with_its_nonce() -> None:
    body = auth.encode_json({"nonce": 42, "orders": ["OABCDE-FGHIJ-KLMNOP", 7]})
    assert json.loads(body)["nonce"] == 42
    assert auth.sign(EX["secret"], "/0/private/CancelOrderBatch", 42, body) == _reference(
        EX["secret"], "/0/private/CancelOrderBatch", "42", body.encode()
    )


@pytest.mark.parametrize(
    ("params", "encoded"),
    [
        ({"validate": True}, "validate=true"),
        ({"reduce_only": False}, "reduce_only=false"),
        ({"price": Decimal("0.00001")}, "price=0.00001"),
        ({"volume": Decimal("1E+3")}, "volume=1000"),
        (
            {"close": {"ordertype": "limit", "price": "1"}},
            "close%5Bordertype%5D=limit&close%5Bprice%5D=1",
        ),
        ({"expiretm": "+60"}, "expiretm=%2B60"),
        ({"txid": ["A", "B"]}, "txid=A%2CB"),
        ({"userref": None, "pair": "XBTUSD"}, "pair=XBTUSD"),
    ],
)
def test_form_encoding_rules(params: dict[str, object], encoded: str) -> None:
    assert auth.encode_form(params) == encoded


def test_float_is_refused() -> None:
    with pytest.raises(ValidationError):
        auth.encode_form({"price": 0.1})
    with pytest.raises(ValidationError):
        auth.encode_json({"price": 0.1})


def test_bad_secret_error_does_not_echo_it() -> None:
    bad = "not-base64!!secretvalue"
    with pytest.raises(ValidationError) as info:
        auth.sign(bad, "/0/private/Balance", 1, "nonce=1")
    assert "secretvalue" not in str(info.value)


def test_secret_never_in_repr_and_key_only_as_a_prefix() -> None:
    key = "MYKEYabcdefghijklmnop"
    creds = auth.Credentials(key=key, secret=EX["secret"])
    for text in (repr(creds), str(creds), f"{creds!r}"):
        assert EX["secret"] not in text
        assert key not in text
        assert auth.key_prefix(key) in text


@pytest.mark.parametrize(
    ("key", "secret", "field"),
    [
        ("MYKEYabcdefghijklmnop\n", EX["secret"], "key"),
        (" MYKEYabcdefghijklmnop", EX["secret"], "key"),
        ("MYKEYabcdefghijklmnop", EX["secret"] + "\n", "secret"),
        ("MYKEYabcdefghijklmnop", "\t" + EX["secret"], "secret"),
        ("", EX["secret"], "key"),
    ],
)
def test_surrounding_whitespace_is_refused_without_showing_key_or_secret(
    key: str, secret: str, field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        auth.Credentials(key=key, secret=secret)
    assert info.value.field == field
    message = str(info.value)
    if key.strip():
        assert key.strip() not in message
        assert key.strip()[:4] not in message
    assert EX["secret"] not in message
    assert EX["secret"][:8] not in message


def test_credentials_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRAKEN_API_KEY", "k1")
    monkeypatch.setenv("KRAKEN_API_SECRET", EX["secret"])
    creds = auth.Credentials.from_env()
    assert (creds.key, creds.secret) == ("k1", EX["secret"])
    monkeypatch.delenv("KRAKEN_API_SECRET")
    with pytest.raises(ValidationError, match="KRAKEN_API_SECRET"):
        auth.Credentials.from_env()


def test_fingerprint_does_not_contain_key() -> None:
    fp = auth.key_fingerprint("MyPublicKey")
    assert "MyPublicKey" not in fp
    assert fp == auth.key_fingerprint("MyPublicKey")
    assert fp != auth.key_fingerprint("MyPublicKey2")

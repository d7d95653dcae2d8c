"""Each layer of the request path alone: one encoding reused per attempt, the nonce first,
signatures as Kraken computes them, envelopes mapped to errors."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from fakehttp import KEY, SECRET
from hypothesis import given
from hypothesis import strategies as st

from oms.auth import Credentials, encode_form, encode_json, sign
from oms.errors import InvalidResponse, UnknownOrder, ValidationError
from oms.request_path import Call, encode_call, envelope_error, signed_request
from oms.transport import HTTPResponse

CREDENTIALS = Credentials(key=KEY, secret=SECRET)
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
    st.text(max_size=12),
    st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=3),
)
params = st.dictionaries(
    st.text("abcdefghij_", min_size=1, max_size=8).filter(lambda k: k != "nonce"), values
)


@given(params=params, nonce=st.integers(1, 2**63))
def test_form_body_is_the_encoding_with_the_nonce_first(params: dict[str, Any], nonce: int) -> None:
    call = encode_call("Balance", params, private=True)
    _, _, body = signed_request(call, nonce, CREDENTIALS)
    assert body.decode() == encode_form({"nonce": nonce, **params})


@given(
    params=st.dictionaries(st.sampled_from(["orders", "pair", "validate"]), values),
    nonce=st.integers(1, 2**63),
)
def test_json_body_is_the_encoding_with_the_nonce_first(params: dict[str, Any], nonce: int) -> None:
    call = encode_call("AddOrderBatch", params, private=True)
    _, headers, body = signed_request(call, nonce, CREDENTIALS)
    assert body.decode() == encode_json({"nonce": nonce, **params})
    assert headers["Content-Type"] == "application/json"


def test_signature_covers_path_nonce_and_body() -> None:
    call = encode_call("AddOrder", {"pair": "XBTUSD", "volume": Decimal("1.25")}, private=True)
    path, headers, body = signed_request(call, 42, CREDENTIALS)
    assert path == "/0/private/AddOrder"
    assert headers["API-Key"] == KEY
    assert headers["API-Sign"] == sign(SECRET, path, 42, body.decode())


@pytest.mark.parametrize(
    ("method", "given"),
    [("Bad Name", {}), ("Balance", {"nonce": 1}), ("Balance", {"price": 0.1})],
)
def test_checked_before_any_io(method: str, given: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        encode_call(method, given, private=True)


def test_a_call_repr_never_shows_parameters() -> None:
    call = encode_call("Withdraw", {"address": "bc1secretaddress", "otp": "123456"}, private=True)
    assert "secret" not in repr(call)
    assert "123456" not in repr(call)


def _answer(payload: Any) -> HTTPResponse:
    return HTTPResponse(status_code=200, headers={}, body=b"", payload=payload, elapsed=0.0)


def test_envelope_maps_errors_and_keeps_warnings_apart() -> None:
    call = Call("CancelOrder", {}, True, "")
    error, errors = envelope_error(
        call, _answer({"error": ["WGeneral:Note", "EOrder:Unknown order"]})
    )
    assert isinstance(error, UnknownOrder)
    error, errors = envelope_error(call, _answer({"error": ["WGeneral:Note"], "result": {}}))
    assert error is None
    assert errors == ["WGeneral:Note"]
    with pytest.raises(InvalidResponse):
        envelope_error(call, _answer({"result": {}}))

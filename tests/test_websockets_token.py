"""GetWebSocketsToken: the token that opens Kraken's authenticated WebSocket v2."""

from __future__ import annotations

import pytest

from oms.errors import ResponseShapeError
from oms.models import WebSocketToken
from oms.sandbox import Sandbox


def test_the_sandbox_hands_out_a_token_for_its_account() -> None:
    token = Sandbox.in_process(seed=3).client().websockets_token()
    assert token.token
    assert token.expires == 900


def test_the_token_never_shows_in_a_repr_or_str() -> None:
    token = WebSocketToken.from_api({"token": "c2VjcmV0LXRva2VuLXZhbHVl", "expires": "900"})
    assert token.expires == 900
    for text in (repr(token), str(token)):
        assert "c2VjcmV0" not in text
        assert "900" in text


@pytest.mark.parametrize(
    "answer",
    [
        {"expires": 900},
        {"token": "", "expires": 900},
        {"token": 5, "expires": 900},
        {"token": "abc"},
        {"token": "abc", "expires": 9.5},
        {"token": "abc", "expires": True},
        ["abc", 900],
    ],
)
def test_a_malformed_answer_is_a_shape_error(answer: object) -> None:
    with pytest.raises(ResponseShapeError):
        WebSocketToken.from_api(answer)

"""Kraken's request signing, the body encoders it depends on, and API credentials.

``API-Sign = base64(HMAC-SHA512(base64decode(secret), urlpath + SHA256(nonce + body)))``,
where *body* is byte-for-byte the body that is sent: Kraken does not canonicalise parameter
order, so the encoders here are the ones the client sends with.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from decimal import Decimal
from urllib.parse import urlencode

import attrs

from oms._decimal import fmt
from oms.errors import ValidationError

__all__ = [
    "EXAMPLE",
    "Credentials",
    "encode_form",
    "encode_json",
    "key_fingerprint",
    "key_prefix",
    "sign",
]


def _scalar(value: object) -> str:
    # Kraken wants lowercase booleans; str(True) would send "True" and be refused.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return fmt(value)
    if isinstance(value, float):
        raise ValidationError(
            f"refusing to encode float {value!r}: pass a Decimal or a string", rule="type"
        )
    return str(value)


def _flatten(params: Mapping[str, object]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            # Conditional close: {"close": {"ordertype": ...}} is sent as close[ordertype]=...
            pairs.extend((f"{key}[{sub}]", _scalar(v)) for sub, v in value.items() if v is not None)
        elif isinstance(value, (list, tuple)):
            # Kraken's list parameters (txid for QueryOrders, asset filters) are comma lists.
            pairs.append((key, ",".join(_scalar(v) for v in value)))
        else:
            pairs.append((key, _scalar(value)))
    return pairs


def encode_form(params: Mapping[str, object]) -> str:
    """Form-encode ``params`` in their order: lowercase booleans, plain decimals, ``close[...]``.

    ``+`` in values (relative ``starttm``/``expiretm``/prices) is percent-encoded as ``%2B``
    so it is not read as a space.
    """
    return urlencode(_flatten(params))


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return fmt(value)
    raise TypeError(f"cannot encode {type(value).__name__} in a Kraken JSON body")


def encode_json(params: Mapping[str, object]) -> str:
    """JSON-encode ``params`` (the batch endpoints need JSON); decimals become strings."""
    if any(isinstance(v, float) for v in params.values()):
        raise ValidationError("refusing to encode a float: pass a Decimal or a string", rule="type")
    return json.dumps(params, separators=(",", ":"), default=_json_default)


def _decode_secret(secret: str) -> bytes:
    try:
        return base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        # Never echo the secret, not even in part.
        raise ValidationError(
            "the API secret is not valid base64 (copy it exactly as Kraken shows it)",
            field="secret",
            rule="base64",
        ) from None


def sign(
    secret: str, urlpath: str, nonce: int | str, data: str | bytes | Mapping[str, object]
) -> str:
    """Return the ``API-Sign`` header value for one private request.

    ``data`` is the exact body (str or bytes) or a mapping, which is form-encoded in its
    order with :func:`encode_form` (send the same encoding). For a JSON body pass the JSON
    text; ``nonce`` is then the value of its ``"nonce"`` member.
    """
    if isinstance(data, Mapping):
        body = encode_form(data).encode()
    elif isinstance(data, str):
        body = data.encode()
    else:
        body = data
    if not urlpath.startswith("/"):
        raise ValidationError(f"urlpath must start with '/': {urlpath!r}", field="urlpath")
    digest = hashlib.sha256(str(nonce).encode() + body).digest()
    mac = hmac.new(_decode_secret(secret), urlpath.encode() + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


def key_fingerprint(key: str) -> str:
    """A stable, non-reversible name for an API key (for file names and logs)."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    """How an API key is shown anywhere (reprs, errors, logs): its first 4 characters."""
    return key[:4] + "…"


def _check_text(field: str, value: object) -> str:
    # Neither the key nor the secret is ever echoed, not even the one found wanting.
    if not isinstance(value, str) or not value:
        raise ValidationError(
            f"the API {field} must be a non-empty string", field=field, rule="type"
        )
    if value != value.strip():
        raise ValidationError(
            f"the API {field} has surrounding whitespace (a newline or space copied with it?); "
            "copy it exactly as Kraken shows it",
            field=field,
            rule="whitespace",
        )
    return value


def _check_key(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    _check_text("key", value)


def _check_secret(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    _check_text("secret", value)
    _decode_secret(value)


@attrs.frozen
class Credentials:
    """An API key pair. The secret never appears in ``repr``, logs or errors; the key only as
    a short prefix (:func:`key_prefix`), as in the client's ``repr``."""

    key: str = attrs.field(validator=_check_key, repr=lambda key: repr(key_prefix(key)))
    secret: str = attrs.field(repr=False, validator=_check_secret)

    @classmethod
    def from_env(
        cls,
        *,
        key_var: str = "KRAKEN_API_KEY",
        secret_var: str = "KRAKEN_API_SECRET",  # noqa: S107 - a variable name, not a secret
    ) -> Credentials:
        """Read the key pair from the environment."""
        key = os.environ.get(key_var, "")
        secret = os.environ.get(secret_var, "")
        if not key or not secret:
            raise ValidationError(
                f"set {key_var} and {secret_var} (Kraken → Settings → API)", field=key_var
            )
        return cls(key=key, secret=secret)

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.key)

    def sign(self, urlpath: str, nonce: int | str, data: str | bytes | Mapping[str, object]) -> str:
        return sign(self.secret, urlpath, nonce, data)


#: Kraken's documented signing example (docs "Spot REST authentication", table "Examples").
# Published values, kept whole so they can be compared by eye with Kraken's page.
EXAMPLE: Mapping[str, str] = {
    "secret": "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==",  # noqa: E501
    "path": "/0/private/AddOrder",
    "nonce": "1616492376594",
    "data": "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25",
    "signature": "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ==",  # noqa: E501
}

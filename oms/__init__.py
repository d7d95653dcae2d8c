"""oms: order management for the Kraken spot REST API.

Strategy code → :class:`OrderManager` → :class:`KrakenClient` → transport → Kraken (or
:mod:`oms.sandbox`); the SQLite order cache and the userref allocator sit beside the manager.
"""

from __future__ import annotations

from oms._version import USER_AGENT, __version__
from oms.auth import Credentials, sign
from oms.errors import (
    AllocatorExhausted,
    HTTPStatusError,
    InvalidNonce,
    KrakenError,
    OmsError,
    OutcomeUnknownError,
    ResponseShapeError,
    TransportError,
    ValidationError,
)
from oms.nonce import NonceSource

__all__ = [
    "USER_AGENT",
    "AllocatorExhausted",
    "Credentials",
    "HTTPStatusError",
    "InvalidNonce",
    "KrakenError",
    "NonceSource",
    "OmsError",
    "OutcomeUnknownError",
    "ResponseShapeError",
    "TransportError",
    "ValidationError",
    "__version__",
    "sign",
]

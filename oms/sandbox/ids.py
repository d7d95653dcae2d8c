"""Deterministic identifiers in Kraken's formats.

Kraken ids are groups of upper-case base32 characters (``A-Z2-7``), e.g. order txid
``OQJSXE-F5FOM-IXHVL4`` (6-5-6, starting with ``O``), trade id ``THVRQM-33VKH-UCI7BS``,
amend id ``TJSMEH-AA67V-YUSQ6O``, deposit refid ``QSB7IFM-Q3LT3X-NVAOKE`` and withdrawal
refid ``ASBCMYC-F5ETQT-34NMWT`` (7-6-6). The sandbox derives each one from
``(seed, kind, counter)`` with a hash, so the same seed and the same sequence of requests
give the same ids, and the state to persist is just the counters.
"""

from __future__ import annotations

import base64
import hashlib

__all__ = ["IdFactory"]

# kind -> (first letter, group lengths); lengths include the first letter.
_FORMATS: dict[str, tuple[str, tuple[int, ...]]] = {
    "order": ("O", (6, 5, 6)),
    "trade": ("T", (6, 5, 6)),
    "amend": ("T", (6, 5, 6)),
    "ledger": ("L", (6, 5, 6)),
    "deposit": ("Q", (7, 6, 6)),
    "withdrawal": ("A", (7, 6, 6)),
}


class IdFactory:
    """Hands out ids; never the same one twice for one factory."""

    def __init__(self, seed: int = 0, counters: dict[str, int] | None = None) -> None:
        self.seed = seed
        self.counters: dict[str, int] = dict(counters or {})

    def _digest(self, kind: str, size: int) -> bytes:
        n = self.counters.get(kind, 0)
        self.counters[kind] = n + 1
        return hashlib.blake2b(f"{self.seed}/{kind}/{n}".encode(), digest_size=size).digest()

    def next(self, kind: str) -> str:
        """The next id of ``kind`` (one of order, trade, amend, ledger, deposit, withdrawal)."""
        first, groups = _FORMATS[kind]
        chars = base64.b32encode(self._digest(kind, 15)).decode()
        text = first + chars
        out: list[str] = []
        pos = 0
        for length in groups:
            out.append(text[pos : pos + length])
            pos += length
        return "-".join(out)

    def hex(self, kind: str, size: int = 32) -> str:
        """A hex string (``size`` bytes), e.g. a blockchain transaction id."""
        return self._digest(kind, size).hex()

    def base58(self, kind: str, length: int = 34) -> str:
        """A base58-looking string (deposit/withdrawal addresses)."""
        alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
        value = int.from_bytes(self._digest(kind, 32), "big")
        chars: list[str] = []
        while len(chars) < length:
            value, rem = divmod(value, 58)
            chars.append(alphabet[rem])
        return "".join(chars)

    def snapshot(self) -> dict[str, object]:
        return {"seed": self.seed, "counters": dict(self.counters)}

    @classmethod
    def restore(cls, data: dict[str, object]) -> IdFactory:
        seed = data["seed"]
        counters = data["counters"]
        if not isinstance(seed, int) or not isinstance(counters, dict):
            raise ValueError("bad id factory snapshot")
        return cls(seed, {str(k): int(v) for k, v in counters.items()})

    def load(self, data: dict[str, object]) -> None:
        """Continue from :meth:`snapshot`, in place: everything holding this factory follows."""
        restored = IdFactory.restore(data)
        self.seed, self.counters = restored.seed, restored.counters

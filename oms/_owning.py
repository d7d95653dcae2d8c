"""What a history object does with the client and the store it may own (used by
:class:`oms.trade_history.TradeHistory` and :class:`oms.funding.FundingTracker`)."""

from __future__ import annotations

from typing import Any

__all__ = ["OwnsClientAndStore"]


class OwnsClientAndStore:
    """A context manager over ``client`` and ``store``: :meth:`close` closes them when the
    object owns them (what the ``from_env`` constructors give), and leaves alone what a
    caller lent it."""

    _owns: bool = False

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the client and the store if this object owns them."""
        if not self._owns:
            return
        # Read by name: each subclass declares its own client and store types.
        try:
            close_client = getattr(getattr(self, "client", None), "close", None)
            if close_client is not None:
                close_client()
        finally:
            getattr(self, "store").close()  # noqa: B009 -- see above

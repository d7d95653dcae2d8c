"""Kraken's funding endpoints, mixed into :class:`oms.client.KrakenClient`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from oms._params import (
    Endpoints,
    _amount,
    _funding_filters,
)
from oms.errors import ResponseShapeError
from oms.models import (
    DepositMethod,
    FundingPage,
    FundingTransaction,
    WithdrawInfo,
)

__all__ = ["FundingCalls"]


class FundingCalls(Endpoints):
    """Deposits and withdrawals: methods, status (paged), info, withdraw and cancel."""

    # --- funding --------------------------------------------------------------------------

    def deposit_methods(self, asset: str, *, aclass: str | None = None) -> list[DepositMethod]:
        result = self._call("DepositMethods", {"asset": asset, "aclass": aclass})
        if not isinstance(result, list):
            raise ResponseShapeError("DepositMethods: expected an array")
        return [DepositMethod.from_api(item) for item in result]

    def deposit_status(
        self,
        *,
        asset: str | None = None,
        aclass: str | None = None,
        method: str | None = None,
        start: float | int | str | None = None,
        end: float | int | str | None = None,
        cursor: bool | str | None = None,
        limit: int | None = None,
    ) -> FundingPage:
        """Recent deposits, newest first. ``cursor=True`` starts paging; pass a page's
        ``next_cursor`` for the next one (or use :meth:`iter_deposit_status`)."""
        filters = _funding_filters(asset, aclass, method, start, end, cursor, limit)
        return FundingPage.from_api(self._call("DepositStatus", filters))

    def withdraw_status(
        self,
        *,
        asset: str | None = None,
        aclass: str | None = None,
        method: str | None = None,
        start: float | int | str | None = None,
        end: float | int | str | None = None,
        cursor: bool | str | None = None,
        limit: int | None = None,
    ) -> FundingPage:
        """Recent withdrawals; the same filters and paging as :meth:`deposit_status`."""
        filters = _funding_filters(asset, aclass, method, start, end, cursor, limit)
        return FundingPage.from_api(self._call("WithdrawStatus", filters))

    def iter_deposit_status(
        self,
        *,
        asset: str | None = None,
        aclass: str | None = None,
        method: str | None = None,
        start: float | int | str | None = None,
        end: float | int | str | None = None,
        limit: int | None = None,
    ) -> Iterator[FundingTransaction]:
        """Every deposit matching the filters, following ``next_cursor`` page by page."""
        filters = _funding_filters(asset, aclass, method, start, end, None, limit)
        return self._iter_funding("DepositStatus", filters)

    def iter_withdraw_status(
        self,
        *,
        asset: str | None = None,
        aclass: str | None = None,
        method: str | None = None,
        start: float | int | str | None = None,
        end: float | int | str | None = None,
        limit: int | None = None,
    ) -> Iterator[FundingTransaction]:
        """Every withdrawal matching the filters, following ``next_cursor`` page by page."""
        filters = _funding_filters(asset, aclass, method, start, end, None, limit)
        return self._iter_funding("WithdrawStatus", filters)

    def _iter_funding(self, endpoint: str, filters: dict[str, Any]) -> Iterator[FundingTransaction]:
        cursor: bool | str = True
        seen: set[str] = set()
        while True:
            page = FundingPage.from_api(self._call(endpoint, {**filters, "cursor": cursor}))
            for item in page.items:
                if item.refid not in seen:
                    seen.add(item.refid)
                    yield item
            if page.next_cursor is None or page.next_cursor == cursor or not page.items:
                return
            cursor = page.next_cursor

    def withdraw_info(self, asset: str, key: str, amount: object) -> WithdrawInfo:
        params = {"asset": asset, "key": key, "amount": _amount(amount, "amount")}
        return WithdrawInfo.from_api(self._call("WithdrawInfo", params))

    def withdraw(
        self,
        asset: str,
        key: str,
        amount: object,
        *,
        address: str | None = None,
        max_fee: object = None,
        aclass: str | None = None,
    ) -> str:
        """Request a withdrawal to the saved address ``key``; return its ``refid``.

        Never retried once it may have reached Kraken: check :meth:`withdraw_status` instead.
        """
        params = {
            "asset": asset,
            "key": key,
            "amount": _amount(amount, "amount"),
            "address": address,
            "max_fee": None if max_fee is None else _amount(max_fee, "max_fee"),
            "aclass": aclass,
        }
        result = self._call("Withdraw", params)
        refid = result.get("refid") if isinstance(result, Mapping) else None
        if not isinstance(refid, str) or not refid:
            raise ResponseShapeError(f"Withdraw answered without a refid: {result!r}")
        return refid

    def withdraw_cancel(self, asset: str, refid: str) -> bool:
        """Ask to cancel a withdrawal not yet processed; True if the request was accepted.

        Never repeated once it may have reached Kraken (a repeat answers false, as for a
        withdrawal too far along): on a transport error check :meth:`withdraw_status`, whose
        ``status_prop`` is ``cancel-pending`` if the first request arrived.
        """
        result = self._call("WithdrawCancel", {"asset": asset, "refid": refid})
        if not isinstance(result, bool):
            raise ResponseShapeError(f"WithdrawCancel: expected true/false, got {result!r}")
        return result

"""Funding (deposits, withdrawals) and balances (see :mod:`oms.models`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal

import attrs

from oms._decimal import to_decimal
from oms.errors import ResponseShapeError
from oms.models._fields import (
    DecimalInput,
    FundingStatus,
    StatusProp,
    _bool,
    _dec,
    _list,
    _money,
    _obj,
    _opt_dec,
    _opt_money,
    _opt_str,
    _req,
    _secs,
    _str,
    _time,
)

# --- funding and balances -------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class FundingTransaction:
    """One DepositStatus / WithdrawStatus entry.

    ``status``/``status_prop`` are enums, ``UNKNOWN`` for values this library does not know;
    ``status_raw``/``status_prop_raw`` keep Kraken's exact text either way.
    """

    method: str
    aclass: str
    asset: str
    refid: str
    txid: str | None
    info: str | None
    amount: Decimal = attrs.field(converter=_money)
    fee: Decimal | None = attrs.field(default=None, converter=_opt_money)
    time: float = attrs.field(converter=_time)
    status: FundingStatus
    status_raw: str
    status_prop: StatusProp | None = None
    status_prop_raw: str | None = None
    network: str | None = None
    key: str | None = None
    originators: tuple[str, ...] | None = None

    @classmethod
    def from_api(cls, data: object) -> FundingTransaction:
        d = _obj(data, "funding")
        refid = _str(_req(d, "refid", "funding"), "funding.refid")
        lbl = f"funding {refid}"
        status_raw = _str(_req(d, "status", lbl), f"{lbl}.status")
        prop_raw = _opt_str(d.get("status-prop", d.get("status_prop")), f"{lbl}.status-prop")
        originators = d.get("originators")
        return cls(
            method=_str(_req(d, "method", lbl), f"{lbl}.method"),
            aclass=_str(d.get("aclass", "currency"), f"{lbl}.aclass"),
            asset=_str(_req(d, "asset", lbl), f"{lbl}.asset"),
            refid=refid,
            txid=_opt_str(d.get("txid"), f"{lbl}.txid") or None,
            info=_opt_str(d.get("info"), f"{lbl}.info"),
            amount=_dec(_req(d, "amount", lbl), f"{lbl}.amount"),
            fee=_opt_dec(d.get("fee"), f"{lbl}.fee"),
            time=_secs(_req(d, "time", lbl), f"{lbl}.time"),
            status=FundingStatus.parse(status_raw),
            status_raw=status_raw,
            status_prop=None if prop_raw is None else StatusProp.parse(prop_raw),
            status_prop_raw=prop_raw,
            network=_opt_str(d.get("network"), f"{lbl}.network"),
            key=_opt_str(d.get("key"), f"{lbl}.key"),
            originators=None
            if originators is None
            else tuple(_str(o, f"{lbl}.originators") for o in _list(originators, lbl)),
        )

    @property
    def is_final(self) -> bool:
        """Success or Failure: Kraken will not change this entry's status again."""
        return self.status in (FundingStatus.SUCCESS, FundingStatus.FAILURE)


# The paged DepositStatus key is only known from the docs' schema tree; accept the variants.
_FUNDING_LIST_KEYS = ("withdrawals", "deposit", "deposits")


@attrs.frozen
class FundingPage:
    """DepositStatus / WithdrawStatus: a bare array (unpaged), or an object with the list
    and ``next_cursor`` (paged). ``next_cursor`` is ``None`` on the last page."""

    items: tuple[FundingTransaction, ...]
    next_cursor: str | None = None

    @classmethod
    def from_api(cls, result: object) -> FundingPage:
        if isinstance(result, list):
            return cls(tuple(FundingTransaction.from_api(x) for x in result))
        r = _obj(result, "funding status")
        keys = [k for k in _FUNDING_LIST_KEYS if k in r]
        if len(keys) != 1:
            raise ResponseShapeError(f"funding status: expected one of {_FUNDING_LIST_KEYS}")
        cursor = r.get("next_cursor")
        return cls(
            tuple(FundingTransaction.from_api(x) for x in _list(r[keys[0]], keys[0])),
            # Kraken ends paging with a missing, null, empty or false cursor.
            cursor if isinstance(cursor, str) and cursor else None,
        )


@attrs.frozen(kw_only=True)
class DepositMethod:
    """``limit`` is ``None`` when Kraken says ``false`` (no limit)."""

    method: str
    limit: Decimal | None = attrs.field(default=None, converter=_opt_money)
    fee: Decimal | None = attrs.field(default=None, converter=_opt_money)
    address_setup_fee: Decimal | None = attrs.field(default=None, converter=_opt_money)
    gen_address: bool | None = None
    minimum: Decimal | None = attrs.field(default=None, converter=_opt_money)

    @classmethod
    def from_api(cls, data: object) -> DepositMethod:
        d = _obj(data, "deposit method")
        lbl = "deposit method"
        limit = d.get("limit")
        gen = d.get("gen-address")
        return cls(
            method=_str(_req(d, "method", lbl), f"{lbl}.method"),
            limit=None if limit is False else _opt_dec(limit, f"{lbl}.limit"),
            fee=_opt_dec(d.get("fee"), f"{lbl}.fee"),
            address_setup_fee=_opt_dec(d.get("address-setup-fee"), f"{lbl}.address-setup-fee"),
            gen_address=None if gen is None else _bool(gen, f"{lbl}.gen-address"),
            minimum=_opt_dec(d.get("minimum"), f"{lbl}.minimum"),
        )


@attrs.frozen(kw_only=True)
class WithdrawInfo:
    """``amount`` is what arrives (after ``fee``)."""

    method: str
    limit: Decimal = attrs.field(converter=_money)
    amount: Decimal = attrs.field(converter=_money)
    fee: Decimal = attrs.field(converter=_money)

    @classmethod
    def from_api(cls, result: object) -> WithdrawInfo:
        r = _obj(result, "WithdrawInfo")
        return cls(
            method=_str(_req(r, "method", "WithdrawInfo"), "WithdrawInfo.method"),
            limit=_dec(_req(r, "limit", "WithdrawInfo"), "WithdrawInfo.limit"),
            amount=_dec(_req(r, "amount", "WithdrawInfo"), "WithdrawInfo.amount"),
            fee=_dec(_req(r, "fee", "WithdrawInfo"), "WithdrawInfo.fee"),
        )


def _balances(value: Mapping[str, DecimalInput]) -> tuple[tuple[str, Decimal], ...]:
    return tuple(sorted((asset, to_decimal(v, field=asset)) for asset, v in value.items()))


@attrs.frozen
class Balance(Mapping[str, Decimal]):
    """Balance's answer: asset id → amount, read like a dict (``balance["ZUSD"]``)."""

    amounts: tuple[tuple[str, Decimal], ...] = attrs.field(converter=_balances)

    @classmethod
    def from_api(cls, result: object) -> Balance:
        r = _obj(result, "Balance")
        return cls({k: _dec(v, f"Balance.{k}") for k, v in r.items()})

    def __getitem__(self, asset: str) -> Decimal:
        for key, amount in self.amounts:
            if key == asset:
                return amount
        raise KeyError(asset)

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self.amounts)

    def __len__(self) -> int:
        return len(self.amounts)

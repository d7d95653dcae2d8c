"""Deposits and withdrawals that move through Kraken's statuses as the clock advances.

Withdrawal: ``Initial`` → ``Pending`` → ``Settled`` (the blockchain txid appears) →
``Success``; the amount leaves the balance when requested (Kraken's balances are net of
pending withdrawals) and comes back on ``Failure``. ``WithdrawCancel`` works while the
withdrawal is ``Initial`` or ``Pending``: ``status-prop`` becomes ``cancel-pending``, then
the withdrawal ends as ``Failure`` with ``status-prop`` ``canceled``.

A ``WithdrawCancel`` that comes too late (``Settled`` or later) answers false and marks the
withdrawal ``cancel-denied``.

Deposit: ``Settled`` (seen on chain, needs confirmations) → ``Success``, credited on
``Success``.

Held transactions (outcome ``onhold``) wait until :meth:`Funding.release`: a deposit shows
``Settled`` + ``onhold`` (Kraken's deposit example), a withdrawal ``On hold`` (the IFEX status
the support article lists for withdrawals) + ``onhold``. Outcome ``return`` is a return
initiated by Kraken: a deposit ends ``Success`` + ``return`` without being credited (Kraken's
example shows that pair); a withdrawal shows ``Pending`` + ``return``, cannot be cancelled,
and ends ``Failure`` + ``return`` with the money back.
"""

from __future__ import annotations

import base64
import binascii
import heapq
from decimal import Decimal
from typing import Any

import attrs

from oms._decimal import fmt
from oms.sandbox.accounts import Account
from oms.sandbox.assets import AssetSpec, AssetTable
from oms.sandbox.book import q_down
from oms.sandbox.config import SandboxConfig
from oms.sandbox.ids import IdFactory
from oms.sandbox.protocol import ApiError, Params, invalid, parse_decimal

__all__ = ["OUTCOMES", "Funding", "FundingTx"]

OUTCOMES = ("success", "failure", "onhold", "return")
DEFAULT_WITHDRAW_KEY = "sandbox"


class FundingTx:
    """One deposit or withdrawal."""

    __slots__ = (
        "account",
        "amount",
        "asset",
        "cancel_requested",
        "fee",
        "gross",
        "info",
        "key",
        "kind",
        "method",
        "next_step",
        "outcome",
        "refid",
        "seq",
        "status",
        "status_prop",
        "time",
        "txid",
    )

    def __init__(self, **values: Any) -> None:
        self.txid: str | None = None
        self.status_prop: str | None = None
        self.cancel_requested = False
        self.next_step: float | None = None
        self.key: str | None = None
        for name, value in values.items():
            setattr(self, name, value)

    account: str
    amount: Decimal  # what arrives (withdrawals: net of the fee)
    asset: str
    fee: Decimal
    gross: Decimal  # what left the balance (withdrawals) or arrives (deposits)
    info: str
    kind: str  # "deposit" | "withdrawal"
    method: str
    outcome: str
    refid: str
    seq: int
    status: str
    time: int

    def entry(self, spec: AssetSpec) -> dict[str, Any]:
        """The status entry, in the shape of Kraken's DepositStatus/WithdrawStatus."""
        out: dict[str, Any] = {
            "method": self.method,
            "aclass": "currency",
            "asset": self.asset,
            "refid": self.refid,
            "txid": self.txid,
            "info": self.info,
            "amount": fmt(q_down(self.amount, spec.decimals)),
            "fee": fmt(q_down(self.fee, spec.decimals)),
            "time": self.time,
            "status": self.status,
        }
        if self.status_prop is not None:
            out["status-prop"] = self.status_prop
        if self.kind == "withdrawal":
            # Kraken's withdrawal entries also name the network and the withdrawal key (§4.5).
            out["network"] = self.method
            out["key"] = self.key
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = fmt(value) if isinstance(value, Decimal) else value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FundingTx:
        values = dict(data)
        for name in ("amount", "fee", "gross"):
            values[name] = Decimal(values[name])
        return cls(**values)


class Funding:
    """Every account's funding transactions and the timers that move them on."""

    def __init__(self, *, assets: AssetTable, ids: IdFactory, config: SandboxConfig) -> None:
        self.assets = assets
        self.ids = ids
        self.config = config
        self.accounts: dict[str, Account] = {}
        self.timers: list[tuple[float, int, str, str]] = []  # (time, seq, account key, refid)
        self.seq = 0

    # -- lookups -----------------------------------------------------------------------

    def asset(self, name: str | None) -> AssetSpec:
        if name is None:
            raise invalid("asset")
        spec = self.assets.get(name)
        if spec is None:
            raise ApiError("EQuery:Unknown asset")
        return spec

    def address(self, acct: Account, spec: AssetSpec) -> str:
        keys = self.withdraw_keys(acct, spec)
        return keys[DEFAULT_WITHDRAW_KEY]

    def withdraw_keys(self, acct: Account, spec: AssetSpec) -> dict[str, str]:
        keys = acct.withdraw_keys.get(spec.asset_id)
        if keys is None:
            address = self.ids.base58(f"address/{acct.key}/{spec.asset_id}")
            keys = acct.withdraw_keys[spec.asset_id] = {DEFAULT_WITHDRAW_KEY: address}
        return keys

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _schedule(self, tx: FundingTx, when: float | None) -> None:
        tx.next_step = when
        if when is not None:
            heapq.heappush(self.timers, (when, self._next_seq(), tx.account, tx.refid))

    def _new(self, acct: Account, kind: str, spec: AssetSpec, **values: Any) -> FundingTx:
        tx = FundingTx(
            account=acct.key,
            kind=kind,
            refid=self.ids.next("deposit" if kind == "deposit" else "withdrawal"),
            asset=spec.asset_id,
            method=spec.method,
            seq=self._next_seq(),
            **values,
        )
        acct.funding[tx.refid] = tx
        return tx

    # -- deposits ------------------------------------------------------------------------

    def deposit(
        self, acct: Account, asset: str, amount: Decimal, *, outcome: str, now: float
    ) -> FundingTx:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        spec = self.asset(asset)
        if amount <= 0:
            raise ValueError("a deposit amount must be > 0")
        tx = self._new(
            acct,
            "deposit",
            spec,
            amount=amount,
            gross=amount,
            fee=Decimal(0),
            info=self.address(acct, spec),
            time=int(now),
            status="Settled",
            outcome=outcome,
            txid=self.ids.hex("funding-txid"),
        )
        if outcome == "onhold":
            # Kraken's deposit example: Settled with status-prop onhold (pending review).
            tx.status_prop = "onhold"
        else:
            self._schedule(tx, now + self.config.deposit_success_after)
        return tx

    # -- withdrawals ---------------------------------------------------------------------

    def _withdraw_checks(self, acct: Account, p: Params) -> tuple[AssetSpec, str, str, Decimal]:
        spec = self.asset(p.text("asset", required=True))
        key = p.text("key", required=True)
        assert key is not None
        keys = self.withdraw_keys(acct, spec)
        if key not in keys:
            raise ApiError("EFunding:Unknown withdraw key")
        raw = p.raw("amount")
        try:
            amount = parse_decimal(raw, "amount")
        except ApiError:
            raise ApiError("EFunding:Invalid amount") from None
        if amount <= 0 or amount != q_down(amount, spec.decimals) or amount <= spec.withdraw_fee:
            raise ApiError("EFunding:Invalid amount")
        return spec, key, keys[key], amount

    def withdraw_info(self, acct: Account, p: Params) -> dict[str, Any]:
        spec, _key, _address, amount = self._withdraw_checks(acct, p)
        limit = max(Decimal(0), acct.available(spec.asset_id))
        return {
            "method": spec.method,
            "limit": fmt(q_down(limit, spec.decimals)),
            "amount": fmt(q_down(amount - spec.withdraw_fee, spec.decimals)),
            "fee": fmt(q_down(spec.withdraw_fee, spec.decimals)),
        }

    def withdraw(self, acct: Account, p: Params, now: float) -> FundingTx:
        spec, key, address, amount = self._withdraw_checks(acct, p)
        given = p.text("address")
        if given is not None and given != address:
            raise ApiError("EFunding:Invalid withdrawal address")
        max_fee = p.raw("max_fee")
        if max_fee not in (None, "") and parse_decimal(max_fee, "max_fee") < spec.withdraw_fee:
            raise ApiError("EFunding:Max fee exceeded")
        if amount < spec.withdraw_minimum:
            raise ApiError("EFunding:Invalid amount")
        if amount > acct.available(spec.asset_id):
            raise ApiError("EFunding:Insufficient funds")
        outcome = acct.next_withdraw_outcome.pop(0) if acct.next_withdraw_outcome else "success"
        acct.debit(spec.asset_id, amount)
        tx = self._new(
            acct,
            "withdrawal",
            spec,
            amount=amount - spec.withdraw_fee,
            gross=amount,
            fee=spec.withdraw_fee,
            info=address,
            key=key,
            time=int(now),
            status="Initial",
            outcome=outcome,
        )
        self._schedule(tx, now + self.config.withdraw_pending_after)
        return tx

    def cancel(self, acct: Account, p: Params, now: float) -> bool:
        spec = self.asset(p.text("asset", required=True))
        refid = p.text("refid", required=True)
        tx = acct.funding.get(refid or "")
        if tx is None or tx.kind != "withdrawal" or tx.asset != spec.asset_id:
            raise ApiError("EFunding:Unknown reference id")
        if tx.cancel_requested or tx.status_prop == "return":
            return False  # asked already, or a return by Kraken, which cannot be cancelled
        if tx.status not in ("Initial", "Pending"):
            if tx.status_prop is None:
                # Too late: the cancel request is recorded as denied.
                tx.status_prop = "cancel-denied"
            return False
        tx.cancel_requested = True
        tx.status_prop = "cancel-pending"
        self._schedule(tx, now + self.config.withdraw_cancel_after)
        return True

    def release(self, acct: Account, refid: str, outcome: str, now: float) -> FundingTx:
        """Take a transaction off hold; it then continues to ``outcome``."""
        if outcome not in ("success", "failure"):
            raise ValueError("outcome must be 'success' or 'failure'")
        tx = acct.funding.get(refid)
        if tx is None or tx.status_prop != "onhold":
            raise KeyError(f"no transaction on hold with refid {refid!r}")
        tx.outcome = outcome
        tx.status_prop = None
        if tx.kind == "deposit":
            self._schedule(tx, now + self.config.deposit_success_after)
        else:
            tx.status = "Pending"
            self._schedule(tx, now + self.config.withdraw_settled_after)
        return tx

    # -- time ----------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        timers = self.timers
        while timers and timers[0][0] <= now:
            when, _, key, refid = heapq.heappop(timers)
            acct = self.accounts.get(key)
            tx = acct.funding.get(refid) if acct is not None else None
            if acct is None or tx is None or tx.next_step != when:
                continue
            self._step(acct, tx, when)

    def _step(self, acct: Account, tx: FundingTx, now: float) -> None:
        tx.next_step = None
        if tx.kind == "deposit":
            if tx.outcome == "failure":
                tx.status = "Failure"
            elif tx.outcome == "return":
                # Kraken returns it to the sender: Success + return, never credited.
                tx.status, tx.status_prop = "Success", "return"
            else:
                tx.status = "Success"
                acct.credit(tx.asset, tx.gross)
            return
        if tx.cancel_requested and tx.status in ("Initial", "Pending"):
            tx.status, tx.status_prop = "Failure", "canceled"
            acct.credit(tx.asset, tx.gross)
            return
        if tx.status == "Initial":
            if tx.outcome == "onhold":
                # The seed's withdrawal status for a manual check, with the documented prop.
                tx.status, tx.status_prop = "On hold", "onhold"
                return
            tx.status = "Pending"
            if tx.outcome == "return":
                tx.status_prop = "return"
            self._schedule(tx, now + self.config.withdraw_settled_after)
        elif tx.status == "Pending":
            if tx.outcome in ("failure", "return"):
                tx.status = "Failure"
                acct.credit(tx.asset, tx.gross)
            else:
                tx.status = "Settled"
                tx.txid = self.ids.hex("funding-txid")
                self._schedule(tx, now + self.config.withdraw_success_after)
        elif tx.status == "Settled":
            tx.status = "Success"

    # -- history for newcomers -------------------------------------------------------------

    def seed_history(self, acct: Account, now: float) -> None:
        """A few finished transactions in the past, so the status endpoints show every shape.

        They are history only: the account's starting balances already include them.
        """
        doge = self.asset("XXDG")
        day = 86400

        def past(
            kind: str, days: float, amount: str, status: str, prop: str | None, with_txid: bool
        ) -> None:
            fee = doge.withdraw_fee if kind == "withdrawal" else Decimal(0)
            tx = self._new(
                acct,
                kind,
                doge,
                amount=Decimal(amount),
                gross=Decimal(amount) + fee,
                fee=fee,
                info=self.address(acct, doge),
                key=DEFAULT_WITHDRAW_KEY if kind == "withdrawal" else None,
                time=int(now - days * day),
                status=status,
                outcome="success",
            )
            tx.status_prop = prop
            if with_txid:
                tx.txid = self.ids.hex("funding-txid")

        past("deposit", 9, "997", "Success", None, True)
        past("deposit", 8, "150", "Failure", None, True)
        past("withdrawal", 5, "98", "Success", None, True)
        past("withdrawal", 3, "48", "Failure", "canceled", False)

    # -- status endpoints ----------------------------------------------------------------

    def status(self, acct: Account, kind: str, p: Params) -> Any:
        """DepositStatus / WithdrawStatus: newest first; a bare list, or with ``cursor`` an
        object ``{"deposit"|"withdrawals": [...], "next_cursor": ...}``."""
        asset_name = p.text("asset")
        spec = self.asset(asset_name) if asset_name is not None else None
        method = p.text("method")
        aclass = p.text("aclass")
        start = p.integer("start", low=0)
        end = p.integer("end", low=0)
        limit = p.integer("limit", low=1, default=25 if kind == "deposit" else 500)
        assert limit is not None
        paged, after = _cursor(p.raw("cursor"))
        wanted = _StatusFilter(
            kind=kind,
            asset_id=spec.asset_id if spec is not None else None,
            method=method,
            aclass=aclass,
            start=start,
            end=end,
        )
        items = [tx for tx in acct.funding.values() if wanted.matches(tx)]
        items.sort(key=lambda tx: (tx.time, tx.seq), reverse=True)
        if after is not None:
            items = [tx for tx in items if (tx.time, tx.seq) < after]
        page = items[:limit]
        entries = [tx.entry(self.assets.ensure(tx.asset)) for tx in page]
        if not paged:
            return entries
        more = len(items) > limit
        next_cursor = _encode_cursor(page[-1].time, page[-1].seq) if more and page else None
        return {
            "deposit" if kind == "deposit" else "withdrawals": entries,
            "next_cursor": next_cursor,
        }

    def methods(self, p: Params) -> list[dict[str, Any]]:
        spec = self.asset(p.text("asset", required=True))
        zero = fmt(q_down(Decimal(0), spec.decimals))
        return [
            {
                "method": spec.method,
                "limit": False,
                "fee": zero,
                "address-setup-fee": zero if spec.crypto else None,
                "gen-address": spec.crypto,
                "minimum": fmt(q_down(spec.deposit_minimum, spec.decimals)),
            }
        ]

    # -- persistence ---------------------------------------------------------------------

    def restore_tx(self, acct: Account, tx: FundingTx) -> None:
        acct.funding[tx.refid] = tx
        self.seq = max(self.seq, tx.seq)
        if tx.next_step is not None:
            heapq.heappush(self.timers, (tx.next_step, self._next_seq(), tx.account, tx.refid))


@attrs.frozen
class _StatusFilter:
    """DepositStatus / WithdrawStatus filters; ``None`` lets everything through."""

    kind: str
    asset_id: str | None
    method: str | None
    aclass: str | None
    start: int | None
    end: int | None

    def matches(self, tx: FundingTx) -> bool:
        return (
            tx.kind == self.kind
            and (self.asset_id is None or tx.asset == self.asset_id)
            and (self.method is None or tx.method == self.method)
            and (self.aclass is None or self.aclass == "currency")
            and (self.start is None or tx.time >= self.start)
            and (self.end is None or tx.time <= self.end)
        )


def _cursor(raw: object) -> tuple[bool, tuple[int, int] | None]:
    """``cursor``: ``true`` asks for pages, a cursor from ``next_cursor`` continues them."""
    if isinstance(raw, bool):
        return raw, None
    if not isinstance(raw, str) or raw == "":
        return False, None
    lowered = raw.lower()
    if lowered in ("true", "1"):
        return True, None
    if lowered in ("false", "0"):
        return False, None
    return True, _decode_cursor(raw)


def _encode_cursor(time: int, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{time}:{seq}".encode()).decode().rstrip("=")


def _decode_cursor(text: str) -> tuple[int, int]:
    try:
        padded = text + "=" * (-len(text) % 4)
        time, seq = base64.urlsafe_b64decode(padded.encode()).decode().split(":")
        return int(time), int(seq)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid("cursor") from None

"""Order identity holds against things outside one database and one clock: other programs on
the account, a database from another exchange, clock steps, unknown orders, slow servers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from oms.account import AccountIdentity, AccountState, parse_userref_range
from oms.auth import Credentials
from oms.cache import IntentState, OrderCache
from oms.client import KrakenClient
from oms.errors import DatabaseBindingError, NonceLockTimeout, RequestTimeout, ValidationError
from oms.manager import OrderManager
from oms.models import CancelResult, Order, OrderStatus, ServerTime
from oms.nonce import NonceSource
from oms.orders import OrderRequest
from oms.sandbox import ManualClock, Sandbox
from oms.transport import Transport

START = 1_700_000_000.0


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private oms data directory: account state and nonces of this test only."""
    folder = tmp_path / "oms-data"
    monkeypatch.setenv("OMS_DATA_DIR", str(folder))
    monkeypatch.delenv("OMS_ACCOUNT", raising=False)
    monkeypatch.delenv("OMS_USERREF_RANGE", raising=False)
    return folder


@pytest.fixture
def sb(data_dir: Path) -> Iterator[Sandbox]:
    box = Sandbox.in_process(seed=11, clock=ManualClock(START))
    yield box
    box.close()


def make(sb: Sandbox, db: Path | OrderCache, **kw: Any) -> OrderManager:
    clock = sb.clock
    assert isinstance(clock, ManualClock)
    kw.setdefault("clock", clock.time)
    kw.setdefault("sleep", clock.advance)
    return OrderManager(kw.pop("client", None) or sb.client(), db, **kw)


def far(sb: Sandbox) -> Decimal:
    return (sb.market.last_price("XBTUSD") * Decimal("0.5")).quantize(Decimal("0.1"))


def limit(sb: Sandbox, volume: str = "0.001", **kw: Any) -> OrderRequest:
    return OrderRequest(
        pair="XBTUSD", side="buy", ordertype="limit", volume=volume, price=far(sb), **kw
    )


def on_exchange(sb: Sandbox) -> dict[str, Order]:
    client = sb.client()
    found = {o.txid: o for o in client.open_orders()}
    found.update({o.txid: o for o in client.iter_closed_orders()})
    return found


# --- account-wide userrefs ----------------------------------------------------------------------

_ALLOCATE = textwrap.dedent(
    """
    import json, sys
    from oms.auth import Credentials
    from oms.client import KrakenClient
    from oms.manager import OrderManager
    base_url, key, secret, db, n = sys.argv[1:6]
    client = KrakenClient(Credentials(key, secret), base_url=base_url)
    with OrderManager(client, db) as m:
        print(json.dumps([m.new_group(f"g{i}").userref for i in range(int(n))]))
    """
)


def test_two_databases_on_one_key_in_two_processes_never_share_a_userref(
    data_dir: Path, tmp_path: Path
) -> None:
    sb = Sandbox.serve(seed=12)
    try:
        env = {**os.environ, "OMS_DATA_DIR": str(data_dir)}
        children = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _ALLOCATE,
                    sb.base_url,
                    sb.key,
                    sb.secret,
                    str(tmp_path / f"p{n}.db"),
                    "200",
                ],
                stdout=subprocess.PIPE,
                env=env,
                text=True,
            )
            for n in range(2)
        ]
        outputs = [child.communicate(timeout=120)[0] for child in children]
        assert [child.returncode for child in children] == [0, 0]
    finally:
        sb.close()
    first, second = (json.loads(out) for out in outputs)
    assert len(set(first)) == len(set(second)) == 200
    assert set(first).isdisjoint(second)


def test_a_recreated_database_continues_the_account_sequence(sb: Sandbox, tmp_path: Path) -> None:
    db = tmp_path / "orders.db"
    with make(sb, db) as m:
        refs = [m.place(limit(sb)).userref for _ in range(3)]
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with make(sb, db) as again:
        fresh = again.place(limit(sb)).userref
        group = again.new_group("after").userref
    assert fresh > max(refs)
    assert group not in refs


def test_keys_tied_by_an_account_name_share_one_sequence(sb: Sandbox, tmp_path: Path) -> None:
    sb.add_account()
    with (
        make(sb, tmp_path / "a.db", account="main") as a,
        make(sb, tmp_path / "b.db", account="main", client=sb.client(account=1)) as b,
    ):
        assert a.allocator.store is not None
        refs = [a.new_group("a").userref, b.new_group("b").userref, a.new_group("a2").userref]
    assert refs == sorted(set(refs))
    assert AccountIdentity.of(name="main").label == "account 'main'"


def test_a_foreign_order_in_range_is_reported_and_its_userref_never_handed_out(
    sb: Sandbox, tmp_path: Path
) -> None:
    with make(sb, tmp_path / "mine.db") as m:
        start = m.new_group("first").userref
        # Another host (no shared state) places with the next userrefs this one would use.
        stranger = sb.client().add_order(limit(sb, userref=start + 1))
        result = m.sync()
        assert result.foreign == stranger.txids
        assert m.new_group("second").userref == start + 2
        assert m.sync().foreign == ()  # reported when first seen, not at every sync
    # A database made afterwards skips it too: the reservation is machine-wide.
    with make(sb, tmp_path / "fresh.db") as fresh:
        assert fresh.new_group("third").userref == start + 3


def test_a_sub_range_setting_confines_allocation(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lo, hi = parse_userref_range("3/4")
    monkeypatch.setenv("OMS_USERREF_RANGE", "3/4")
    with make(sb, tmp_path / "h3.db") as m:
        assert (m.allocator.lo, m.allocator.hi) == (lo, hi)
        assert lo <= m.new_group("g").userref <= hi
    with make(sb, tmp_path / "h.db", userref_range="5000-5009") as m:
        assert m.new_group("g").userref == 5000
    with pytest.raises(ValidationError):
        parse_userref_range("5/4")


# --- a database knows its exchange ----------------------------------------------------------


def test_a_database_opened_against_another_sandbox_is_refused(
    data_dir: Path, tmp_path: Path
) -> None:
    db = tmp_path / "orders.db"
    first, second = Sandbox.serve(seed=21), Sandbox.serve(seed=22)
    try:
        with OrderManager(first.client(), db) as m:
            m.place(limit(first))
        with pytest.raises(DatabaseBindingError) as info:
            OrderManager(second.client(), db)
        assert first.base_url in str(info.value)
        assert second.base_url in str(info.value)
        assert second.key not in str(info.value)  # a short prefix at most
        with OrderManager(second.client(), db, rebind=True) as m:
            assert m.cache.binding() is not None
    finally:
        first.close()
        second.close()


def test_the_cache_never_rewrites_an_orders_userref(sb: Sandbox, tmp_path: Path) -> None:
    with make(sb, tmp_path / "x.db") as m:
        placed = m.place(limit(sb))
        cached = m.cache.order(str(placed.txid))
        assert cached is not None
        with pytest.raises(DatabaseBindingError):
            m.cache.upsert_orders([_with_userref(cached, placed.userref + 41)])
        again = m.cache.order(str(placed.txid))
        assert again is not None
        assert again.userref == placed.userref


def _with_userref(order: Order, userref: int) -> Order:
    import attrs

    return attrs.evolve(order, userref=userref)


# --- clock steps --------------------------------------------------------------------------------


class SteppingClock:
    """The manager's clock: the exchange's plus a skew a test changes at will."""

    def __init__(self, sb: Sandbox) -> None:
        assert isinstance(sb.clock, ManualClock)
        self.base = sb.clock
        self.skew = 0.0

    def __call__(self) -> float:
        return self.base.time() + self.skew


@pytest.mark.parametrize("step", [8.0, 60.0, -3.8, -60.0])
def test_a_clock_step_before_a_lost_answer_never_sends_twice(
    sb: Sandbox, tmp_path: Path, step: float
) -> None:
    clock = SteppingClock(sb)
    with make(sb, tmp_path / "s.db", clock=clock, deadline=3) as m:
        m.place(limit(sb))  # calibrated
        clock.skew = step
        sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
        placed = m.place(limit(sb))
        sb.faults.clear()
        assert placed.placed
        assert placed.attempts == 1  # found, not sent again
        assert placed.reconciled
        same = [o for o in on_exchange(sb).values() if o.userref == placed.userref]
        assert [o.txid for o in same] == [placed.txid]


@pytest.mark.parametrize("step", [-60.0, -3.8, 8.0, 60.0])
def test_a_clock_step_never_makes_a_placement_fail(
    sb: Sandbox, tmp_path: Path, step: float
) -> None:
    clock = SteppingClock(sb)
    with make(sb, tmp_path / "s.db", clock=clock, deadline=3) as m:
        m.place(limit(sb))
        clock.skew = step
        assert m.place(limit(sb)).placed


def test_an_injected_clock_off_by_thirty_seconds_still_places(sb: Sandbox, tmp_path: Path) -> None:
    for skew in (-30.0, 30.0):
        clock = SteppingClock(sb)
        clock.skew = skew
        with make(sb, tmp_path / f"o{skew}.db", clock=clock) as m:
            assert m.place(limit(sb)).placed


def test_a_slow_time_answer_at_calibration_never_fails_later_placements(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = SteppingClock(sb)
    with make(sb, tmp_path / "slow.db", clock=clock, deadline=3) as m:
        real_time = m.client.time

        def slow() -> ServerTime:
            answer = real_time()
            clock.skew += 1.5  # the answer took 1.5 s to arrive (the local clock moved on)
            return answer

        monkeypatch.setattr(m.client, "time", slow)
        for _ in range(3):
            assert m.place(limit(sb)).placed
        assert m.server_clock.uncertainty >= 1.5


def test_a_lookup_never_adopts_an_order_of_another_volume(sb: Sandbox, tmp_path: Path) -> None:
    with make(sb, tmp_path / "v.db") as m:
        group = m.new_group("g")
        stranger = sb.client().add_order(limit(sb, volume="0.002", userref=group.userref))
        sb.faults.add(method="AddOrder", kind="drop_before_commit", count=1)
        placed = m.place(limit(sb, volume="0.001"), group=group)
        sb.faults.clear()
        assert placed.txid not in stranger.txids
        assert placed.attempts == 2  # proven absent, then sent again
        assert not placed.reconciled


# --- never wedged -------------------------------------------------------------------------------


def _ghost(like: Order) -> Order:
    import attrs

    return attrs.evolve(like, txid="OGHOST-AAAAA-BBBBBB")


def test_a_cached_open_order_the_exchange_does_not_know_never_wedges_sync(
    sb: Sandbox, tmp_path: Path
) -> None:
    with make(sb, tmp_path / "g.db") as m:
        group = m.new_group("g")
        placed = m.place(limit(sb), group=group)
        real = m.cache.order(str(placed.txid))
        assert real is not None
        m.cache.upsert_orders([_ghost(real)])
        sb.client().cancel_order(txid=str(placed.txid))  # closed, so sync must query it
        result = m.sync()
        assert result.missing == ("OGHOST-AAAAA-BBBBBB",)
        [(ghost, _, note)] = m.cache.missing_orders()
        assert ghost.txid == "OGHOST-AAAAA-BBBBBB"
        assert "QueryOrders" in note
        again = m.cache.order(str(placed.txid))
        assert again is not None
        assert again.status is OrderStatus.CANCELED
        assert "OGHOST-AAAAA-BBBBBB" not in m.cache.txids(status=["open", "pending"])
        assert m.sync().missing == ()  # not asked again
        assert m.cancel_group(group).ok


# --- group cancel checks ------------------------------------------------------------------------


def test_a_member_left_open_is_not_confirmed_empty(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with make(sb, tmp_path / "c.db") as m:
        group = m.new_group("g")
        member = m.place(limit(sb), group=group)
        monkeypatch.setattr(m.client, "cancel_order", lambda **kw: CancelResult(1))
        result = m.cancel_group(group)
        assert not result.confirmed_empty
        assert result.leftovers == (member.txid,)
        assert not result.ok


def test_a_count_that_does_not_match_is_not_ok(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with make(sb, tmp_path / "n.db") as m:
        group = m.new_group("g")
        m.place(limit(sb), group=group)
        real = m.client.cancel_order

        def inflated(**kw: Any) -> CancelResult:
            return CancelResult(real(**kw).count + 1)

        monkeypatch.setattr(m.client, "cancel_order", inflated)
        result = m.cancel_group(group)
        assert result.confirmed_empty
        assert not result.ok


def test_two_programs_sharing_a_userref_never_cancel_each_others_orders(
    data_dir: Path, tmp_path: Path
) -> None:
    sb = Sandbox.serve(seed=31)
    try:
        with OrderManager(sb.client(), tmp_path / "a.db") as a:
            group = a.new_group("a", userref=777)
            mine = [a.place(limit(sb), group=group) for _ in range(2)]
            with OrderManager(sb.client(), tmp_path / "b.db") as b:
                theirs = b.place(limit(sb), group=b.new_group("b", userref=777))
                result = a.cancel_group(777)
        assert result.ok
        assert set(result.cancelled) == {p.txid for p in mine}
        assert result.outsiders == (theirs.txid,)
        assert on_exchange(sb)[str(theirs.txid)].status is OrderStatus.OPEN
    finally:
        sb.close()


def test_sync_reads_every_closed_orders_page(sb: Sandbox, tmp_path: Path) -> None:
    other = sb.client()
    with make(sb, tmp_path / "p.db", userref_range="1-1000") as m:
        m.sync()
        for n in range(60):
            placed = other.add_order(limit(sb, userref=5000 + n))
            other.cancel_order(txid=placed.txids[0])
        result = m.sync()
        assert result.closed == 60
        assert m.cache.count(status="canceled") == 60


def test_recover_resolves_pending_intents_on_demand(sb: Sandbox, tmp_path: Path) -> None:
    with make(sb, tmp_path / "r.db") as m:
        m.place(limit(sb))
        sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
        sb.faults.add(method="OpenOrders", kind="html", status=502, when="before", count=12)
        with pytest.raises(Exception, match="could not tell"):
            m.place(limit(sb))
        sb.faults.clear()
        report = m.recover()
        assert len(report.placed) == 1
        assert m.cache.intents(states=[IntentState.PENDING, IntentState.UNKNOWN]) == []


# --- bounded calls ------------------------------------------------------------------------------


def _trickling_server(answer: bytes, gap: float) -> tuple[int, list[int], threading.Event]:
    """A loopback server that sends ``answer`` one byte every ``gap`` seconds; counts bytes."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    sent = [0]
    done = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        try:
            for byte in answer:
                conn.sendall(bytes([byte]))
                sent[0] += 1
                time.sleep(gap)
        except OSError:
            pass
        finally:
            conn.close()
            server.close()
            done.set()

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1], sent, done


def test_a_trickling_server_is_cut_off_by_the_overall_deadline() -> None:
    body = b'{"error":[],"result":{"unixtime":1700000000,"rfc1123":"x"}}'
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    port, sent, done = _trickling_server(answer, 0.02)
    transport = Transport(timeout=(3.05, 10.0), total_timeout=0.5)
    with pytest.raises(RequestTimeout) as info:
        transport.request("GET", f"http://127.0.0.1:{port}/0/public/Time")
    assert "overall deadline" in str(info.value)
    assert done.wait(10)
    assert sent[0] < len(answer)  # the client hung up before the answer was complete
    transport.close()


_HOLD = textwrap.dedent(
    """
    import sys
    from oms.nonce import NonceSource
    source = NonceSource("f" * 64, directory=sys.argv[1])
    with source.reserve():
        print("held", flush=True)
        sys.stdin.read()
    """
)


def test_a_process_waiting_for_the_nonce_lock_is_told_who_holds_it(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        waiting = NonceSource("f" * 64, directory=tmp_path, lock_timeout=0.2)
        with pytest.raises(NonceLockTimeout) as info:
            waiting.next()
        assert f"process {holder.pid}" in str(info.value)
        assert "held it for" in str(info.value)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
        assert holder.stdout is not None
        holder.stdout.close()


def test_the_nonce_lock_is_held_until_the_signed_request_has_been_sent(sb: Sandbox) -> None:
    client = sb.client()
    assert sb.adapter is not None
    seen: list[bool] = []
    real_send = sb.adapter.send

    def send(request: Any, *args: Any, **kwargs: Any) -> Any:
        if "/private/" in str(request.url):
            seen.append(client.nonce_source.held)
        return real_send(request, *args, **kwargs)

    sb.adapter.send = send  # type: ignore[method-assign]
    client.balance()
    assert seen == [True]


def test_an_account_state_file_is_named_by_a_hash_never_the_key(data_dir: Path) -> None:
    key = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghijklmnopqrst"
    state = AccountState.for_account(AccountIdentity.of(key=key))
    try:
        assert key not in state.path
        assert key[:8] not in state.path
        assert state.get_meta("label") == "key AbCd…"
    finally:
        state.close()


def test_a_client_refuses_nothing_a_manager_built_from_credentials_needs() -> None:
    creds = Credentials("k" * 56, "c2VjcmV0")
    client = KrakenClient(creds, base_url="http://127.0.0.1:1", total_timeout=5)
    assert client.transport.total_timeout == 5
    client.close()


def _sandbox_identity(*args: str) -> dict[str, str]:
    child = subprocess.Popen(
        [sys.executable, "-m", "oms", "sandbox", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line: dict[str, str] = json.loads(child.stdout.readline())
    finally:
        child.terminate()
        child.wait(timeout=30)
        assert child.stdout is not None
        child.stdout.close()
    return line


def test_each_oms_sandbox_start_is_a_new_exchange_unless_seeded() -> None:
    first, second = _sandbox_identity(), _sandbox_identity()
    assert first["key"] != second["key"]
    assert first["secret"] != second["secret"]
    assert _sandbox_identity("--seed", "5")["key"] == _sandbox_identity("--seed", "5")["key"]


# --- more pins ----------------------------------------------------------------------------------


def test_another_account_on_the_same_exchange_is_refused(sb: Sandbox, tmp_path: Path) -> None:
    sb.add_account()
    db = tmp_path / "one.db"
    with make(sb, db):
        pass
    with pytest.raises(DatabaseBindingError) as info:
        make(sb, db, client=sb.client(account=1))
    assert "key " in str(info.value)


@pytest.mark.parametrize(
    "change",
    [{"volume": "0.002"}, {"price_offset": Decimal("-1")}, {"side": "sell"}],
)
def test_a_lookup_adopts_only_an_order_matching_every_fixed_field(
    sb: Sandbox, tmp_path: Path, change: dict[str, Any]
) -> None:
    with make(sb, tmp_path / "f.db") as m:
        group = m.new_group("g")
        fields: dict[str, Any] = {
            "pair": "XBTUSD",
            "side": "buy",
            "ordertype": "limit",
            "volume": "0.001",
            "price": far(sb),
        }
        other = dict(fields)
        if "volume" in change:
            other["volume"] = change["volume"]
        if "price_offset" in change:
            other["price"] = far(sb) + change["price_offset"]
        if "side" in change:
            other["side"] = "sell"
            other["price"] = far(sb) * 4
        stranger = sb.client().add_order(OrderRequest(**other, userref=group.userref))
        sb.faults.add(method="AddOrder", kind="drop_before_commit", count=1)
        placed = m.place(OrderRequest(**fields), group=group)
        sb.faults.clear()
        assert placed.txid not in stranger.txids
        assert placed.attempts == 2


def test_a_lookup_never_adopts_an_identical_order_placed_before_the_send(
    sb: Sandbox, tmp_path: Path
) -> None:
    with make(sb, tmp_path / "t.db") as m:
        group = m.new_group("g")
        request = limit(sb)
        stranger = sb.client().add_order(attrs_evolve(request, userref=group.userref))
        assert isinstance(sb.clock, ManualClock)
        sb.clock.advance(120)  # long before this placement (and Kraken's Time says so)
        m.server_clock.invalidate()
        sb.faults.add(method="AddOrder", kind="drop_before_commit", count=1)
        placed = m.place(request, group=group)
        sb.faults.clear()
        assert placed.txid not in stranger.txids
        assert placed.attempts == 2


def attrs_evolve(request: OrderRequest, **changes: Any) -> OrderRequest:
    import attrs

    return attrs.evolve(request, **changes)


def test_a_batch_group_cancel_leaves_strangers_of_one_group_open(
    sb: Sandbox, tmp_path: Path
) -> None:
    with make(sb, tmp_path / "b.db") as m:
        clean, shared = m.new_group("clean"), m.new_group("shared")
        mine = [m.place(limit(sb), group=g) for g in (clean, clean, shared)]
        stranger = sb.client().add_order(limit(sb, userref=shared.userref))
        result = m.cancel_groups([clean, shared])
        assert result.ok
        assert set(result.cancelled) == {p.txid for p in mine}
        assert result.by_txid == (mine[2].txid,)
        assert result.outsiders == stranger.txids
        assert on_exchange(sb)[stranger.txids[0]].status is OrderStatus.OPEN


def test_kraken_time_unreadable_before_the_first_placement_sends_nothing(
    sb: Sandbox, tmp_path: Path
) -> None:
    from oms.errors import ServerTimeUnavailable

    with make(sb, tmp_path / "u.db") as m:
        sb.faults.add(method="Time", kind="drop_before_commit", count=100)
        with pytest.raises(ServerTimeUnavailable) as info:
            m.place(limit(sb))
        sb.faults.clear()
        assert info.value.outcome_known
        assert m.cache.intents() == []
        assert on_exchange(sb) == {}


def test_a_lost_answer_is_confirmed_with_one_time_call(sb: Sandbox, tmp_path: Path) -> None:
    assert isinstance(sb.clock, ManualClock)
    with make(sb, tmp_path / "one.db", monotonic=sb.clock.time) as m:
        m.place(limit(sb))
        before = m.requests.get("Time", 0)
        sb.clock.advance(0.37)  # a deadline on a fractional second
        sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
        assert m.place(limit(sb)).reconciled
        assert m.requests["Time"] - before == 1


# --- regressions found by review ----------------------------------------------------------------


def test_overlapping_ranges_on_one_account_never_hand_out_one_userref_twice(
    sb: Sandbox, tmp_path: Path
) -> None:
    with (
        make(sb, tmp_path / "a.db", userref_range="1/4") as a,
        make(sb, tmp_path / "b.db") as b,
    ):
        refs = [a.new_group("a").userref, b.new_group("b").userref, a.new_group("a2").userref]
    assert len(set(refs)) == 3


def test_a_key_used_with_and_without_its_account_name_shares_one_sequence(
    sb: Sandbox, tmp_path: Path
) -> None:
    with make(sb, tmp_path / "plain.db") as plain:
        first = plain.new_group("before the name").userref
        with make(sb, tmp_path / "named.db", account="main") as named:
            second = named.new_group("named").userref
            third = plain.new_group("still running, key only").userref
        with make(sb, tmp_path / "later.db") as later:
            fourth = later.new_group("key only, started later").userref
    assert len({first, second, third, fourth}) == 4
    assert second > first


def test_a_group_cancel_cancels_the_groups_undecided_order_too(sb: Sandbox, tmp_path: Path) -> None:
    with make(sb, tmp_path / "u.db") as m:
        group = m.new_group("g")
        m.place(limit(sb), group=group)
        sb.faults.add(method="AddOrder", kind="drop_after_commit", count=1)
        sb.faults.add(method="OpenOrders", kind="html", status=502, when="before", count=12)
        with pytest.raises(Exception, match="could not tell"):
            m.place(limit(sb), group=group)
        sb.faults.clear()
        result = m.cancel_group(group)
        assert result.ok
        assert len(result.cancelled) == 2
        assert [o for o in on_exchange(sb).values() if o.is_open] == []


def test_a_stale_time_answer_never_lets_a_lookup_adopt_a_strangers_identical_order(
    sb: Sandbox, tmp_path: Path
) -> None:
    assert isinstance(sb.clock, ManualClock)
    clock = sb.clock
    kw: dict[str, Any] = {"monotonic": clock.time}
    request = limit(sb, userref=42)
    with make(sb, tmp_path / "a.db", **kw) as a, make(sb, tmp_path / "b.db", **kw) as b:
        a.now()  # A learns Kraken's time long before it places
        clock.advance(50)
        theirs = b.place(request)
        clock.advance(50)
        sb.faults.add(method="AddOrder", kind="html", status=502, when="before", count=1)
        mine = a.place(request)
        sb.faults.clear()
        assert mine.txid != theirs.txid
        assert not mine.reconciled


def test_an_intent_that_waited_before_its_send_gets_a_fresh_deadline(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(sb.clock, ManualClock)
    clock = sb.clock
    with make(sb, tmp_path / "t.db", deadline=3) as m:
        group = m.new_group("g")
        real_write = m.cache.add_intent

        def write_then_wait(*args: Any, **kw: Any) -> Any:
            written = real_write(*args, **kw)
            clock.advance(20)  # e.g. waiting for the group's turn behind a slow placement
            return written

        monkeypatch.setattr(m.cache, "add_intent", write_then_wait)
        placed = m.place(limit(sb), group=group)
        assert placed.placed
        assert placed.attempts == 1


def test_a_clock_step_during_the_time_call_never_fails_a_placement(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = SteppingClock(sb)
    with make(sb, tmp_path / "d.db", clock=clock, deadline=3) as m:
        real_time = m.client.time
        steps = [-40.0]

        def stepping() -> ServerTime:
            answer = real_time()
            if steps:
                clock.skew += steps.pop()
            return answer

        monkeypatch.setattr(m.client, "time", stepping)
        assert m.place(limit(sb)).placed


def test_a_foreign_order_first_cached_by_a_lookup_is_still_reserved(
    sb: Sandbox, tmp_path: Path
) -> None:
    with make(sb, tmp_path / "x.db") as m:
        start = m.new_group("g").userref
        stranger = sb.client().add_order(limit(sb, userref=start + 1))
        assert [o.txid for o in m.find_by_userref(start + 1)] == list(stranger.txids)
        assert m.sync().foreign == stranger.txids
    with make(sb, tmp_path / "new.db") as fresh:
        assert fresh.new_group("h").userref == start + 2

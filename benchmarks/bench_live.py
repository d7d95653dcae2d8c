"""Live order updates (issue #11): what following orders over WebSocket v2 costs and saves.

    python benchmarks/bench_live.py            # 300 fills, a 10-minute ladder, 100 disconnects
    python benchmarks/bench_live.py --quick    # a smoke run
    python benchmarks/bench_live.py --fills 1000 --disconnects 300 --json

Every figure is taken against a sandbox served on 127.0.0.1 (REST and WebSocket v2), in this
process; nothing else is contacted. The issue's three figures:

(1) Event latency on loopback: 300 market orders placed through a *separate* client (none of
    the manager's own REST calls in the way), each waited for before the next. Per fill, p50
    and p99 of the time to the strategy's callback (which ``follow()`` calls after the cache
    write), for the ``trade`` event and the ``filled`` one: from the fill itself (the
    exchange's stamp on the event; split into the way to the cache write, the write, and on to
    the callback), from the moment the separate client's AddOrder was answered (the fill
    exists then: the sandbox queues the events before it sends the answer; the stream often
    wins, so this one may be negative), and from the moment it was sent. Same-run baseline:
    the REST AddOrder round trip, with the ratios of the p50s to it.
(2) REST calls a 10-minute ladder needs: 120 steps of 5 s of exchange time (a ManualClock,
    which the manager also uses as its monotonic clock, as a real clock would run), each
    placing one resting buy just below the market, cancelling the oldest while more than 5
    are open, and a market order every 4th step. The polling strategy calls ``sync()`` every
    step (and once at the end) to learn fills and cancels; the streaming one calls ``follow()``
    once and reads the cache (the benchmark waits, through the sandbox, until the callback has
    seen every event queued, so both decide on the same state). Both run the same market path
    and must make the same decisions (asserted). ``manager.requests`` is counted without
    AddOrder and CancelOrder (the same in both); also shown: the part spent outside ``place()``
    and ``cancel()``, i.e. on learning. Both must end with the cache equal to REST QueryOrders
    (status, vol_exec, cost, fee) for every txid (asserted).
(3) 100 forced disconnects (``sb.ws.drop()``) during a run with fills: each round places a
    market order and a resting one through the manager, sometimes cancels one through the
    manager or through another client (only the stream tells the cache of that one; before or
    after the drop), drops the connection and waits until the stream is live again. At the
    end the cache is compared with REST QueryOrders for every txid ("orders differing"; the
    run exits 1 unless none), with the reconnects, gaps, resyncs and the REST calls the
    manager sent between each drop and the stream being live again.

The client-side pacing is off, and so are the sandbox's rate limits: the figures are the
library's and the loopback's, not the pacing's. The sandbox runs in this process, so its
threads share the interpreter with the client's; the baselines pay the same.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import ROUND_DOWN, Decimal
from functools import partial
from pathlib import Path
from typing import Any

import attrs

from oms.client import KrakenClient
from oms.live.follower import OrderUpdate
from oms.manager import OrderManager, Placement
from oms.models import Order
from oms.orders import OrderRequest
from oms.ratelimit import RateLimiter
from oms.sandbox import ManualClock, Sandbox, SandboxConfig

#: The sandbox's rate limits off (the public one too: Ticker and Time are asked often): the
#: benchmark measures the library, not the pacing.
UNLIMITED = SandboxConfig(rest_rate_limit=False, trading_rate_limit=False, public_rate_limit=False)
#: Heartbeats come every second: 2.5 s without a message is a silent connection.
LIVE: dict[str, Any] = {"silence": 2.5, "backoff": (0.01, 0.05)}
#: The exchange time the ladder starts at (its sandbox runs on a ManualClock).
T0 = 1_800_000_000.0
#: How far below the market a resting order of the disconnect run sits (it never fills).
FAR = Decimal(20000)
#: What the cache and REST must agree on, order by order.
COMPARED = ("status", "vol_exec", "cost", "fee")
#: The requests both ladder strategies send alike (left out of the comparison).
TRADING = ("AddOrder", "CancelOrder")
#: Hang guard for every wait (never a measurement).
PATIENCE = 30.0
PAIR = "XBTUSD"
PAIR_ID = "XXBTZUSD"
TICK = Decimal("0.1")


class Unpaced(RateLimiter):
    """A limiter that never makes a call wait: Kraken's trading counter (60 points on the
    starter tier, one per AddOrder) would pace 300 fills to one a second, and on a ManualClock
    a paced wait would move the exchange's time."""

    def plan(self, method: str, params: Mapping[str, Any] | None = None, *, now: float) -> float:
        return 0.0

    def reserve(self, method: str, params: Mapping[str, Any] | None = None, *, now: float) -> float:
        return 0.0


def open_manager(sb: Sandbox, db: Path, **options: Any) -> OrderManager:
    return OrderManager.on_sandbox(
        sb, db, live_options=LIVE, client_options={"rate_limiter": Unpaced()}, **options
    )


def other_client(sb: Sandbox) -> KrakenClient:
    """Another program on the same account (the same machine-wide nonce source)."""
    return sb.client(rate_limiter=Unpaced())


def market(side: str, volume: str = "0.001") -> OrderRequest:
    """An order that fills at once (as taker): pending_new, new, trade, filled."""
    return OrderRequest(pair=PAIR, side=side, ordertype="market", volume=volume)


def limit(price: Decimal, volume: str = "0.001") -> OrderRequest:
    return OrderRequest(pair=PAIR, side="buy", ordertype="limit", volume=volume, price=price)


def last_price(client: KrakenClient) -> Decimal:
    return Decimal(client.ticker(PAIR)[PAIR_ID].last)


def settle(check: Callable[[], bool], timeout: float = PATIENCE, step: float = 0.002) -> bool:
    """Wait (a hang guard, not a measurement) until ``check()`` holds; whether it did."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(step)
    return check()


def quantile(samples: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``samples``, linear between the closest ranks."""
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def without(counts: Mapping[str, int], left_out: Iterable[str]) -> dict[str, int]:
    skip = set(left_out)
    return {k: v for k, v in sorted(counts.items()) if k not in skip and v}


def delta(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}


class HttpCounts:
    """A client hook: the HTTP requests a client really sent, by method (a cross-check of
    ``manager.requests``, which the manager's parts add to by hand)."""

    def __init__(self) -> None:
        self.sent: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, method: str, private: bool, error: Exception | None) -> None:
        with self._lock:
            self.sent[method] = self.sent.get(method, 0) + 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.sent)


def view(order: Order) -> dict[str, Any]:
    return {name: getattr(order, name) for name in COMPARED}


def differences(manager: OrderManager, truth: KrakenClient, txids: Sequence[str]) -> list[str]:
    """Each txid whose cached order differs from what REST QueryOrders says now (asked
    through ``truth``, another client: the manager's counts stay as the run left them)."""
    rest = {o.txid: view(o) for o in truth.query_orders(list(txids))} if txids else {}
    out = []
    for txid in txids:
        cached = manager.cache.order(txid)
        if txid not in rest or cached is None or view(cached) != rest[txid]:
            shown = view(cached) if cached is not None else None
            out.append(f"{txid}: cache {shown} != REST {rest.get(txid)}")
    return out


def settled_differences(
    manager: OrderManager, truth: KrakenClient, txids: Sequence[str], timeout: float = 10.0
) -> list[str]:
    """:func:`differences` once the stream has had a moment to land what it already sent."""
    found: list[str] = []

    def agree() -> bool:
        nonlocal found
        found = differences(manager, truth, txids)
        return not found

    settle(agree, timeout=timeout, step=0.05)
    return found


# --- (1) event latency ----------------------------------------------------------------------


class WriteTimes:
    """When the last cache write began and ended (perf_counter): instrumentation of this one
    manager's cache, whose ``revise_orders`` (the follower's one write per message) it wraps.
    In the latency run only the stream's thread writes, so the callback that follows a write
    reads the times of that write."""

    def __init__(self, cache: Any) -> None:
        self.began = self.ended = 0.0
        inner = cache.revise_orders

        def timed(*args: Any, **kwargs: Any) -> Any:
            self.began = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.ended = time.perf_counter()

        setattr(cache, "revise_orders", timed)  # noqa: B010 -- an instance attribute, on purpose


@attrs.define
class Arrivals:
    """What the strategy's callback saw of each order, by ``exec_type`` (``trade``,
    ``filled``): when (perf_counter), how long after the exchange stamped the event (wall
    clock: the sandbox is on the system clock, the stamp is the fill's time), and the cache
    write that came before it."""

    writes: WriteTimes
    seen: dict[str, dict[str, float]] = attrs.Factory(lambda: {"trade": {}, "filled": {}})
    lag: dict[str, dict[str, float]] = attrs.Factory(lambda: {"trade": {}, "filled": {}})
    write: dict[str, tuple[float, float]] = attrs.Factory(dict)  # trade: began, ended
    done: dict[str, threading.Event] = attrs.Factory(dict)
    lock: threading.Lock = attrs.Factory(threading.Lock)

    def waiter(self, txid: str) -> threading.Event:
        with self.lock:
            return self.done.setdefault(txid, threading.Event())

    def __call__(self, update: OrderUpdate) -> None:
        now, wall = time.perf_counter(), time.time()
        event = update.event
        kind = event.exec_type
        if kind not in self.seen or event.txid in self.seen[kind]:
            return
        self.seen[kind][event.txid] = now
        if event.timestamp is not None:
            self.lag[kind][event.txid] = wall - event.timestamp
        if kind == "trade":
            self.write[event.txid] = (self.writes.began, self.writes.ended)
        if kind == "filled":
            self.waiter(event.txid).set()


def measure_latency(fills: int, warmup: int, seed: int, directory: Path) -> dict[str, Any]:
    sent: dict[str, float] = {}
    answered: dict[str, float] = {}
    with (
        Sandbox.serve(seed=seed, config=UNLIMITED) as sb,
        open_manager(sb, directory / "latency.db") as manager,
        other_client(sb) as trader,
    ):
        arrivals = Arrivals(WriteTimes(manager.cache))
        manager.follow(arrivals)
        before = dict(manager.requests)
        for n in range(warmup + fills):
            t_sent = time.perf_counter()
            result = trader.add_order(market("buy" if n % 2 == 0 else "sell"))
            t_answered = time.perf_counter()
            txid = result.txids[0]
            if not arrivals.waiter(txid).wait(PATIENCE):
                raise RuntimeError(f"no filled event for {txid} within {PATIENCE:g} s")
            if n >= warmup:
                sent[txid], answered[txid] = t_sent, t_answered
        stream_rest = delta(dict(manager.requests), before)
        wrong = settled_differences(manager, trader, list(sent))
    assert not wrong, "\n".join(wrong[:10])
    figures: dict[str, Any] = {
        "fills": len(sent),
        "addorder_rtt_ms": [(answered[t] - sent[t]) * 1e3 for t in sent],
        "stream_rest": stream_rest,
    }
    # The trade's way from the exchange to the strategy, in three legs (wall clock for the
    # first: the stamp is the exchange's; the write's end is taken back to wall time through
    # the callback's moment, both clocks read together).
    write = arrivals.write
    figures["write_ms"] = [(write[t][1] - write[t][0]) * 1e3 for t in sent]
    figures["written_to_trade_ms"] = [(arrivals.seen["trade"][t] - write[t][1]) * 1e3 for t in sent]
    figures["fill_to_write_ms"] = [
        (arrivals.lag["trade"][t] - (arrivals.seen["trade"][t] - write[t][0])) * 1e3 for t in sent
    ]
    for kind in ("trade", "filled"):
        seen, lag = arrivals.seen[kind], arrivals.lag[kind]
        figures[f"fill_to_{kind}_ms"] = [lag[t] * 1e3 for t in sent]
        figures[f"answer_to_{kind}_ms"] = [(seen[t] - answered[t]) * 1e3 for t in sent]
        figures[f"send_to_{kind}_ms"] = [(seen[t] - sent[t]) * 1e3 for t in sent]
    return figures


# --- (2) the ladder: streaming against polling ----------------------------------------------


@attrs.define
class Ladder:
    streaming: bool
    requests: dict[str, int]
    acting: dict[str, int]
    http: dict[str, int]
    placed: int
    cancelled: int
    filled_resting: int
    txids: list[str]
    exchange_seconds: float
    decisions: list[tuple[str, ...]]


class SeenSequence:
    """The highest executions sequence the strategy's callback has seen (delivered after the
    cache write): the benchmark's barrier, so the streaming strategy decides on the same
    state as the polling one after its sync. It reads the sandbox, never REST."""

    def __init__(self) -> None:
        self.highest = 0

    def __call__(self, update: OrderUpdate) -> None:
        if update.event.sequence is not None:
            self.highest = max(self.highest, update.event.sequence)

    def caught_up(self, sb: Sandbox) -> bool:
        connections = sb.ws.connections
        if len(connections) != 1:
            return False
        queued = int(connections[0].describe()["sequence"].get("executions", 0))
        return queued <= 1 or self.highest >= queued


def run_ladder(streaming: bool, steps: int, seed: int, directory: Path) -> Ladder:
    clock = ManualClock(T0)
    name = "streaming" if streaming else "polling"
    with (
        Sandbox.serve(seed=seed, config=UNLIMITED, clock=clock) as sb,
        # The manager's monotonic clock is the exchange's too: otherwise each 5 s step looks
        # like the local clock stepping, and the server's Time is asked again every step.
        open_manager(sb, directory / f"ladder-{name}.db", monotonic=clock.time) as manager,
        other_client(sb) as outside,
    ):
        http = HttpCounts()
        manager.client.add_hook(http)
        seen = SeenSequence()

        def learn() -> None:
            if not streaming:
                manager.sync()
            elif not settle(lambda: seen.caught_up(sb)):
                raise RuntimeError("the stream did not catch up with the sandbox")

        acting: dict[str, int] = {}

        def act(call: Callable[[], Any]) -> Any:
            """A placement or a cancel, and the requests it made itself."""
            before = dict(manager.requests)
            try:
                return call()
            finally:
                for method, count in delta(dict(manager.requests), before).items():
                    acting[method] = acting.get(method, 0) + count

        if streaming:
            manager.follow(seen)
        ladder: list[str] = []
        txids: list[str] = []
        decisions: list[tuple[str, ...]] = []
        cancelled = 0
        for step in range(1, steps + 1):
            clock.advance(5.0)
            sb.exchange.advance()
            learn()
            still_open = {o.txid for o in manager.cache.open_orders()}
            resting = [t for t in ladder if t in still_open]
            price = last_price(outside) * Decimal("0.9996")
            request = limit(price.quantize(TICK, rounding=ROUND_DOWN))
            placed: Placement = act(partial(manager.place, request))
            assert placed.txid is not None
            ladder.append(placed.txid)
            txids.append(placed.txid)
            resting.append(placed.txid)
            gone = resting[: max(0, len(resting) - 5)]
            for txid in gone:
                act(partial(manager.cancel, txid))
            cancelled += len(gone)
            decision = [
                f"{step}",
                f"open={len(resting)}",
                *(f"cancel #{ladder.index(t)}" for t in gone),
            ]
            if step % 4 == 0:
                side = "buy" if step % 8 == 0 else "sell"
                taken: Placement = act(partial(manager.place, market(side)))
                assert taken.txid is not None
                txids.append(taken.txid)
                decision.append("market")
            decisions.append(tuple(decision))
        learn()  # the end of the run: what the strategy knows now
        requests, sent = dict(manager.requests), http.snapshot()
        exchange_seconds = clock.time() - T0
        wrong = settled_differences(manager, outside, txids)
        closed = [manager.cache.order(t) for t in ladder]
        filled = sum(1 for o in closed if o is not None and o.status.value == "closed")
    assert not wrong, f"{name}: the cache differs from REST:\n" + "\n".join(wrong[:10])
    return Ladder(
        streaming=streaming,
        requests=requests,
        acting=acting,
        http=sent,
        placed=len(txids),
        cancelled=cancelled,
        filled_resting=filled,
        txids=txids,
        exchange_seconds=exchange_seconds,
        decisions=decisions,
    )


# --- (3) forced disconnects -----------------------------------------------------------------


def run_disconnects(rounds: int, seed: int, directory: Path) -> dict[str, Any]:
    with (
        Sandbox.serve(seed=seed, config=UNLIMITED) as sb,
        open_manager(sb, directory / "disconnects.db") as manager,
        other_client(sb) as elsewhere,
    ):
        http = HttpCounts()
        manager.client.add_hook(http)
        manager.follow()
        txids: list[str] = []
        resting: list[str] = []
        reconnecting: dict[str, int] = {}
        reconnecting_http: dict[str, int] = {}
        cancelled_here = cancelled_elsewhere = 0
        waited: list[float] = []
        for n in range(rounds):
            taken = manager.place(market("buy" if n % 2 else "sell"))
            far = manager.place(limit(last_price(elsewhere) - FAR - n % 50))
            assert taken.txid is not None
            assert far.txid is not None
            txids += [taken.txid, far.txid]
            resting.append(far.txid)
            if n % 5 == 1 or len(resting) > 20:
                manager.cancel(resting.pop(0))
                cancelled_here += 1
            status = manager.stream_status
            assert status is not None
            connections = status.connections
            before, sent_before = dict(manager.requests), http.snapshot()
            # The other program cancels while the stream is up (its event may be in flight
            # when the connection drops) or while it is down.
            elsewhere_now = n % 3 == 0 and len(resting) > 1
            if elsewhere_now and n % 2 == 0:
                elsewhere.cancel_order(txid=resting.pop(0))
            sb.ws.drop()
            if elsewhere_now and n % 2 == 1:
                elsewhere.cancel_order(txid=resting.pop(0))
            cancelled_elsewhere += elsewhere_now
            t0 = time.perf_counter()

            def back(connections: int = connections) -> bool:
                now = manager.stream_status
                return now is not None and now.connections > connections and now.live

            if not settle(back):
                raise RuntimeError(f"round {n}: the stream was not live again in {PATIENCE:g} s")
            waited.append(time.perf_counter() - t0)
            for method, count in delta(dict(manager.requests), before).items():
                reconnecting[method] = reconnecting.get(method, 0) + count
            for method, count in delta(http.snapshot(), sent_before).items():
                reconnecting_http[method] = reconnecting_http.get(method, 0) + count
        wrong = settled_differences(manager, elsewhere, txids)
        status = manager.stream_status
        assert status is not None
        total = dict(manager.requests)
    return {
        "rounds": rounds,
        "orders": len(txids),
        "cancelled_here": cancelled_here,
        "cancelled_elsewhere": cancelled_elsewhere,
        "differing": len(wrong),
        "examples": wrong[:5],
        "reconnects": status.reconnects,
        "connections": status.connections,
        "gaps": status.gaps,
        "resyncs": status.resyncs,
        "reconnect_rest": reconnecting,
        "reconnect_http": reconnecting_http,
        "total_rest": total,
        "back_live_ms": [x * 1e3 for x in waited],
    }


# --- reporting ------------------------------------------------------------------------------


def summary(samples: Sequence[float]) -> str:
    return f"p50 {quantile(samples, 0.5):7.2f}   p99 {quantile(samples, 0.99):7.2f}"


def percentiles(figures: Mapping[str, Any]) -> dict[str, Any]:
    """``figures`` with each list of samples (``*_ms``) as its p50 and p99."""
    return {
        k: {"p50": quantile(v, 0.5), "p99": quantile(v, 0.99)} if k.endswith("_ms") else v
        for k, v in figures.items()
    }


def report_latency(figures: Mapping[str, Any]) -> None:
    rtt = quantile(figures["addorder_rtt_ms"], 0.5)
    print(f"(1) event latency on loopback, {figures['fills']} fills (ms)")
    rows = (
        ("REST AddOrder round trip (baseline)", "addorder_rtt_ms"),
        ("fill (exchange's stamp) -> callback, trade", "fill_to_trade_ms"),
        ("    fill -> the cache write begins", "fill_to_write_ms"),
        ("    the cache write (one transaction)", "write_ms"),
        ("    cache written -> callback", "written_to_trade_ms"),
        ("fill (exchange's stamp) -> callback, filled", "fill_to_filled_ms"),
        ("AddOrder answered -> callback, trade", "answer_to_trade_ms"),
        ("AddOrder answered -> callback, filled", "answer_to_filled_ms"),
        ("AddOrder sent -> callback, trade", "send_to_trade_ms"),
        ("AddOrder sent -> callback, filled", "send_to_filled_ms"),
    )
    for label, key in rows:
        print(f"    {label:<46}{summary(figures[key])}")
    print("    ratios of p50s to the AddOrder round trip's:")
    for label, key in (
        ("fill -> trade callback", "fill_to_trade_ms"),
        ("AddOrder answered -> trade callback", "answer_to_trade_ms"),
        ("AddOrder sent -> trade callback", "send_to_trade_ms"),
        ("AddOrder sent -> filled callback", "send_to_filled_ms"),
    ):
        print(f"        {label:<42}{quantile(figures[key], 0.5) / rtt:6.2f}x")
    print("    (below 0: the callback ran before the REST answer reached the program)")
    print(f"    REST calls the stream made meanwhile: {figures['stream_rest'] or 'none'}")


def report_ladder(polling: Ladder, streaming: Ladder) -> None:
    print(f"\n(2) REST calls of a {polling.exchange_seconds / 60:g}-minute ladder")
    for run in (polling, streaming):
        label = "streaming (follow)" if run.streaming else "polling (sync every 5 s)"
        counted = without(run.requests, TRADING)
        print(f"    {label:<26}{sum(counted.values()):>5} calls  {counted}")
    p = sum(without(polling.requests, TRADING).values())
    s = sum(without(streaming.requests, TRADING).values())
    print(f"    ratio polling / streaming: {p / s:.1f}x  (streaming needs {s / p:.1%} of it)")
    # What placing and cancelling spent inside place()/cancel() (the server's Time for the
    # deadline, the cancels' QueryOrders, AssetPairs once) is alike; the rest is what the
    # strategy paid to learn fills and cancels.
    lp = p - sum(without(polling.acting, TRADING).values())
    ls = s - sum(without(streaming.acting, TRADING).values())
    print(f"    of which spent learning fills and cancels: polling {lp}, streaming {ls}", end="")
    print(f" ({lp / ls:.0f}x)" if ls else "")
    trading = without(polling.requests, ())
    print(
        f"    both: {polling.placed} orders placed, {polling.cancelled} cancelled, "
        f"{polling.filled_resting} resting orders filled; AddOrder/CancelOrder "
        f"{trading.get('AddOrder', 0)}/{trading.get('CancelOrder', 0)} (left out)"
    )
    print("    cache == REST QueryOrders (status, vol_exec, cost, fee) at the end: both, asserted")
    for run in (polling, streaming):
        if without(run.http, TRADING) != without(run.requests, TRADING):
            label = "streaming" if run.streaming else "polling"
            print(f"    note, {label}: HTTP requests sent {without(run.http, TRADING)}")


def report_disconnects(figures: Mapping[str, Any]) -> None:
    spent = figures["reconnect_rest"]
    print(f"\n(3) {figures['rounds']} forced disconnects during a run with fills")
    print(
        f"    {figures['orders']} orders, {figures['cancelled_here']} cancelled by the manager, "
        f"{figures['cancelled_elsewhere']} by another client"
    )
    print(f"    orders differing: {figures['differing']}")
    for line in figures["examples"]:
        print(f"        {line}")
    print(
        f"    reconnects: {figures['reconnects']}  gaps: {figures['gaps']}  "
        f"resyncs: {figures['resyncs']}  connections: {figures['connections']}"
    )
    per = sum(spent.values()) / max(1, figures["rounds"])
    print(f"    REST calls spent on the resyncs: {sum(spent.values())} ({per:.1f} each) {spent}")
    if figures["reconnect_http"] != spent:
        print(f"    note: HTTP requests the client really sent then: {figures['reconnect_http']}")
    print(f"    back live after a drop: {summary(figures['back_live_ms'])} ms")


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small workloads (a smoke run)")
    parser.add_argument("--fills", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--steps", type=int, default=120, help="5-second ladder steps")
    parser.add_argument("--disconnects", type=int, default=100)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.quick:
        args.fills, args.warmup, args.steps, args.disconnects = 40, 5, 24, 10
    # Reconnections log a warning each; the figures say how many there were.
    logging.getLogger("oms").setLevel(logging.ERROR)
    directory = Path(tempfile.mkdtemp(prefix="oms-bench-live-"))
    os.environ["OMS_DATA_DIR"] = str(directory / "data")
    started = time.perf_counter()
    latency = measure_latency(args.fills, args.warmup, args.seed, directory)
    polling = run_ladder(False, args.steps, args.seed, directory)
    streaming = run_ladder(True, args.steps, args.seed, directory)
    assert polling.decisions == streaming.decisions, "the two ladders decided differently"
    disconnects = run_disconnects(args.disconnects, args.seed, directory)
    if args.json:
        ladder = {
            run_name: {"requests": run.requests, "http": run.http, "placed": run.placed}
            for run_name, run in (("polling", polling), ("streaming", streaming))
        }
        figures = {
            "latency": percentiles(latency),
            "ladder": ladder,
            "disconnects": percentiles(disconnects),
        }
        print(json.dumps(figures, indent=2))
        return 0 if disconnects["differing"] == 0 else 1
    report_latency(latency)
    report_ladder(polling, streaming)
    report_disconnects(disconnects)
    print(f"\n({time.perf_counter() - started:.0f} s in all)")
    return 0 if disconnects["differing"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""The rate-limit model follows Kraken's published counters: it never goes negative, and a call
sent after the planned wait never takes a counter above its maximum."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms.errors import ValidationError
from oms.ratelimit import (
    AMEND_PENALTY,
    CANCEL_PENALTY,
    DEFAULT_HISTORY_COST,
    EDIT_PENALTY,
    REST_EXEMPT,
    REST_LIMITS,
    TRADING_LIMITS,
    Counter,
    RateLimiter,
    Tier,
    age_penalty,
)

EPS = 1e-6

# --- the published tables -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "maximum", "decay"),
    [("starter", 15, 0.33), ("intermediate", 20, 0.5), ("pro", 20, 1.0)],
)
def test_rest_tiers(tier: str, maximum: float, decay: float) -> None:
    assert REST_LIMITS[Tier(tier)] == (maximum, decay)


@pytest.mark.parametrize(
    ("tier", "threshold", "decay", "open_orders"),
    [("starter", 60, 1.0, 60), ("intermediate", 125, 2.34, 80), ("pro", 180, 3.75, 225)],
)
def test_trading_tiers(tier: str, threshold: float, decay: float, open_orders: int) -> None:
    limits = TRADING_LIMITS[Tier(tier)]
    assert (limits.threshold, limits.decay, limits.max_open_orders) == (
        threshold,
        decay,
        open_orders,
    )


@pytest.mark.parametrize(
    ("table", "age", "penalty"),
    [
        (CANCEL_PENALTY, 0.0, 8),
        (CANCEL_PENALTY, 4.99, 8),
        (CANCEL_PENALTY, 5.0, 6),
        (CANCEL_PENALTY, 9.9, 6),
        (CANCEL_PENALTY, 14.0, 5),
        (CANCEL_PENALTY, 44.0, 4),
        (CANCEL_PENALTY, 89.0, 2),
        (CANCEL_PENALTY, 299.0, 1),
        (CANCEL_PENALTY, 300.0, 0),
        (CANCEL_PENALTY, None, 0),
        (AMEND_PENALTY, 1.0, 3),
        (AMEND_PENALTY, 7.0, 2),
        (AMEND_PENALTY, 12.0, 1),
        (AMEND_PENALTY, 15.0, 0),
        (EDIT_PENALTY, 1.0, 6),
        (EDIT_PENALTY, 6.0, 5),
        (EDIT_PENALTY, 11.0, 4),
        (EDIT_PENALTY, 30.0, 2),
        (EDIT_PENALTY, 60.0, 1),
        (EDIT_PENALTY, 90.0, 0),
    ],
)
def test_age_penalties(
    table: tuple[tuple[float, int], ...], age: float | None, penalty: int
) -> None:
    assert age_penalty(table, age) == penalty


@pytest.mark.parametrize(
    ("method", "cost"),
    [
        ("Balance", 1),
        ("OpenOrders", 1),
        # Kraken's current docs: ledger/trade history +4 (older copies +2; the higher is safe).
        ("ClosedOrders", 4),
        ("TradesHistory", 4),
        ("Ledgers", 4),
        ("QueryLedgers", 4),
        ("AddOrder", 0),
        ("CancelOrder", 0),
        ("AddOrderBatch", 0),
        ("CancelOrderBatch", 0),
        ("AmendOrder", 1),
    ],
)
def test_rest_costs(method: str, cost: float) -> None:
    assert RateLimiter().rest_cost(method) == cost


def test_history_cost_and_overrides_are_configurable() -> None:
    limiter = RateLimiter(history_cost=2, costs={"Balance": 3, "Ledgers": 5})
    assert limiter.rest_cost("ClosedOrders") == 2
    assert limiter.rest_cost("Ledgers") == 5
    assert limiter.rest_cost("Balance") == 3


def test_history_default_is_the_conservative_reading() -> None:
    # Reference §6.1: current docs +4, older copies +2, "pick conservatively".
    assert DEFAULT_HISTORY_COST == 4
    assert RateLimiter().history_cost == DEFAULT_HISTORY_COST


def test_negative_history_cost_refused() -> None:
    with pytest.raises(ValidationError) as info:
        RateLimiter(history_cost=-1)
    assert info.value.field == "history_cost"


@pytest.mark.parametrize("tier", list(Tier))
def test_history_calls_paced_at_four_points(tier: Tier) -> None:
    # A fresh counter takes max // 4 history calls at once; the next one waits for 4 points.
    limiter = RateLimiter(tier)
    maximum, decay = REST_LIMITS[tier]
    calls = int(maximum // 4)
    waits = [limiter.reserve("Ledgers", now=0.0) for _ in range(calls + 1)]
    assert waits[:calls] == [0.0] * calls
    expected = (calls * 4 + 4 - maximum) / decay
    assert waits[calls] == pytest.approx(expected)


def test_bad_tier_refused() -> None:
    with pytest.raises(ValidationError):
        RateLimiter("gold")


# --- Kraken's worked examples ------------------------------------------------------------------


def test_docs_example_add_amend_cancel_costs_eight() -> None:
    # add, amend 7 s later, cancel 36 s after that: 1 + (1 + 2) + 4 = 8 (reference §6.2).
    limiter = RateLimiter("intermediate")
    params = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "userref": 7}
    costs = [limiter.trading_costs("AddOrder", params, now=0)["XBTUSD"]]
    limiter.record("AddOrder", params, {"txid": ["OAAA"]}, now=0)
    costs.append(limiter.trading_costs("AmendOrder", {"txid": "OAAA"}, now=7)["XBTUSD"])
    limiter.record("AmendOrder", {"txid": "OAAA"}, {"amend_id": "T"}, now=7)
    costs.append(limiter.trading_costs("CancelOrder", {"txid": "OAAA"}, now=43)["XBTUSD"])
    assert costs == [1, 3, 4]
    assert sum(costs) == 8


def test_docs_example_decay() -> None:
    # 50 points, then 10 s at Intermediate: 50 - 23.4 = 26.6.
    counter = Counter(maximum=125, decay=2.34).add(50, 0.0)
    assert counter.level(10.0) == pytest.approx(26.6)


def test_support_example_pro_twenty_orders_cancelled_after_three_seconds() -> None:
    limiter = RateLimiter("pro")
    for i in range(20):
        limiter.record("AddOrder", {"pair": "XBTUSD"}, {"txid": [f"O{i}"]}, now=0)
    adds = 20 * limiter.trading_costs("AddOrder", {"pair": "XBTUSD"}, now=0)["XBTUSD"]
    cancels = sum(
        limiter.trading_costs("CancelOrder", {"txid": f"O{i}"}, now=3)["XBTUSD"] for i in range(20)
    )
    assert adds + cancels == 180 == TRADING_LIMITS[Tier.PRO].threshold


def test_batch_costs() -> None:
    limiter = RateLimiter()
    batch = {"pair": "XBT/USD", "orders": [{"userref": 1}, {"userref": 2}, {"cl_ord_id": "a"}]}
    assert limiter.trading_costs("AddOrderBatch", batch, now=0) == {"XBTUSD": 1.5}
    answer = {"orders": [{"txid": "T1"}, {"txid": "T2"}, {"txid": "T3"}]}
    limiter.record("AddOrderBatch", batch, answer, now=0)
    cancel = {"orders": ["T1", 2], "cl_ord_ids": ["a"]}
    assert limiter.trading_costs("CancelOrderBatch", cancel, now=1) == {"XBTUSD": 24}


# --- pacing ---------------------------------------------------------------------------------


def test_rest_counter_paces_the_sixteenth_call_at_starter() -> None:
    limiter = RateLimiter("starter")
    waits = [limiter.reserve("Balance", now=0.0) for _ in range(16)]
    assert waits[:15] == [0.0] * 15
    assert waits[15] == pytest.approx(1 / 0.33)


def test_add_and_cancel_are_not_rest_paced() -> None:
    limiter = RateLimiter("starter")
    waits = [limiter.reserve("AddOrder", {"pair": "X"}, now=0.0) for _ in range(20)]
    assert waits == [0.0] * 20
    assert limiter.rest_level(0.0) == 0


def test_cancel_of_young_order_is_paced_by_trading_counter() -> None:
    limiter = RateLimiter("starter")
    for i in range(60):
        assert limiter.reserve("AddOrder", {"pair": "XBTUSD"}, now=0.0) == 0.0
        limiter.record("AddOrder", {"pair": "XBTUSD"}, {"txid": [f"O{i}"]}, now=0.0)
    # The counter is at its threshold (60): a cancel costing 8 waits 8 s at 1 point/s.
    assert limiter.plan("CancelOrder", {"txid": "O1"}, now=0.0) == pytest.approx(8.0)
    # An unknown order costs nothing and is never delayed.
    assert limiter.plan("CancelOrder", {"txid": "OTHER"}, now=0.0) == 0.0


def test_batch_cancel_is_never_delayed_but_counts() -> None:
    limiter = RateLimiter("starter")
    for i in range(60):
        limiter.reserve("AddOrder", {"pair": "XBTUSD"}, now=0.0)
        limiter.record("AddOrder", {"pair": "XBTUSD"}, {"txid": [f"O{i}"]}, now=0.0)
    assert limiter.reserve("CancelOrderBatch", {"orders": ["O1", "O2"]}, now=0.0) == 0.0
    assert limiter.trading_level("XBTUSD", 0.0) == 76


def test_callbacks_give_age_and_pair_of_orders_placed_elsewhere() -> None:
    limiter = RateLimiter(order_age=lambda ref: 2.0 if ref == "77" else None, order_pair=str.upper)
    assert limiter.trading_costs("CancelOrder", {"txid": 77}, now=0) == {"77": 8}
    assert limiter.trading_costs("CancelOrder", {"txid": "x"}, now=0) == {"X": 0}


def test_exceeded_saturates_the_counter() -> None:
    limiter = RateLimiter("intermediate")
    limiter.exceeded(now=5.0)
    assert limiter.rest_level(5.0) == 20
    assert limiter.plan("Balance", now=5.0) == pytest.approx(2.0)
    limiter.exceeded(now=5.0, trading=True, method="AddOrder", params={"pair": "ETHUSD"})
    assert limiter.trading_level("ETHUSD", 5.0) == 125


def test_memory_of_orders_expires_after_300_seconds() -> None:
    limiter = RateLimiter()
    limiter.record("AddOrder", {"pair": "XBTUSD"}, {"txid": ["O1"]}, now=0.0)
    limiter.record("AddOrder", {"pair": "XBTUSD"}, {"txid": ["O2"]}, now=301.0)
    assert limiter.trading_costs("CancelOrder", {"txid": "O1"}, now=302.0) == {}


def test_reservations_from_threads_queue_up() -> None:
    limiter = RateLimiter("starter")
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        wait = limiter.reserve("Balance", now=0.0)
        with lock:
            waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 15 fit at once; each further call waits one more point's decay.
    assert sorted(waits) == pytest.approx([0.0] * 15 + [n / 0.33 for n in range(1, 16)])


def test_repr_names_the_tier() -> None:
    assert repr(RateLimiter("pro")) == "RateLimiter(tier='pro')"


# --- properties -----------------------------------------------------------------------------

steps = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=30, allow_nan=False),  # time passing before the call
        st.floats(min_value=0, max_value=25, allow_nan=False),  # its cost
    ),
    max_size=40,
)
maxima = st.floats(min_value=1, max_value=200, allow_nan=False)
decays = st.floats(min_value=0.1, max_value=5, allow_nan=False)


@given(maxima, decays, steps)
def test_counter_never_negative_and_never_planned_above_max(
    maximum: float, decay: float, calls: list[tuple[float, float]]
) -> None:
    counter = Counter(maximum=maximum, decay=decay)
    now = 0.0
    for elapsed, cost in calls:
        now += elapsed
        wait = counter.wait(cost, now)
        assert wait >= 0
        assert counter.level(now) >= 0
        send_at = now + wait
        if cost <= maximum:
            assert counter.level(send_at) + cost <= maximum + EPS
        counter = counter.add(cost, send_at)
        now = send_at
        assert counter.level(now) >= 0
        assert counter.level(now + 1e6) == 0


@given(maxima, decays, st.lists(st.floats(min_value=0, max_value=25, allow_nan=False), max_size=40))
def test_reservations_at_one_instant_never_overlap_above_max(
    maximum: float, decay: float, costs: list[float]
) -> None:
    counter = Counter(maximum=maximum, decay=decay)
    for cost in costs:
        wait = counter.wait(cost, 0.0)
        if cost <= maximum:
            assert counter.level(wait) + cost <= maximum + EPS
        counter = counter.add(cost, wait)


@given(
    st.sampled_from(list(Tier)),
    st.lists(
        st.tuples(
            st.sampled_from(["Balance", "ClosedOrders", "OpenOrders", "AddOrder", "CancelOrder"]),
            st.floats(min_value=0, max_value=5, allow_nan=False),
        ),
        max_size=60,
    ),
)
def test_limiter_rest_level_stays_within_max(tier: Tier, calls: list[tuple[str, float]]) -> None:
    limiter = RateLimiter(tier)
    maximum = REST_LIMITS[tier][0]
    now = 0.0
    for method, elapsed in calls:
        now += elapsed
        wait = limiter.reserve(method, {"pair": "XBTUSD", "txid": "O1"}, now=now)
        now += wait
        assert 0 <= limiter.rest_level(now) <= maximum + EPS
        assert 0 <= limiter.trading_level("XBTUSD", now) <= TRADING_LIMITS[tier].threshold + EPS


# --- the client and the sandbox agree (issue 9) --------------------------------------------------


def test_client_and_sandbox_exempt_the_same_calls() -> None:
    from oms.sandbox.engine import REST_EXEMPT as SANDBOX_EXEMPT

    assert SANDBOX_EXEMPT == REST_EXEMPT
    # No source exempts AmendOrder; both count it (and EditOrder) on the REST counter.
    assert {"AmendOrder", "EditOrder"}.isdisjoint(REST_EXEMPT)
    assert RateLimiter().rest_cost("AmendOrder") == 1


def test_the_sandbox_charges_history_calls_the_strictest_figure() -> None:
    from oms.sandbox.config import SandboxConfig

    # +4 (2026 guide, support article) over +2 (older guide, kraken-cli): the stricter one.
    assert SandboxConfig().history_cost == 4 == DEFAULT_HISTORY_COST


@pytest.mark.parametrize(("history_cost", "refused"), [(4, False), (2, True)])
def test_a_client_pacing_history_calls_too_eagerly_is_caught_by_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, history_cost: float, refused: bool
) -> None:
    from oms.errors import APIRateLimitExceeded
    from oms.retry import NO_RETRY
    from oms.sandbox import ManualClock, Sandbox

    monkeypatch.setenv("OMS_DATA_DIR", str(tmp_path))
    sb = Sandbox.in_process(seed=1, clock=ManualClock(1_700_000_000.0))
    client = sb.client(rate_limiter=RateLimiter(history_cost=history_cost), retry=NO_RETRY)
    calls = 0
    try:
        for _ in range(12):
            client.closed_orders()
            calls += 1
            client.balance()
    except APIRateLimitExceeded:
        assert refused, f"refused after {calls} paced calls"
    else:
        assert not refused, "a client pacing at +2 was never refused"

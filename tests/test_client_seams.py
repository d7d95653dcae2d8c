"""Callers count requests through hooks, give the limiter order ages through a seam, and own
retries per call; none of it reaches into the client's internals."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakehttp import FakeAdapter, fail, ok
from test_client import CANCELLED, Clock, _order, make_client

from oms.errors import ConnectError, UnknownOrder, ValidationError
from oms.ratelimit import RateLimiter
from oms.retry import NO_RETRY, RetryPolicy

ADDED = ok({"descr": {"order": "buy 1.25 XBTUSD @ limit 37500"}, "txid": ["OAAAAA-BBBBB-CCCCCC"]})


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_hook_sees_every_request_sent_with_its_outcome(clock: Clock, tmp_path: Path) -> None:
    seen: list[tuple[str, bool, str | None]] = []
    fake = FakeAdapter(ConnectError("refused"), ok({"ZUSD": "1"}), fail("EOrder:Unknown order"))
    client = make_client(
        fake,
        clock,
        tmp_path,
        hooks=[lambda m, p, e: seen.append((m, p, None if e is None else type(e).__name__))],
    )
    fake.queue.appendleft(ok({"unixtime": 1, "rfc1123": "x"}))
    client.time()
    client.balance()  # refused once, then answered: two requests
    with pytest.raises(UnknownOrder):
        client.cancel_order(txid="OAAAAA-BBBBB-CCCCCC")
    assert seen == [
        ("Time", False, None),
        ("Balance", True, "ConnectError"),
        ("Balance", True, None),
        ("CancelOrder", True, "UnknownOrder"),
    ]


def test_add_hook_after_construction_and_a_failing_hook_never_hides_the_answer(
    clock: Clock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(FakeAdapter(default=ADDED), clock, tmp_path)
    counts: dict[str, int] = {}
    client.add_hook(lambda m, p, e: counts.__setitem__(m, counts.get(m, 0) + 1))

    def broken(method: str, private: bool, error: Exception | None) -> None:
        raise RuntimeError("metrics backend down")

    client.add_hook(broken)
    assert client.add_order(_order()).txids == ("OAAAAA-BBBBB-CCCCCC",)
    assert counts == {"AddOrder": 1}
    assert "request hook" in caplog.text


def test_a_hook_must_be_callable(clock: Clock, tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        make_client(FakeAdapter(), clock, tmp_path, hooks=["not callable"])


class Book:
    """An order book seam: what a manager's cache knows about orders."""

    def __init__(self) -> None:
        self.closed = False

    def order_age(self, ref: str) -> float | None:
        if self.closed:
            raise RuntimeError("cache closed")
        return 1.0

    def order_pair(self, ref: str) -> str | None:
        if self.closed:
            raise RuntimeError("cache closed")
        return "XBTUSD"


def test_order_ages_reach_the_limiter_through_the_constructor(clock: Clock, tmp_path: Path) -> None:
    fake = FakeAdapter(default=CANCELLED)
    client = make_client(fake, clock, tmp_path, order_book=Book())
    for i in range(7):
        client.cancel_order(txid=f"O{i}")
    # Young orders (1 s) cost 8 each: 7 x 8 = 56 fit under 60, the 8th waits.
    assert clock.sleeps == []
    client.cancel_order(txid="O7")
    assert clock.sleeps == [pytest.approx(4.0, abs=0.01)]


def test_a_failing_order_book_leaves_the_client_usable(clock: Clock, tmp_path: Path) -> None:
    book = Book()
    client = make_client(FakeAdapter(default=CANCELLED), clock, tmp_path, order_book=book)
    book.closed = True  # e.g. the manager that owned it was closed
    assert client.cancel_order(txid="OAAAAA-BBBBB-CCCCCC").count == 1


def test_order_book_and_a_given_limiter_are_exclusive(clock: Clock, tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        make_client(FakeAdapter(), clock, tmp_path, order_book=Book(), rate_limiter=RateLimiter())
    with pytest.raises(ValidationError):
        RateLimiter(order_book=Book(), order_age=lambda ref: None)


def test_retry_none_sends_add_order_exactly_once(clock: Clock, tmp_path: Path) -> None:
    fake = FakeAdapter(ConnectError("refused"), ADDED)
    client = make_client(fake, clock, tmp_path)
    with pytest.raises(ConnectError):
        client.add_order(_order(), retry=RetryPolicy.none())
    assert len(fake.requests) == 1
    # Without the argument the client's own policy applies again.
    assert client.add_order(_order()).txids == ("OAAAAA-BBBBB-CCCCCC",)
    assert len(fake.requests) == 2


def test_retry_none_on_a_batch(clock: Clock, tmp_path: Path) -> None:
    fake = FakeAdapter(ConnectError("refused"))
    client = make_client(fake, clock, tmp_path)
    with pytest.raises(ConnectError):
        client.add_order_batch([_order(), _order(side="sell", price="40000")], retry=NO_RETRY)
    assert len(fake.requests) == 1


def test_retry_policy_none_is_one_attempt() -> None:
    assert RetryPolicy.none().max_attempts == 1

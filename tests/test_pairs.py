"""One pair-rules cache: every name of a pair finds it, one AssetPairs call per name across
threads, uncertain failures become PairRulesUnavailable, orders remember their pair."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

import pytest
from test_client import PAIR

from oms.errors import PairRulesUnavailable, RequestTimeout, UnknownAssetPair
from oms.models import AssetPair
from oms.pairs import ORDER_MEMORY, PairCache

XBTUSD = AssetPair.map_from_api(PAIR)["XXBTZUSD"]


class Exchange:
    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, name: str) -> Mapping[str, AssetPair]:
        self.asked.append(name)
        time.sleep(0.01)  # long enough for the other threads to arrive
        answer = self.answers.pop(0) if self.answers else {"XXBTZUSD": XBTUSD}
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, dict)
        return answer


@pytest.mark.parametrize("name", ["XXBTZUSD", "XBTUSD", "xbt/usd", " XBT/USD "])
def test_every_name_of_a_learned_pair_finds_it(name: str) -> None:
    cache = PairCache(Exchange())
    cache.learn([XBTUSD])
    assert cache.known(name) == XBTUSD


def test_one_fetch_per_name_across_threads() -> None:
    exchange = Exchange()
    cache = PairCache(exchange)
    found: list[AssetPair] = []
    threads = [threading.Thread(target=lambda: found.append(cache.get("BTCUSD"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert exchange.asked == ["BTCUSD"]
    assert found == [XBTUSD] * 8
    assert cache.known("btcusd") == XBTUSD  # the name asked for is learned too


def test_an_uncertain_failure_is_pair_rules_unavailable() -> None:
    cache = PairCache(Exchange(RequestTimeout("slow")))
    with pytest.raises(PairRulesUnavailable) as info:
        cache.get("XBTUSD")
    assert isinstance(info.value.__cause__, RequestTimeout)
    assert info.value.retry_safe


def test_a_definite_answer_is_raised_as_it_is() -> None:
    cache = PairCache(Exchange(UnknownAssetPair("EQuery:Unknown asset pair")))
    with pytest.raises(UnknownAssetPair):
        cache.get("NOPE")


def test_modes() -> None:
    cache = PairCache(Exchange())
    assert cache.rules_for("XBTUSD", None, "off") is None
    assert cache.rules_for("XBTUSD", None, "known") is None
    assert cache.rules_for("XBTUSD", None, "fetch") == XBTUSD
    assert cache.rules_for("XBTUSD", None, "known") == XBTUSD


def test_orders_remember_their_pair_and_the_oldest_are_dropped() -> None:
    cache = PairCache(Exchange())
    cache.remember_orders("XBTUSD", ["O-first", None, ""])
    cache.remember_orders("ETHUSD", [f"O{i}" for i in range(ORDER_MEMORY)])
    assert cache.order_pair("O-first") is None
    assert cache.order_pair("O0") == "ETHUSD"

"""Kraken's fixed conventions hold in one place: pages of 50, numeric txids refused, the dead
man's switch range."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms.conventions import (
    DEAD_MANS_SWITCH_MAX,
    PAGE_SIZE,
    check_dead_mans_switch,
    check_txid,
    chunks,
    pages,
)
from oms.errors import ValidationError


@given(st.integers(0, 10_000), st.integers(1, 200))
def test_pages_cover_every_item_with_no_empty_page(n: int, size: int) -> None:
    count = pages(n, size)
    assert (count - 1) * size < n <= count * size or (n == 0 and count == 0)
    assert [len(c) for c in chunks(list(range(n)), size)] == [
        min(size, n - i * size) for i in range(count)
    ]


def test_page_size_is_krakens_fifty() -> None:
    assert PAGE_SIZE == 50
    assert pages(50) == 1
    assert pages(51) == 2


@pytest.mark.parametrize("txid", ["12", "+5", "-3", " 7 ", "0", "\u0661\u0662"])
def test_what_kraken_reads_as_a_userref_is_refused(txid: str) -> None:
    with pytest.raises(ValidationError) as info:
        check_txid(txid)
    assert info.value.rule == "txid-is-userref"


@pytest.mark.parametrize("txid", ["OABCDE-FGHIJ-KLMNOP", "O12", "12a", "+", "-"])
def test_txids_pass(txid: str) -> None:
    assert check_txid(txid) == txid


@pytest.mark.parametrize("txid", ["", "  ", None, 12])
def test_a_txid_is_a_non_empty_string(txid: object) -> None:
    with pytest.raises(ValidationError):
        check_txid(txid, "txids")


@pytest.mark.parametrize(
    ("timeout", "disarm", "ok"),
    [
        (0, True, True),
        (0, False, False),
        (1, False, True),
        (DEAD_MANS_SWITCH_MAX, True, True),
        (DEAD_MANS_SWITCH_MAX + 1, True, False),
        (-1, True, False),
        (True, True, False),
        (60.0, True, False),
    ],
)
def test_dead_mans_switch_range(timeout: object, disarm: bool, ok: bool) -> None:
    if ok:
        assert check_dead_mans_switch(timeout, disarm=disarm) == timeout
    else:
        with pytest.raises(ValidationError):
            check_dead_mans_switch(timeout, disarm=disarm)

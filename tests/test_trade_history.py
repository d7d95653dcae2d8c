"""oms.trade_history and the history database's named constructors: one object owns the
store and the client, for trades and for funding alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from history_support import NS, market_tape, short_history_sandbox

from oms.connect import funding_tracker_from_env, trade_history_from_env
from oms.errors import CacheError, ValidationError
from oms.funding import FundingTracker
from oms.history import StopReason
from oms.history_store import HistoryStore
from oms.trade_history import TradeHistory


def test_from_env_syncs_over_real_http_and_answers_offline_afterwards(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    with short_history_sandbox(http=True, hours=2) as sb:
        assert sb.base_url.startswith("http://127.0.0.1:")
        with TradeHistory.from_env(db, base_url=sb.base_url) as history:
            assert history.server_time() == int(sb.clock.time())
            report = history.sync("XBTUSD", pace=0)
            check = history.check("XBTUSD", 5)
        tape = market_tape(sb.market, "XXBTZUSD")
    assert report.reason is StopReason.CAUGHT_UP
    assert report.inserted == len(tape)
    assert check.ok
    assert check.compared > 0
    with TradeHistory.from_env(db, offline=True) as history:
        assert history.client is None
        bars = history.ohlc("XBTUSD", 3600)
        with pytest.raises(ValidationError, match="no client"):
            history.sync("XBTUSD")
    assert sum(bar.count for bar in bars) == len(tape)
    assert bars[0].time <= tape[0].time_ns // NS < bars[0].time + 3600


def test_ohlc_bounds_select_whole_bars_from_the_store(tmp_path: Path) -> None:
    with short_history_sandbox(hours=3) as sb, HistoryStore(tmp_path / "h.db") as store:
        history = TradeHistory(sb.client(), store)
        history.sync("XBTUSD", pace=0)
        every = history.ohlc("XBTUSD", 600)
        start, end = every[2].time, every[5].time
        assert history.ohlc("XBTUSD", 600, start=start, end=end) == every[2:5]


class _Closing:
    closed = 0

    def close(self) -> None:
        self.closed += 1


def test_a_history_closes_what_it_owns_and_nothing_else(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.db")
    client = _Closing()
    TradeHistory(client, store).close()  # type: ignore[arg-type]
    assert client.closed == 0
    assert store.position("XBTUSD") is None  # still open
    with TradeHistory(client, store, owns=True):  # type: ignore[arg-type]
        pass
    assert client.closed == 1
    with pytest.raises(CacheError):
        store.position("XBTUSD")


def test_a_tracker_closes_what_it_owns_and_nothing_else(tmp_path: Path) -> None:
    with FundingTracker.from_env(tmp_path / "f.db", offline=True) as tracker:
        assert tracker.client is None
        assert tracker.all() == []
    with pytest.raises(CacheError):
        tracker.all()
    lent = funding_tracker_from_env(tmp_path / "f.db", offline=True)
    FundingTracker(None, lent.store).close()
    assert lent.all() == []  # not the borrower's to close
    lent.close()


def test_a_tracker_from_env_polls_with_the_environments_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with short_history_sandbox(http=True, hours=1) as sb:
        monkeypatch.setenv("KRAKEN_API_KEY", sb.key)
        monkeypatch.setenv("KRAKEN_API_SECRET", sb.secret)
        monkeypatch.setenv("OMS_DATA_DIR", str(tmp_path / "data"))
        with FundingTracker.from_env(tmp_path / "f.db", base_url=sb.base_url) as tracker:
            report = tracker.sync()
            assert tracker.client is not None
    assert report.deposits + report.withdrawals > 0
    assert report.deposits + report.withdrawals == len(tracker_items(tmp_path / "f.db"))


def tracker_items(db: Path) -> list[object]:
    with funding_tracker_from_env(db, offline=True) as tracker:
        return list(tracker.all())


def test_a_client_that_cannot_be_made_leaves_no_store_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KRAKEN_API_KEY", raising=False)
    monkeypatch.delenv("KRAKEN_API_SECRET", raising=False)
    db = tmp_path / "f.db"
    with pytest.raises(ValidationError):
        funding_tracker_from_env(db, base_url="http://127.0.0.1:9")
    with pytest.raises(ValidationError):
        trade_history_from_env(db, base_url="ftp://127.0.0.1:9")
    # Nothing holds the file: another writer gets its lock at once.
    with HistoryStore(db, busy_timeout=0.1) as store:
        assert store.position("XBTUSD") is None

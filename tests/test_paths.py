"""Every file oms keeps is placed by oms.paths: the data directory, then what is inside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from oms import paths
from oms.nonce import NonceSource, default_directory


def test_everything_lives_in_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("OMS_DB", raising=False)
    monkeypatch.delenv("OMS_HISTORY_DB", raising=False)
    assert paths.data_dir() == tmp_path
    assert paths.nonce_dir() == default_directory() == tmp_path / "nonces"
    assert paths.accounts_dir() == tmp_path / "accounts"
    assert paths.orders_db() == tmp_path / "orders.db"
    assert paths.history_db() == tmp_path / "history.db"
    assert NonceSource("ab" * 20).path.parent == tmp_path / "nonces"


def test_databases_follow_their_own_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMS_DB", str(tmp_path / "o.db"))
    monkeypatch.setenv("OMS_HISTORY_DB", str(tmp_path / "h.db"))
    assert paths.orders_db() == tmp_path / "o.db"
    assert paths.history_db() == tmp_path / "h.db"


def test_without_the_variable_the_user_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMS_DATA_DIR")
    assert paths.data_dir().name == "oms"

"""Where oms keeps its files on this machine: one place decides.

Everything lives in the oms data directory: ``$OMS_DATA_DIR`` if set, else the user data
directory (``platformdirs``). Inside it, ``nonces/`` (one file per API key),
``accounts/`` (the userref sequences shared by every program trading an account), and the
default databases the CLI opens: ``orders.db`` (``$OMS_DB`` overrides it) and ``history.db``
(``$OMS_HISTORY_DB``).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "DATA_DIR_ENV",
    "HISTORY_DB_ENV",
    "ORDERS_DB_ENV",
    "accounts_dir",
    "data_dir",
    "history_db",
    "nonce_dir",
    "orders_db",
]

DATA_DIR_ENV = "OMS_DATA_DIR"
ORDERS_DB_ENV = "OMS_DB"
HISTORY_DB_ENV = "OMS_HISTORY_DB"


def data_dir() -> Path:
    """``$OMS_DATA_DIR`` if set, else the user data directory's ``oms``."""
    base = os.environ.get(DATA_DIR_ENV)
    if base:
        return Path(base)
    # Imported here: only a process that needs the default pays for platformdirs.
    import platformdirs

    return Path(platformdirs.user_data_dir("oms", appauthor=False))


def nonce_dir() -> Path:
    """``nonces/`` in the data directory: one high-water-mark file per API key."""
    return data_dir() / "nonces"


def accounts_dir() -> Path:
    """``accounts/`` in the data directory: each account's userref sequences."""
    return data_dir() / "accounts"


def orders_db() -> Path:
    """``$OMS_DB``, else ``orders.db`` in the data directory."""
    given = os.environ.get(ORDERS_DB_ENV)
    return Path(given) if given else data_dir() / "orders.db"


def history_db() -> Path:
    """``$OMS_HISTORY_DB``, else ``history.db`` in the data directory."""
    given = os.environ.get(HISTORY_DB_ENV)
    return Path(given) if given else data_dir() / "history.db"

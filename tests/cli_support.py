"""What the CLI tests share: the environment a command runs in against a sandbox."""

from __future__ import annotations

from pathlib import Path

from oms.sandbox import Sandbox


def cli_env(sb: Sandbox, folder: Path) -> dict[str, str]:
    """The sandbox's keys and URL, and every oms file inside ``folder``."""
    return {
        "KRAKEN_API_KEY": sb.key,
        "KRAKEN_API_SECRET": sb.secret,
        "KRAKEN_BASE_URL": sb.base_url,
        "OMS_DATA_DIR": str(folder),
        "OMS_DB": str(folder / "orders.db"),
        "OMS_HISTORY_DB": str(folder / "history.db"),
    }

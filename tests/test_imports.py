"""`import oms` (and the cache and manager) loads neither pandas, numpy nor sqlite-utils."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("pandas", "numpy", "sqlite_utils")
PROBE = (
    "import json, sys\n"
    "import oms, oms.cache, oms.manager, oms.account, oms.history_store, oms.funding_store\n"
    f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
)


def fake_heavy_packages(folder: Path) -> list[str]:
    """Stand-ins for pandas and numpy where they are not installed, so that a module that
    imports them (sqlite-utils does, whenever it finds them) shows in ``sys.modules``."""
    faked = []
    for name in ("pandas", "numpy"):
        if importlib.util.find_spec(name) is None:
            package = folder / name
            package.mkdir()
            # Any attribute is a dummy class: an importer runs on and shows in sys.modules.
            (package / "__init__.py").write_text(
                "__version__ = '0.0.0'\ndef __getattr__(name):\n    return type(name, (), {})\n"
            )
            faked.append(name)
    return faked


def run(code: str, path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), *sys.path])}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )


def test_import_oms_loads_no_dataframe_library(tmp_path: Path) -> None:
    faked = fake_heavy_packages(tmp_path)
    for name in faked:  # the stand-ins are found: the check below can fail
        assert run(f"import {name}", tmp_path).returncode == 0
    result = run(PROBE, tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize("name", ["pandas", "numpy"])
def test_the_probe_sees_a_heavy_import(tmp_path: Path, name: str) -> None:
    """The probe itself works: a module that imports the stand-in is caught."""
    fake_heavy_packages(tmp_path)
    result = run(f"import {name}\n{PROBE}", tmp_path)
    assert result.returncode == 0, result.stderr
    assert name in json.loads(result.stdout)


def test_import_oms_loads_the_surface_on_first_use(tmp_path: Path) -> None:
    """``import oms`` loads the errors at once (a handler needs them) and the rest of the
    surface when a name is first used; every name in ``__all__`` then resolves."""
    code = (
        "import json, sys\n"
        "import oms\n"
        "before = sorted(m for m in ('oms.errors', 'oms.manager', 'oms.client', 'requests')"
        " if m in sys.modules)\n"
        "from oms import OrderManager\n"
        "names = [n for n in oms.__all__ if getattr(oms, n, None) is None]\n"
        "listed = 'round_price' in dir(oms)\n"
        "print(json.dumps([before, 'oms.manager' in sys.modules, names, listed]))\n"
    )
    result = run(code, tmp_path)
    assert result.returncode == 0, result.stderr
    before, manager_loaded, unresolved, listed = json.loads(result.stdout)
    assert before == ["oms.errors"]
    assert manager_loaded
    assert unresolved == []
    assert listed


STREAM_PROBE = (
    "import json, sys\n"
    "import oms, oms.manager, oms.live.follower, oms.live.stream\n"
    "from oms.manager import OrderManager\n"
    "print(json.dumps('websockets' in sys.modules))\n"
)


def test_the_websocket_library_loads_only_when_a_stream_starts(tmp_path: Path) -> None:
    """Issue #11: a strategy that never follows live pays nothing for the stream."""
    result = run(STREAM_PROBE, tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) is False
    # The probe can fail: importing the library shows in sys.modules.
    result = run(f"import websockets.sync.client\n{STREAM_PROBE}", tmp_path)
    assert json.loads(result.stdout) is True

"""Every python and console block in the docs runs, against a sandbox on 127.0.0.1.

Each page gets a fresh sandbox (system clock, a one-hour market, no rate limits) with
KRAKEN_BASE_URL / KRAKEN_API_KEY / KRAKEN_API_SECRET (and BASE_URL) pointing at it, and a
scratch directory as its working directory and OMS_DATA_DIR. A page's python blocks run in
order in one namespace, which starts with the names the docs take as given (``client``,
``manager``, ``credentials``, ``key``/``secret``/``base_url``, ``host_index``...). A page's
console blocks run as one bash script, each ``$`` command on its own, which must exit 0 unless
listed in EXPECTED_STATUS. Any request to a host other than the sandbox fails the test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from oms import KrakenClient, OrderManager, OrderRequest
from oms._sqlite import SQLiteFile
from oms.sandbox import Sandbox
from oms.sandbox.config import SandboxConfig
from oms.sandbox.market import Market
from oms.transport import Transport

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"^\.\. code-block:: (python|console|shell)\n((?:\n|[ ]{3,}.*\n)+)", re.M)
LOCAL_HOSTS = {"127.0.0.1", "localhost", "sandbox.invalid", "kraken.test"}

#: Commands that are shown, not run, and why: (how to recognise it, reason).
SKIP = (
    (lambda c: c.endswith("&"), "starts a sandbox in the background: the harness runs one"),
    (lambda c: c == "oms sandbox", "serves in the foreground until Ctrl-C: the harness runs one"),
    (lambda c: c.startswith("export "), "sets what the harness exported (or placeholders: ...)"),
    (lambda c: "pip install" in c or "-m venv" in c, "installation: CI installs oms itself"),
    (lambda c: "-m tox" in c, "CI runs tox; the page shows how"),
    (
        lambda c: c.startswith("oms watch") or "--follow" in c,
        "follows until Ctrl-C: tests/live/test_cli_watch.py runs it in a process",
    ),
)
#: Commands whose documented point is a non-zero exit status (the table in docs/cli.rst).
EXPECTED_STATUS = {
    "oms sandbox clock --advance 60": 1,  # "only with --manual-clock": the harness's is not
    "--refid ASBCMYC-F5ETQT-34NMWT": 1,  # the article's refid is not tracked in the sandbox
}


def blocks(page: Path) -> list[tuple[str, str]]:
    found = []
    for kind, body in BLOCK.findall(page.read_text()):
        lines = body.splitlines()
        indent = min(len(x) - len(x.lstrip()) for x in lines if x.strip())
        found.append((kind, "\n".join(x[indent:] for x in lines).strip("\n") + "\n"))
    return found


PAGES = sorted(p for p in DOCS.glob("*.rst") if p.name != "cli-reference.rst" and blocks(p))
PYTHON_PAGES = [p for p in PAGES if any(kind == "python" for kind, _ in blocks(p))]


def runnable(page: Path) -> list[str]:
    return [
        c
        for kind, body in blocks(page)
        if kind != "python"
        for c in commands(body)
        if not skipped(c)
    ]


def commands(script: str) -> list[str]:
    """The ``$`` commands of a console block, continuation lines joined."""
    out: list[str] = []
    lines = iter(script.splitlines())
    for line in lines:
        if not line.startswith("$ "):
            continue  # output, shown for the reader
        command = line[2:]
        while command.rstrip().endswith("\\"):
            command = command.rstrip()[:-1] + " " + next(lines).strip()
        out.append(command)
    return out


def skipped(command: str) -> bool:
    bare = command.split("  #")[0].rstrip()
    return any(matches(bare) for matches, _reason in SKIP)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    market = Market(seed=3, genesis=time.time(), history=3600)
    exchange = Sandbox.build_exchange(market=market, config=SandboxConfig(seed=3).without_limits())
    with Sandbox.serve(exchange=exchange) as sb:
        yield sb


def guard_hosts(monkeypatch: pytest.MonkeyPatch, base_url: str) -> None:
    real = Transport.request

    def local_only(self: Transport, method: str, url: str, **kwargs: Any) -> Any:
        host = urlsplit(url).hostname or ""
        assert host in LOCAL_HOSTS, f"a docs snippet tried to reach {host}"
        return real(self, method, url, **kwargs)

    monkeypatch.setattr(Transport, "request", local_only)
    # `KrakenClient()` without base_url means Kraken: here it means the sandbox.
    kwdefaults = dict(KrakenClient.__init__.__kwdefaults__ or {})
    kwdefaults["base_url"] = base_url
    monkeypatch.setattr(KrakenClient.__init__, "__kwdefaults__", kwdefaults)


class MyAdapter(requests.adapters.BaseAdapter):
    """The adapter docs/client.rst mounts: answers nothing, as the page only mounts it."""

    def send(self, *args: Any, **kwargs: Any) -> requests.Response:
        raise NotImplementedError

    def close(self) -> None:
        pass


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=lambda p: p.stem)
def test_python_blocks_run(
    page: Path, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = [body for kind, body in blocks(page) if kind == "python"]
    monkeypatch.chdir(tmp_path)
    for name, value in env_for(sandbox, tmp_path).items():
        monkeypatch.setenv(name, value)
    guard_hosts(monkeypatch, sandbox.base_url)
    manager = OrderManager.on_sandbox(sandbox, tmp_path / "given.db")
    client = manager.client
    namespace: dict[str, Any] = {
        "client": client,
        "manager": manager,
        "credentials": sandbox.credentials,
        "key": sandbox.key,
        "secret": sandbox.secret,
        "base_url": sandbox.base_url,
        "host_index": 0,
        "MyAdapter": MyAdapter,
        "KrakenClient": KrakenClient,
        "OrderManager": OrderManager,
        "OrderRequest": OrderRequest,
    }
    try:
        for i, body in enumerate(code):
            exec(compile(body, f"{page.name}[python {i}]", "exec"), namespace)  # noqa: S102 -- the docs' own snippets
    finally:
        # What a snippet opened and a reader's program would close on exit: closed here, so
        # no connection is left to the garbage collector (Python 3.13 warns about those).
        for value in namespace.values():
            if isinstance(value, (SQLiteFile, OrderManager, KrakenClient, Sandbox)):
                value.close()
        manager.close()  # and its client


def env_for(sb: Sandbox, tmp_path: Path) -> dict[str, str]:
    return {
        "KRAKEN_BASE_URL": sb.base_url,
        "BASE_URL": sb.base_url,
        "KRAKEN_API_KEY": sb.key,
        "KRAKEN_API_SECRET": sb.secret,
        "OMS_DATA_DIR": str(tmp_path / "data"),
        "OMS_DB": str(tmp_path / "orders.db"),
        "OMS_HISTORY_DB": str(tmp_path / "history.db"),
        "HOME": str(tmp_path),
    }


# Pages with a command to run (install.rst's blocks are install steps without a prompt).
CONSOLE_PAGES = [p for p in PAGES if runnable(p)]


@pytest.mark.parametrize("page", CONSOLE_PAGES, ids=lambda p: p.stem)
def test_console_blocks_run(page: Path, sandbox: Sandbox, tmp_path: Path) -> None:
    script = runnable(page)
    env = {**os.environ, **env_for(sandbox, tmp_path)}
    # The `oms` of this interpreter's environment (tox's, or the developer's venv).
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    for command in script:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        expected = next((s for part, s in EXPECTED_STATUS.items() if part in command), 0)
        assert done.returncode == expected, f"{page.name}: $ {command}\n{done.stdout}{done.stderr}"
        assert "Traceback" not in done.stderr, command


def test_the_harness_sees_every_block() -> None:
    """A block the regex missed would silently go untested."""
    for page in PAGES:
        text = page.read_text()
        wanted = len(re.findall(r"^\.\. code-block:: (?:python|console|shell)$", text, re.M))
        assert len(blocks(page)) == wanted, page.name

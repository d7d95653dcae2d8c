"""Requests per second of the sandbox: AddOrder + CancelOrder over loopback HTTP, keep-alive.

House rule: report the ratio to a baseline measured in the same run, plus the absolute
numbers. The baseline is a bare ``http.server`` with the same HTTP/1.1 keep-alive settings,
answering every POST with a constant Kraken envelope. Each server runs in its own process
(``oms sandbox --no-rate-limits`` for the sandbox), so it has a core of its own; the client
sends signed AddOrder/CancelOrder pairs over one keep-alive connection, with ``http.client``
(light, so the server is what is measured) and with a ``requests.Session`` (what users run).
The ratio says what the exchange (signature, nonce, order book, JSON) costs on top of
Python's HTTP stack. The in-process adapter (no sockets) is measured too.

Run: ``python benchmarks/bench_sandbox.py [--pairs N] [--repeat R] [--json]``.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import requests

from oms.auth import encode_form, sign
from oms.sandbox import IN_PROCESS_URL, Sandbox, SandboxConfig

_NONCES = itertools.count(time.time_ns())
_CONSTANT = json.dumps({"error": [], "result": {"txid": ["OAAAAA-AAAAA-AAAAAA"]}}).encode()

Send = Callable[[str, bytes, dict[str, str]], Any]


class _ConstantHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response_only(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(_CONSTANT)))
        self.end_headers()
        self.wfile.write(_CONSTANT)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_baseline() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ConstantHandler)
    server.daemon_threads = True
    print(json.dumps({"base_url": f"http://127.0.0.1:{server.server_address[1]}"}), flush=True)
    server.serve_forever()


@contextmanager
def _process(args: list[str]) -> Iterator[dict[str, str]]:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def _signed(key: str, secret: str, method: str, **params: Any) -> tuple[str, bytes, dict[str, str]]:
    nonce = next(_NONCES)
    body = encode_form({"nonce": nonce, **params})
    path = f"/0/private/{method}"
    headers = {
        "API-Key": key,
        "API-Sign": sign(secret, path, nonce, body),
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "oms-bench/1",
    }
    return path, body.encode(), headers


def _http_client(base_url: str) -> Send:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)

    def send(path: str, body: bytes, headers: dict[str, str]) -> Any:
        conn.request("POST", path, body=body, headers=headers)
        return json.loads(conn.getresponse().read())

    return send


def _requests_session(base_url: str, session: requests.Session) -> Send:
    def send(path: str, body: bytes, headers: dict[str, str]) -> Any:
        return session.post(base_url + path, data=body, headers=headers, timeout=10).json()

    return send


def _pair(send: Send, key: str, secret: str) -> None:
    placed = send(
        *_signed(
            key,
            secret,
            "AddOrder",
            pair="XBTUSD",
            type="buy",
            ordertype="limit",
            price="20000.0",
            volume="0.001",
            userref=7,
        )
    )
    assert placed["error"] == [], placed
    cancelled = send(*_signed(key, secret, "CancelOrder", txid=placed["result"]["txid"][0]))
    assert cancelled["error"] == [], cancelled


def _rate(pairs: int, send: Send, key: str, secret: str) -> float:
    for _ in range(min(100, pairs)):  # warm up the connection, caches, the price path
        _pair(send, key, secret)
    started = time.perf_counter()
    for _ in range(pairs):
        _pair(send, key, secret)
    return 2 * pairs / (time.perf_counter() - started)


def _best(rps: dict[str, float], name: str, value: float) -> None:
    rps[name] = max(rps.get(name, 0.0), value)


def measure(pairs: int, repeat: int) -> dict[str, float]:
    """Best of ``repeat`` rounds per row; rows alternate within a round, so a busy moment
    on the machine hits baseline and sandbox alike."""
    keys = Sandbox.in_process()  # only for a well-formed key pair to sign with
    rps: dict[str, float] = {}
    cli = [sys.executable, "-c", "from oms.cli.sandbox import sandbox; sandbox()"]
    with (
        _process([sys.executable, __file__, "--serve-baseline"]) as baseline,
        _process([*cli, "--no-rate-limits"]) as sandbox,
    ):
        for _ in range(repeat):
            for client in ("http.client", "requests"):
                for name, info, key, secret in (
                    ("baseline", baseline, keys.key, keys.secret),
                    ("sandbox", sandbox, sandbox["key"], sandbox["secret"]),
                ):
                    with requests.Session() as session:
                        send = (
                            _http_client(info["base_url"])
                            if client == "http.client"
                            else _requests_session(info["base_url"], session)
                        )
                        _best(rps, f"{name} / {client}", _rate(pairs, send, key, secret))
    inproc = Sandbox.in_process(config=SandboxConfig().without_limits())
    with requests.Session() as session:
        assert inproc.adapter is not None
        session.mount(IN_PROCESS_URL, inproc.adapter)
        send = _requests_session(IN_PROCESS_URL, session)
        for _ in range(repeat):
            _best(
                rps, "in-process adapter / requests", _rate(pairs, send, inproc.key, inproc.secret)
            )
    return rps


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3000, help="AddOrder+CancelOrder pairs")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best is kept")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--serve-baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline()
        return
    rps = measure(args.pairs, args.repeat)
    ratios = {
        client: rps[f"sandbox / {client}"] / rps[f"baseline / {client}"]
        for client in ("http.client", "requests")
    }
    if args.json:
        print(json.dumps({"requests_per_second": rps, "ratio_to_baseline": ratios}, indent=2))
        return
    print(
        f"{2 * args.pairs} requests per row over one keep-alive connection, one client "
        f"thread, best of {args.repeat}"
    )
    for name, value in rps.items():
        print(f"  {name:32s} {value:8.0f} req/s")
    for client, ratio in ratios.items():
        print(f"  sandbox / baseline ({client}): {ratio:.2f}")


if __name__ == "__main__":
    main()

"""The sandbox answers real HTTP like Kraken (envelope, auth, Cloudflare 403), acts out every
fault the same way over HTTP and in-process, and `oms sandbox` serves, stops and keeps state."""

from __future__ import annotations

import http.client
import itertools
import json
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from oms.auth import encode_form, sign
from oms.cli.sandbox import sandbox as sandbox_command
from oms.sandbox import (
    IN_PROCESS_URL,
    AccountConfig,
    ManualClock,
    Sandbox,
    SandboxConfig,
    admin_request,
)

_NONCES = itertools.count(time.time_ns())
_USERREFS = itertools.count(1000)
UA = {"User-Agent": "oms-tests/1"}


def private(
    session: requests.Session,
    base_url: str,
    key: str,
    secret: str,
    method: str,
    timeout: float = 5.0,
    **params: object,
) -> requests.Response:
    nonce = next(_NONCES)
    body = encode_form({"nonce": nonce, **params})
    path = f"/0/private/{method}"
    headers = {
        "API-Key": key,
        "API-Sign": sign(secret, path, nonce, body),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return session.post(base_url + path, data=body, headers=headers, timeout=timeout)


class Target:
    """One sandbox reached either over HTTP or through the in-process adapter."""

    def __init__(self, sb: Sandbox, session: requests.Session, kind: str):
        self.sb = sb
        self.session = session
        self.kind = kind

    def call(self, method: str, timeout: float = 5.0, **params: object) -> requests.Response:
        return private(
            self.session, self.sb.base_url, self.sb.key, self.sb.secret, method, timeout, **params
        )

    def add_order(self, userref: int, timeout: float = 5.0) -> requests.Response:
        return self.call(
            "AddOrder",
            timeout,
            pair="XBTUSD",
            type="buy",
            ordertype="limit",
            price="30000.0",
            volume="0.001",
            userref=userref,
        )

    def open_count(self, userref: int) -> int:
        answer = self.call("OpenOrders", userref=userref).json()
        assert answer["error"] == []
        return len(answer["result"]["open"])


@pytest.fixture(params=["http", "inproc"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    session = requests.Session()
    session.headers.update(UA)
    # Polling OpenOrders is not what these tests are about: no REST counter.
    config = SandboxConfig().without_limits()
    if request.param == "http":
        with Sandbox.serve(config=config) as sb:
            yield Target(sb, session, "http")
    else:
        sb = Sandbox.in_process(config=config)
        assert sb.adapter is not None
        session.mount(IN_PROCESS_URL, sb.adapter)
        yield Target(sb, session, "inproc")
    session.close()


# -- the protocol over HTTP ------------------------------------------------------------------


def test_public_envelope(sandbox: Sandbox) -> None:
    answer = requests.get(sandbox.base_url + "/0/public/Time", headers=UA, timeout=5)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert body["error"] == []
    assert set(body["result"]) == {"unixtime", "rfc1123"}
    bad = requests.get(
        sandbox.base_url + "/0/public/Ticker", params={"pair": "NOTAPAIR"}, headers=UA, timeout=5
    )
    assert bad.status_code == 200
    assert bad.json() == {"error": ["EQuery:Unknown asset pair"]}
    trades = requests.get(
        sandbox.base_url + "/0/public/Trades",
        params={"pair": "xbtusd", "since": 0, "count": 3},
        headers=UA,
        timeout=5,
    ).json()["result"]
    assert len(trades["XXBTZUSD"]) == 3
    assert isinstance(trades["last"], str)  # nanoseconds, as a string
    assert int(trades["last"]) / 1e9 == pytest.approx(trades["XXBTZUSD"][-1][2], abs=1e-6)
    assert requests.get(sandbox.base_url + "/nothing", headers=UA, timeout=5).status_code == 404


def test_connections_are_kept_alive(sandbox: Sandbox) -> None:
    conn = http.client.HTTPConnection(sandbox.server.host if sandbox.server else "", timeout=5)
    conn.port = sandbox.server.port if sandbox.server else 0
    try:
        conn.request("GET", "/0/public/Time", headers=UA)
        first = conn.getresponse()
        first.read()
        sock = conn.sock
        assert first.getheader("Connection") != "close"
        conn.request("GET", "/0/public/SystemStatus", headers=UA)
        second = conn.getresponse()
        assert json.loads(second.read())["error"] == []
        assert conn.sock is sock
    finally:
        conn.close()


def test_403_without_user_agent(sandbox: Sandbox) -> None:
    assert sandbox.server is not None
    conn = http.client.HTTPConnection(sandbox.server.host, sandbox.server.port, timeout=5)
    try:
        conn.request("GET", "/0/public/Time")  # http.client sends no User-Agent by itself
        answer = conn.getresponse()
        body = answer.read()
    finally:
        conn.close()
    assert answer.status == 403
    assert answer.getheader("server") == "cloudflare"
    assert b"<title>" in body
    assert b"Cloudflare" in body


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        ({"key": "not-a-key"}, "EAPI:Invalid key"),
        ({"secret": "c2VjcmV0IHRoYXQgaXMgbm90IHRoZSByaWdodCBvbmU="}, "EAPI:Invalid signature"),
        ({}, None),
    ],
)
def test_signature_checks(target: Target, mutate: dict[str, str], error: str | None) -> None:
    key = mutate.get("key", target.sb.key)
    secret = mutate.get("secret", target.sb.secret)
    answer = private(target.session, target.sb.base_url, key, secret, "Balance").json()
    if error is None:
        assert answer["error"] == []
        assert "ZUSD" in answer["result"]
    else:
        assert answer["error"] == [error]
        assert "result" not in answer


# -- every fault, over HTTP and in-process ---------------------------------------------------

# (fault options, what the client sees, whether the order exists afterwards)
FAULTS: list[tuple[dict[str, Any], str, bool]] = [
    ({"kind": "drop_after_commit"}, "ConnectionError", True),
    ({"kind": "drop_before_commit"}, "ConnectionError", False),
    ({"kind": "delay", "delay": 0.5}, "ReadTimeout", True),
    ({"kind": "delay", "delay": 0.3, "when": "before"}, "ReadTimeout", True),
    ({"kind": "html", "status": 502}, "502", True),
    ({"kind": "html", "status": 520, "when": "before"}, "520", False),
    ({"kind": "html", "status": 403}, "403", False),
    ({"kind": "unavailable"}, "EService:Unavailable", False),
    ({"kind": "unavailable", "when": "after"}, "EService:Unavailable", True),
    ({"kind": "busy"}, "EService:Busy", False),
    ({"kind": "rate_limit"}, "EOrder:Rate limit exceeded", False),
    ({"kind": "error", "error": "EGeneral:Internal error", "when": "after"}, "EGeneral:", True),
]


def _outcome(target: Target, userref: int, timeout: float) -> str:
    try:
        answer = target.add_order(userref, timeout=timeout)
    except requests.exceptions.ReadTimeout:
        return "ReadTimeout"
    except requests.exceptions.ConnectionError:
        return "ConnectionError"
    if answer.status_code != 200:
        assert answer.headers["server"] == "cloudflare"
        assert answer.headers["content-type"].startswith("text/html")
        return str(answer.status_code)
    errors: list[str] = answer.json()["error"]
    return errors[0] if errors else "ok"


def _eventually(check: Any, seconds: float = 3.0) -> bool:
    end = time.monotonic() + seconds
    while True:
        if check():
            return True
        if time.monotonic() > end:
            return False
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("options", "seen", "committed"),
    FAULTS,
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else None,
)
def test_every_fault_kind(
    target: Target,
    options: dict[str, Any],
    seen: str,
    committed: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    userref = next(_USERREFS)
    target.sb.faults.add(method="AddOrder", count=1, **options)
    slept: list[float] = []
    with monkeypatch.context() as patch:
        if target.kind == "inproc":
            patch.setattr(time, "sleep", slept.append)
        outcome = _outcome(target, userref, timeout=0.15)
    assert outcome.startswith(seen)
    assert slept == []  # in process, the adapter never sleeps on the system clock
    if target.kind == "http" and options.get("when") == "before" and "delay" in options:
        # The late request still carries its nonce: any signed call made before it lands
        # would make the exchange refuse it (EAPI:Invalid nonce), exactly as Kraken would.
        time.sleep(options["delay"] + 0.05)
    if committed:
        assert _eventually(lambda: target.open_count(userref) == 1)
    else:
        assert target.open_count(userref) == 0
    # The rule was used up: the next order goes through.
    assert _outcome(target, userref + 10_000, timeout=5) == "ok"
    assert [f.kind.value for f in target.sb.faults.fired] == [options["kind"]]


@pytest.mark.parametrize(
    ("options", "waited"),
    [
        # Committed, answer later than the read timeout: the client waited its timeout.
        ({"kind": "delay", "delay": 0.5}, 0.15),
        # Reached the exchange late: it waited the whole delay first.
        ({"kind": "delay", "delay": 0.3, "when": "before"}, 0.3),
    ],
)
def test_in_process_delays_move_the_sandbox_clock_instead_of_sleeping(
    options: dict[str, Any], waited: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock(1_700_000_000.0)
    sb = Sandbox.in_process(clock=clock, config=SandboxConfig().without_limits())
    assert sb.adapter is not None
    with requests.Session() as session:
        session.headers.update(UA)
        session.mount(IN_PROCESS_URL, sb.adapter)
        sb.faults.add(method="AddOrder", count=1, **options)
        slept: list[float] = []
        monkeypatch.setattr(time, "sleep", slept.append)
        before = clock.time()
        assert _outcome(Target(sb, session, "inproc"), next(_USERREFS), timeout=0.15) == (
            "ReadTimeout"
        )
    assert clock.time() - before == pytest.approx(waited)
    assert slept == []


def test_rate_limit_on_other_methods_is_the_rest_counter(target: Target) -> None:
    target.sb.faults.add(method="Balance", kind="rate_limit")
    assert target.call("Balance").json() == {"error": ["EAPI:Rate limit exceeded"]}
    assert target.call("Balance").json()["error"] == []


def test_inprocess_delay_moves_a_manual_clock_instead_of_sleeping(
    manual_clock: ManualClock,
) -> None:
    sb = Sandbox.in_process(clock=manual_clock)
    assert sb.adapter is not None
    session = requests.Session()
    session.headers.update(UA)
    session.mount(IN_PROCESS_URL, sb.adapter)
    target = Target(sb, session, "inproc")
    start = manual_clock.time()
    sb.faults.add(method="AddOrder", kind="delay", delay=30.0)
    assert _outcome(target, 5, timeout=2.0) == "ReadTimeout"
    assert manual_clock.time() == start + 2.0  # the client waited its read timeout
    sb.faults.add(method="AddOrder", kind="delay", delay=1.5)
    assert _outcome(target, 6, timeout=2.0) == "ok"
    assert manual_clock.time() == start + 3.5


def test_oms_transport_classifies_inprocess_faults(sandbox_inproc: Sandbox) -> None:
    from oms.errors import ConnectionLost, HTTPStatusError, RequestTimeout
    from oms.transport import Transport

    transport = sandbox_inproc.mount(Transport(timeout=(1.0, 0.5)))
    url = sandbox_inproc.base_url + "/0/public/Time"
    for options, error in [
        ({"kind": "drop_after_commit"}, ConnectionLost),
        ({"kind": "delay", "delay": 1.0}, RequestTimeout),
        ({"kind": "html", "status": 520}, HTTPStatusError),
    ]:
        sandbox_inproc.faults.add(method="Time", **options)
        with pytest.raises(error) as caught:
            transport.request("GET", url)
        assert caught.value.may_have_reached
    assert transport.request("GET", url).payload["error"] == []


# -- the admin API ---------------------------------------------------------------------------


def test_admin_faults(sandbox: Sandbox) -> None:
    url = sandbox.base_url
    added = admin_request(url, "/faults", {"method": "Balance", "kind": "busy", "count": 2})
    rule = added["rules"][0]
    assert rule["kind"] == "busy"
    assert rule["count"] == 2
    session = requests.Session()
    session.headers.update(UA)
    target = Target(sandbox, session, "http")
    assert target.call("Balance").json()["error"] == ["EService:Busy"]
    listed = admin_request(url, "/faults")
    assert listed["rules"][0]["fired"] == 1
    assert listed["fired"] == 1
    admin_request(url, "/faults", [{"kind": "html"}, {"kind": "unavailable"}])
    assert len(admin_request(url, "/faults")["rules"]) == 3
    admin_request(url, f"/faults/{rule['id']}", method="DELETE")
    assert len(admin_request(url, "/faults")["rules"]) == 2
    admin_request(url, "/faults", method="DELETE")
    assert admin_request(url, "/faults")["rules"] == []
    assert target.call("Balance").json()["error"] == []


@pytest.mark.parametrize(
    ("path", "payload", "method", "status"),
    [
        ("/faults", {"kind": "explode"}, None, 400),
        ("/faults", {"kind": "busy", "times": 2}, None, 400),
        ("/faults/999", None, "DELETE", 404),
        ("/nothing", None, None, 404),
        ("/clock", {"advance": 5}, None, 409),  # the system clock cannot be moved
    ],
)
def test_admin_errors(
    sandbox: Sandbox, path: str, payload: object, method: str | None, status: int
) -> None:
    with pytest.raises(RuntimeError, match=f"HTTP {status}"):
        admin_request(sandbox.base_url, path, payload, method=method)


def test_admin_clock_state_and_advance() -> None:
    clock = ManualClock(1_700_000_000.0)
    with Sandbox.serve(clock=clock) as sb:
        assert admin_request(sb.base_url, "/clock") == {"time": 1_700_000_000.0, "manual": True}
        assert admin_request(sb.base_url, "/clock", {"advance": 60})["time"] == 1_700_000_060.0
        assert admin_request(sb.base_url, "/clock", {"set": 1_700_000_100})["time"] == (
            1_700_000_100.0
        )
        assert clock.time() == 1_700_000_100.0
        assert admin_request(sb.base_url, "/advance", {})["time"] == 1_700_000_100.0
        state = admin_request(sb.base_url, "/state")
        assert [a["config"]["key"] for a in state["accounts"]] == [sb.key]
        info = admin_request(sb.base_url, "")
        assert info["manual_clock"]
        assert "XXBTZUSD" in info["pairs"]


def test_admin_api_is_not_in_process(sandbox_inproc: Sandbox) -> None:
    session = requests.Session()
    assert sandbox_inproc.adapter is not None
    session.mount(IN_PROCESS_URL, sandbox_inproc.adapter)
    assert session.get(IN_PROCESS_URL + "/_sandbox/faults", headers=UA).status_code == 404


def test_server_refuses_non_loopback_hosts() -> None:
    with pytest.raises(ValueError, match="allow_remote"):
        Sandbox.serve(host="0.0.0.0")  # noqa: S104 - the refusal is what is tested


# -- the `oms sandbox` command ---------------------------------------------------------------

_CLI = [
    sys.executable,
    "-c",
    "from oms.cli.sandbox import sandbox; sandbox(prog_name='oms sandbox')",
]


def _read_line(proc: subprocess.Popen[str], seconds: float = 20.0) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=seconds):
            proc.kill()
            pytest.fail("oms sandbox printed nothing")
    return proc.stdout.readline()


def _start(*args: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [*_CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = _read_line(proc)
    info: dict[str, str] = json.loads(line)
    assert set(info) == {"base_url", "ws_url", "key", "secret"}
    assert info["ws_url"].startswith("ws://127.0.0.1:")
    assert info["ws_url"].endswith("/v2")
    return proc, info


def _stop(proc: subprocess.Popen[str], signum: int) -> str:
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    return out


def _cli(*args: str) -> Any:
    done = subprocess.run([*_CLI, *args], capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)


def test_cli_serves_stops_cleanly_and_keeps_state(tmp_path: Path) -> None:
    state = tmp_path / "sandbox.json"
    mine = AccountConfig.generate("cli-test")
    other = AccountConfig.generate("cli-test-2")
    proc, info = _start(
        "--seed",
        "3",
        "--state",
        str(state),
        "--key",
        mine.key,
        "--secret",
        mine.secret,
        "--account",
        f"{other.key}:{other.secret}",
    )
    try:
        assert info["key"] == mine.key
        assert info["base_url"].startswith("http://127.0.0.1:")
        session = requests.Session()
        session.headers.update(UA)

        def call(method: str, **params: object) -> Any:
            return private(
                session, info["base_url"], info["key"], info["secret"], method, **params
            ).json()

        assert (
            call(
                "AddOrder",
                pair="XBTUSD",
                type="buy",
                ordertype="limit",
                price="30000.0",
                volume="0.001",
                userref=77,
            )["error"]
            == []
        )
        rule = _cli(
            "fault", "add", "--url", info["base_url"], "--method", "Balance", "--kind", "busy"
        )
        assert rule["rules"][0]["kind"] == "busy"
        assert call("Balance")["error"] == ["EService:Busy"]
        assert _cli("fault", "list", "--url", info["base_url"])["fired"] == 1
        assert _cli("fault", "clear", "--url", info["base_url"])["rules"] == []
        other_balance = private(
            session, info["base_url"], other.key, other.secret, "Balance"
        ).json()
        assert other_balance["result"]["ZUSD"].startswith("100000")
    finally:
        rest = _stop(proc, signal.SIGTERM)
    assert rest == ""  # exactly one line on stdout
    assert state.exists()

    proc, again = _start("--state", str(state))
    try:
        assert again["key"] == mine.key
        assert again["secret"] == mine.secret
        session = requests.Session()
        session.headers.update(UA)
        answer = private(
            session, again["base_url"], again["key"], again["secret"], "OpenOrders", userref=77
        ).json()
        assert len(answer["result"]["open"]) == 1
    finally:
        _stop(proc, signal.SIGINT)


def test_cli_account_adds_an_account_besides_the_generated_one() -> None:
    # --help: "--key ... API key of the first account (default: generated)" and
    # "--account ... Another funded account": without --key, the generated account stays
    # first and is the one printed.
    other = AccountConfig.generate("cli-extra")
    proc, info = _start(
        "--seed", "4", "--no-rate-limits", "--account", f"{other.key}:{other.secret}"
    )
    try:
        # The account `Sandbox.serve(seed=4)` generates.
        (generated,) = Sandbox.build_exchange(seed=4).accounts.values()
        assert (info["key"], info["secret"]) == (generated.key, generated.config.secret)
        session = requests.Session()
        session.headers.update(UA)
        for key, secret in ((info["key"], info["secret"]), (other.key, other.secret)):
            answer = private(session, info["base_url"], key, secret, "Balance").json()
            assert answer["error"] == []
            assert answer["result"]["ZUSD"].startswith("100000")
    finally:
        _stop(proc, signal.SIGTERM)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "allow-remote"),  # noqa: S104 - refused, never bound
        (["--key", "abc"], "together"),
        (["--account", "no-colon"], "KEY:SECRET"),
    ],
)
def test_cli_refuses_bad_options(args: list[str], message: str) -> None:
    result = CliRunner().invoke(sandbox_command, args)
    assert result.exit_code == 2
    assert message in result.output

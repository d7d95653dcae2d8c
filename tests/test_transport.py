"""The transport always sends a User-Agent over verified TLS 1.2+, and turns every failure into a
TransportError that says whether the request may have reached Kraken (never parsing HTML)."""

from __future__ import annotations

import io
import shutil
import socket
import ssl
import subprocess
import threading
import warnings
from pathlib import Path

import pytest
import requests
import requests.adapters
import urllib3.exceptions
from fakehttp import (
    BASE_URL,
    JSON,
    KEY,
    SECRET,
    Answer,
    FakeAdapter,
    LoopbackServer,
    cloudflare,
    free_port,
    ok,
)

from oms._version import USER_AGENT
from oms.errors import (
    ConnectError,
    ConnectionLost,
    HTTPStatusError,
    InvalidResponse,
    RequestTimeout,
    TLSError,
    TransportError,
    ValidationError,
)
from oms.transport import TLSAdapter, Transcript, Transport, make_ssl_context, translate


def _transport(adapter: FakeAdapter, **kwargs: object) -> Transport:
    transport = Transport(**kwargs)  # type: ignore[arg-type]
    transport.mount(BASE_URL, adapter)
    return transport


# --- User-Agent, timeouts, TLS ------------------------------------------------------------------


def test_user_agent_on_every_request_and_not_overridable() -> None:
    fake = FakeAdapter(default=ok({}))
    transport = _transport(fake)
    transport.request("GET", f"{BASE_URL}/0/public/Time")
    transport.request("POST", f"{BASE_URL}/0/private/Balance", headers={"User-Agent": ""}, body=b"")
    assert [r.headers["User-Agent"] for r in fake.requests] == [USER_AGENT, USER_AGENT]
    assert USER_AGENT.startswith("oms/")


def test_empty_user_agent_refused() -> None:
    with pytest.raises(ValidationError):
        Transport(user_agent=" ")


def test_separate_connect_and_read_timeouts() -> None:
    fake = FakeAdapter(default=ok({}))
    transport = _transport(fake, timeout=(1.5, 7.0))
    transport.request("GET", f"{BASE_URL}/0/public/Time")
    transport.request("GET", f"{BASE_URL}/0/public/Time", timeout=(0.5, 2.0))
    assert [o["timeout"] for o in fake.options] == [(1.5, 7.0), (0.5, 2.0)]
    assert all(o["verify"] is not False for o in fake.options)


@pytest.mark.parametrize("timeout", [(0, 1), (1,), (1, -2), "3", (True, 1)])
def test_bad_timeouts_refused(timeout: object) -> None:
    with pytest.raises(ValidationError):
        Transport(timeout=timeout)  # type: ignore[arg-type]


def test_ssl_context_requires_tls12_and_verification() -> None:
    context = make_ssl_context()
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True


def test_tls_adapter_puts_its_context_on_every_pool() -> None:
    adapter = TLSAdapter()
    assert adapter.poolmanager.connection_pool_kw["ssl_context"] is adapter.ssl_context
    proxy = adapter.proxy_manager_for("http://127.0.0.1:3128")
    assert proxy.connection_pool_kw["ssl_context"] is adapter.ssl_context
    transport = Transport()
    mounted = transport._session.get_adapter("https://api.kraken.com/0/public/Time")
    assert isinstance(mounted, TLSAdapter)


def _weak(change: str) -> ssl.SSLContext:
    context = make_ssl_context()
    if change == "tls1.1":
        with warnings.catch_warnings():
            # Deliberately building the obsolete context the adapter must refuse.
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1_1
    elif change == "no-verify":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.check_hostname = False
    return context


@pytest.mark.parametrize("change", ["tls1.1", "no-verify", "no-hostname"])
def test_weak_contexts_refused(change: str) -> None:
    with pytest.raises(ValidationError):
        TLSAdapter(ssl_context=_weak(change))


def test_verify_false_is_refused_before_sending() -> None:
    adapter = TLSAdapter()
    prepared = requests.Request("GET", "https://api.kraken.com/0/public/Time").prepare()
    with pytest.raises(ValidationError, match="verification"):
        adapter.send(prepared, verify=False)
    with pytest.raises(ValidationError):
        adapter.cert_verify(object(), "https://api.kraken.com", False, None)


def test_plain_network_adapter_cannot_replace_tls_adapter() -> None:
    with pytest.raises(ValidationError):
        Transport().mount("https://api.kraken.com", requests.adapters.HTTPAdapter())


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("https://", {}),
        ("ftp://kraken.test/x", {}),
        (f"{BASE_URL}/0/private/Balance", {"API-Key": "bad\nvalue"}),
    ],
)
def test_malformed_requests_refused_before_io(url: str, headers: dict[str, str]) -> None:
    fake = FakeAdapter()
    with pytest.raises(ValidationError):
        _transport(fake).request("POST", url, headers=headers, body=b"")
    assert fake.requests == []


def test_plain_http_only_to_loopback() -> None:
    with pytest.raises(ValidationError, match="plain http"):
        Transport().request("GET", "http://api.kraken.com/0/public/Time")


# --- non-200 and non-JSON answers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "status", "cloudflare_flag"),
    [
        (cloudflare(502, "api.kraken.com | 502: Bad gateway", "Bad Gateway"), 502, True),
        (cloudflare(520, "520: Web server is returning an unknown error"), 520, True),
        (cloudflare(403, "Attention Required! | Cloudflare", "Forbidden"), 403, True),
        (Answer(504, b"<html>gateway timeout</html>", {"Content-Type": "text/html"}), 504, False),
        (Answer(500, b'{"error":["EService:Unavailable"]}', JSON), 500, False),
        (Answer(301, b"", {"Location": "https://elsewhere.test/"}), 301, False),
    ],
)
def test_non_200_is_an_http_status_error(
    answer: Answer, status: int, cloudflare_flag: bool
) -> None:
    transport = _transport(FakeAdapter(answer))
    with pytest.raises(HTTPStatusError) as info:
        transport.request("POST", f"{BASE_URL}/0/private/AddOrder", body=b"nonce=1")
    assert info.value.status_code == status
    assert info.value.cloudflare is cloudflare_flag
    assert info.value.may_have_reached is True
    assert info.value.outcome_known is False


def test_403_message_points_at_user_agent_and_transcript() -> None:
    transport = _transport(FakeAdapter(cloudflare(403, "Attention Required!", "Forbidden")))
    with pytest.raises(HTTPStatusError) as info:
        transport.request("GET", f"{BASE_URL}/0/public/Time")
    message = str(info.value)
    assert "User-Agent" in message
    assert "oms call --transcript" in message
    assert USER_AGENT in message


@pytest.mark.parametrize(
    "answer",
    [
        Answer(200, b"<html><title>Just a moment...</title></html>", {"Content-Type": "text/html"}),
        Answer(200, b"<!DOCTYPE html><html></html>", JSON),
        Answer(200, b"not json at all", {"Content-Type": "text/plain"}),
        Answer(200, b"", JSON),
        Answer(200, b"\xff\xfe\x00", JSON),
    ],
)
def test_non_json_200_is_invalid_response(answer: Answer) -> None:
    transport = _transport(FakeAdapter(answer))
    with pytest.raises(InvalidResponse) as info:
        transport.request("GET", f"{BASE_URL}/0/public/Time")
    assert info.value.may_have_reached is True


def test_json_numbers_with_fractions_become_decimals() -> None:
    transport = _transport(FakeAdapter(Answer(200, b'{"error":[],"result":{"t":1.10}}', JSON)))
    payload = transport.request("GET", f"{BASE_URL}/0/public/Time").payload
    assert str(payload["result"]["t"]) == "1.10"


# --- exception translation ----------------------------------------------------------------------

_URL = "https://kraken.test/0/private/AddOrder"


def _max_retry(reason: Exception) -> urllib3.exceptions.MaxRetryError:
    return urllib3.exceptions.MaxRetryError(None, _URL, reason)  # type: ignore[arg-type]


def _refused() -> Exception:
    return urllib3.exceptions.NewConnectionError(
        None,  # type: ignore[arg-type]
        "Failed to establish a new connection: [Errno 111] Connection refused",
    )


def _unresolved() -> Exception:
    return urllib3.exceptions.NameResolutionError(
        "kraken.test",
        None,  # type: ignore[arg-type]
        socket.gaierror(-2, "Name or service not known"),
    )


def _cert_error() -> requests.exceptions.SSLError:
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed certificate")
    return requests.exceptions.SSLError(_max_retry(urllib3.exceptions.SSLError(verify)))


def _ssl_read_error() -> requests.exceptions.SSLError:
    broken = ssl.SSLError(1, "[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC] bad record mac")
    return requests.exceptions.SSLError(_max_retry(urllib3.exceptions.SSLError(broken)))


@pytest.mark.parametrize(
    ("exc", "expected", "reached"),
    [
        (requests.exceptions.ConnectTimeout("connect timed out"), ConnectError, False),
        (requests.exceptions.ConnectionError(_max_retry(_refused())), ConnectError, False),
        (requests.exceptions.ConnectionError(_max_retry(_unresolved())), ConnectError, False),
        (requests.exceptions.ProxyError("proxy refused"), ConnectError, False),
        (_cert_error(), TLSError, False),
        (_ssl_read_error(), ConnectionLost, True),
        (requests.exceptions.ReadTimeout("read timed out"), RequestTimeout, True),
        (
            requests.exceptions.ConnectionError(
                urllib3.exceptions.ProtocolError(
                    "Connection aborted.", ConnectionResetError(104, "Connection reset by peer")
                )
            ),
            ConnectionLost,
            True,
        ),
        (requests.exceptions.ChunkedEncodingError("incomplete read"), ConnectionLost, True),
        (requests.exceptions.ContentDecodingError("bad gzip"), ConnectionLost, True),
        (urllib3.exceptions.ProtocolError("raw urllib3"), ConnectionLost, True),
        (ConnectionResetError(104, "reset"), ConnectionLost, True),
    ],
)
def test_exceptions_translated(exc: BaseException, expected: type, reached: bool) -> None:
    fake = FakeAdapter(exc)
    transport = _transport(fake)
    with pytest.raises(expected) as info:
        transport.request("POST", _URL, body=b"nonce=1")
    error = info.value
    assert isinstance(error, TransportError)
    assert error.may_have_reached is reached
    assert error.retry_safe is (not reached)
    # Translated once: no requests/urllib3 exception hangs off ours.
    assert error.__cause__ is None
    assert error.__suppress_context__ is True
    assert "POST /0/private/AddOrder" in str(error)


def test_translate_of_a_bare_requests_exception() -> None:
    assert isinstance(translate(requests.exceptions.RequestException("x"), "GET /"), ConnectionLost)


# --- real sockets on 127.0.0.1 ------------------------------------------------------------------


def test_connection_refused_on_loopback_is_connect_error() -> None:
    with pytest.raises(ConnectError) as info:
        Transport(timeout=(1, 1)).request("GET", f"http://127.0.0.1:{free_port()}/0/public/Time")
    assert info.value.may_have_reached is False


def test_reset_after_request_on_loopback_is_connection_lost() -> None:
    server = LoopbackServer()
    server.answers.append("reset")
    with server.running(), pytest.raises(ConnectionLost) as info:
        Transport(timeout=(1, 2)).request("POST", f"{server.url}/0/private/AddOrder", body=b"x=1")
    assert info.value.may_have_reached is True
    assert server.seen[0].body == b"x=1"


def test_read_timeout_on_loopback_is_request_timeout() -> None:
    # The one test about real time: a read timeout of a fifth of a second.
    server = LoopbackServer()
    server.answers.append("hang")
    with server.running(), pytest.raises(RequestTimeout):
        Transport(timeout=(1, 0.2)).request("GET", f"{server.url}/0/public/Time")


def test_loopback_round_trip_sends_user_agent() -> None:
    server = LoopbackServer()
    server.answers.append(ok({"unixtime": 1, "rfc1123": "x"}))
    with server.running():
        response = Transport().request("GET", f"{server.url}/0/public/Time")
    assert response.payload["result"]["unixtime"] == 1
    assert server.seen[0].headers["User-Agent"] == USER_AGENT


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def _tls_server(cert: Path, key: Path, *, maximum: ssl.TLSVersion | None = None) -> LoopbackServer:
    server = LoopbackServer()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if maximum is not None:
        with warnings.catch_warnings():
            # Deliberately serving an obsolete protocol the client must refuse.
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            context.maximum_version = maximum
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    return server


def test_untrusted_certificate_is_tls_error(self_signed: tuple[Path, Path]) -> None:
    server = _tls_server(*self_signed)
    url = server.url.replace("http://", "https://")
    with server.running(), pytest.raises(TLSError) as info:
        Transport(timeout=(2, 2)).request("GET", f"{url}/0/public/Time")
    assert info.value.may_have_reached is False
    assert server.seen == []


def test_trusted_certificate_round_trip(
    self_signed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A company CA bundle (REQUESTS_CA_BUNDLE) adds to the roots; verification stays on.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(self_signed[0]))
    server = _tls_server(*self_signed)
    url = server.url.replace("http://", "https://")
    with server.running():
        response = Transport(timeout=(2, 2)).request("GET", f"{url}/0/public/Time")
    assert response.status_code == 200
    assert server.seen[0].headers["User-Agent"] == USER_AGENT


def test_server_offering_only_tls11_is_refused(
    self_signed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The certificate is trusted, so the protocol version is the only reason to refuse.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(self_signed[0]))
    try:
        server = _tls_server(*self_signed, maximum=ssl.TLSVersion.TLSv1_1)
    except (ssl.SSLError, ValueError):
        pytest.skip("this OpenSSL cannot serve TLS 1.1")
    url = server.url.replace("http://", "https://")
    with server.running(), pytest.raises(TLSError):
        Transport(timeout=(2, 2)).request("GET", f"{url}/0/public/Time")


# --- transcript ---------------------------------------------------------------------------------


def test_transcript_has_everything_but_credentials() -> None:
    stream = io.StringIO()
    transcript = Transcript(stream, redact=(SECRET, KEY), clock=lambda: 0.0)
    fake = FakeAdapter(
        Answer(200, b'{"error":[],"result":{"token":"WSTOKEN123","expires":900}}', JSON),
        cloudflare(403, "Attention Required!", "Forbidden"),
    )
    transport = _transport(fake, transcript=transcript)
    body = f"nonce=42&otp=123456&note={SECRET}".encode()
    headers = {"API-Key": KEY, "API-Sign": "SIGNATUREVALUE", "Content-Type": "x"}
    url = f"{BASE_URL}/0/private/GetWebSocketsToken"
    transport.request("POST", url, headers=headers, body=body)
    with pytest.raises(HTTPStatusError):
        transport.request("POST", url, headers=headers, body=body)
    text = stream.getvalue()
    assert f"POST {url}" in text
    assert f"User-Agent: {USER_AGENT}" in text
    assert "Host: kraken.test" in text
    assert f"API-Key: {KEY[:4]}…" in text
    assert "API-Sign: <redacted>" in text
    assert "nonce=42" in text
    assert "HTTP 200 OK" in text
    assert "HTTP 403 Forbidden" in text
    assert "Server: cloudflare" in text
    assert "Attention Required!" in text
    assert '"expires":900' in text
    for leaked in (SECRET, KEY, "SIGNATUREVALUE", "123456", "WSTOKEN123"):
        assert leaked not in text
    assert "Transcript(" in repr(transcript)
    assert SECRET not in repr(transcript)


def test_transcript_records_failures() -> None:
    stream = io.StringIO()
    transport = _transport(
        FakeAdapter(requests.exceptions.ReadTimeout("slow")),
        transcript=Transcript(stream),
    )
    with pytest.raises(RequestTimeout):
        transport.request("GET", f"{BASE_URL}/0/public/Time")
    assert "no response 1: RequestTimeout (the request may have reached the server)" in (
        stream.getvalue()
    )


def test_transcript_writes_are_whole_under_threads() -> None:
    stream = io.StringIO()
    transport = _transport(FakeAdapter(default=ok({})), transcript=Transcript(stream))
    threads = [
        threading.Thread(target=transport.request, args=("GET", f"{BASE_URL}/0/public/Time"))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stream.getvalue().count("=== request") == 8
    assert stream.getvalue().count("=== response") == 8

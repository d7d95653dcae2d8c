"""Proxies, the CA bundle and netrc credentials from the environment apply, read once per host."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests.utils
from fakehttp import BASE_URL, KEY, SECRET, FakeAdapter, ok

from oms.auth import Credentials, key_fingerprint
from oms.client import KrakenClient
from oms.nonce import NonceSource
from oms.transport import Environment, Transport

URL = f"{BASE_URL}/0/public/Time"
TIME = {"unixtime": 1, "rfc1123": "x"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))


def _sent() -> tuple[FakeAdapter, Transport]:
    fake = FakeAdapter(default=ok(TIME))
    transport = Transport()
    transport.mount(BASE_URL, fake)
    transport.request("GET", URL)
    return fake, transport


def test_https_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    fake, _ = _sent()
    assert fake.options[0]["proxies"]["https"] == "http://proxy.test:3128"


def test_no_proxy_bypasses_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("NO_PROXY", "kraken.test")
    fake, _ = _sent()
    assert not fake.options[0]["proxies"]


@pytest.mark.parametrize("name", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_ca_bundle_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    bundle = tmp_path / "company-ca.pem"
    bundle.write_text("")
    monkeypatch.setenv(name, str(bundle))
    fake, _ = _sent()
    assert fake.options[0]["verify"] == str(bundle)


def test_no_ca_bundle_verifies_with_the_default_roots() -> None:
    fake, _ = _sent()
    assert fake.options[0]["verify"] is True


def test_netrc_credentials_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine kraken.test login alice password wonderland\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    fake, _ = _sent()
    assert fake.last.headers["Authorization"] == "Basic YWxpY2U6d29uZGVybGFuZA=="


def test_netrc_credentials_never_in_a_repr(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine kraken.test login alice password wonderland\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert "wonderland" not in repr(Environment.read(URL))
    assert "YWxpY2U" not in repr(Environment.read(URL))


def test_the_environment_is_read_once_per_host(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    real = requests.utils.get_environ_proxies

    def counting(url: str, no_proxy: str | None = None) -> dict[str, str]:
        reads.append(url)
        return real(url, no_proxy=no_proxy)

    monkeypatch.setattr(requests.utils, "get_environ_proxies", counting)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    fake = FakeAdapter(default=ok(TIME))
    transport = Transport()
    transport.mount(BASE_URL, fake)
    for _ in range(3):
        transport.request("GET", URL)
    monkeypatch.setenv("HTTPS_PROXY", "http://elsewhere.test:8080")
    transport.request("GET", URL)
    assert len(reads) == 1
    assert {o["proxies"]["https"] for o in fake.options} == {"http://proxy.test:3128"}


def test_the_client_reads_the_environment_when_built(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    fake = FakeAdapter(default=ok(TIME))
    transport = Transport()
    transport.mount(BASE_URL, fake)
    client = KrakenClient(
        Credentials(key=KEY, secret=SECRET),
        base_url=BASE_URL,
        transport=transport,
        nonce_source=NonceSource(key_fingerprint(KEY), directory=tmp_path),
    )
    monkeypatch.delenv("HTTPS_PROXY")
    client.time()
    assert fake.options[0]["proxies"]["https"] == "http://proxy.test:3128"

"""oms.transport._tls: a request's headers and body leave in one write, whatever the body."""

from __future__ import annotations

import io
from typing import Any

import pytest

from oms.transport._tls import _HTTPConnection, _HTTPSConnection

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class RecordingSocket:
    """A connected socket that records every write and answers every request with ANSWER."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def sendall(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def makefile(self, mode: str, *args: object, **kwargs: object) -> io.BytesIO:
        return io.BytesIO(ANSWER)

    def settimeout(self, value: float | None) -> None:
        pass

    def gettimeout(self) -> float | None:
        return None

    def close(self) -> None:
        pass


@pytest.fixture(params=[_HTTPConnection, _HTTPSConnection], ids=["http", "https"])
def connection(request: pytest.FixtureRequest) -> Any:
    conn = request.param("127.0.0.1", 9)
    conn.sock = RecordingSocket()
    return conn


def test_a_post_is_one_write_of_headers_and_body(connection: Any) -> None:
    body = b"nonce=1&pair=XBTUSD&type=buy"
    connection.request("POST", "/0/private/AddOrder", body=body, headers={"API-Key": "k"})
    (write,) = connection.sock.writes
    head, _, sent_body = write.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /0/private/AddOrder HTTP/1.1\r\n")
    assert b"\r\nAPI-Key: k" in head
    assert sent_body == body
    response = connection.getresponse()
    assert (response.status, response.data) == (200, b"{}")
    assert len(connection.sock.writes) == 1  # nothing left over for the response


def test_a_request_without_body_is_sent_before_its_answer_is_read(connection: Any) -> None:
    for n in range(1, 4):  # one connection, kept alive: every request leaves whole
        connection.request("GET", f"/0/public/Time?n={n}")
        response = connection.getresponse()
        assert response.data == b"{}"
        assert len(connection.sock.writes) == n
        assert connection.sock.writes[-1].startswith(f"GET /0/public/Time?n={n} ".encode())
        assert connection.sock.writes[-1].endswith(b"\r\n\r\n")


def test_a_file_body_follows_its_headers_in_order(connection: Any) -> None:
    connection.request(
        "POST", "/upload", body=io.BytesIO(b"x" * 10), headers={"Content-Length": "10"}
    )
    connection.getresponse()
    sent = b"".join(connection.sock.writes)
    head, _, body = sent.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /upload HTTP/1.1\r\n")
    assert body == b"x" * 10


def test_a_closed_connection_forgets_headers_it_held(connection: Any) -> None:
    connection.putrequest("POST", "/never")
    connection.putheader("Content-Length", "3")
    connection.endheaders()
    assert connection.sock.writes == []  # held for the body
    connection.close()
    connection.sock = RecordingSocket()
    connection.request("POST", "/again", body=b"abc")
    (write,) = connection.sock.writes
    assert write.startswith(b"POST /again ")
    assert b"/never" not in write

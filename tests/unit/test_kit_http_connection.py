"""The HTTP client's connection (service_kit.http.HTTPConnection): the same bytes on the wire as
http.client's, in one write instead of two, and a connected socket that blocks (the call's deadline bounds
it, see test_kit_http_deadlines.py) instead of polling before every read and write."""
from __future__ import annotations

import http.client
import socket

import pytest

from service_kit.http import HTTPConnection, HTTPSConnection


class RecordingSocket:
    """Stands in for a connected socket: keeps every write."""

    def __init__(self):
        self.writes: list[bytes] = []

    def sendall(self, data):
        self.writes.append(bytes(data))


def sent_by(connection: http.client.HTTPConnection, method: str, body: bytes | None) -> list[bytes]:
    connection.sock = RecordingSocket()
    headers = {"Content-Type": "application/json", "Authorization": "Basic k"}
    connection.request(method, "/api/PromsFormOrder", body=body, headers=headers)
    return connection.sock.writes


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_a_request_with_a_body_is_one_write_of_the_same_bytes(method):
    body = b'{"formOrderStatus": "Ordered"}'
    ours = sent_by(HTTPConnection("127.0.0.1", 1), method, body)
    stock = sent_by(http.client.HTTPConnection("127.0.0.1", 1), method, body)
    assert len(stock) == 2, "http.client writes the head, then the body"
    assert ours == [b"".join(stock)]
    assert ours[0].endswith(b"\r\n\r\n" + body) and b"Content-Length: %d\r\n" % len(body) in ours[0]


def test_a_request_without_a_body_goes_as_http_client_sends_it():
    assert sent_by(HTTPConnection("127.0.0.1", 1), "GET", None) == \
        sent_by(http.client.HTTPConnection("127.0.0.1", 1), "GET", None)


def test_a_connected_socket_blocks_instead_of_timing_out_each_read():
    listener = socket.create_server(("127.0.0.1", 0))
    connection = HTTPConnection("127.0.0.1", listener.getsockname()[1], timeout=5)
    try:
        connection.connect()
        assert connection.sock.gettimeout() is None
    finally:
        connection.close()
        listener.close()


def test_the_tls_connection_is_still_tls():
    connection = HTTPSConnection("127.0.0.1", None)
    assert connection.default_port == 443 and isinstance(connection, http.client.HTTPSConnection)

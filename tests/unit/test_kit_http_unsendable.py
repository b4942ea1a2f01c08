"""Requests no HTTP client can send as given (service_kit.http.UnsendableRequest), and error texts that never
quote the other side: a failed call like any other, whose text names neither a key nor a registry's bytes."""
from __future__ import annotations

import http.client
import socket
import threading

import pytest

from service_kit.clock import SimClock
from service_kit.http import Exchange, KeepAliveClient, Transport, UnsendableRequest, describe_error

SECRET = "eprox-key-at-eprom"


@pytest.fixture
def listening():
    server = socket.create_server(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


@pytest.mark.parametrize("url, headers", [
    ("http://127.0.0.1:99999/api", {}),
    ("http://127.0.0.1:abc/api", {}),
    ("http://[::1/api", {}),
    ("{listening}/sk\u00f8jema", {}),
    ("{listening}/api", {"Authorization": f"Basic {SECRET}\n"}),
    ("{listening}/api", {"Authorization": f"Basic {SECRET}\u2603"}),
])
def test_a_request_that_cannot_be_sent_is_an_http_failure_that_quotes_nothing(listening, url, headers):
    client = KeepAliveClient(timeout=2)
    with pytest.raises(UnsendableRequest) as raised:
        client.request("PUT", url.format(listening=listening), {"apiKey": SECRET}, headers)
    assert isinstance(raised.value, http.client.HTTPException), "callers handle it as any failed call"
    assert SECRET not in str(raised.value) and raised.value.__cause__ is None and raised.value.__suppress_context__
    exchange = Transport("ePROX", SimClock(), timeout=2).send("PUT", url.format(listening=listening), {},
                                                              headers=headers)
    assert exchange.status is None and exchange.error.startswith("UnsendableRequest: ")
    assert SECRET not in exchange.error


def one_connection(scheme: str, serve) -> Exchange:
    """A PUT to a server that takes one connection and hands it to serve(conn); what the client made of it."""
    server = socket.create_server(("127.0.0.1", 0))

    def accept():
        conn, _ = server.accept()
        try:
            serve(conn)
        finally:
            conn.close()

    thread = threading.Thread(target=accept)
    thread.start()
    exchange = Transport("ePROX", SimClock(), timeout=5).send("PUT", f"{scheme}://127.0.0.1:{server.getsockname()[1]}/",
                                                              {})
    thread.join()
    server.close()
    return exchange


def test_an_answer_that_is_not_http_is_described_without_its_bytes():
    def answer_garbage(conn):
        conn.recv(65536)
        conn.sendall(b'{"success": true, "echo": "26723916517"}\r\n\r\n')

    exchange = one_connection("http", answer_garbage)
    assert exchange.error == "BadStatusLine: the answer was not HTTP/1.x"
    assert describe_error(http.client.UnknownProtocol("HTTP/9 26723916517")) == \
        "UnknownProtocol: the answer was not HTTP/1.x"
    assert describe_error(ConnectionRefusedError(111, "Connection refused")) == \
        "ConnectionError: [Errno 111] Connection refused"


def test_an_eprom_key_no_request_can_carry_is_a_502_for_the_registry_and_an_error_for_the_operator(listening, caplog):
    from proxy.gateways import HttpEprom

    eprom = HttpEprom(Transport("ePROX", SimClock(), timeout=2), listening, SECRET + "\n")
    reply = eprom.place_order({"formId": "x"})
    assert reply.status is None and reply.error.startswith("UnsendableRequest")
    assert "no request to ePROM can be made with the proxy's ePROM URL and key" in caplog.text
    assert SECRET not in caplog.text


def test_a_certificate_that_does_not_verify_is_a_connection_failure_not_an_unsendable_request():
    """ssl's verification error is a ValueError too: it was reported as a request that cannot be sent (the
    checker told a registry team to look at its URL; the proxy logged that its configuration was wrong)."""
    import ssl

    import trustme

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)  # a CA nobody here trusts

    def handshake(conn):
        try:
            context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            pass

    exchange = one_connection("https", handshake)
    assert exchange.status is None
    assert exchange.error.startswith("SSLCertVerificationError: ") and "certificate verify failed" in exchange.error

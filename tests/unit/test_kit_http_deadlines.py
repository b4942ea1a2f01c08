"""The HTTP client's limits (service_kit.http): a call ends at its timeout however the other side dribbles
its answer (a socket timeout alone bounds each read, not the call), and an answer larger than the client
takes is refused instead of read into memory. What the proxy's outbox relies on: a slow or hostile registry
holds a delivery lane, and the delivery's lease, for the timeout at most."""
from __future__ import annotations

import http.client
import socket
import socketserver
import ssl
import threading
import time

import pytest
import trustme

from service_kit.clock import SimClock
from service_kit.http import AnswerTooLarge, Deadlines, KeepAliveClient, ThreadSessions, Transport, _Watch
from slow_http import Dribbler, TLSServer, serve  # tests/support/


@pytest.fixture
def server():
    yield from serve(socketserver.ThreadingTCPServer(("127.0.0.1", 0), Dribbler), "http")


@pytest.fixture
def tls_context(tmp_path, monkeypatch) -> ssl.SSLContext:
    """The server side's context; clients trust the CA (through SSL_CERT_FILE, as a deployment would)."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def tls_server(tls_context):
    yield from serve(TLSServer(("127.0.0.1", 0), Dribbler, tls_context), "https")


@pytest.mark.parametrize("path", ["/body", "/headers", "/silent"])
def test_a_call_ends_at_its_timeout_however_slowly_the_answer_comes(server, path):
    client = KeepAliveClient(1.0, ThreadSessions())
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="no complete answer within 1 s"):
        client.request("PUT", server + path, {"n": 1}, {})
    # a dribbled byte comes every 50 ms and a silent server sends nothing on a socket that blocks, so only
    # the call's deadline could end it; a whole dribbled answer would have taken DRIBBLE_BYTES * DRIBBLE_GAP
    # = 20 s
    assert time.monotonic() - started < 10


def test_a_timed_out_call_is_reported_as_a_timeout_with_no_answer(server):
    transport = Transport("proxy", SimClock(), timeout=1.0)
    exchange = transport.send("PUT", server + "/body", {"formOrderStatus": "Ordered"})
    assert exchange.status is None and exchange.error.startswith("Timeout: no complete answer within 1 s")
    assert not exchange.acknowledged


@pytest.mark.parametrize("path", ["/big", "/chunked"])
def test_an_answer_larger_than_the_client_takes_is_refused(server, path):
    Dribbler.big = 64 * 4096
    client = KeepAliveClient(5.0, ThreadSessions(), max_answer=16 * 4096)
    with pytest.raises(http.client.HTTPException, match="more than 65536"):
        client.request("PUT", server + path, {"n": 1}, {})
    Dribbler.big = 4 * 4096  # within the limit: taken whole, with a length or chunked
    assert client.request("PUT", server + path, {"n": 2}, {}) == (200, b"z" * (4 * 4096))


def test_a_call_that_finished_is_never_cut_off_later(server):
    """The deadline of a finished call passes without touching its (kept) socket; a later one still fires."""
    deadlines = Deadlines()
    finished_here, finished_there = socket.socketpair()
    stuck_here, stuck_there = socket.socketpair()
    try:
        finished = _Watch(time.monotonic() + 0.05)
        deadlines.watch(finished, finished_here)
        deadlines.done(finished)
        stuck = _Watch(time.monotonic() + 0.2)
        deadlines.watch(stuck, stuck_here)
        stuck_here.settimeout(10)
        assert stuck_here.recv(1) == b"", "the deadline shut the stuck call's socket"
        assert stuck.fired and not finished.fired
        finished_there.sendall(b"k")
        finished_here.settimeout(10)
        assert finished_here.recv(1) == b"k", "the finished call's socket is still whole"
    finally:
        for sock in (finished_here, finished_there, stuck_here, stuck_there):
            sock.close()


def test_calls_that_answer_in_time_are_untouched(server):
    client = KeepAliveClient(5.0, ThreadSessions())
    for n in range(20):
        assert client.request("PUT", server + "/ok", {"n": n}, {}) == (200, b'{"success": true}')


def test_over_tls_a_call_answers_and_a_slow_one_ends_at_its_timeout(tls_server):
    client = KeepAliveClient(1.0, ThreadSessions())
    for n in range(3):
        assert client.request("PUT", tls_server + "/ok", {"n": n}, {}) == (200, b'{"success": true}')
    for path in ("/body", "/silent"):
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="no complete answer within 1 s"):
            client.request("PUT", tls_server + path, {"n": 1}, {})
        assert time.monotonic() - started < 10


def test_a_tls_read_that_starts_after_the_deadline_fails_as_no_answer(tls_context):
    """The deadline may fire between two reads of a call. The read after it must fail the way a dropped
    connection does (an OSError, or the end of the stream), which the client reports as a timeout; a TLS
    socket's own shutdown() would make it a ValueError that no caller expects."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[ssl.SSLSocket] = []
    thread = threading.Thread(target=lambda: accepted.append(
        tls_context.wrap_socket(listener.accept()[0], server_side=True)), daemon=True)
    thread.start()
    client = ssl.create_default_context().wrap_socket(
        socket.create_connection(listener.getsockname(), timeout=10), server_hostname="127.0.0.1")
    thread.join(timeout=10)
    deadlines, watch = Deadlines(), _Watch(time.monotonic() + 0.05)
    try:
        deadlines.watch(watch, client)
        limit = time.monotonic() + 10
        while not watch.fired and time.monotonic() < limit:
            time.sleep(0.01)  # sleep-ok: polls a flag the deadline thread sets; there is nothing to wait on
        assert watch.fired
        try:
            got = client.recv(1)
        except OSError:
            got = None
        assert got in (b"", None)
    finally:
        client.close()
        for sock in accepted:
            sock.close()
        listener.close()


def test_a_call_may_take_a_larger_answer_than_the_clients_cap_and_says_what_it_is(server):
    """What a document download uses: a cap of its own for one call, and the answer's Content-Type."""
    Dribbler.big = 64 * 4096
    client = KeepAliveClient(5.0, ThreadSessions(), max_answer=16 * 4096)
    for path in ("/big", "/chunked"):
        answer = client.call("GET", server + path, None, {}, max_answer=128 * 4096)
        assert (answer.status, answer.data, answer.content_type) == (200, b"z" * (64 * 4096), None)
        with pytest.raises(AnswerTooLarge, match="more than 131072"):
            client.call("GET", server + path, None, {}, max_answer=32 * 4096)
    assert client.call("GET", server + "/ok", None, {}).content_type == "application/json"


@pytest.fixture
def through_proxy(server, monkeypatch):
    """The dribbling server as the environment's HTTP proxy: calls to any http URL go to it, by requests
    (it answers them itself, as a proxy that relays a slow or large answer would)."""
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", server)
    return "http://registry.example"


def test_through_an_http_proxy_a_call_still_ends_at_its_timeout(through_proxy):
    client = KeepAliveClient(1.0, ThreadSessions())
    assert client.request("PUT", through_proxy + "/ok", {"n": 1}, {}) == (200, b'{"success": true}')
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="no complete answer within 1 s"):
        client.request("PUT", through_proxy + "/body", {"n": 1}, {})
    assert time.monotonic() - started < 10  # the whole dribbled body would take 20 s


def test_through_an_http_proxy_an_answer_larger_than_the_client_takes_is_refused(through_proxy):
    Dribbler.big = 64 * 4096
    client = KeepAliveClient(5.0, ThreadSessions(), max_answer=16 * 4096)
    for path in ("/big", "/chunked"):
        with pytest.raises(AnswerTooLarge, match="more than 65536"):
            client.request("PUT", through_proxy + path, {"n": 1}, {})
    Dribbler.big = 4 * 4096
    assert client.request("PUT", through_proxy + "/big", {"n": 2}, {}) == (200, b"z" * (4 * 4096))

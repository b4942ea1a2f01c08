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
from service_kit.http import AnswerTooLarge, Deadlines, KeepAliveClient, Transport, _Watch, route_for
from slow_http import Dribbler, TLSServer, TunnelProxy, serve  # tests/support/


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
    ca.issue_cert("127.0.0.1", "registry.example").configure_cert(context)
    return context


@pytest.fixture
def tls_server(tls_context):
    yield from serve(TLSServer(("127.0.0.1", 0), Dribbler, tls_context), "https")


@pytest.mark.parametrize("path", ["/body", "/headers", "/silent"])
def test_a_call_ends_at_its_timeout_however_slowly_the_answer_comes(server, path):
    client = KeepAliveClient(1.0)
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
    client = KeepAliveClient(5.0, max_answer=16 * 4096)
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


def test_cut_short_a_client_ends_its_calls_in_flight_at_once_and_refuses_new_ones(server):
    """What a harness told to stop does to its proxy's deliveries: before, its exit waited for a slow
    registry's call to time out. Other clients are not touched."""
    Dribbler.heard = threading.Semaphore(0)
    client, other = KeepAliveClient(60.0), KeepAliveClient(60.0)
    errors: list[BaseException] = []

    def call(client: KeepAliveClient) -> None:
        try:
            client.request("PUT", server + "/silent", {"n": 1}, {})
        except OSError as err:
            errors.append(err)

    threads = [threading.Thread(target=call, args=(c,), daemon=True) for c in (client, other)]
    for thread in threads:
        thread.start()
        assert Dribbler.heard.acquire(timeout=10), "the call reached the server"
    client.cut_calls_short()
    threads[0].join(timeout=10)
    assert not threads[0].is_alive(), "the call ended without waiting out its 60 s timeout"
    assert [type(e) for e in errors] == [ConnectionAbortedError]
    assert str(errors[0]) == "cut short: the sender is stopping"
    assert threads[1].is_alive(), "the other client's call goes on"
    with pytest.raises(ConnectionAbortedError, match="cut short"):
        client.request("PUT", server + "/ok", {"n": 2}, {})
    assert KeepAliveClient(5.0).request("PUT", server + "/ok", {"n": 3}, {}) == (200, b'{"success": true}')
    other.cut_calls_short()
    threads[1].join(timeout=10)
    assert not threads[1].is_alive()


def test_a_socket_that_comes_after_the_cut_gets_no_further():
    deadlines = Deadlines()
    here, there = socket.socketpair()
    try:
        watch = _Watch(time.monotonic() + 60)
        deadlines.cut(watch)
        with pytest.raises(ConnectionAbortedError, match="cut short"):
            deadlines.watch(watch, here)
        assert watch.cut and not watch.fired and watch.sock is None
    finally:
        here.close()
        there.close()


TCP_SYN_SENT = 2  # the first byte of Linux's struct tcp_info


def test_a_call_cut_short_while_the_host_never_completes_the_handshake_ends_at_once():
    """A registry host that drops connection attempts (a full accept queue here, a firewall in life): the
    socket reached the call's deadline only once connected, so a harness told to stop still waited out the
    proxy's whole timeout (found by a helper's hunt)."""
    hole = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = hole.getsockname()[1]
    fillers = []
    for _ in range(8):  # fill the accept queue: later attempts get no answer to their SYN
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    client = KeepAliveClient(60.0)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.request("PUT", f"http://127.0.0.1:{port}/eprox/api/PromsFormOrder", {"n": 1}, {})
        except OSError as err:
            errors.append(err)

    thread = threading.Thread(target=call, daemon=True)
    try:
        thread.start()
        deadline = time.monotonic() + 10
        while not _connecting(client) and time.monotonic() < deadline:
            time.sleep(0.01)  # sleep-ok: waiting for the kernel to show the connect under way; nothing to wait on
        assert _connecting(client), "the call is waiting for the handshake"
        client.cut_calls_short()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the connect ended without waiting out the 60 s timeout"
        assert [str(e) for e in errors] == ["cut short: the sender is stopping"]
    finally:
        for sock in (hole, *fillers):
            sock.close()


def _connecting(client: KeepAliveClient) -> bool:
    for watch in list(client._in_flight):
        sock = watch.sock
        if sock is not None and sock.fileno() >= 0:
            try:
                if sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] == TCP_SYN_SENT:
                    return True
            except OSError:
                pass
    return False


def test_calls_that_answer_in_time_are_untouched(server):
    client = KeepAliveClient(5.0)
    for n in range(20):
        assert client.request("PUT", server + "/ok", {"n": n}, {}) == (200, b'{"success": true}')


def test_over_tls_a_call_answers_and_a_slow_one_ends_at_its_timeout(tls_server):
    client = KeepAliveClient(1.0)
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
    client = KeepAliveClient(5.0, max_answer=16 * 4096)
    for path in ("/big", "/chunked"):
        answer = client.call("GET", server + path, None, {}, max_answer=128 * 4096)
        assert (answer.status, answer.data, answer.content_type) == (200, b"z" * (64 * 4096), None)
        with pytest.raises(AnswerTooLarge, match="more than 131072"):
            client.call("GET", server + path, None, {}, max_answer=32 * 4096)
    assert client.call("GET", server + "/ok", None, {}).content_type == "application/json"


PROXY_VARIABLES = ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                   "all_proxy")


@pytest.fixture
def clean_proxy_environment(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def through_proxy(server, clean_proxy_environment):
    """The dribbling server as the environment's HTTP proxy, with credentials: calls to any http URL go to
    it (it answers them itself, as a proxy that relays a slow or large answer would)."""
    clean_proxy_environment.setenv("HTTP_PROXY", server.replace("http://", "http://ops%40eprox:s3cret@"))
    Dribbler.heads.clear()
    return "http://registry.example"


@pytest.fixture
def tunnel(clean_proxy_environment):
    """A CONNECT proxy (tests/support/slow_http.TunnelProxy) as the environment's proxy for https."""
    TunnelProxy.heads.clear()
    TunnelProxy.dribble = False
    for url in serve(socketserver.ThreadingTCPServer(("127.0.0.1", 0), TunnelProxy), "http"):
        clean_proxy_environment.setenv("HTTPS_PROXY", url.replace("http://", "http://ops:pw@"))
        yield url


def test_through_an_http_proxy_the_request_names_the_whole_url_and_carries_the_proxys_credentials(through_proxy):
    client = KeepAliveClient(5.0)
    assert client.request("PUT", through_proxy + "/ok?x=1", {"n": 1}, {"X-Delivery-Id": "d1"}) == (
        200, b'{"success": true}')
    (head,) = Dribbler.heads
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "PUT http://registry.example/ok?x=1 HTTP/1.1"
    assert "Host: registry.example" in lines and "X-Delivery-Id: d1" in lines
    assert "Proxy-Authorization: Basic b3BzQGVwcm94OnMzY3JldA==" in lines  # ops@eprox:s3cret, unquoted


@pytest.mark.parametrize("path", ["/body", "/headers", "/silent"])
def test_through_an_http_proxy_a_call_still_ends_at_its_timeout(through_proxy, path):
    client = KeepAliveClient(1.0)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="no complete answer within 1 s"):
        client.request("PUT", through_proxy + path, {"n": 1}, {})
    assert time.monotonic() - started < 10  # the whole dribbled answer would take 20 s


def test_through_an_http_proxy_an_answer_larger_than_the_client_takes_is_refused(through_proxy):
    Dribbler.big = 64 * 4096
    client = KeepAliveClient(5.0, max_answer=16 * 4096)
    for path in ("/big", "/chunked"):
        with pytest.raises(AnswerTooLarge, match="more than 65536"):
            client.request("PUT", through_proxy + path, {"n": 1}, {})
    Dribbler.big = 4 * 4096
    assert client.request("PUT", through_proxy + "/big", {"n": 2}, {}) == (200, b"z" * (4 * 4096))


def far(url: str) -> str:
    """A loopback test server's URL under a name that is not loopback (loopback never goes through a proxy);
    the tunnelling proxy resolves every name to this machine, and the certificate carries the name."""
    return url.replace("127.0.0.1", "registry.example")


def test_https_goes_through_the_proxys_tunnel_with_its_credentials_and_tls_to_the_server(tunnel, tls_server):
    client = KeepAliveClient(5.0)
    assert client.request("PUT", far(tls_server) + "/ok", {"n": 1}, {}) == (200, b'{"success": true}')
    (head,) = TunnelProxy.heads
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith(f"CONNECT {far(tls_server).removeprefix('https://')} HTTP/1.")  # 1.0 before 3.12
    assert "Proxy-Authorization: Basic b3BzOnB3" in lines  # ops:pw
    assert not any(line.startswith("Proxy-Authorization") for line in Dribbler.heads[-1].decode().split("\r\n")), \
        "inside the tunnel the server never sees the proxy's credentials"


@pytest.mark.parametrize("path", ["/body", "/headers"])
def test_through_the_tunnel_a_slow_answer_ends_at_the_timeout(tunnel, tls_server, path):
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="no complete answer within 1 s"):
        KeepAliveClient(1.0).request("PUT", far(tls_server) + path, {"n": 1}, {})
    assert time.monotonic() - started < 10


def test_a_proxy_that_dribbles_its_answer_to_connect_ends_at_the_timeout(tunnel, tls_server):
    """Opening the tunnel is within the call's deadline too, not only each read of it."""
    TunnelProxy.dribble = True
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="no complete answer within 1 s"):
        KeepAliveClient(1.0).request("PUT", far(tls_server) + "/ok", {"n": 1}, {})
    assert time.monotonic() - started < 10  # the whole CONNECT answer would take 20 s


def test_loopback_never_goes_through_a_proxy(server, clean_proxy_environment):
    """A proxy elsewhere cannot reach this machine's loopback: the harness's servers must work wherever
    HTTP_PROXY is set for the internet, NO_PROXY or not."""
    clean_proxy_environment.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    for url in (server, server.replace("127.0.0.1", "localhost")):
        assert KeepAliveClient(5.0).request("PUT", url + "/ok", {"n": 1}, {}) == (200, b'{"success": true}')
    assert route_for("http", "::1").proxy is None and route_for("http", "127.8.9.10").proxy is None


def test_no_proxy_names_the_hosts_reached_directly(clean_proxy_environment):
    clean_proxy_environment.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    clean_proxy_environment.setenv("NO_PROXY", "eprom.example,.helsenett.example")
    for host in ("eprom.example", "registry.helsenett.example"):
        assert route_for("https", host).proxy is None
    assert route_for("https", "registry.example").proxy.hostname == "proxy.example"
    assert route_for("http", "registry.example").proxy is None, "HTTPS_PROXY is for https only"


def test_all_proxy_serves_when_no_proxy_is_named_for_the_scheme(server, clean_proxy_environment):
    clean_proxy_environment.setenv("ALL_PROXY", server)
    Dribbler.heads.clear()
    assert KeepAliveClient(5.0).request("GET", "http://registry.example/ok", None, {})[0] == 200
    assert Dribbler.heads[-1].startswith(b"GET http://registry.example/ok HTTP/1.1")


@pytest.mark.parametrize("variable, proxy, url, error", [
    ("HTTPS_PROXY", "https://proxy.example:3129", "https://registry.example/x", "tunnels https through http:// proxies"),
    ("HTTP_PROXY", "socks5://proxy.example:1080", "http://registry.example/x", "a proxy this client cannot use"),
])
def test_a_proxy_this_client_cannot_use_fails_the_call_and_says_why(clean_proxy_environment, variable, proxy, url,
                                                                     error):
    clean_proxy_environment.setenv(variable, proxy)
    with pytest.raises(http.client.HTTPException, match=error):
        KeepAliveClient(1.0).request("GET", url, None, {})
    exchange = Transport("proxy", SimClock(), timeout=1.0).send("GET", url)
    assert exchange.status is None and error in exchange.error


def test_a_connection_made_without_a_timeout_connects_as_http_client_would():
    """The watched connect takes http.client's default timeout (a sentinel, not a number) as
    socket.create_connection does; settimeout() would refuse it."""
    from service_kit.http import HTTPConnection

    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[socket.socket] = []
    try:
        connection = HTTPConnection("127.0.0.1", listener.getsockname()[1])
        connection.on_socket = seen.append
        connection.connect()
        assert seen == [connection.sock] and connection.sock.getpeername() == listener.getsockname()
        connection.close()
    finally:
        listener.close()

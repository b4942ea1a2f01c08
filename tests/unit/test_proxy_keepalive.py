"""The HTTP client every server sends with (service_kit.http), as the proxy's outbox uses it: keep-alive
connections per thread; one the other side closed while it was idle replaced before anything is sent on it;
one that drops as a PUT goes out replaced once, never for a POST; no answer reported as an error, never as a
reply."""
from __future__ import annotations

import http.server
import json
import threading

import pytest

from service_kit.http import KeepAliveClient


class Registry(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    seen: list = []
    hang = threading.Event()

    def do_PUT(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Registry.seen.append((self.headers["X-Delivery-Id"], body, self.client_address[1]))
        if body.get("hang"):
            Registry.hang.wait(10)
            return
        first = [d for d, _, _ in Registry.seen].count(self.headers["X-Delivery-Id"]) == 1
        if body.get("drop_first") and first:  # took the request, then the connection died unanswered
            self.close_connection = True
            return
        data = b'{"success": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        if body.get("drop_after"):
            self.close_connection = True  # closes without saying so: the client's pooled connection goes stale

    do_POST = do_PUT

    def log_message(self, *args):
        pass


class RegistryServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    closed = threading.Semaphore(0)  # one release per connection the registry has closed

    def shutdown_request(self, request):
        super().shutdown_request(request)
        RegistryServer.closed.release()


@pytest.fixture
def registry():
    Registry.seen = []
    Registry.hang = threading.Event()
    RegistryServer.closed = threading.Semaphore(0)
    server = RegistryServer(("127.0.0.1", 0), Registry)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    Registry.hang.set()
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_connections_are_kept_and_one_closed_while_idle_is_replaced_before_sending(registry, method):
    """A server's keep-alive timeout closes idle connections (gunicorn's after 2-5 s): the next call, an order
    (POST) included, goes on a new connection and arrives once, instead of failing."""
    client = KeepAliveClient(5.0)
    for i in range(3):
        assert client.request(method, f"{registry}/api/PromsFormOrder", {"n": i}, {"X-Delivery-Id": f"d{i}"}) == \
            (200, b'{"success": true}')
    assert len({port for _, _, port in Registry.seen}) == 1, "one connection for all three"
    client.request(method, f"{registry}/api/PromsFormOrder", {"drop_after": True}, {"X-Delivery-Id": "d3"})
    assert RegistryServer.closed.acquire(timeout=10), "the registry never closed the connection"
    assert client.request(method, f"{registry}/api/PromsFormOrder", {"n": 4}, {"X-Delivery-Id": "d4"})[0] == 200
    assert [d for d, _, _ in Registry.seen] == ["d0", "d1", "d2", "d3", "d4"], "d4 arrived once"
    assert Registry.seen[4][2] != Registry.seen[3][2], "d4 went on a new connection"


def test_a_put_whose_kept_connection_drops_unanswered_is_sent_once_more(registry):
    """A delivery (PUT) is idempotent by its X-Delivery-Id: sent again once on a new connection."""
    client = KeepAliveClient(5.0)
    assert client.request("PUT", f"{registry}/x", {"n": 0}, {"X-Delivery-Id": "a"})[0] == 200
    assert client.request("PUT", f"{registry}/x", {"drop_first": True}, {"X-Delivery-Id": "b"})[0] == 200
    assert [d for d, _, _ in Registry.seen] == ["a", "b", "b"]


def test_no_answer_is_an_error(registry):
    client = KeepAliveClient(0.3)
    with pytest.raises(OSError):
        client.request("PUT", f"{registry}/api/PromsFormOrder", {"hang": True}, {"X-Delivery-Id": "h"})
    with pytest.raises(OSError):
        client.request("PUT", "http://127.0.0.1:9/api/PromsFormOrder", {}, {"X-Delivery-Id": "x"})


def test_a_post_whose_kept_connection_drops_unanswered_is_not_sent_again(registry):
    """A POST (an order) the other side may have taken before the connection dropped: never sent twice."""
    client = KeepAliveClient(5.0)
    assert client.request("PUT", f"{registry}/x", {"n": 0}, {"X-Delivery-Id": "a"})[0] == 200
    with pytest.raises(OSError):
        client.request("POST", f"{registry}/x", {"drop_first": True}, {"X-Delivery-Id": "b"})
    assert [d for d, _, _ in Registry.seen] == ["a", "b"]

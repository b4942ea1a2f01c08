"""The HTTP client every server sends with (service_kit.http), as the proxy's outbox uses it: keep-alive connections per thread, a stale one replaced once (the registry
closed it while idle), no answer reported as an error, never as a reply."""
from __future__ import annotations

import http.server
import json
import threading

import pytest

from service_kit.http import KeepAliveClient, ThreadSessions


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


@pytest.fixture
def registry():
    Registry.seen = []
    Registry.hang = threading.Event()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    Registry.hang.set()
    server.shutdown()
    server.server_close()


def test_connections_are_kept_and_a_stale_one_is_replaced_once(registry):
    client = KeepAliveClient(5.0, ThreadSessions())
    for i in range(3):
        assert client.request("PUT", f"{registry}/api/PromsFormOrder", {"n": i}, {"X-Delivery-Id": f"d{i}"}) == \
            (200, b'{"success": true}')
    assert len({port for _, _, port in Registry.seen}) == 1, "one connection for all three"
    client.request("PUT", f"{registry}/api/PromsFormOrder", {"drop_after": True}, {"X-Delivery-Id": "d3"})
    assert client.request("PUT", f"{registry}/api/PromsFormOrder", {"n": 4}, {"X-Delivery-Id": "d4"})[0] == 200
    assert [d for d, _, _ in Registry.seen] == ["d0", "d1", "d2", "d3", "d4"], "d4 arrived once"


def test_no_answer_is_an_error(registry):
    client = KeepAliveClient(0.3, ThreadSessions())
    with pytest.raises(OSError):
        client.request("PUT", f"{registry}/api/PromsFormOrder", {"hang": True}, {"X-Delivery-Id": "h"})
    with pytest.raises(OSError):
        client.request("PUT", "http://127.0.0.1:9/api/PromsFormOrder", {}, {"X-Delivery-Id": "x"})


def test_a_stale_connection_is_not_retried_for_a_post(registry):
    """A POST (an order) could have been taken before the connection dropped: never sent twice."""
    client = KeepAliveClient(5.0)
    assert client.request("PUT", f"{registry}/x", {"drop_after": True}, {"X-Delivery-Id": "a"})[0] == 200
    with pytest.raises(OSError):
        client.request("POST", f"{registry}/x", {"n": 1}, {"X-Delivery-Id": "b"})
    assert [d for d, _, _ in Registry.seen] == ["a"]

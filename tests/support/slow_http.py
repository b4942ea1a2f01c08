"""Deliberately unfit HTTP servers for tests of the HTTP client's limits: answers dribbled a byte at a time,
never sent, or larger than a client takes; over plain TCP or TLS."""
from __future__ import annotations

import select
import socket
import socketserver
import ssl
import threading
import time
from urllib.parse import urlsplit

DRIBBLE_GAP = 0.05  # seconds between the bytes a dribbling server sends
DRIBBLE_BYTES = 400  # so that a whole dribbled answer would take 20 s


class Dribbler(socketserver.BaseRequestHandler):
    """Reads a request, then answers as its path's first segment says: /body dribbles the body, /headers the
    headers, /silent never answers, /big sends `big` bytes with a Content-Length, /chunked the same chunked,
    anything else a small JSON answer. (So /big/api/ExternalDocument/x is a big document.)"""

    big = 0
    heads: list[bytes] = []  # every request's head, as received (a proxy's test reads what it was sent)
    heard = threading.Semaphore(0)  # released once per request read (a test replaces it with a fresh one)

    def handle(self):
        request = _read_head(self.request)
        if request is None:
            return
        Dribbler.heads.append(request.split(b"\r\n\r\n", 1)[0])
        Dribbler.heard.release()
        target = request.split(b" ", 2)[1].decode("latin-1")
        path = "/" + urlsplit(target).path.split("/")[1]  # the first segment; a request through a proxy
        path = path.encode()  # names the whole URL
        try:
            if path == b"/body":
                self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % DRIBBLE_BYTES)
                self._dribble(b"x" * DRIBBLE_BYTES)
            elif path == b"/silent":
                self.request.recv(1)  # until the client hangs up
            elif path == b"/headers":
                self._dribble(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * DRIBBLE_BYTES)
            elif path == b"/big":
                self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % Dribbler.big
                                     + b"z" * Dribbler.big)
            elif path == b"/chunked":
                chunks = b"".join(b"%x\r\n%s\r\n" % (4096, b"z" * 4096) for _ in range(Dribbler.big // 4096))
                self.request.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n")
            else:
                body = b'{"success": true}'
                self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                                     b"Connection: close\r\n\r\n%s" % (len(body), body))
        except OSError:  # the client hung up: what these tests expect of it
            pass

    def _dribble(self, data: bytes) -> None:
        for i in range(len(data)):
            self.request.sendall(data[i:i + 1])
            time.sleep(DRIBBLE_GAP)  # sleep-ok: the server under test is slow on purpose, nobody waits on it


def _read_head(sock) -> bytes | None:
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        request += chunk
    return request


class TunnelProxy(socketserver.BaseRequestHandler):
    """An HTTP proxy for https: answers CONNECT host:port by connecting to that port on this machine, whatever
    the name, and relaying bytes both ways (it never sees inside the TLS). Records each CONNECT's head; with
    `dribble` set it dribbles its 200."""

    heads: list[bytes] = []
    dribble = False

    def handle(self):
        head = _read_head(self.request)
        if head is None or not head.startswith(b"CONNECT "):
            return
        TunnelProxy.heads.append(head.split(b"\r\n\r\n", 1)[0])
        port = head.split(b" ", 2)[1].decode().rpartition(":")[2]
        try:
            with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as upstream:
                if TunnelProxy.dribble:  # a header a byte at a time: the whole answer would take 20 s
                    for byte in b"HTTP/1.1 200 Connection established\r\nX-Slow: " + b"y" * DRIBBLE_BYTES:
                        self.request.sendall(bytes([byte]))
                        time.sleep(DRIBBLE_GAP)  # sleep-ok: the proxy under test is slow on purpose
                    return
                self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self._relay(self.request, upstream)
        except OSError:  # either side hung up
            pass

    @staticmethod
    def _relay(client, upstream) -> None:
        upstream.settimeout(None)
        ends = [client, upstream]
        while True:
            readable, _, _ = select.select(ends, [], [], 30)
            if not readable:
                return
            for end in readable:
                data = end.recv(65536)
                if not data:
                    return
                (upstream if end is client else client).sendall(data)


class TLSServer(socketserver.ThreadingTCPServer):
    """The same answers over TLS, with a certificate from a throwaway CA."""

    def __init__(self, address, handler, context: ssl.SSLContext):
        super().__init__(address, handler)
        self.context = context

    def finish_request(self, request, client_address):  # on the request's own thread: the handshake too
        with self.context.wrap_socket(request, server_side=True) as tls:
            super().finish_request(tls, client_address)


def serve(srv: socketserver.TCPServer, scheme: str):
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"{scheme}://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()

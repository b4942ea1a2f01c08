"""HTTP out: one small client per server, which records every exchange for transcripts and reports. It
speaks HTTP/1.1 over keep-alive `http.client` connections, one set per thread (a fraction of requests'
cost per call: under load the proxy spent a third of its time in requests), directly or through the HTTP
proxy the environment names (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY: a CONNECT tunnel for https),
with one deadline for the whole call: connecting, the tunnel, TLS, sending and the answer."""
from __future__ import annotations

import base64
import functools
import heapq
import http.client
import ipaddress
import itertools
import json
import os
import select
import socket
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping, NamedTuple
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from eprom_protocol import json_text

from .clock import Clock

DEFAULT_TIMEOUT = 15.0  # seconds for a whole call, as the most trusted webhook senders use
MAX_ANSWER_BYTES = 1 << 20  # every answer here is a small JSON object; a larger one is refused, not kept

_send_order = itertools.count(1)  # process-wide: a tap sees exchanges as they finish, a transcript wants them as sent


@dataclass
class Exchange:
    """One request one server sent, and what came back (status None: no HTTP answer at all)."""

    at: datetime
    sender: str
    method: str
    url: str
    request_body: Any
    status: int | None = None
    response_body: Any = None
    error: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    seq: int = field(default_factory=lambda: next(_send_order))  # when it was sent, relative to the others

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def acknowledged(self) -> bool:
        """A callback counts as received only on HTTP 2xx with {"success": true}."""
        return self.ok and isinstance(self.response_body, dict) and self.response_body.get("success") is True


Tap = Callable[[Exchange], None]


class Answer(NamedTuple):
    """What came back from one call: the status, the whole body, and its Content-Type (None when not said)."""

    status: int
    data: bytes
    content_type: str | None


class AnswerTooLarge(http.client.HTTPException):
    """An answer larger than the caller takes: refused unread, never held in memory."""


class UnsendableRequest(http.client.HTTPException):
    """A request no HTTP client can send as given (a URL with a bad port or host, a header value holding a
    line break): a failed call like any other, never an exception that escapes the caller's handling. Its
    text never quotes the request (a header may hold a key)."""


def decode_answer(data: bytes) -> Any:
    """An answer's body as a transcript shows it: its JSON (strictly: NaN is no JSON), else the start of
    its text."""
    try:
        return json_text.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")[:2000]


class _Watch:
    """One call's deadline; `fired` once the deadline ended it, `cut` once its client was closed under it."""

    __slots__ = ("deadline", "sock", "done", "fired", "cut", "queued")

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.sock: socket.socket | None = None
        self.done = False
        self.fired = False
        self.cut = False
        self.queued = False  # in the deadline thread's heap

    @property
    def ended(self) -> bool:
        return self.fired or self.cut


class Deadlines:
    """Ends calls still running at their deadline by shutting their socket down. A socket timeout bounds each
    read, not the call: a server that answers a byte at a time would keep a call (and, in the proxy, a
    delivery lane and its lease) going for as long as it likes. One thread for all calls, started with the
    first; it sleeps until the earliest deadline of a call still running."""

    def __init__(self) -> None:
        self._start_over()
        if hasattr(os, "register_at_fork"):  # a forked child has none of the parent's threads
            os.register_at_fork(after_in_child=self._start_over)

    def _start_over(self) -> None:
        self._changed = threading.Condition()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, watch: _Watch, sock: socket.socket) -> None:
        """Shut `sock` down at the watch's deadline; called again, the watch moves to the socket given (the
        TLS socket made on a connected one, a call's second attempt)."""
        with self._changed:
            if watch.cut:  # cut short before this socket came: it gets no further
                raise _cut_short()
            watch.sock, watch.done = sock, False
            if watch.queued:
                return
            watch.queued = True
            heapq.heappush(self._heap, (watch.deadline, next(self._order), watch))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="http-deadlines", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is watch:
                self._changed.notify()

    def done(self, watch: _Watch) -> None:
        with self._changed:
            watch.done, watch.sock = True, None  # left in the heap until it reaches the top

    def cut(self, watch: _Watch) -> None:
        """End a call now, before its deadline."""
        with self._changed:
            watch.cut = True
            if watch.sock is not None:
                _shut_down(watch.sock)

    def _run(self) -> None:
        with self._changed:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)[2].queued = False
                if not self._heap:
                    self._changed.wait()
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay > 0:
                    self._changed.wait(delay)
                    continue
                watch = heapq.heappop(self._heap)[2]
                watch.queued = False
                if watch.sock is not None:
                    watch.fired = True
                    _shut_down(watch.sock)


def _shut_down(sock: socket.socket) -> None:
    """The caller's blocked read or write returns at once. socket.socket's own shutdown: a TLS socket's would
    also drop its TLS state, and a read that starts just after would then fail with ValueError instead of an
    OSError that says no answer."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


_DEADLINES = Deadlines()


class HTTPConnection(http.client.HTTPConnection):
    """http.client's connection with two system calls less per request, each a release of the GIL that
    under load means a wait to get it back: the request's head and body go out in one write (http.client
    writes them apart, and the server then reads twice), and once connected the socket blocks with no
    timeout of its own (a socket timeout costs a poll() before every read and write). The call's deadline
    (Deadlines) bounds the call: `on_socket` hands it every socket as soon as it exists, so connecting
    through a proxy's tunnel and the TLS handshake are within it too. `_send_output`, `_buffer`,
    `_create_connection` and `_tunnel_host` are http.client's own, unchanged since Python 3.6 (the last
    since 3.4); a test pins them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.on_socket: Callable[[socket.socket], None] | None = None
        self._create_connection = self._create_watched_connection

    def _create_watched_connection(self, address: tuple[str, int], timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,
                                   source_address: tuple[str, int] | None = None) -> socket.socket:
        """socket.create_connection, with each socket handed to `on_socket` before it connects: a host that
        never completes the handshake is then within the call's deadline, and a cut ends the wait too (Linux
        ends a connect in progress at shutdown(); a cut in the instant between the two is not seen until the
        connect's own timeout)."""
        host, port = address
        error: OSError | None = None
        for family, kind, proto, _, peer in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            try:
                if self.on_socket is not None:
                    self.on_socket(sock)
                if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # as create_connection: None blocks
                    sock.settimeout(timeout)
                if source_address is not None:
                    sock.bind(source_address)
                sock.connect(peer)
                return sock
            except OSError as err:
                error = err
                sock.close()
        raise error or OSError(f"no address found for {host}")

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(None)

    def _send_output(self, message_body=None, encode_chunked=False):
        if isinstance(message_body, bytes) and not encode_chunked:
            self._buffer.extend((b"", message_body))  # joined: the head, an empty line, the body
            message = b"\r\n".join(self._buffer)
            del self._buffer[:]
            self.send(message)
            return
        super()._send_output(message_body, encode_chunked)


class HTTPSConnection(HTTPConnection, http.client.HTTPSConnection):
    """The same over TLS: the handshake starts only once the deadline watches the TLS socket."""

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)  # TCP, and the proxy's CONNECT tunnel when there is one
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._tunnel_host or self.host,
                                              do_handshake_on_connect=False)
        if self.on_socket is not None:
            self.on_socket(self.sock)
        self.sock.do_handshake()
        self.sock.settimeout(None)


@dataclass(frozen=True)
class Route:
    """Where a call's connection goes: straight to the server, or to the environment's HTTP proxy."""

    proxy: SplitResult | None = None

    @property
    def proxy_headers(self) -> dict[str, str]:
        if self.proxy is None or self.proxy.username is None:
            return {}
        credentials = f"{unquote(self.proxy.username)}:{unquote(self.proxy.password or '')}"
        return {"Proxy-Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}

    def connection(self, target: SplitResult, timeout: float) -> HTTPConnection:
        if self.proxy is None:
            kind = HTTPSConnection if target.scheme == "https" else HTTPConnection
            return kind(target.hostname, target.port, timeout=timeout)
        proxy_port = self.proxy.port or (443 if self.proxy.scheme == "https" else 80)
        if target.scheme != "https":  # the request goes to the proxy, naming the whole URL
            kind = HTTPSConnection if self.proxy.scheme == "https" else HTTPConnection
            return kind(self.proxy.hostname, proxy_port, timeout=timeout)
        if problem := tunnel_problem(self.proxy.scheme):
            raise http.client.HTTPException(f"the environment's proxy for https ({self.proxy.hostname}) {problem}")
        connection = HTTPSConnection(self.proxy.hostname, proxy_port, timeout=timeout)
        connection.set_tunnel(target.hostname, target.port or 443, headers=self.proxy_headers)
        return connection

    def request_target(self, target: SplitResult) -> str:
        if self.proxy is not None and target.scheme != "https":
            return urlunsplit(target._replace(fragment=""))
        return (target.path or "/") + (f"?{target.query}" if target.query else "")


def tunnel_problem(proxy_scheme: str) -> str | None:
    """Why https calls cannot go through a proxy of this scheme (None: they can): they go in a CONNECT tunnel,
    which this client opens over plain http. proxy/settings.py checks the environment's proxy by this rule."""
    if proxy_scheme == "https":
        return "is an https:// URL; this client tunnels https through http:// proxies only"
    return None


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def goes_direct(host: str, environment: Mapping[str, str] | None = None) -> bool:
    """Whether calls to `host` skip the environment's proxy: this machine's loopback always, else a host NO_PROXY
    exempts, as requests and curl read it; from `environment` when given (a configuration being checked), else
    this process's."""
    if is_loopback(host):
        return True
    if environment is None:
        return bool(urllib.request.proxy_bypass(host))
    no_proxy = next((environment[name] for name in ("no_proxy", "NO_PROXY") if environment.get(name)), "")
    return bool(no_proxy) and bool(urllib.request.proxy_bypass_environment(host, {"no": no_proxy}))


def route_for(scheme: str, host: str) -> Route:
    """The environment's proxy for this scheme (else ALL_PROXY), unless NO_PROXY exempts the host, as
    requests and curl read them; never for this machine's loopback, which no proxy elsewhere can reach (the
    harness's servers talk over it wherever HTTP_PROXY is set for the internet)."""
    proxies = urllib.request.getproxies()
    url = proxies.get(scheme) or proxies.get("all")
    if not url or goes_direct(host):
        return Route()
    proxy = urlsplit(url if "://" in url else f"http://{url}")
    if proxy.scheme not in ("http", "https") or not proxy.hostname:
        raise http.client.HTTPException(f"the environment names a proxy this client cannot use: {proxy.scheme}://")
    return Route(proxy)


class KeepAliveClient:
    """JSON requests over keep-alive http.client connections, one set per thread."""

    RETRY_STALE = frozenset({"GET", "PUT"})  # idempotent: sent again once when a kept connection had gone stale

    def __init__(self, timeout: float, max_answer: int = MAX_ANSWER_BYTES, deadlines: Deadlines | None = None):
        self.timeout = timeout
        self.max_answer = max_answer
        self._deadlines = deadlines or _DEADLINES
        self._local = threading.local()
        self._routes: dict[tuple[str, str], Route] = {}
        self._in_flight: set[_Watch] = set()  # add, discard and list() are each atomic under the GIL
        self._closed = False

    def cut_calls_short(self) -> None:
        """End every call in flight now and refuse new ones (ConnectionAbortedError): for an owner that stops
        at once rather than wait out a slow peer (each call could take up to its timeout)."""
        self._closed = True  # before the snapshot: a call either sees it or is in the snapshot
        for watch in list(self._in_flight):
            self._deadlines.cut(watch)

    def _route(self, scheme: str, host: str) -> Route:
        key = (scheme, host)
        if key not in self._routes:
            self._routes[key] = route_for(scheme, host)  # read once: the environment is the process's
        return self._routes[key]

    def request(self, method: str, url: str, body: Any, headers: dict[str, str],
                timeout: float | None = None) -> tuple[int, bytes]:
        """(status, response bytes); raises OSError or http.client.HTTPException when there is no answer, or no
        complete one within `timeout` seconds of the call, or one larger than `max_answer` bytes."""
        answer = self.call(method, url, body, headers, timeout=timeout)
        return answer.status, answer.data

    def call(self, method: str, url: str, body: Any, headers: dict[str, str], *, timeout: float | None = None,
             max_answer: int | None = None) -> Answer:
        """As request(), with the answer's Content-Type, and a cap of its own for a larger answer (a
        document)."""
        try:
            return self._call(method, url, body, headers, timeout=timeout, max_answer=max_answer)
        except (ValueError, TypeError) as err:  # the URL, before any connection (UnicodeError is a ValueError)
            if not _unsendable_as_given(err):
                raise
            raise _unsendable(err) from None

    def _call(self, method: str, url: str, body: Any, headers: dict[str, str], *, timeout: float | None,
              max_answer: int | None) -> Answer:
        timeout = timeout or self.timeout
        limit = max_answer or self.max_answer
        parts = urlsplit(url)
        route = self._route(parts.scheme, parts.hostname or "")
        sent = dict(headers)
        if parts.scheme != "https":  # through a tunnel the proxy never sees the request
            sent.update(route.proxy_headers)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            sent.update({"Content-Type": "application/json", "Content-Length": str(len(payload))})
        target = route.request_target(parts)
        watch = _Watch(time.monotonic() + timeout)  # one deadline for the call, a second attempt included
        self._in_flight.add(watch)  # before the check: see cut_calls_short
        try:
            return self._attempt(method, parts, route, target, payload, sent, watch, timeout, limit)
        finally:
            self._in_flight.discard(watch)

    def _attempt(self, method: str, parts: SplitResult, route: Route, target: str, payload: bytes | None,
                 sent: dict[str, str], watch: _Watch, timeout: float, limit: int) -> Answer:
        """The call, sent once more on a new connection when a kept one turns out to have gone stale."""
        pool = self._local.__dict__.setdefault("pool", {})
        key = (parts.scheme, parts.netloc)
        for attempt in (1, 2):
            if self._closed:
                raise _cut_short()
            connection = pool.pop(key, None)
            if connection is not None and closed_while_idle(connection.sock):
                connection.close()  # the other side's idle timeout: a new connection, never a failed call
                connection = None
            reused = connection is not None
            left = watch.deadline - time.monotonic()  # a second attempt has what the first left over
            if left <= 0:
                raise _too_late(timeout)
            if connection is None:
                connection = route.connection(parts, timeout=left)  # each step of connecting within what is left
            try:
                connection.on_socket = functools.partial(self._deadlines.watch, watch)  # and all of it by then
                if connection.sock is None:
                    connection.connect()
                else:
                    self._deadlines.watch(watch, connection.sock)
                connection.request(method, target, body=payload, headers=sent)
                response = connection.getresponse()
                data = _read(response, limit)
                if watch.ended:  # an answer cut short can look whole (read until close)
                    raise _cut_short() if watch.cut else _too_late(timeout)
            except (OSError, http.client.HTTPException, ValueError, TypeError) as err:
                connection.close()
                if _unsendable_as_given(err):
                    raise _unsendable(err) from None
                if watch.cut:
                    raise _cut_short() from err
                if watch.fired:
                    raise _too_late(timeout) from err
                dropped = isinstance(err, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError))
                if dropped and reused and attempt == 1 and method in self.RETRY_STALE:
                    continue  # closed just as it was sent (after the idle check): once more on a new one
                raise
            finally:
                self._deadlines.done(watch)
            if response.will_close:
                connection.close()
            else:
                pool[key] = connection
            return Answer(response.status, data, response.headers.get("Content-Type"))
        raise http.client.HTTPException("unreachable")  # pragma: no cover

def _read(response: http.client.HTTPResponse, limit: int) -> bytes:
    if response.length is not None and response.length > limit:
        raise _too_large(limit, response.length)
    data = response.read(limit + 1)
    if len(data) > limit:
        raise _too_large(limit)
    if not response.isclosed():  # a chunked answer's last, empty chunk
        response.read()
    return data


def _cut_short() -> ConnectionAbortedError:
    return ConnectionAbortedError("cut short: the sender is stopping")


def _too_late(timeout: float) -> TimeoutError:
    return TimeoutError(f"no complete answer within {timeout:g} s")


def _unsendable_as_given(err: BaseException) -> bool:
    """A ValueError or TypeError from building the request, not a failure of the connection: a certificate
    that does not verify is an ssl error (an OSError) that is also a ValueError."""
    return isinstance(err, (ValueError, TypeError)) and not isinstance(err, OSError)


def _unsendable(err: BaseException) -> UnsendableRequest:
    return UnsendableRequest(f"the request cannot be sent as given ({type(err).__name__}): a URL this client "
                             "cannot use, or a header value no HTTP request can carry")


def _too_large(limit: int, declared: int | None = None) -> AnswerTooLarge:
    if declared is not None:
        return AnswerTooLarge(f"answer of {declared} bytes, more than {limit}")
    return AnswerTooLarge(f"answer of more than {limit} bytes")


def closed_while_idle(sock: socket.socket | None) -> bool:
    """Whether a kept connection, idle in the pool, is no longer fit to send on: it is readable although no
    answer is due, i.e. the other side closed it (a server's keep-alive timeout) or said something unasked
    before closing. The check urllib3 makes before reusing a connection; without it the next POST on it
    would fail, and a POST is never sent twice."""
    if sock is None:
        return True
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):  # closed descriptor
        return True


#: http.client errors whose text quotes what the other side sent (a registry may echo a key or an answer)
_QUOTES_THE_PEER = (http.client.BadStatusLine, http.client.UnknownProtocol)


def describe_error(err: BaseException) -> str:
    """The kind of failure and what happened, for a log or a delivery's last error: never the other side's
    bytes, which may echo what was sent."""
    if isinstance(err, _QUOTES_THE_PEER):
        return f"{error_kind(err)}: the answer was not HTTP/1.x"
    return f"{error_kind(err)}: {err}"[:500]


def error_kind(err: BaseException) -> str:
    """What kind of failure left a call without an answer."""
    if isinstance(err, (socket.timeout, TimeoutError)):
        return "Timeout"
    if isinstance(err, ConnectionError):
        return "ConnectionError"
    return type(err).__name__


class Transport:
    def __init__(self, sender: str, clock: Clock, tap: Tap | None = None, timeout: float = DEFAULT_TIMEOUT):
        self.sender = sender
        self.clock = clock
        self.tap = tap
        self.timeout = timeout
        self.client = KeepAliveClient(timeout)

    def cut_calls_short(self) -> None:
        self.client.cut_calls_short()

    def send(self, method: str, url: str, body: Any = None, *, api_key: str | None = None,
             headers: dict[str, str] | None = None, timeout: float | None = None) -> Exchange:
        sent_headers = dict(headers or {})
        if api_key is not None:
            sent_headers["Authorization"] = f"Basic {api_key}"
        return self.complete(Exchange(self.clock.now(), self.sender, method, url, body, headers=sent_headers),
                             timeout)

    def complete(self, exchange: Exchange, timeout: float | None = None) -> Exchange:
        """Send an exchange made beforehand (its place in a transcript fixed when it was made), fill in
        what came back, and tap it."""
        try:
            status, data = self.client.request(exchange.method, exchange.url, exchange.request_body,
                                               exchange.headers, timeout or self.timeout)
            exchange.status = status
            exchange.response_body = decode_answer(data)
        except (OSError, http.client.HTTPException) as err:
            exchange.error = describe_error(err)
        if self.tap is not None:
            self.tap(exchange)
        return exchange

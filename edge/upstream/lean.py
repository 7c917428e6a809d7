"""A lean HTTP/1.1 keep-alive client for the one upstream the edge talks to.

Why not a general client: the edge sends one kind of request (POST of a small JSON body) to one
host, and a general client's CPU per request is a multiple of the whole edge's budget
(``docs/benchmarks.md``, "Upstream client choice" and "Upstream path"). This one, an
``asyncio.Protocol`` feeding ``httptools`` (the C parser the edge's server uses too), does only
what that needs: plain http, one request per connection at a time (no pipelining),
Content-Length request bodies.
An https base URL raises ``ValueError``: use ``make_upstream(kind="httpx-aiohttp")`` for TLS.

A request is sent at most once unless the caller says it is idempotent (``post(..., idempotent=True)``,
GraphQL queries only): a reused keep-alive connection that closes after the request was written and
before any response byte may have run it (RFC 9112 §9.3.1), so only an idempotent request is written
again, once, on a fresh connection. What keeps that case rare for every request: idle connections are
not reused after ``idle_timeout`` seconds (below Hasura's keep-alive timeout), and before a request
that is not idempotent is written to a reused connection, a ``poll(2)`` checks for a close the event
loop has not processed yet.
"""

from __future__ import annotations

import asyncio
import collections
import select
from collections.abc import Coroutine, Sequence
from typing import Any, Final, final
from urllib.parse import urlsplit

import httptools

from edge.upstream.base import (
    HOP_BY_HOP,
    REQUEST_MANAGED,
    UpstreamConnectError,
    UpstreamPoolTimeout,
    UpstreamProtocolError,
    UpstreamResponse,
    UpstreamTimeout,
    check_target,
)

__all__ = ["LeanUpstream", "PoolState"]


class _ClosedBeforeResponse(UpstreamConnectError):
    """EOF or reset after the request was written and before any response byte.

    The request may have reached Hasura and run: only an idempotent request is written again.
    """


class _NotSent(UpstreamConnectError):
    """The connection was found closed before any byte of the request was written."""


# Header names a caller passed before that are forwarded as they are: not managed by this client
# (REQUEST_MANAGED, compared lower-cased) and free of CR/LF. The edge sends the same few names on
# every request, so the per-request check is one set lookup; bounded so that client-chosen names
# (forwarded client headers) cannot grow it without limit. Names beyond the bound are checked each time.
_FORWARDED_NAMES: Final[set[bytes]] = set()
_FORWARDED_NAMES_MAX: Final = 512

# Response header names as Hasura spells them -> (lower-case name, kind). Hasura sends the same
# few names on every response, so one look-up replaces a lower() and a set test per header, and
# the lower-case name is always the same object (with its hash cached for the look-ups after).
_PASS: Final = 0
_CONNECTION: Final = 1
_FRAMING: Final = 2
_HOP: Final = 3
_RESPONSE_NAMES: Final[dict[bytes, tuple[bytes, int]]] = {}
_RESPONSE_NAMES_MAX: Final = 256


def _response_name(name: bytes) -> tuple[bytes, int]:
    lower = name.lower()
    if lower == b"connection":
        kind = _CONNECTION
    elif lower == b"content-length" or lower == b"transfer-encoding":
        kind = _FRAMING
    elif lower in HOP_BY_HOP:
        kind = _HOP
    else:
        kind = _PASS
    known = _RESPONSE_NAMES
    if len(known) >= _RESPONSE_NAMES_MAX:
        known.clear()  # bounded: an upstream sending ever new names refills it
    known[name] = (lower, kind)
    return lower, kind


class _Conn(asyncio.Protocol):
    """One keep-alive connection. It carries at most one request at a time.

    The read timeout is an inactivity timeout (like httpx's: a slow but steadily streaming response
    is not cut off), kept by one timer per connection, armed lazily. An exchange arms it only if it
    is not already armed to fire early enough (``timer_at``). When it fires it compares the time of
    the last activity (``last``: the exchange's start, then every chunk after which the response is
    still incomplete) with the timeout, and re-arms for the remainder or fails the exchange; with no
    exchange in flight it just lapses. A response that arrives in one chunk therefore costs no timer
    and no clock read beyond the exchange's start.
    """

    __slots__ = (
        "body_first",
        "body_more",
        "closed",
        "conn_tokens",
        "dropped",
        "framed",
        "fut",
        "headers",
        "headers_done",
        "idle",
        "keep_alive",
        "last",
        "loop",
        "lost_waiter",
        "parser",
        "poller",
        "pool",
        "received",
        "timeout",
        "timer",
        "timer_at",
        "transport",
    )

    def __init__(self, pool: LeanUpstream, loop: asyncio.AbstractEventLoop) -> None:
        self.pool, self.loop = pool, loop
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by connection_made
        self.parser = httptools.HttpResponseParser(self)
        self.fut: asyncio.Future[UpstreamResponse] | None = None  # the exchange in flight, until it resolves
        self.closed = False  # connection_lost has run
        self.idle = False  # sitting in pool._idle
        self.dropped = False  # its pool slot has been given back (makes _discard idempotent)
        self.keep_alive = True
        self.lost_waiter: asyncio.Future[None] | None = None  # only aclose() waits on it
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = self.timeout = self.last = 0.0
        self.received = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body_first = b""  # the body when it came in one piece (the usual case) ...
        self.body_more: list[bytes] | None = None  # ... else every piece
        self.framed = self.headers_done = False
        self.conn_tokens = b""
        self.poller: select.poll | None = None  # made by the first readable() check

    def readable(self) -> bool:
        """Whether the idle socket has anything to read: a close (FIN or reset) or stray bytes that the
        event loop has not processed yet, so the connection must not be written to. One ``poll(2)``."""
        poller = self.poller
        if poller is None:
            sock = self.transport.get_extra_info("socket")
            if sock is None:
                return False
            poller = self.poller = select.poll()
            poller.register(sock.fileno(), select.POLLIN)  # POLLHUP and POLLERR are always reported
        return len(poller.poll(0)) > 0

    def exchange(self, data: bytes, timeout: float, now: float) -> asyncio.Future[UpstreamResponse]:
        """Send one request; the future resolves with its response (or fails). ``now`` is ``loop.time()``."""
        if self.closed or self.transport.is_closing():  # server's FIN arrived while we were idle
            raise _NotSent("upstream closed the connection before the request was sent")
        fut: asyncio.Future[UpstreamResponse] = self.loop.create_future()
        self.fut = fut
        self.received = 0
        self.headers = []
        self.body_first = b""
        self.body_more = None
        self.conn_tokens = b""
        self.framed = self.headers_done = False
        self.timeout = timeout
        self.last = now
        if self.timer is None or self.timer_at > now + timeout:
            if self.timer is not None:
                self.timer.cancel()
            self.timer_at = now + timeout
            self.timer = self.loop.call_at(self.timer_at, self._check_timeout)
        self.transport.write(data)
        return fut

    def _check_timeout(self) -> None:
        self.timer = None
        fut = self.fut
        if fut is None or fut.done():  # idle (or the exchange already ended): lapse until the next one
            return
        deadline = self.last + self.timeout
        if self.loop.time() < deadline:  # there was activity since: wait for the rest of the timeout
            self.timer_at = deadline
            self.timer = self.loop.call_at(deadline, self._check_timeout)
            return
        self.fail(UpstreamTimeout(f"upstream sent nothing for {self.timeout:g}s"))

    def fail(self, exc: Exception) -> None:
        if self.fut is not None and not self.fut.done():
            self.fut.set_exception(exc)
        self.transport.abort()  # the parser state is unknown now: never reuse this socket

    # asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        fut = self.fut
        if fut is None or fut.done():  # bytes nobody asked for: the connection is unusable
            self.transport.abort()
            return
        self.received += len(data)
        if self.received > self.pool.max_response_bytes:  # counts headers and framing too
            self.fail(UpstreamProtocolError(f"upstream response exceeds {self.pool.max_response_bytes} bytes"))
            return
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self.fail(UpstreamProtocolError("upstream sent an invalid HTTP response"))
            return
        if not fut.done():  # more to come: this chunk was activity for the inactivity timeout
            self.last = self.loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.idle:
            self.pool._discard(self)
        fut = self.fut
        if fut is not None and not fut.done():
            if exc is None and self.headers_done and not self.framed:
                # No Content-Length and not chunked: the body is delimited by EOF (RFC 9112 §6.3).
                self.keep_alive = False
                fut.set_result(self._response(self.parser.get_status_code()))
            elif self.received == 0:
                fut.set_exception(_ClosedBeforeResponse("upstream closed the connection before responding"))
            else:
                fut.set_exception(UpstreamProtocolError("upstream closed the connection mid-response"))
        if self.lost_waiter is not None and not self.lost_waiter.done():
            self.lost_waiter.set_result(None)

    # httptools callbacks (they must not raise: the parser would wrap the exception)

    def on_message_begin(self) -> None:
        if self.fut is None or self.fut.done():  # a second response after ours: garbage
            self.transport.abort()

    def on_header(self, name: bytes, value: bytes) -> None:
        known = _RESPONSE_NAMES.get(name)
        lower, kind = known if known is not None else _response_name(name)
        if kind == _PASS:
            self.headers.append((lower, value))
        elif kind == _CONNECTION:
            self.conn_tokens += b"," + value.lower()
        elif kind == _FRAMING:
            self.framed = True

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        if self.body_more is not None:
            self.body_more.append(body)
        elif self.body_first:
            self.body_more = [self.body_first, body]
        else:
            self.body_first = body

    def on_message_complete(self) -> None:
        fut = self.fut
        if fut is None or fut.done():
            return
        status = self.parser.get_status_code()
        if status < 200:  # interim 1xx: the final response follows
            self.headers, self.body_first, self.body_more = [], b"", None
            self.framed = self.headers_done = False
            return
        self.keep_alive = self.parser.should_keep_alive()  # honours Connection: close and HTTP/1.0
        self.fut = None
        fut.set_result(self._response(status))

    def _response(self, status: int) -> UpstreamResponse:
        headers = self.headers
        if self.conn_tokens:  # headers the upstream nominated as hop-by-hop (RFC 9110 §7.6.1)
            named = {t.strip() for t in self.conn_tokens.split(b",")} - {b"", b"close", b"keep-alive"}
            if named:
                headers = [h for h in headers if h[0] not in named]
        body = self.body_first if self.body_more is None else b"".join(self.body_more)
        return UpstreamResponse(status, headers, body)


@final
class PoolState:
    """What a :class:`LeanUpstream` holds at one moment (:meth:`LeanUpstream.pool`).

    ``open``: connection slots in use (sockets connecting, carrying a request or idle), never above
    ``max_connections``; ``idle``: of those, the connections waiting for the next request; ``waiting``:
    requests queued for a slot because all ``max_connections`` are busy.
    """

    __slots__ = ("idle", "open", "waiting")

    def __init__(self, open: int, idle: int, waiting: int) -> None:
        self.open: Final = open
        self.idle: Final = idle
        self.waiting: Final = waiting

    def __repr__(self) -> str:
        return f"PoolState(open={self.open}, idle={self.idle}, waiting={self.waiting})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PoolState):
            return NotImplemented
        return (self.open, self.idle, self.waiting) == (other.open, other.idle, other.waiting)


class LeanUpstream:
    """A pool of at most ``max_connections`` keep-alive connections to one plain-http base URL.

    ``idle_timeout``: an idle connection is reused only if its last exchange started (or its response
    last made progress) less than this many seconds ago; older ones are closed instead. Measured from
    there rather than from the end of the response, so that a request costs no extra clock read: a
    connection idle for less may be closed early, never one idle for more reused.
    """

    def __init__(
        self,
        base_url: str,
        *,
        path: str = "/v1/graphql",
        max_connections: int = 256,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        idle_timeout: float = 15.0,
        max_response_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"LeanUpstream needs an http:// base URL (use kind='httpx-aiohttp' for TLS): {url.scheme}")
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")
        self._host, self._port = url.hostname, url.port or 80
        self._netloc = url.netloc.rpartition("@")[2]  # host[:port] as written, IPv6 brackets kept
        self._prefix_path = url.path.rstrip("/")
        self.max_connections, self.max_response_bytes = max_connections, max_response_bytes
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.idle_timeout = idle_timeout
        # Built once: the request line and the headers this client always owns.
        self._post_prefix = (
            f"POST {self._prefix_path}{path} HTTP/1.1\r\nHost: {self._netloc}\r\nContent-Type: application/json\r\n"
        ).encode("latin-1")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open = 0  # slots in use: connecting + busy + idle sockets; never above max_connections
        self._idle: collections.deque[_Conn] = collections.deque()  # LIFO: the warmest socket first
        self._waiters: collections.deque[asyncio.Future[_Conn | None]] = collections.deque()  # FIFO
        self._conns: set[_Conn] = set()
        self._closed = False

    def post(
        self,
        body: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        *,
        timeout: float | None = None,
        idempotent: bool = False,
    ) -> Coroutine[Any, Any, UpstreamResponse]:
        # A plain function returning the ``_send`` coroutine: one coroutine per request instead of two.
        # A header with CR or LF raises ValueError here, at the call.
        parts = [self._post_prefix]
        known = _FORWARDED_NAMES
        for name, value in headers:
            if name not in known:
                if name.lower() in REQUEST_MANAGED:
                    continue
                # CR, LF. An int operand is a plain memchr; ``b"\r" in name`` would first try the
                # operand as an int and build (then drop) a TypeError, on every header.
                if 13 in name or 10 in name:
                    raise ValueError("request header contains CR or LF")  # would split the request
                if len(known) < _FORWARDED_NAMES_MAX:
                    known.add(name)
            if 13 in value or 10 in value:
                raise ValueError("request header contains CR or LF")
            # Four appends: cheaper under mypyc than building a tuple to extend the list with.
            parts.append(name)
            parts.append(b": ")
            parts.append(value)
            parts.append(b"\r\n")
        parts.append(b"Content-Length: %d\r\n\r\n" % len(body))
        parts.append(body)
        return self._send(b"".join(parts), self.read_timeout if timeout is None else timeout, idempotent)

    def request(
        self,
        method: str,
        target: str,
        body: bytes | None,
        headers: Sequence[tuple[bytes, bytes]],
        *,
        timeout: float | None = None,
        idempotent: bool = False,
    ) -> Coroutine[Any, Any, UpstreamResponse]:
        # Hasura's REST endpoints (edge/rest): not the GraphQL path, so nothing here is precomputed.
        check_target(method, target)
        parts = [f"{method} {self._prefix_path}{target} HTTP/1.1\r\nHost: {self._netloc}\r\n".encode("ascii")]
        if body is not None:
            parts.append(b"Content-Type: application/json\r\n")
        for name, value in headers:
            if name.lower() in REQUEST_MANAGED:
                continue
            if 13 in name or 10 in name or 13 in value or 10 in value:
                raise ValueError("request header contains CR or LF")  # would split the request
            parts += (name, b": ", value, b"\r\n")
        payload = body or b""
        parts.append(b"Content-Length: %d\r\n\r\n" % len(payload))
        parts.append(payload)
        return self._send(b"".join(parts), self.read_timeout if timeout is None else timeout, idempotent)

    async def get(self, path: str, *, timeout: float | None = None) -> UpstreamResponse:
        if not path.startswith("/") or any(c.isspace() or ord(c) < 33 for c in path):
            raise ValueError("path must start with '/' and contain no whitespace or control characters")
        data = f"GET {self._prefix_path}{path} HTTP/1.1\r\nHost: {self._netloc}\r\n\r\n".encode()
        return await self._send(data, self.read_timeout if timeout is None else timeout, True)

    async def _send(self, data: bytes, timeout: float, idempotent: bool) -> UpstreamResponse:
        idle = self._idle
        conn = idle[-1] if idle and not self._closed else None
        if conn is not None:  # the common case, inline: the warmest idle connection (see _reusable)
            now = conn.loop.time()  # also the exchange's start: no clock read is added
            if (
                not conn.transport.is_closing()
                and now - conn.last < self.idle_timeout
                and (idempotent or not conn.readable())
            ):
                idle.pop()
                conn.idle = False
                reused = True
            else:
                conn, reused = await self._checkout(timeout, idempotent)
                now = conn.loop.time()
        else:
            conn, reused = await self._checkout(timeout, idempotent)
            now = conn.loop.time()
        try:
            try:
                response = await conn.exchange(data, timeout, now)
            except _NotSent:
                # Closed under us before a byte was written: any request may go on a fresh connection.
                self._discard(conn, keep_slot=True)
                conn = await self._connect()
                response = await conn.exchange(data, timeout, conn.loop.time())
            except _ClosedBeforeResponse:
                # A reused keep-alive connection closed after the request was written and before any
                # response byte. Usually the server closed it while idle and never read the request,
                # but a server that ran the request and then failed looks the same (RFC 9112 §9.3.1),
                # so only an idempotent request is written again: once, on a fresh connection in the
                # same slot. Anything else is the caller's failure, never resent (nginx likewise passes
                # a non-idempotent request to no other server once it was sent, unless configured with
                # ``proxy_next_upstream non_idempotent``). Nothing is retried after a timeout (the
                # request may be running), on a fresh connection, or once any response byte arrived.
                if not (reused and idempotent):
                    raise
                self._discard(conn, keep_slot=True)
                conn = await self._connect()
                response = await conn.exchange(data, timeout, conn.loop.time())
        except BaseException:  # includes CancelledError: the caller went away, so drop the socket
            self._discard(conn)
            raise
        if conn.keep_alive:
            self._release(conn)
        else:
            self._discard(conn)
        return response

    def _reusable(self, conn: _Conn, now: float, idempotent: bool) -> bool:
        """Whether an idle connection may carry the next request (``now`` is ``loop.time()``): open,
        idle for less than ``idle_timeout``, and, for a request that is not idempotent, with no close
        waiting on the socket (idempotent requests skip that syscall: they may be retried instead)."""
        if conn.transport.is_closing() or now - conn.last >= self.idle_timeout:
            return False
        return idempotent or not conn.readable()

    async def _checkout(self, timeout: float, idempotent: bool) -> tuple[_Conn, bool]:
        """A connection plus whether it was reused; waits FIFO for a slot at most ``timeout``."""
        if self._closed:
            raise UpstreamConnectError("upstream client is closed")
        if self._idle:
            now = self._idle[-1].loop.time()
            while self._idle:
                conn = self._idle.pop()
                conn.idle = False
                if self._reusable(conn, now, idempotent):
                    return conn, True
                self._discard(conn)
        if self._open < self.max_connections:
            self._open += 1
            return await self._connect(), False
        waiter: asyncio.Future[_Conn | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                got = await waiter
        except BaseException as exc:
            # Handed a connection or slot in the same tick we timed out or were cancelled: pass it on.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                handed = waiter.result()
                if handed is None:
                    self._free_slot()
                else:
                    self._release(handed)
            waiter.cancel()  # _free_slot/_release skip it from now on
            if isinstance(exc, TimeoutError):
                raise UpstreamPoolTimeout(f"no upstream connection became free within {timeout:g}s") from None
            raise
        if got is None:  # a slot, not a socket: open our own
            return await self._connect(), False
        # Handed over as its response ended: not idle, so only whether it is still open counts.
        if got.transport.is_closing() or (not idempotent and got.readable()):
            self._discard(got, keep_slot=True)
            return await self._connect(), False
        return got, True

    async def _connect(self) -> _Conn:
        """Open a socket in a slot the caller already holds; on failure the slot is given back."""
        loop = self._loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(lambda: _Conn(self, loop), self._host, self._port)
        except BaseException as exc:
            self._free_slot()
            if isinstance(exc, TimeoutError):
                raise UpstreamTimeout(f"connecting to {self._netloc} timed out") from exc
            if isinstance(exc, OSError):
                raise UpstreamConnectError(f"cannot connect to {self._netloc}: {exc.strerror or exc}") from exc
            raise
        if self._closed:
            conn.transport.abort()
            self._free_slot()
            raise UpstreamConnectError("upstream client is closed")
        self._conns.add(conn)
        return conn

    def _release(self, conn: _Conn) -> None:
        if self._closed or conn.transport.is_closing():
            self._discard(conn)
            return
        while self._waiters:  # hand the socket straight to the oldest waiter
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        conn.idle = True
        self._idle.append(conn)

    def _free_slot(self) -> None:
        while self._waiters:  # the oldest waiter inherits the slot and connects itself
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._open -= 1

    def _discard(self, conn: _Conn, *, keep_slot: bool = False) -> None:
        if conn.dropped:
            return
        conn.dropped = True
        self._conns.discard(conn)
        if conn.idle:
            conn.idle = False
            self._idle.remove(conn)
        conn.transport.abort()
        if not keep_slot:
            self._free_slot()

    def pool(self) -> PoolState:
        """The pool's counts now, for metrics and checks: read on demand, nothing is counted per request."""
        waiting = sum(1 for waiter in self._waiters if not waiter.done())  # cancelled ones linger until popped
        return PoolState(self._open, len(self._idle), waiting)

    async def aclose(self) -> None:
        """Fail waiters and in-flight requests, close every socket, and wait (briefly) until closed."""
        self._closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(UpstreamConnectError("upstream client is closed"))
        lost: list[asyncio.Future[None]] = []
        for conn in list(self._conns):
            if not conn.closed and self._loop is not None:
                conn.lost_waiter = self._loop.create_future()
                lost.append(conn.lost_waiter)
            conn.fail(UpstreamConnectError("upstream client is closed"))
            self._discard(conn)
        if lost:
            await asyncio.wait(lost, timeout=5.0)

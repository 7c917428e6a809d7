"""One client connection over HTTP/1.1: the object that owns it from its first byte to its close.

It parses with httptools (llhttp, strict: conflicting framing, obs-fold, bare LF and control bytes
are parse errors) and enforces what must act before a request exists: the request target (414)
and header block (431) bounds, trailers never taken as headers, exactly one ``Host`` (RFC 9112
§3.2), a declared body over the limit (413), unknown expectations (417), and the deadline for
receiving a whole request (408). Each request becomes an :class:`~edge.http_server.exchange.Exchange`,
answered one at a time in arrival order (pipelining), with reading paused while requests queue up
and the next one held back while the client does not read its responses. A WebSocket upgrade hands
the socket to a :class:`~edge.http_server.websocket.WebSocketConnection`, which owns it from then on.

Refusals are GraphQL-shaped and close the connection: after a framing error nothing later on the
socket can be trusted to be a request.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Final
from urllib.parse import unquote_to_bytes

import httptools

from edge.errors import BadRequest, EdgeError, ExpectationFailed, HeadersTooLarge, RequestTimeout, URITooLong
from edge.http_server.exchange import AsgiExchange, DirectExchange, Exchange, ExchangeHost
from edge.http_server.responses import refusal
from edge.http_server.state import ServerState
from edge.http_server.websocket import WebSocketConnection

__all__ = ["HttpConnection"]


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing a request that was already refused."""


# Header names as clients spell them -> lower-case. Clients send the same few names on every
# request, so one look-up replaces a lower() per header, and each lower-case name is always the
# same object (its hash computed once). Bounded: clients choose names, so it is emptied when full,
# and only names of ordinary length are kept (at most 512 x 64 bytes, whatever clients send).
HEADER_NAMES: Final[dict[bytes, bytes]] = {}
HEADER_NAMES_MAX: Final = 512
HEADER_NAME_MAX_LENGTH: Final = 64


def _lower_name(name: bytes) -> bytes:
    lower = name.lower()
    if len(name) <= HEADER_NAME_MAX_LENGTH:
        if len(HEADER_NAMES) >= HEADER_NAMES_MAX:
            HEADER_NAMES.clear()
        HEADER_NAMES[name] = lower
    return lower


def _split_target(url: bytes, method: bytes) -> tuple[bytes, bytes] | None:
    """(raw path, query string) of a request target, or None when it is not one the edge serves.

    Origin-form (``/path?query``), absolute-form (``http://host/path?query``, RFC 9112 §3.2.2,
    routed by its path) and ``OPTIONS *`` are accepted; a fragment is not part of a request target.
    """
    if 35 in url:  # "#"
        return None
    if url[:1] == b"/":
        path, _, query = url.partition(b"?")
        return path, query
    if url == b"*":
        return (url, b"") if method == b"OPTIONS" else None
    if not url.startswith((b"http://", b"https://")):
        return None  # authority-form, or garbage
    try:
        # Any: httptools' stubs type path and query as bytes, but an absent part is None, which a
        # typed read would refuse in the compiled build.
        parsed: Any = httptools.parse_url(url)
    except httptools.HttpParserInvalidURLError:
        return None
    absolute_path: bytes | None = parsed.path
    absolute_query: bytes | None = parsed.query
    return absolute_path or b"/", absolute_query or b""


def _is_websocket_upgrade(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"upgrade" and b"websocket" in [token.strip() for token in value.lower().split(b",")]:
            return True
    return False


class HttpConnection(ExchangeHost):
    """An ``asyncio`` protocol for one client socket; see the module docstring."""

    def __init__(self, state: ServerState) -> None:
        config = state.config
        self.state = state
        self.loop = state.loop
        self.max_header_bytes = config.max_header_bytes
        self.max_url_bytes = config.max_url_bytes
        self.max_body_bytes = config.max_body_bytes
        self.request_deadline = config.request_deadline
        self.keep_alive_timeout = config.keep_alive
        self.parser = httptools.HttpRequestParser(self)
        # Bytes after a request with "Connection: close" are ignored rather than refused: the
        # request before them is answered, nothing after it is (RFC 9112 §9.6).
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        # Set by connection_made.
        self.transport = None  # type: ignore[assignment]
        self.client = None
        self.server_address: tuple[str, int] | None = None
        # The request being parsed.
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_bytes = 0  # name + value + 4 per parsed header (and trailer)
        self.raw_header_bytes = 0  # for one header httptools is still buffering
        self.began_here = False  # the request began in the read being parsed
        self.in_head = False  # between the request's first byte and the end of its header block
        self.in_message = False  # between its first byte and its last
        self.hosts = 0
        self.declared_length = -1
        self.transfer_codings = b""  # every Transfer-Encoding value, joined
        self.expect = b""
        self.reading: Exchange | None = None  # receives the body of the request being parsed
        # Requests parsed and not yet answered, oldest first; ``active`` is being answered.
        self.active: Exchange | None = None
        self.waiting: deque[Exchange] = deque()
        self.starting: Exchange | None = None  # started once the read that carried it is parsed
        self.upgrade_to: WebSocketConnection | None = None
        # The connection.
        self.refused = False  # a refusal is written or pending: nothing more is parsed
        self.pending_refusal = b""  # written once the requests before it are answered
        self.closing = False  # close after the requests in flight (shutdown, the client's EOF)
        self.read_paused = False
        self.write_paused = False
        self.drain_waiter: asyncio.Future[None] | None = None
        self.deadline: asyncio.TimerHandle | None = None
        self.keep_alive_timer: asyncio.TimerHandle | None = None
        self.idle_since = 0.0

    # --- asyncio protocol callbacks -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.client = (str(peer[0]), int(peer[1]))
        local = transport.get_extra_info("sockname")
        if isinstance(local, tuple) and len(local) >= 2:
            self.server_address = (str(local[0]), int(local[1]))
        self.state.connections.add(self)
        if self.state.shutting_down:
            transport.close()
            return
        self.arm_deadline()  # a connection that never sends a request is cut off too

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections.discard(self)
        self.disarm_deadline()
        self.stop_keep_alive()
        if self.active is not None:
            self.active.lost()
        for exchange in self.waiting:
            exchange.lost()
        self.waiting.clear()
        if self.reading is not None:
            self.reading.lost()
        self.wake_drain()

    def eof_received(self) -> bool:
        """The client finished sending: answer the requests it completed (half-close), then close.

        A request cut short can never be answered: the connection closes at once then.
        """
        self.closing = True
        return not self.in_message and (self.active is not None or bool(self.waiting))

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self.wake_drain()
        if self.active is None and self.waiting and not self.transport.is_closing():
            self.start_next()  # held back while the client was not reading

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        try:
            self.began_here = False
            self.parser.feed_data(data)
            if self.in_head:
                # httptools buffers a header until it ends, so one endless header would grow memory
                # without reaching on_header: bound the raw bytes too. Counted from the read after
                # the one the request began in, because that read also holds earlier pipelined
                # requests (it is itself bounded by the read size).
                if not self.began_here:
                    self.raw_header_bytes += len(data)
                if self.raw_header_bytes > self.max_header_bytes + self.max_url_bytes + 1024:
                    self.refuse(HeadersTooLarge())
                    return
                if self.parser.get_http_version() == "0.9":  # a request line without a version
                    self.refuse(BadRequest("Unsupported HTTP version"))
                    return
            # Armed only while a request is still arriving: most arrive whole in one read, and then
            # no timer is made at all.
            if self.in_message and self.deadline is None and not self.refused:
                self.arm_deadline()
        except httptools.HttpParserUpgrade as upgrade:
            self.upgrade(data[int(upgrade.args[0]) :])
        except httptools.HttpParserError:
            if not self.refused:  # else a callback stopped the parser after refusing
                self.refuse(BadRequest("Invalid HTTP request"))
        finally:
            # A request starts once this read is parsed rather than at its headers: when its body came
            # in the same read (the common case), the handler gets it at once instead of waiting.
            starting = self.starting
            if starting is not None:
                self.starting = None
                if not self.transport.is_closing():
                    starting.start()

    # --- parser callbacks (httptools looks these names up once, when the parser is made) -------

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.header_bytes = 0
        self.raw_header_bytes = 0
        self.began_here = True
        self.in_head = True
        self.in_message = True
        self.hosts = 0
        self.declared_length = -1
        self.transfer_codings = b""
        self.expect = b""

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self.max_url_bytes:
            self.refuse(URITooLong())
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value) + 4
        if self.header_bytes > self.max_header_bytes:
            self.refuse(HeadersTooLarge())
            raise _Refused
        if not self.in_head:
            return  # a trailer field: counted, never a header (RFC 9110 §6.5.1)
        lower = HEADER_NAMES.get(name)
        if lower is None:
            lower = _lower_name(name)
        if value and (value[-1] == 32 or value[-1] == 9):
            value = value.rstrip(b" \t")  # llhttp drops leading whitespace, not trailing (RFC 9110 §5.5)
        if lower == b"host":
            self.hosts += 1
        elif lower == b"content-length":
            self.declared_length = int(value)  # llhttp accepted it: digits only, one value
        elif lower == b"transfer-encoding":
            self.transfer_codings += b"," + value.lower() if self.transfer_codings else value.lower()
        elif lower == b"expect":
            self.expect = value.lower()
        self.headers.append((lower, value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        parser = self.parser
        version = parser.get_http_version()
        if version != "1.1" and version != "1.0":  # HTTP/0.9 has no headers, so no Host and no framing
            self.refuse(BadRequest("Unsupported HTTP version"))
            raise _Refused
        if self.hosts != 1 and (self.hosts > 1 or version == "1.1"):
            self.refuse(BadRequest("An HTTP/1.1 request needs exactly one Host header"))
            raise _Refused
        if self.transfer_codings and (self.transfer_codings != b"chunked" or version == "1.0"):
            # Only chunked is decoded, and only once; in HTTP/1.0 Transfer-Encoding means faulty
            # framing (RFC 9112 §6.1). Anything else would hand on a body still encoded.
            self.refuse(BadRequest("Transfer-Encoding must be exactly 'chunked' (HTTP/1.1 only)"))
            raise _Refused
        expect_continue = False
        if self.expect and version == "1.1":  # an HTTP/1.0 expectation is ignored (RFC 9110 §10.1.1)
            if self.expect != b"100-continue":
                self.refuse(ExpectationFailed())
                raise _Refused
            expect_continue = True
        method_name = parser.get_method()
        target = _split_target(self.url, method_name)
        if target is None:
            self.refuse(BadRequest("Invalid request target"))
            raise _Refused
        raw_path, query = target
        path = unquote_to_bytes(raw_path) if 37 in raw_path else raw_path  # "%": routes match the decoded path
        upgrade = parser.should_upgrade()
        if upgrade and _is_websocket_upgrade(self.headers):
            self.upgrade_to = WebSocketConnection(
                self.state, self.url, path, query, self.headers, self.client, self.server_address
            )
            return  # the parser stops with HttpParserUpgrade once this request is parsed
        method = method_name.decode("ascii")
        # Any other upgrade (h2c...) is ignored: the request is answered over HTTP/1.1, then the
        # connection closes, since the parser stops at it.
        keep_alive = not upgrade and not self.closing and parser.should_keep_alive()
        too_large = self.declared_length > self.max_body_bytes
        handler = self.state.direct.get(path)
        exchange: Exchange
        if handler is not None:
            exchange = DirectExchange(
                self,
                method,
                self.headers,
                keep_alive=keep_alive,
                expect_continue=expect_continue,
                too_large=too_large,
                handler=handler,
                query_string=query,
            )
        else:
            exchange = AsgiExchange(
                self,
                method,
                self.headers,
                keep_alive=keep_alive,
                expect_continue=expect_continue,
                too_large=too_large,
                scope=self.http_scope(method, path, raw_path, query),
            )
        self.reading = exchange
        if self.active is None and not self.waiting:
            self.active = exchange
            self.starting = exchange
        else:  # pipelined behind a request still being answered: queued, in order
            self.waiting.append(exchange)
            self.pause_reading()

    def on_body(self, body: bytes) -> None:
        reading = self.reading
        if reading is not None:
            reading.feed(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        self.disarm_deadline()
        reading = self.reading
        if reading is not None:
            self.reading = None
            reading.complete()

    def http_scope(self, method: str, path: bytes, raw_path: bytes, query: bytes) -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": self.parser.get_http_version(),
            "server": self.server_address,
            "client": self.client,
            "scheme": self.state.scheme,
            "method": method,
            "root_path": "",
            "path": path.decode("utf-8", "replace"),
            "raw_path": raw_path,
            "query_string": query,
            "headers": self.headers,
            "state": self.state.app_state.copy(),
        }

    # --- answering ------------------------------------------------------------------------------

    def start_next(self) -> None:
        exchange = self.waiting.popleft()
        self.active = exchange
        if not self.waiting:
            self.resume_reading()
        exchange.start()

    def response_complete(self, exchange: Exchange) -> None:
        """``exchange`` wrote its last byte: start the next request, or close, or wait idle."""
        if self.active is exchange:
            self.active = None
        transport = self.transport
        if transport.is_closing():
            return
        if not exchange.keep_alive or self.reading is exchange:
            # Closed on request, or answered before its body arrived (an early 413, 415...):
            # the rest of that body is not read.
            transport.close()
            return
        if self.waiting:
            if not self.write_paused:
                self.start_next()  # else resume_writing starts it
            return
        if self.pending_refusal:
            transport.write(self.pending_refusal)
            transport.close()
            return
        if self.closing or self.state.shutting_down:
            transport.close()
            return
        self.resume_reading()
        self.idle_since = now = self.loop.time()
        if self.keep_alive_timer is None:
            self.keep_alive_timer = self.loop.call_at(now + self.keep_alive_timeout, self.keep_alive_check)

    def refuse(self, error: EdgeError) -> None:
        """Answer ``error`` on the wire and close; requests parsed before it are answered first."""
        self.refused = True
        self.disarm_deadline()
        reading = self.reading
        if reading is not None and reading is not self.active:
            reading.lost()
            if reading in self.waiting:
                self.waiting.remove(reading)  # the refusal is its answer
        data = refusal(error, self.state.date.current())
        active = self.active
        if active is not None and not active.response_complete:
            if active is not reading and not active.response_started:
                self.pending_refusal = data  # written after the responses still owed
                return
            active.lost()
            if active.response_started:  # half a response is out: nothing can follow it
                self.transport.close()
                return
        self.transport.write(data)
        self.transport.close()

    def upgrade(self, rest: bytes) -> None:
        websocket = self.upgrade_to
        self.upgrade_to = None
        self.disarm_deadline()
        self.stop_keep_alive()
        if websocket is None:  # another protocol (h2c...): the request was queued as plain HTTP
            self.closing = True
            self.refused = True  # nothing more is parsed; the connection closes after the answer
            return
        if self.active is not None or self.waiting:
            # Pipelined behind a request still being answered: not a handshake a client can make.
            self.refuse(BadRequest("A WebSocket upgrade cannot be pipelined"))
            return
        self.refused = True
        self.state.connections.discard(self)
        self.transport.set_protocol(websocket)  # type: ignore[arg-type]
        websocket.connection_made(self.transport)
        if rest:
            websocket.data_received(rest)

    def shutdown(self) -> None:
        """Graceful shutdown: close now if idle, else after the requests in flight (which say so)."""
        self.closing = True
        if self.active is None and not self.waiting and not self.in_message:
            self.close_now()
            return
        for exchange in (self.active, *self.waiting):
            if exchange is not None:
                exchange.keep_alive = False

    def abort(self) -> None:
        self.transport.abort()

    def close_now(self) -> None:
        """Close; a client that has not read what was written (writing is paused) is cut off instead,
        since a close would wait for it to read."""
        if self.write_paused:
            self.transport.abort()
        else:
            self.transport.close()

    # --- flow control -------------------------------------------------------------------------

    def pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()

    async def drained(self) -> None:
        """Wait while the client does not read (for responses written in several pieces)."""
        while self.write_paused and not self.transport.is_closing():
            self.drain_waiter = self.loop.create_future()
            try:
                await self.drain_waiter
            finally:
                self.drain_waiter = None

    def wake_drain(self) -> None:
        waiter = self.drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- the request deadline -------------------------------------------------------------------

    def arm_deadline(self) -> None:
        self.disarm_deadline()
        self.deadline = self.loop.call_later(self.request_deadline, self.deadline_passed)

    def disarm_deadline(self) -> None:
        deadline = self.deadline
        if deadline is not None:
            deadline.cancel()
            self.deadline = None

    def deadline_passed(self) -> None:
        self.deadline = None
        if self.transport.is_closing():
            return
        active = self.active
        if active is None or (active is self.reading and not active.response_started):
            self.refuse(RequestTimeout())
        else:  # a handler answered early (e.g. 413) while the client still trickles its body
            self.transport.close()

    # --- keep-alive -----------------------------------------------------------------------------
    # One timer per connection, armed after a response when none is pending; when it fires it
    # closes the connection if it has been idle for the whole timeout since the last response,
    # else re-arms for then: no timer made and cancelled per request.

    def keep_alive_check(self) -> None:
        self.keep_alive_timer = None
        if self.transport.is_closing():
            return
        if self.in_message or self.active is not None or self.waiting:
            return  # a request is under way; its response re-arms the timer
        idle_until = self.idle_since + self.keep_alive_timeout
        if self.loop.time() >= idle_until:
            self.close_now()
        else:
            self.keep_alive_timer = self.loop.call_at(idle_until, self.keep_alive_check)

    def stop_keep_alive(self) -> None:
        timer = self.keep_alive_timer
        if timer is not None:
            timer.cancel()
            self.keep_alive_timer = None

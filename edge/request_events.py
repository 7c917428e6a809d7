"""What the HTTP parser reports about each request on one edge connection, handled in compiled code.

httptools calls back into Python for every event of every request: message begin, the URL, each
header, headers complete, body, message complete, plus the read that carried them. Made on the
protocol class (``edge.server_protocol``, which extends uvicorn's class and so stays interpreted),
those dozen calls were the largest block of interpreted code left on a ``/graphql`` request. The
protocol therefore gives the parser one :class:`RequestEvents` per connection as its callback
target, and points ``data_received`` at :meth:`RequestEvents.feed`; this module is compiled with
mypyc like the rest of the request path (``setup.py``).

It owns the per-request wire state and the limits that act before a request exists: the request
target (414) and header block (431) bounds, the deadline for receiving a whole request (408), and
the connection's keep-alive timer. Requests for ``/graphql`` become a
:class:`~edge.direct_http.DirectExchange`; for any other request the URL and headers are handed
to the protocol, which runs uvicorn's ASGI code as before (``asgi_headers_complete`` and friends).
"""

from __future__ import annotations

import asyncio
from collections import deque
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final

import httptools
from uvicorn.protocols.http.flow_control import FlowControl

from edge.direct_http import DirectExchange, is_direct_target
from edge.errors import EdgeError, HeadersTooLarge, RequestTimeout, URITooLong, graphql_error_body
from edge.graphql_http import GraphQLHTTPHandler

if TYPE_CHECKING:
    from uvicorn.server import ServerState

    from edge.server_protocol import GuardedHttpToolsProtocol

__all__ = ["RESPONSE_408", "RESPONSE_414", "RESPONSE_431", "RequestEvents"]


class Refused(Exception):
    """Raised inside a parser callback to stop parsing a request that was already answered."""


def _wire_response(error: type[EdgeError]) -> bytes:
    """A complete HTTP/1.1 response for an error answered on the wire, before any handler runs."""
    body = graphql_error_body(error.default_message, error.code)
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (error.status, HTTPStatus(error.status).phrase.encode("ascii")),
            b"content-type: application/json\r\nconnection: close\r\n",
            b"content-length: %d\r\n\r\n" % len(body),
            body,
        ]
    )


# Header names as clients spell them -> lower-case. Clients send the same few names on every
# request, so one look-up replaces a lower() per header, and each lower-case name is always the
# same object, whose hash is then computed once (the first-value table hashes every name).
# Bounded: clients choose names, so it is emptied when full and refills with the common ones, and
# only names of ordinary length are kept (at most 512 x 64 bytes, whatever clients send).
_REQUEST_NAMES: Final[dict[bytes, bytes]] = {}
_REQUEST_NAMES_MAX: Final = 512
_REQUEST_NAME_MAX_LENGTH: Final = 64


def _request_name(name: bytes) -> bytes:
    lower = name.lower()
    if len(name) <= _REQUEST_NAME_MAX_LENGTH:
        if len(_REQUEST_NAMES) >= _REQUEST_NAMES_MAX:
            _REQUEST_NAMES.clear()
        _REQUEST_NAMES[name] = lower
    return lower


RESPONSE_408: Final = _wire_response(RequestTimeout)
RESPONSE_414: Final = _wire_response(URITooLong)
RESPONSE_431: Final = _wire_response(HeadersTooLarge)


class RequestEvents:
    """httptools' callback target for one connection; see the module docstring."""

    def __init__(
        self,
        protocol: GuardedHttpToolsProtocol,
        direct: GraphQLHTTPHandler | None,
        *,
        max_header_bytes: int,
        max_url_bytes: int,
        request_deadline: float,
        keep_alive_timeout: float,
    ) -> None:
        self.protocol = protocol
        self.direct = direct
        self.max_header_bytes = max_header_bytes
        self.max_url_bytes = max_url_bytes
        self.request_deadline = request_deadline
        self.keep_alive_timeout = keep_alive_timeout
        self.loop: asyncio.AbstractEventLoop = protocol.loop
        self.server_state: ServerState = protocol.server_state
        self.tasks: set[asyncio.Task[None]] = protocol.tasks  # the server's set
        self.pipeline: deque[Any] = protocol.pipeline  # uvicorn's queue of pipelined requests
        self.parser = httptools.HttpRequestParser(self)
        # As uvicorn does: answer the first of pipelined requests sent after a close.
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        # Set by connection_made.
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.flow: FlowControl = None  # type: ignore[assignment]
        self.client: tuple[str, int] | None = None
        # The request being parsed.
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.expect_100_continue = False
        self.header_bytes = 0  # counted from the parsed headers
        self.raw_header_bytes = 0  # counted from the reads, for one header httptools is still buffering
        self.began_here = False  # the request began in the read being parsed
        self.request_complete = True
        self.headers_complete = True
        self.starting: DirectExchange | None = None  # started once the read that carried it is parsed
        # The connection.
        self.refused = False  # answered on the wire (408/414/431): nothing more is read
        self.deadline: asyncio.TimerHandle | None = None
        self.keep_alive_timer: asyncio.TimerHandle | None = None
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.Transport, flow: FlowControl) -> None:
        self.transport = transport
        self.flow = flow
        self.client = self.protocol.client
        self.arm()  # a connection that never sends a request is cut off too

    def connection_lost(self) -> None:
        self.disarm()
        self.stop_keep_alive()
        cycle: Any = self.protocol.cycle
        if isinstance(cycle, DirectExchange):
            cycle.lost()
            self.protocol.cycle = None  # type: ignore[assignment]  # uvicorn's connection_lost is for its own cycles

    # --- the read ---------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """The protocol's ``data_received``."""
        if self.refused:
            return
        try:
            self.began_here = False
            self.parser.feed_data(data)
            if not self.headers_complete:
                # httptools buffers a header until it ends, so one endless header would grow
                # memory without ever reaching on_header: bound the raw bytes as well. They are
                # counted from the read after the one the request began in, because that read
                # also holds earlier pipelined requests (it is itself bounded by the read size).
                if not self.began_here:
                    self.raw_header_bytes += len(data)
                if self.raw_header_bytes > self.max_header_bytes + self.max_url_bytes + 1024:
                    self.refuse(RESPONSE_431)
                    return
            # Armed only now, and only while a request is still arriving (or bytes came that began
            # none): most requests arrive whole in one read, and then no timer is made at all.
            if self.deadline is None and not self.refused:
                cycle: Any = self.protocol.cycle
                if not self.request_complete or cycle is None or cycle.response_complete:
                    self.arm()
        except httptools.HttpParserUpgrade:
            self.starting = None  # the connection changes protocol: nothing more is answered here
            self.disarm()
            self.stop_keep_alive()
            self.protocol.upgrade()
        except httptools.HttpParserError:
            if not self.refused:  # else our own callback stopped the parser after answering
                self.disarm()
                self.protocol.bad_request()
        finally:
            # A direct /graphql request starts once this read is parsed rather than at its headers:
            # when its body came in the same read (the common case), the handler gets it at once
            # instead of waiting on it. A request still arriving starts now all the same (early
            # 415s, 100 Continue).
            starting = self.starting
            if starting is not None:
                self.starting = None
                if not self.transport.is_closing():
                    starting.start(self.direct)  # type: ignore[arg-type]  # set whenever a direct request exists

    # --- parser callbacks (httptools looks these names up once, when the parser is made) ---------

    def on_message_begin(self) -> None:
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self.header_bytes = 0
        self.raw_header_bytes = 0
        self.began_here = True
        self.request_complete = False
        self.headers_complete = False

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self.max_url_bytes:
            self.refuse(RESPONSE_414)
            raise Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value) + 4
        if self.header_bytes > self.max_header_bytes:
            self.refuse(RESPONSE_431)
            raise Refused
        lower = _REQUEST_NAMES.get(name)  # uvicorn's on_header, inlined
        if lower is None:
            lower = _request_name(name)
        if lower == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((lower, value))

    def on_headers_complete(self) -> None:
        self.headers_complete = True
        parser = self.parser
        if self.direct is not None and is_direct_target(self.url) and not parser.should_upgrade():
            self._start_direct(parser)
            return
        protocol = self.protocol  # everything else is uvicorn's, with the request as parsed here
        protocol.url = self.url
        protocol.headers = self.headers
        protocol.expect_100_continue = self.expect_100_continue
        protocol.asgi_headers_complete()

    def _start_direct(self, parser: httptools.HttpRequestParser) -> None:
        url = self.url
        exchange = DirectExchange(
            self,
            method=parser.get_method().decode("ascii"),
            headers=self.headers,
            query_string=url[9:],  # after "/graphql?" (empty without a query string)
            keep_alive=parser.get_http_version() != "1.0" and parser.should_keep_alive(),
            expect_continue=self.expect_100_continue,
        )
        protocol = self.protocol
        previous: Any = protocol.cycle
        protocol.cycle = exchange  # type: ignore[assignment]  # where uvicorn keeps its RequestResponseCycle
        if previous is None or previous.response_complete:
            self.starting = exchange
        else:  # pipelined behind a request still being answered: uvicorn's queue, in order
            self.flow.pause_reading()
            self.pipeline.appendleft((exchange, None))

    def on_body(self, body: bytes) -> None:
        cycle: Any = self.protocol.cycle
        if isinstance(cycle, DirectExchange):
            cycle.feed(body)
        else:
            self.protocol.asgi_on_body(body)

    def on_message_complete(self) -> None:
        self.request_complete = True
        self.disarm()
        cycle: Any = self.protocol.cycle
        if isinstance(cycle, DirectExchange):
            cycle.complete()
        else:
            self.protocol.asgi_on_message_complete()

    # --- answered on the wire --------------------------------------------------------------------

    def refuse(self, response: bytes) -> None:
        """Write ``response`` (408/414/431) and close: no request handler writes after this."""
        self.refused = True
        self.disarm()
        cycle: Any = self.protocol.cycle
        if isinstance(cycle, DirectExchange):
            cycle.lost()
        elif cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.write(response)
        self.transport.close()

    # --- the request deadline --------------------------------------------------------------------

    def arm(self) -> None:
        self.disarm()
        self.deadline = self.loop.call_later(self.request_deadline, self._deadline_passed)

    def disarm(self) -> None:
        deadline = self.deadline
        if deadline is not None:
            deadline.cancel()
            self.deadline = None

    def _deadline_passed(self) -> None:
        self.deadline = None
        if self.transport.is_closing():
            return
        cycle: Any = self.protocol.cycle
        if cycle is None or not cycle.response_started:
            self.refuse(RESPONSE_408)
        else:  # the handler answered early (e.g. 413) while the client still trickles its body
            self.transport.close()

    # --- keep-alive ------------------------------------------------------------------------------
    # uvicorn arms a keep-alive timer after every response and cancels it when the next request
    # arrives: a timer made and destroyed per request (~2 µs). Here a connection has at most one
    # timer, armed after a response when none is pending; when it fires it closes the connection
    # if it has been idle for the whole timeout since the last response, else re-arms for then.

    def response_complete(self) -> None:
        """A response was written in full (a direct exchange's, or an ASGI cycle's via the protocol)."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        flow = self.flow
        if flow.read_paused:
            flow.resume_reading()
        if self.pipeline:  # pipelined requests waiting: the protocol starts the next one
            self.protocol.start_pipelined()
            return
        self.idle_since = now = self.loop.time()
        if self.keep_alive_timer is None:
            self.keep_alive_timer = self.loop.call_at(now + self.keep_alive_timeout, self._keep_alive_check)

    def _keep_alive_check(self) -> None:
        self.keep_alive_timer = None
        if self.transport.is_closing():
            return
        cycle: Any = self.protocol.cycle
        if not self.request_complete or (cycle is not None and not cycle.response_complete):
            return  # a request is under way; its response re-arms the timer
        idle_until = self.idle_since + self.keep_alive_timeout
        if self.loop.time() >= idle_until:
            self.transport.close()
        else:
            self.keep_alive_timer = self.loop.call_at(idle_until, self._keep_alive_check)

    def stop_keep_alive(self) -> None:
        timer = self.keep_alive_timer
        if timer is not None:
            timer.cancel()
            self.keep_alive_timer = None

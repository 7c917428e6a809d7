"""uvicorn's httptools protocol, with the wire limits uvicorn itself does not enforce.

- A deadline for receiving a whole request (headers and body) from its first byte, and for a
  new connection to start one: slow-trickling clients (slowloris, slow POST) are cut off with
  408 and the connection is closed. Once the request is complete the deadline stops: how long
  Hasura takes is the upstream timeout's business.
- A limit on the request target (414) and on the header block (431), checked while parsing, so
  an oversized header is refused before the application ever sees the request.

These must live in the protocol because they act before an ASGI request exists.

It also serves HTTP ``/graphql`` itself, without ASGI, when the application offers a handler for
that (``EdgeApp.direct_graphql``): see ``edge.direct_http`` for why and what it keeps of uvicorn's
semantics. Every other request is uvicorn's, unchanged.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from edge.direct_http import DirectExchange, is_direct_target
from edge.errors import EdgeError, HeadersTooLarge, RequestTimeout, URITooLong, graphql_error_body
from edge.graphql_http import GraphQLHTTPHandler

__all__ = ["GuardedHttpToolsProtocol", "guarded_protocol"]


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing a request that was already answered."""


def _wire_response(error: type[EdgeError]) -> bytes:
    """A complete HTTP/1.1 response for an error answered by the protocol itself."""
    body = graphql_error_body(error.default_message, error.code)
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (error.status, HTTPStatus(error.status).phrase.encode("ascii")),
            b"content-type: application/json\r\nconnection: close\r\n",
            b"content-length: %d\r\n\r\n" % len(body),
            body,
        ]
    )


RESPONSE_408 = _wire_response(RequestTimeout)
RESPONSE_414 = _wire_response(URITooLong)
RESPONSE_431 = _wire_response(HeadersTooLarge)


class _CoalescingTransport:
    """Holds a response head until its first body write, so both leave in one ``send()``.

    uvicorn writes the status line and headers as soon as ``http.response.start`` arrives and
    the body separately: two syscalls (and two TCP segments) per response. The edge always sends
    the body right after the head, so joining them is free latency-wise and saves a syscall.
    Interim responses (``100 Continue``) are never held: the client is waiting for them.
    """

    __slots__ = ("_held", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._held is not None:
            data, self._held = self._held + data, None
        elif data.startswith(b"HTTP/1.1 ") and not data.startswith(b"HTTP/1.1 1"):
            self._held = data
            return
        self._transport.write(data)

    def close(self) -> None:
        if self._held is not None:
            self._transport.write(self._held)
            self._held = None
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """Set the three limits with ``guarded_protocol(...)``; the class attributes are defaults."""

    max_header_bytes: int = 32_768
    max_url_bytes: int = 8_192
    request_deadline: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._refused = False
        self._request_complete = True
        self._headers_complete = True
        self._raw_header_bytes = 0
        self._began_here = False
        self._keep_alive_timer: asyncio.TimerHandle | None = None
        self._pipeline_held = False
        self._starting: DirectExchange | None = None
        self._idle_since = 0.0
        direct = getattr(self.app, "direct_graphql", None)
        self._direct: GraphQLHTTPHandler | None = direct if isinstance(direct, GraphQLHTTPHandler) else None

    @property
    def refused(self) -> bool:
        return self._refused

    # --- deadline ---------------------------------------------------------------------------
    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_deadline, self._deadline_passed)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _deadline_passed(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or not cycle.response_started:
            self._refuse(RESPONSE_408)
        else:  # the app answered early (e.g. 413) while the client still trickles its body
            self.transport.close()

    # --- keep-alive ---------------------------------------------------------------------------
    # uvicorn arms a keep-alive timer after every response and cancels it when the next request
    # arrives: a timer made and destroyed per request (~2 µs). Here a connection has at most one
    # timer, armed after a response when none is pending; when it fires it closes the connection
    # if it has been idle for the whole timeout since the last response, else re-arms for then.
    def on_response_complete(self) -> None:
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:  # pipelined requests waiting: start the next one
            if self.flow.write_paused:
                self._pipeline_held = True  # the client is not reading: resume_writing starts it
            else:
                cycle, app = self.pipeline.pop()
                self._start_asgi_task(cycle, app)
            return
        self._idle_since = now = self.loop.time()
        if self._keep_alive_timer is None:
            self._keep_alive_timer = self.loop.call_at(now + self.timeout_keep_alive, self._keep_alive_check)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._pipeline_held:
            self._pipeline_held = False
            if self.pipeline and not self.transport.is_closing():
                cycle, app = self.pipeline.pop()  # held back while the client was not reading
                self._start_asgi_task(cycle, app)

    def _keep_alive_check(self) -> None:
        self._keep_alive_timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if not self._request_complete or (cycle is not None and not cycle.response_complete):
            return  # a request is under way; its response re-arms the timer
        idle_until = self._idle_since + self.timeout_keep_alive
        if self.loop.time() >= idle_until:
            self.transport.close()
        else:
            self._keep_alive_timer = self.loop.call_at(idle_until, self._keep_alive_check)

    def _stop_keep_alive(self) -> None:
        if self._keep_alive_timer is not None:
            self._keep_alive_timer.cancel()
            self._keep_alive_timer = None

    def _refuse(self, response: bytes) -> None:
        self._refused = True
        self._disarm()
        cycle: Any = self.cycle
        if isinstance(cycle, DirectExchange):
            cycle.lost()  # the handler must not write after this
        elif cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the application must not write after this
            cycle.message_event.set()
        self.transport.write(response)
        self.transport.close()

    # --- protocol callbacks -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never sends a request is cut off too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._stop_keep_alive()
        cycle: Any = self.cycle
        if isinstance(cycle, DirectExchange):
            cycle.lost()
            self.cycle = None  # type: ignore[assignment]  # uvicorn's part below is for its own cycles
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        try:
            self._began_here = False
            self.parser.feed_data(data)
            if not self._headers_complete:
                # httptools buffers a header until it ends, so one endless header would grow
                # memory without ever reaching on_header: bound the raw bytes as well. They are
                # counted from the read after the one the request began in, because that read
                # also holds earlier pipelined requests (it is itself bounded by the read size).
                if not self._began_here:
                    self._raw_header_bytes += len(data)
                if self._raw_header_bytes > self.max_header_bytes + self.max_url_bytes + 1024:
                    self._refuse(RESPONSE_431)
                    return
            # Armed only now, and only while a request is still arriving (or bytes came that began
            # none): most requests arrive whole in one read, and then no timer is made at all.
            if self._deadline is None and not self._refused:
                cycle = self.cycle
                if not self._request_complete or cycle is None or cycle.response_complete:
                    self._arm()
        except httptools.HttpParserUpgrade:
            self._starting = None  # the connection changes protocol: nothing more is answered here
            self._disarm()
            self._stop_keep_alive()
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if self.refused:  # our own callback stopped the parser after answering
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self._disarm()
            self.send_400_response(msg)
        finally:
            # A direct /graphql request starts once this read is parsed rather than at its headers:
            # when its body came in the same read (the common case), the handler gets it at once
            # instead of waiting on it. A request still arriving starts now all the same (early
            # 415s, 100 Continue).
            starting = self._starting
            if starting is not None:
                self._starting = None
                if not self.transport.is_closing():
                    starting.start(self._direct)  # type: ignore[arg-type]

    def on_message_begin(self) -> None:
        # uvicorn's, minus the ASGI scope: it is built in on_headers_complete for requests that
        # go through ASGI, and a direct /graphql request never needs one.
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self._header_bytes = 0
        self._raw_header_bytes = 0
        self._began_here = True
        self._request_complete = False
        self._headers_complete = False

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self.max_url_bytes:
            self._refuse(RESPONSE_414)
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self.max_header_bytes:
            self._refuse(RESPONSE_431)
            raise _Refused
        name = name.lower()  # uvicorn's on_header, inlined (it runs for every header)
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._headers_complete = True
        if self._direct is not None and is_direct_target(self.url) and not self.parser.should_upgrade():
            self._start_direct()
            return
        self.scope = {  # type: ignore[typeddict-item]  # as uvicorn's on_message_begin builds it
            "type": "http",
            "asgi": {"version": self.asgi_version, "spec_version": "2.3"},
            "http_version": "1.1",
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,  # type: ignore[typeddict-item]
            "root_path": self.root_path,
            "headers": self.headers,
            "state": self.app_state.copy(),
        }
        previous = self.cycle
        super().on_headers_complete()
        if self.cycle is not previous:  # a new request cycle (not a WebSocket upgrade)
            self.cycle.transport = _CoalescingTransport(self.transport)  # type: ignore[assignment]

    def _start_direct(self) -> None:
        parser = self.parser
        url = self.url
        exchange = DirectExchange(
            self,
            method=parser.get_method().decode("ascii"),
            headers=self.headers,
            query_string=url[9:],  # after "/graphql?" (empty without a query string)
            keep_alive=parser.get_http_version() != "1.0" and parser.should_keep_alive(),
            expect_continue=self.expect_100_continue,
        )
        previous: Any = self.cycle
        self.cycle = exchange  # type: ignore[assignment]
        if previous is None or previous.response_complete:
            self._starting = exchange  # started at the end of data_received
        else:  # pipelined behind a request still being answered: uvicorn's queue, in order
            self.flow.pause_reading()
            self.pipeline.appendleft((exchange, None))  # type: ignore[arg-type]

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        if not isinstance(cycle, DirectExchange):
            super()._start_asgi_task(cycle, app)
            return
        cycle.start(self._direct)  # type: ignore[arg-type]

    def on_body(self, body: bytes) -> None:
        cycle: Any = self.cycle
        if isinstance(cycle, DirectExchange):
            cycle.feed(body)
        else:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._request_complete = True
        self._disarm()
        cycle: Any = self.cycle
        if isinstance(cycle, DirectExchange):
            cycle.complete()
        else:
            super().on_message_complete()


def guarded_protocol(*, max_header_bytes: int, max_url_bytes: int, request_deadline: float) -> type[HttpToolsProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` with these limits."""
    return type(
        "ConfiguredGuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {
            "max_header_bytes": max_header_bytes,
            "max_url_bytes": max_url_bytes,
            "request_deadline": request_deadline,
        },
    )

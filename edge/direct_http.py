"""``/graphql`` over HTTP/1.1 straight from the edge's uvicorn protocol, without the ASGI layer.

Why: on these machines uvicorn's ASGI machinery (a scope dict, a ``RequestResponseCycle``, an
``asyncio.Event``, message dicts for ``receive``/``send``, per-header validation of the response)
costs about 15 µs of the 40 µs a bare proxy spends per request; a request that bypasses it costs
about 24 µs (``docs/benchmarks.md``). The edge's protocol (``edge.server_protocol``) therefore hands
requests whose target is exactly ``/graphql`` (optionally with a query string), and that are not
upgrades, to a :class:`DirectExchange`, which calls the same :class:`~edge.graphql_http.GraphQLHTTPHandler`
the ASGI app mounts, through ``handle(...)`` with a body reader and a responder of its own. The
parser callbacks that create and feed exchanges are ``edge.request_events``.
Everything else (health, admin, metrics, WebSocket upgrades, absolute-form or percent-encoded
targets) still goes through ASGI and FastAPI, unchanged.

The exchange keeps uvicorn's HTTP semantics for the requests it serves: ``100 Continue`` when the
handler first reads the body, reading paused past 64 KiB of unread body, pipelined requests
answered in order, write back-pressure (``pause_writing``), ``Connection: close`` and HTTP/1.0,
``HEAD`` without a body, the ``Date`` header, graceful shutdown (the server waits for these tasks
and closes keep-alive connections after their response), and a disconnect seen by the handler as
``ClientDisconnected``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from edge.asgi import ClientDisconnected
from edge.errors import InternalError, PayloadTooLarge

if TYPE_CHECKING:
    from edge.graphql_http import GraphQLHTTPHandler
    from edge.request_events import RequestEvents

__all__ = ["DirectExchange", "encode_head", "is_direct_target"]

log = logging.getLogger("edge.http")

_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
_CLOSE_LINE: Final = b"connection: close\r\n"
_INTERNAL_ERROR_BODY = InternalError().body()
_INTERNAL_ERROR: Final = b"".join(
    [
        STATUS_LINE[500],
        b"content-type: application/json; charset=utf-8\r\n",
        _CLOSE_LINE,
        b"content-length: %d\r\n\r\n" % len(_INTERNAL_ERROR_BODY),
        _INTERNAL_ERROR_BODY,
    ]
)


def encode_head(
    status: int,
    default_headers: list[tuple[bytes, bytes]],
    headers: list[tuple[bytes, bytes]],
    content_length: int,
    *,
    keep_alive: bool,
) -> tuple[bytes, bool]:
    """The status line and header block of a response, and whether the connection stays open.

    ``default_headers`` are the server's (``Date``); ``connection: close`` is added when the
    connection will close (HTTP/1.0, the client asked, shutdown), and a handler's own
    ``connection: close`` closes it. Raises ValueError when a name or value contains CR or LF.
    """
    parts = [STATUS_LINE[status]]
    for name, value in default_headers:  # the server's own: made by uvicorn, never from a request
        parts.append(name)
        parts.append(b": ")
        parts.append(value)
        parts.append(b"\r\n")
    for name, value in headers:
        # A CR or LF would split the response (uvicorn checks each header with a regex). An int
        # operand makes each test one memchr; four appends cost less than one tuple per header.
        if 13 in value or 10 in value or 13 in name or 10 in name:
            raise ValueError("invalid HTTP response header (CR or LF in a name or value)")
        if name == b"connection" and b"close" in value.lower():
            keep_alive = False
        parts.append(name)
        parts.append(b": ")
        parts.append(value)
        parts.append(b"\r\n")
    if not keep_alive:
        parts.append(_CLOSE_LINE)
    parts.append(b"content-length: %d\r\n\r\n" % content_length)
    return b"".join(parts), keep_alive


def is_direct_target(url: bytes) -> bool:
    """Whether a request target (as sent, origin-form) is the ``/graphql`` endpoint."""
    return url == b"/graphql" or url.startswith(b"/graphql?")


class DirectExchange:
    """One request/response on a connection, fed by the protocol's parser callbacks.

    It stands where uvicorn keeps its ``RequestResponseCycle`` (``protocol.cycle`` and the
    pipelining queue), so it has the attributes the protocol reads there: ``response_started``,
    ``response_complete``, ``disconnected`` and ``keep_alive``. ``events`` is its connection's
    :class:`~edge.request_events.RequestEvents`.
    """

    __slots__ = (
        "_chunks",
        "_limit",
        "_loop",
        "_more_body",
        "_size",
        "_waiter",
        "disconnected",
        "expect_continue",
        "headers",
        "keep_alive",
        "events",
        "method",
        "query_string",
        "response_complete",
        "response_started",
        "transport",
    )

    def __init__(
        self,
        events: RequestEvents,
        *,
        method: str,
        headers: list[tuple[bytes, bytes]],
        query_string: bytes,
        keep_alive: bool,
        expect_continue: bool,
    ) -> None:
        self.events = events
        self.transport = events.transport
        self._loop = events.loop
        self.method = method
        self.headers = headers
        self.query_string = query_string
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.response_started = False
        self.response_complete = False
        self.disconnected = False
        self._chunks: list[bytes] = []
        self._size = 0
        self._more_body = True
        self._limit: int | None = None  # set when the handler asks for the body
        self._waiter: asyncio.Future[None] | None = None

    # --- fed by the protocol --------------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        if self.response_complete or self.disconnected:
            return  # answered already (e.g. 415): the rest of the body is read and dropped
        self._size += len(chunk)
        limit = self._limit
        if limit is None:
            self._chunks.append(chunk)
            if self._size > HIGH_WATER_LIMIT:
                self.events.flow.pause_reading()  # nobody reads yet: let TCP push back
            return
        if self._size <= limit:
            self._chunks.append(chunk)
        self._wake()

    def complete(self) -> None:
        self._more_body = False
        self._wake()

    def lost(self) -> None:
        """The connection is gone (or the protocol answered by itself): nothing more is read or written."""
        if not self.response_complete:
            self.disconnected = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- what the handler calls -----------------------------------------------------------------

    async def read_body(self, limit: int) -> bytes:
        """The whole body; PayloadTooLarge as soon as more than ``limit`` bytes arrived."""
        if self.expect_continue:
            self.expect_continue = False
            if not self.transport.is_closing():
                self.transport.write(_CONTINUE)
        self._limit = limit
        while True:
            if self.disconnected:
                raise ClientDisconnected
            if self._size > limit:
                raise PayloadTooLarge.over(limit)
            if not self._more_body:
                chunks = self._chunks
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
            self.events.flow.resume_reading()
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def arrived_body(self) -> bytes | None:
        """The whole body when it has all arrived already (the common case), else None."""
        if self._more_body or self.disconnected:
            return None
        chunks = self._chunks
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def respond(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """Write the whole response in one ``send()``; ``content-length`` is computed here.

        A plain call: the write never waits. Back-pressure acts between requests instead: while the
        client is not reading (``pause_writing``), its next pipelined request is not started.
        """
        if self.response_started:
            raise RuntimeError("a response was already sent for this request")
        if self.disconnected:
            return
        events = self.events
        head, keep_alive = encode_head(
            status, events.server_state.default_headers, headers, len(body), keep_alive=self.keep_alive
        )
        self.response_started = True
        self.expect_continue = False
        self.transport.write(head if self.method == "HEAD" else head + body)
        self.response_complete = True
        if not keep_alive:
            self.keep_alive = False
            self.transport.close()
        events.response_complete()

    # --- the task -------------------------------------------------------------------------------

    def start(self, handler: GraphQLHTTPHandler) -> asyncio.Task[None]:
        """Start the task that answers this request (``handle()`` itself: no wrapper coroutine)."""
        events = self.events
        task = self._loop.create_task(
            handler.handle(
                self.method,
                self.headers,
                self.query_string,
                events.client,
                self.read_body,
                self.respond,
                self.arrived_body(),
            )
        )
        task.add_done_callback(self._finished)
        events.tasks.add(task)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.events.tasks.discard(task)
        if task.cancelled():  # the server gave up waiting at shutdown
            self._abort()
            return
        error = task.exception()
        if error is not None:
            # handle() answers its own errors, so this is a failure to write the response itself.
            log.error("edge_http_error", exc_info=error)
            self._abort()
        elif not self.response_complete and not self.disconnected:
            log.error("edge_http_no_response")  # the handler returned without answering: a bug
            self._abort()

    def _abort(self) -> None:
        if not self.response_started and not self.transport.is_closing():
            self.transport.write(_INTERNAL_ERROR)
        self.response_started = self.response_complete = True
        self.keep_alive = False
        self.transport.close()

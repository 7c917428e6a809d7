"""One request and its response on an HTTP/1.1 connection.

The connection (``edge.http_server.connection``) parses requests and feeds each one's body to its
exchange; the exchange runs the handler and writes the response back through the connection.
Two kinds: :class:`DirectExchange` calls a :class:`~edge.http_server.state.DirectHandler` with a
body reader and a responder (no ASGI messages: that is most of what an ASGI cycle costs), and
:class:`AsgiExchange` runs an ASGI application (FastAPI's routes, the metrics app).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Final

from edge.asgi import ClientDisconnected, Message
from edge.errors import EdgeError, InternalError, PayloadTooLarge
from edge.http_server.responses import CONTINUE, encode_head, refusal

if TYPE_CHECKING:
    from edge.http_server.state import DirectHandler, ServerState

__all__ = ["AsgiExchange", "DirectExchange", "Exchange", "ExchangeHost"]

log = logging.getLogger("edge.http")

# Unread body past this pauses reading until the handler asks for it (TCP pushes back on the client).
_HIGH_WATER: Final = 65_536


class ExchangeHost:
    """What an exchange uses of the connection it belongs to; ``HttpConnection`` is the one kind.

    Declared here so that exchanges need nothing from ``edge.http_server.connection``, which creates them.
    """

    state: ServerState
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    client: tuple[str, int] | None
    max_body_bytes: int

    def pause_reading(self) -> None:
        raise NotImplementedError

    def resume_reading(self) -> None:
        raise NotImplementedError

    def response_complete(self, exchange: Exchange) -> None:
        """``exchange`` wrote its last byte."""
        raise NotImplementedError

    async def drained(self) -> None:
        """Wait while the client does not read."""
        raise NotImplementedError


class Exchange:
    """The request side (body arriving in pieces) and the response state both kinds share."""

    def __init__(
        self,
        connection: ExchangeHost,
        method: str,
        headers: list[tuple[bytes, bytes]],
        *,
        keep_alive: bool,
        expect_continue: bool,
        too_large: bool,
    ) -> None:
        self.connection = connection
        self.transport: asyncio.Transport = connection.transport
        self.loop = connection.loop
        self.method = method
        self.headers = headers
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.too_large = too_large
        """The body is over the server's limit (declared or counted): it is dropped, never handed on."""
        self.response_started = False
        self.response_complete = False
        self.disconnected = False
        self.chunks: list[bytes] = []
        self.size = 0
        self.more_body = True
        self.waiter: asyncio.Future[None] | None = None
        self.asked = False  # the handler has asked for the body

    # --- fed by the connection ----------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        if self.response_complete or self.disconnected:
            return  # answered already (e.g. 415): the rest of the body is dropped
        self.size += len(chunk)
        if self.too_large:
            return
        if self.size > self.connection.max_body_bytes:
            self.too_large = True
            self.chunks = []
            self.body_too_large()
            self.wake()
            return
        self.chunks.append(chunk)
        if self.asked:
            self.wake()
        elif self.size > _HIGH_WATER:
            self.connection.pause_reading()  # nobody reads yet: let TCP push back

    def complete(self) -> None:
        self.more_body = False
        self.wake()

    def lost(self) -> None:
        """The connection is gone or refused: nothing more is read or written for this request."""
        if not self.response_complete:
            self.disconnected = True
        self.wake()

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def body_too_large(self) -> None:
        """The body passed the limit while arriving; a subclass may answer at once."""

    def send_continue(self) -> None:
        if self.expect_continue:
            self.expect_continue = False
            if not self.transport.is_closing():
                self.transport.write(CONTINUE)

    async def wait_for_body(self) -> None:
        self.connection.resume_reading()
        self.waiter = self.loop.create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    def start(self) -> None:
        raise NotImplementedError

    def write_response(self, data: bytes, keep_alive: bool) -> None:
        """The last bytes of the response: the connection decides what happens next."""
        self.response_complete = True
        self.expect_continue = False
        self.transport.write(data)
        if not keep_alive:
            self.keep_alive = False
        self.connection.response_complete(self)

    def abort(self) -> None:
        """The handler failed without a usable response: a GraphQL-shaped 500 if nothing was sent, then close."""
        if not self.response_started and not self.transport.is_closing():
            self.transport.write(refusal(InternalError(), self.connection.state.date.current()))
        self.response_started = self.response_complete = True
        self.keep_alive = False
        self.transport.close()


class DirectExchange(Exchange):
    """A request for a :class:`~edge.http_server.state.DirectHandler` path."""

    def __init__(
        self,
        connection: ExchangeHost,
        method: str,
        headers: list[tuple[bytes, bytes]],
        *,
        keep_alive: bool,
        expect_continue: bool,
        too_large: bool,
        handler: DirectHandler,
        query_string: bytes,
    ) -> None:
        super().__init__(
            connection, method, headers, keep_alive=keep_alive, expect_continue=expect_continue, too_large=too_large
        )
        self.handler = handler
        self.query_string = query_string

    async def read_body(self, limit: int) -> bytes:
        """The whole body; PayloadTooLarge as soon as more than ``limit`` bytes arrived (or were declared)."""
        self.send_continue()
        self.asked = True
        while True:
            if self.disconnected:
                raise ClientDisconnected
            if self.too_large:
                raise PayloadTooLarge.over(min(limit, self.connection.max_body_bytes))
            if self.size > limit:
                raise PayloadTooLarge.over(limit)
            if not self.more_body:
                chunks = self.chunks
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
            await self.wait_for_body()

    def arrived_body(self) -> bytes | None:
        """The whole body when it has all arrived already (the common case), else None."""
        if self.more_body or self.disconnected or self.too_large:
            return None
        chunks = self.chunks
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def respond(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """Write the whole response in one ``send()``; ``content-length`` is computed here.

        A plain call: the write never waits. Back-pressure acts between requests instead: while the
        client is not reading, its next pipelined request is not started.
        """
        if self.response_started:
            raise RuntimeError("a response was already sent for this request")
        if self.disconnected:
            return
        head, keep_alive = encode_head(
            status, self.connection.state.date.current(), headers, len(body), keep_alive=self.keep_alive
        )
        self.response_started = True
        self.write_response(head if self.method == "HEAD" else head + body, keep_alive)

    def start(self) -> None:
        """Start the task that answers this request (``handle()`` itself: no wrapper coroutine)."""
        connection = self.connection
        task = self.loop.create_task(
            self.handler.handle(
                self.method,
                self.headers,
                self.query_string,
                connection.client,
                self.read_body,
                self.respond,
                self.arrived_body(),
            )
        )
        task.add_done_callback(self.finished)
        connection.state.tasks.add(task)

    def finished(self, task: asyncio.Task[None]) -> None:
        self.connection.state.tasks.discard(task)
        if task.cancelled():  # the server gave up waiting at shutdown
            self.abort()
            return
        error = task.exception()
        if error is not None:
            # handle() answers its own errors, so this is a failure to write the response itself.
            log.error("edge_http_error", exc_info=error)
            self.abort()
        elif not self.response_complete and not self.disconnected:
            log.error("edge_http_no_response")  # the handler returned without answering: a bug
            self.abort()


class AsgiExchange(Exchange):
    """A request for the ASGI application: the ``http`` scope, ``receive`` and ``send``."""

    def __init__(
        self,
        connection: ExchangeHost,
        method: str,
        headers: list[tuple[bytes, bytes]],
        *,
        keep_alive: bool,
        expect_continue: bool,
        too_large: bool,
        scope: dict[str, Any],
    ) -> None:
        super().__init__(
            connection, method, headers, keep_alive=keep_alive, expect_continue=expect_continue, too_large=too_large
        )
        self.scope = scope
        self.status = 0
        self.response_headers: list[tuple[bytes, bytes]] = []
        self.chunked = False
        self.body_sent = False

    def body_too_large(self) -> None:
        if not self.response_started:
            self.refuse(PayloadTooLarge.over(self.connection.max_body_bytes))

    def refuse(self, error: EdgeError) -> None:
        self.response_started = True
        self.disconnected = True  # the application's later sends are dropped
        self.write_response(refusal(error, self.connection.state.date.current()), False)

    def start(self) -> None:
        if self.too_large:  # declared over the limit: answered without running the application
            self.refuse(PayloadTooLarge.over(self.connection.max_body_bytes))
            return
        task = self.loop.create_task(self.run())
        self.connection.state.tasks.add(task)
        task.add_done_callback(self.connection.state.tasks.discard)

    async def run(self) -> None:
        try:
            await self.connection.state.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            return
        except asyncio.CancelledError:
            self.abort()
            raise
        except Exception:
            log.exception("edge_asgi_error")
            self.abort()
            return
        if not self.response_complete and not self.disconnected:
            log.error("edge_asgi_no_response")
            self.abort()

    async def receive(self) -> Message:
        if not self.asked:
            self.asked = True
            self.send_continue()
        while True:
            if self.disconnected or self.response_complete:
                return {"type": "http.disconnect"}
            if self.chunks or not self.more_body:
                chunks = self.chunks
                self.chunks = []
                body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                return {"type": "http.request", "body": body, "more_body": self.more_body}
            await self.wait_for_body()

    async def send(self, message: Message) -> None:
        if self.disconnected:
            return
        kind = message["type"]
        if kind == "http.response.start":
            if self.response_started:
                raise RuntimeError("http.response.start sent twice")
            self.response_started = True
            self.status = int(message["status"])
            self.response_headers = [(bytes(name).lower(), bytes(value)) for name, value in message.get("headers", ())]
            return
        if kind != "http.response.body":
            raise RuntimeError(f"unexpected ASGI message {kind!r}")
        if not self.response_started or self.response_complete:
            raise RuntimeError("http.response.body outside a response")
        await self.connection.drained()
        body: bytes = message.get("body", b"")
        more = bool(message.get("more_body", False))
        head_only = self.method == "HEAD"
        if not self.body_sent:
            self.body_sent = True
            # The whole body in one message: framed with content-length (the usual case); else chunked.
            length = len(body) if not more else -1
            if length < 0:
                declared = next((v for n, v in self.response_headers if n == b"content-length"), None)
                if declared is not None and declared.isdigit():
                    length = int(declared)  # streamed, but of a known length: keep it
                    self.chunked = False
                else:
                    self.chunked = True
            head, self.keep_alive = encode_head(
                self.status,
                self.connection.state.date.current(),
                self.response_headers,
                length,
                keep_alive=self.keep_alive,
            )
            data = head if head_only else head + self._frame(body, more)
        else:
            data = b"" if head_only else self._frame(body, more)
        if more:
            if data:
                self.transport.write(data)
            return
        self.write_response(data, self.keep_alive)

    def _frame(self, body: bytes, more: bool) -> bytes:
        if not self.chunked:
            return body
        framed = b"%x\r\n%s\r\n" % (len(body), body) if body else b""
        return framed if more else framed + b"0\r\n\r\n"

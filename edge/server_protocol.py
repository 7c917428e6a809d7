"""uvicorn's httptools protocol, with the wire limits uvicorn itself does not enforce.

- A deadline for receiving a whole request (headers and body) from its first byte, and for a
  new connection to start one: slow-trickling clients (slowloris, slow POST) are cut off with
  408 and the connection is closed. Once the request is complete the deadline stops: how long
  Hasura takes is the upstream timeout's business.
- A limit on the request target (414) and on the header block (431), checked while parsing, so
  an oversized header is refused before the application ever sees the request.

These must live in the protocol because they act before an ASGI request exists. They are
implemented, with the rest of the per-request parser callbacks, in ``edge.request_events``
(compiled); this class wires that object into uvicorn's protocol.

It also serves HTTP ``/graphql`` itself, without ASGI, when the application offers a handler for
that (``EdgeApp.direct_graphql``): see ``edge.direct_http`` for why and what it keeps of uvicorn's
semantics. Every other request is uvicorn's, unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from edge.direct_http import DirectExchange
from edge.graphql_http import GraphQLHTTPHandler
from edge.request_events import RequestEvents

__all__ = ["GuardedHttpToolsProtocol", "guarded_protocol"]


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
    """Set the three limits with ``guarded_protocol(...)``; the class attributes are defaults.

    The parser's callbacks go to a compiled :class:`~edge.request_events.RequestEvents`, which
    holds the per-request state and the limits; what stays here is what only uvicorn's code does
    (ASGI requests, WebSocket upgrades, 400s) and the glue to it.
    """

    max_header_bytes: int = 32_768
    max_url_bytes: int = 8_192
    request_deadline: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pipeline_held = False
        direct = getattr(self.app, "direct_graphql", None)
        self.events = RequestEvents(
            self,
            direct if isinstance(direct, GraphQLHTTPHandler) else None,
            max_header_bytes=self.max_header_bytes,
            max_url_bytes=self.max_url_bytes,
            request_deadline=self.request_deadline,
            keep_alive_timeout=self.timeout_keep_alive,
        )
        self.parser = self.events.parser
        # Reads go straight to the compiled object: the event loop looks ``data_received`` up on
        # the protocol instance, so this skips an interpreted frame on every read.
        self.data_received = self.events.feed  # type: ignore[method-assign]

    # --- protocol callbacks -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.events.connection_made(transport, self.flow)

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.connection_lost()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        """Called by uvicorn's ASGI cycles when their response is sent (direct exchanges call the events)."""
        self.events.response_complete()

    def start_pipelined(self) -> None:
        """Start the oldest pipelined request, unless the client is not reading our responses."""
        if self.flow.write_paused:
            self._pipeline_held = True  # resume_writing starts it
            return
        cycle, app = self.pipeline.pop()
        self._start_asgi_task(cycle, app)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._pipeline_held:
            self._pipeline_held = False
            if self.pipeline and not self.transport.is_closing():
                cycle, app = self.pipeline.pop()  # held back while the client was not reading
                self._start_asgi_task(cycle, app)

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        if isinstance(cycle, DirectExchange):
            cycle.start(self.events.direct)  # type: ignore[arg-type]  # set whenever a direct request exists
        else:
            super()._start_asgi_task(cycle, app)

    # --- what RequestEvents hands back to uvicorn's code ---------------------------------------
    def upgrade(self) -> None:
        """The parser stopped at an ``Upgrade`` request."""
        if self._should_upgrade():
            self.handle_websocket_upgrade()
        else:
            self._unsupported_upgrade_warning()

    def bad_request(self) -> None:
        msg = "Invalid HTTP request received."
        self.logger.warning(msg)
        self.send_400_response(msg)

    def asgi_headers_complete(self) -> None:
        """A request that goes through ASGI: its scope (uvicorn builds it at message begin), then uvicorn's."""
        self.scope = {  # type: ignore[typeddict-item]
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

    def asgi_on_body(self, body: bytes) -> None:
        super().on_body(body)

    def asgi_on_message_complete(self) -> None:
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

"""uvicorn's httptools protocol, with the wire limits uvicorn itself does not enforce.

- A deadline for receiving a whole request (headers and body) from its first byte, and for a
  new connection to start one: slow-trickling clients (slowloris, slow POST) are cut off with
  408 and the connection is closed. Once the request is complete the deadline stops: how long
  Hasura takes is the upstream timeout's business.
- A limit on the request target (414) and on the header block (431), checked while parsing, so
  an oversized header is refused before the application ever sees the request.

These must live in the protocol because they act before an ASGI request exists.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from edge.errors import EdgeError, HeadersTooLarge, RequestTimeout, URITooLong, graphql_error_body

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

    def _refuse(self, response: bytes) -> None:
        self._refused = True
        self._disarm()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the application must not write after this
            self.cycle.message_event.set()
        self.transport.write(response)
        self.transport.close()

    # --- protocol callbacks -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # a connection that never sends a request is cut off too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._unset_keepalive_if_required()
        if self._request_complete and self._deadline is None:
            self._arm()
        try:
            self.parser.feed_data(data)
            if not self._headers_complete:
                # httptools buffers a header until it ends, so one endless header would grow
                # memory without ever reaching on_header: bound the raw bytes as well.
                self._raw_header_bytes += len(data)
                if self._raw_header_bytes > self.max_header_bytes + self.max_url_bytes + 1024:
                    self._refuse(RESPONSE_431)
        except httptools.HttpParserUpgrade:
            self._disarm()
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

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._raw_header_bytes = 0
        self._request_complete = False
        self._headers_complete = False
        if self._deadline is None:
            self._arm()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.max_url_bytes:
            self._refuse(RESPONSE_414)
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self.max_header_bytes:
            self._refuse(RESPONSE_431)
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._headers_complete = True
        previous = self.cycle
        super().on_headers_complete()
        if self.cycle is not previous:  # a new request cycle (not a WebSocket upgrade)
            self.cycle.transport = _CoalescingTransport(self.transport)  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        self._request_complete = True
        self._disarm()
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

"""What every connection of one server shares: the application, the limits, the live connections."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from edge.asgi import ASGIApp
from edge.http_server.config import ServerConfig
from edge.http_server.responses import DateHeader

__all__ = ["DirectHandler", "ServerState"]

BodyReader = Callable[[int], Awaitable[bytes]]
Responder = Callable[[int, list[tuple[bytes, bytes]], bytes], Awaitable[None] | None]


class DirectHandler(Protocol):
    """A request handler called without ASGI (``edge.graphql_http.GraphQLHTTPHandler.handle``)."""

    def handle(
        self,
        method: str,
        headers: list[tuple[bytes, bytes]],
        query_string: bytes,
        client: tuple[str, int] | None,
        read_body: BodyReader,
        respond: Responder,
        arrived_body: bytes | None = None,
    ) -> Coroutine[Any, Any, None]: ...


class Closable(Protocol):
    def shutdown(self) -> None:
        """Finish what is in flight, then close (graceful shutdown)."""

    def abort(self) -> None:
        """Close now (shutdown ran out of time)."""


class ServerState:
    """Built once per server; every connection reads it."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        config: ServerConfig,
        app: ASGIApp,
        direct: dict[bytes, DirectHandler],
    ) -> None:
        self.loop = loop
        self.config = config
        self.app = app
        self.direct = direct
        """Paths (decoded, without query string) served by a handler of their own instead of ``app``."""
        self.scheme = "https" if config.tls is not None else "http"
        self.date = DateHeader()
        self.tasks: set[asyncio.Task[None]] = set()
        """Every request and WebSocket task, so that shutdown can wait for them."""
        self.connections: set[Closable] = set()
        self.app_state: dict[str, Any] = {}
        """The ASGI lifespan state, copied into every scope."""
        self.shutting_down = False

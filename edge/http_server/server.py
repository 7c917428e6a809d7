"""Listening sockets, start-up and graceful shutdown for the edge's HTTP/1.1 server.

One :class:`HttpServer` serves one ASGI application (plus the paths with a direct handler) on
one or more sockets. ``start()`` runs the application's lifespan start-up, then listens;
``shutdown()`` stops listening, closes idle HTTP connections at once and the others after the
request they are answering, lets the application wind its WebSockets down (``drain_websockets``:
ASGI has no message for "the server is leaving"), closes the WebSockets left with 1001, waits up
to ``graceful_shutdown`` seconds in all for what is in flight (then cancels it), and finally runs
the lifespan shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping

from edge.asgi import ASGIApp
from edge.http_server.config import ServerConfig
from edge.http_server.connection import HttpConnection
from edge.http_server.lifespan import Lifespan
from edge.http_server.state import DirectHandler, ServerState
from edge.http_server.websocket import WebSocketConnection

__all__ = ["HttpServer", "bind"]

log = logging.getLogger("edge.http")


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket (IPv6 when ``host`` is an IPv6 address); OSError when taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


class HttpServer:
    def __init__(
        self,
        app: ASGIApp,
        config: ServerConfig,
        *,
        direct: Mapping[bytes, DirectHandler] | None = None,
        lifespan: bool = True,
        drain_websockets: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.app = app
        self.drain_websockets = drain_websockets
        self.config = config
        self.direct = dict(direct or {})
        self.lifespan_enabled = lifespan
        self.state: ServerState | None = None
        self.lifespan: Lifespan | None = None
        self.listeners: list[asyncio.AbstractServer] = []
        self.started = False
        self.stopped = asyncio.Event()

    async def start(self, sockets: list[socket.socket]) -> None:
        """Run the lifespan start-up (LifespanFailed if it fails), then accept connections."""
        loop = asyncio.get_running_loop()
        state = self.state = ServerState(loop, self.config, self.app, self.direct)
        if self.lifespan_enabled:
            self.lifespan = Lifespan(self.app, state.app_state)
            await self.lifespan.startup()
        for sock in sockets:
            listener = await loop.create_server(
                lambda: HttpConnection(state),  # type: ignore[arg-type,return-value]
                sock=sock,
                ssl=self.config.tls,
                backlog=2048,
            )
            self.listeners.append(listener)
        self.started = True

    async def shutdown(self) -> None:
        """Stop listening, finish or cancel what is in flight, then run the lifespan shutdown."""
        state = self.state
        if state is None or state.shutting_down:
            await self.stopped.wait()
            return
        state.shutting_down = True
        for listener in self.listeners:
            listener.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.graceful_shutdown
        for connection in list(state.connections):
            if not isinstance(connection, WebSocketConnection):
                connection.shutdown()
        if self.drain_websockets is not None:
            try:
                async with asyncio.timeout_at(deadline):
                    await self.drain_websockets()
            except TimeoutError:
                pass
        for connection in list(state.connections):
            connection.shutdown()  # the WebSockets still open: 1001 now
        try:
            async with asyncio.timeout_at(deadline):
                while state.connections or state.tasks:
                    await asyncio.sleep(0.05)
        except TimeoutError:
            log.warning("edge_shutdown_timeout", extra={"tasks": len(state.tasks)})
            for task in list(state.tasks):
                task.cancel()
            if state.tasks:
                await asyncio.wait(list(state.tasks), timeout=5.0)
            for connection in list(state.connections):
                connection.abort()
        for listener in self.listeners:
            await listener.wait_closed()
        if self.lifespan is not None:
            await self.lifespan.shutdown()
        self.stopped.set()

"""``/metrics`` on a port of its own, run inside the edge's event loop (started from the app's lifespan).

A second :class:`~edge.http_server.HttpServer` in the same loop, without a lifespan of its own and
without signal handling: the edge's main server owns the process's lifecycle.
"""

from __future__ import annotations

import socket

from edge.asgi import ASGIApp
from edge.http_server import HttpServer, ServerConfig, bind

__all__ = ["MetricsServer"]


class MetricsServer:
    """``await start()`` binds ``host:port`` (``port=0``: any free port, see ``port``), or serves on ``sock`` when
    given one already bound (``python -m edge`` binds it before start-up); ``aclose()`` stops it."""

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int, sock: socket.socket | None = None) -> None:
        self._host, self._requested_port = host, port
        self._server = HttpServer(app, ServerConfig(), lifespan=False)
        self._port = port
        self._sock = sock

    @property
    def port(self) -> int:
        """The bound port (after ``start()``)."""
        return self._port

    async def start(self) -> None:
        """Bind (raises ``OSError`` if the port is taken: a misconfiguration should stop the edge) and serve."""
        sock = self._sock if self._sock is not None else bind(self._host, self._requested_port)
        self._port = int(sock.getsockname()[1])
        await self._server.start([sock])

    async def aclose(self) -> None:
        if self._server.started:
            await self._server.shutdown()

"""``/metrics`` on a port of its own, run inside the edge's event loop (started from the app's lifespan).

A second ``uvicorn.Server`` in the same loop, with signal handling left to the main server: uvicorn's
``capture_signals`` would otherwise take SIGTERM/SIGINT over from the edge's own server while both run.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn

from edge.asgi import ASGIApp

__all__ = ["MetricsServer"]


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class MetricsServer:
    """``await start()`` binds ``host:port`` (``port=0``: any free port, see ``port``); ``aclose()`` stops it."""

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int) -> None:
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._host, self._requested_port = host, port
        config = uvicorn.Config(
            app, http="httptools", lifespan="off", access_log=False, log_config=None, server_header=False
        )
        self._server = _QuietServer(config)
        self._task: asyncio.Task[None] | None = None
        self._port = port

    @property
    def port(self) -> int:
        """The bound port (after ``start()``)."""
        return self._port

    async def start(self) -> None:
        """Bind (raises ``OSError`` if the port is taken: a misconfiguration should stop the edge) and serve."""
        self._sock.bind((self._host, self._requested_port))
        self._port = int(self._sock.getsockname()[1])
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]), name="metrics-server")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raise why it stopped
                raise RuntimeError("the metrics server stopped during start-up")
            await asyncio.sleep(0.01)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._server.should_exit = True
            await task
        self._sock.close()

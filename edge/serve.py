"""``python -m edge``: serve the edge on uvloop until SIGTERM or SIGINT, then shut down gracefully.

After the shutdown the signal is raised again with its default handler, so the process's exit status
says why it stopped (as a process killed by the signal would).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal

import uvloop

from edge.app import EdgeApp, create_app
from edge.http_server import HttpServer, bind, server_config
from edge.settings import EdgeSettings

__all__ = ["edge_server", "run", "serve"]

log = logging.getLogger("edge.http")


def edge_server(app: EdgeApp, settings: EdgeSettings) -> HttpServer:
    """The server for the edge's app: its GraphQL paths answered directly, the rest through ASGI."""
    return HttpServer(app, server_config(settings), direct=app.direct_routes)


async def serve(settings: EdgeSettings, stop: asyncio.Event | None = None) -> int | None:
    """Serve until ``stop`` is set (by default: the first SIGTERM or SIGINT, which is returned)."""
    server = edge_server(create_app(settings), settings)
    sock = bind(settings.host, settings.port)
    await server.start([sock])
    # What start-up built (settings, schema, metadata, pools, modules) lives as long as the process:
    # frozen, the collections that requests trigger no longer traverse it (docs/benchmarks.md).
    gc.collect()
    gc.freeze()
    log.info("edge_listening", extra={"host": settings.host, "port": sock.getsockname()[1]})
    received: list[int] = []
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            received.append(signum)
            stop.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)
    await stop.wait()
    log.info("edge_shutting_down")
    await server.shutdown()
    return received[0] if received else None


def run(settings: EdgeSettings) -> None:
    signum = uvloop.run(serve(settings))
    if signum is not None:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

"""``python -m edge``: serve the edge on uvloop until SIGTERM or SIGINT, then shut down gracefully."""

from __future__ import annotations

import asyncio
import gc
import logging
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


async def serve(settings: EdgeSettings, stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set (by default: the first SIGTERM or SIGINT)."""
    server = edge_server(create_app(settings), settings)
    sock = bind(settings.host, settings.port)
    await server.start([sock])
    # What start-up built (settings, schema, metadata, pools, modules) lives as long as the process:
    # frozen, the collections that requests trigger no longer traverse it (docs/benchmarks.md).
    gc.collect()
    gc.freeze()
    log.info("edge_listening", extra={"host": settings.host, "port": sock.getsockname()[1]})
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("edge_shutting_down")
    await server.shutdown()


def run(settings: EdgeSettings) -> None:
    uvloop.run(serve(settings))

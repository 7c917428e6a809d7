"""One edge process serving on its event loop until SIGTERM or SIGINT, then shutting down gracefully.

``edge.launch`` runs it directly, or in each worker (``edge.workers.worker``) when there are several.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import logging
import signal
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from edge.app import EdgeApp, create_app
from edge.graphql.manifest import ManifestError
from edge.graphql.permissions import MetadataError
from edge.http_server import HttpServer, ServerConfig, bind, server_config
from edge.http_server.lifespan import LifespanFailed
from edge.observability.metrics_peers import MetricsPeers
from edge.settings import EdgeSettings

__all__ = [
    "YOUNG_COLLECTION_THRESHOLD",
    "StartupError",
    "Worker",
    "bind_metrics_or_fail",
    "bind_or_fail",
    "build_app",
    "edge_server",
    "load_server_config",
    "serve",
    "upstream_client_problem",
]

log = logging.getLogger("edge.http")

YOUNG_COLLECTION_THRESHOLD: Final = 10_000
"""Net allocations of tracked objects between two collections of the youngest generation (CPython's default
is 700). A request frees what it allocates by reference counting, so in a serving process the collector
finds almost nothing; but with 64 requests in flight their live objects alone pass 700 every 150 requests
or so, and the collections (and the older ones they trigger) cost about 4.7 µs of CPU per request in the
production configuration. At 10,000 none ran in 100,000 such requests (docs/benchmarks.md); cyclic
garbage, when there is some, waits for at most that many allocations."""

EXIT_CONFIGURATION = 2
EXIT_STARTUP_FAILED = 3


class StartupError(Exception):
    """The edge cannot start; the message is one line for the operator, naming the setting."""

    def __init__(self, message: str, exit_code: int = EXIT_CONFIGURATION) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def edge_server(app: EdgeApp, settings: EdgeSettings) -> HttpServer:
    """The server for the edge's app: its GraphQL paths answered directly, the rest through ASGI."""
    return HttpServer(
        app, load_server_config(settings), direct=app.direct_routes, drain_websockets=app.drain_websockets
    )


def load_server_config(settings: EdgeSettings) -> ServerConfig:
    """The server's configuration, its TLS certificate and key loaded; StartupError names the settings."""
    try:
        return server_config(settings)
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    except (OSError, ssl.SSLError) as exc:  # the files' contents are never part of the message
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StartupError(
            f"EDGE_TLS_CERT_FILE / EDGE_TLS_KEY_FILE: cannot load the certificate and key: {reason}"
        ) from None


def bind_or_fail(settings: EdgeSettings) -> socket.socket:
    try:
        return bind(settings.host, settings.port)
    except OSError as exc:
        raise StartupError(
            f"EDGE_HOST / EDGE_PORT: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}"
        ) from None


def bind_metrics_or_fail(settings: EdgeSettings) -> socket.socket | None:
    """The metrics port, bound before start-up so that a busy port is a configuration error (exit 2)."""
    if settings.metrics_port is None:
        return None
    host, port = settings.metrics_host, settings.metrics_port
    try:
        return bind(host, port)
    except OSError as exc:
        raise StartupError(
            f"EDGE_METRICS_HOST / EDGE_METRICS_PORT: cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None


# The upstream clients other than ``lean`` need the ``bench`` extra (edge/upstream/__init__.py).
_UPSTREAM_PACKAGES = {
    "httpx": ("httpx",),
    "httpx2": ("httpx2",),
    "httpx-aiohttp": ("httpx", "aiohttp", "httpx_aiohttp"),
}


def upstream_client_problem(settings: EdgeSettings, name: str | None = None) -> str | None:
    """A problem when the chosen upstream client's packages are not installed."""
    missing = [
        package
        for package in _UPSTREAM_PACKAGES.get(settings.upstream_client, ())
        if importlib.util.find_spec(package) is None
    ]
    if not missing:
        return None
    return (
        f"{name or 'EDGE_UPSTREAM_CLIENT'}: {settings.upstream_client} needs the package(s) "
        f"{', '.join(missing)} (the bench extra: pip install 'hasura-edge[bench]')"
    )


def build_app(
    settings: EdgeSettings, metrics_socket: socket.socket | None = None, metrics_peers: MetricsPeers | None = None
) -> EdgeApp:
    """The edge's app; StartupError names the setting whose file cannot be used."""
    problem = upstream_client_problem(settings)
    if problem is not None:
        raise StartupError(problem)
    try:
        return create_app(settings, metrics_socket=metrics_socket, metrics_peers=metrics_peers)
    except ManifestError as exc:
        raise StartupError(f"EDGE_PERSISTED_MANIFEST_FILE: {exc}") from None
    except MetadataError as exc:
        raise StartupError(f"EDGE_HASURA_METADATA_DIR: {exc}") from None


@dataclass(frozen=True)
class Worker:
    """This process is one of several serving the same port (``edge.workers``): the sockets the supervisor
    bound, the workers' metrics, and what to call once it serves."""

    listening: socket.socket
    metrics_socket: socket.socket | None
    metrics_peers: MetricsPeers
    started: Callable[[], None]


async def serve(
    settings: EdgeSettings, stop: asyncio.Event | None = None, *, worker: Worker | None = None
) -> int | None:
    """Serve until ``stop`` is set (by default: the first SIGTERM or SIGINT, which is returned).

    Raises StartupError when the edge cannot start.
    """
    config = load_server_config(settings)
    sock = bind_or_fail(settings) if worker is None else worker.listening
    sockets = [sock]
    try:
        metrics_socket = bind_metrics_or_fail(settings) if worker is None else worker.metrics_socket
        if metrics_socket is not None:
            sockets.append(metrics_socket)
        app = build_app(settings, metrics_socket, worker.metrics_peers if worker is not None else None)
        server = HttpServer(app, config, direct=app.direct_routes, drain_websockets=app.drain_websockets)
        await server.start([sock])
    except LifespanFailed as exc:
        _close(sockets)
        raise StartupError(f"start-up failed: {exc}", EXIT_STARTUP_FAILED) from None
    except BaseException:
        _close(sockets)
        raise
    # What start-up built (settings, schema, metadata, pools, modules) lives as long as the process:
    # frozen, the collections that requests trigger no longer traverse it (docs/benchmarks.md). Hasura's
    # schema lives until it changes: the refresh that replaces it unfreezes (edge/graphql/schema_source.py).
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])
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
    if worker is not None:
        worker.started()
    await stop.wait()
    log.info("edge_shutting_down")
    await server.shutdown()
    return received[0] if received else None


def _close(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()

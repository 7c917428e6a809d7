"""Run the edge under uvicorn: httptools (mandatory: h11 costs 2x), uvloop, no access log."""

from __future__ import annotations

import gc
import socket
from typing import Any

import uvicorn

from edge.app import create_app
from edge.server_protocol import guarded_protocol
from edge.settings import EdgeSettings
from edge.ws.wire import EdgeWebSocketProtocol

__all__ = ["EdgeServer", "server_options", "uvicorn_config"]


def server_options(settings: EdgeSettings) -> dict[str, Any]:
    """The uvicorn options that shape the edge's behaviour (tests start their servers with them too)."""
    if (settings.tls_cert_file is None) != (settings.tls_key_file is None):
        raise ValueError("EDGE_TLS_CERT_FILE and EDGE_TLS_KEY_FILE must be set together")
    return {
        "http": guarded_protocol(
            max_header_bytes=settings.max_header_bytes,
            max_url_bytes=settings.max_url_bytes,
            request_deadline=settings.request_deadline_seconds,
        ),
        "access_log": False,  # the edge logs per operation itself; uvicorn's line costs ~15 %
        "lifespan": "on",
        "timeout_keep_alive": settings.keep_alive_seconds,
        "timeout_graceful_shutdown": 30,
        "server_header": False,
        # X-Forwarded-For is the edge's own business (trusted proxies only), not uvicorn's.
        "proxy_headers": False,
        # WebSocket: the sans-I/O implementation (fastest measured), closing with 1001 on shutdown;
        # messages capped (1009), no compression (CPU and decompression bombs), protocol pings.
        "ws": EdgeWebSocketProtocol,
        "ws_max_size": settings.ws_max_message_bytes,
        "ws_per_message_deflate": False,
        "ws_ping_interval": 20.0,
        "ws_ping_timeout": 20.0,
        # TLS on the same port for HTTP and WebSocket when a certificate is given.
        "ssl_certfile": str(settings.tls_cert_file) if settings.tls_cert_file else None,
        "ssl_keyfile": str(settings.tls_key_file) if settings.tls_key_file else None,
    }


def uvicorn_config(settings: EdgeSettings, app: Any | None = None, **overrides: Any) -> uvicorn.Config:
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "log_config": None,
        **server_options(settings),
    }
    options.update(overrides)
    return uvicorn.Config(app if app is not None else create_app(settings), **options)


class EdgeServer(uvicorn.Server):
    """uvicorn's server, which moves what start-up built out of the garbage collector's way.

    Once the lifespan has run, the settings, the introspected schema, the metadata, the imported
    modules and the pools live as long as the process. ``gc.freeze()`` puts those ~100k objects in
    the permanent generation, so the collections that requests trigger no longer traverse them:
    a full collection went from ~35 ms to ~5 ms, and the request path's CPU by about 7 %
    (``docs/benchmarks.md``). Objects made later are collected as usual.
    """

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        gc.collect()
        gc.freeze()

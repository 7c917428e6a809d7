"""Run the edge under uvicorn: httptools (mandatory: h11 costs 2x), uvloop, no access log."""

from __future__ import annotations

from typing import Any

import uvicorn

from edge.app import create_app
from edge.server_protocol import guarded_protocol
from edge.settings import EdgeSettings

__all__ = ["server_options", "uvicorn_config"]


def server_options(settings: EdgeSettings) -> dict[str, Any]:
    """The uvicorn options that shape the edge's behaviour (tests start their servers with them too)."""
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

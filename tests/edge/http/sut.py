"""The system under test: the edge's HTTP/1.1 layer, serving the echo handlers on a loopback port.

This is the one place that says which layer serves: the edge's own server (``edge.http_server``),
configured from the settings as ``python -m edge`` does, with the echo's GraphQL handler as the
direct handler of ``/graphql`` and the echo app for everything else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from edge.http_server import server_config
from edge.settings import EdgeSettings
from tests.edge.http.echo import GRAPHQL_PATH, EchoApp
from tests.support.servers import start_http_server

__all__ = ["serving_echo"]


@contextlib.contextmanager
def serving_echo(settings: EdgeSettings) -> Iterator[tuple[str, int]]:
    """The layer configured from ``settings``, with the echo handlers; yields (host, port)."""
    app = EchoApp(body_limit=settings.max_body_bytes)
    running = start_http_server(app, server_config(settings), direct={GRAPHQL_PATH.encode(): app.direct_graphql})
    try:
        yield running.host, running.port
    finally:
        running.stop()

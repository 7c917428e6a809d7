"""Fixtures for edge integration tests: the Hasura double and the edge, both on loopback ports.

The double runs once per session (reset before each test); each test starts its own edge with
the settings it needs, under the edge's own HTTP server, over real sockets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from edge.app import EdgeApp, create_app
from edge.serve import edge_server
from edge.settings import EdgeSettings
from tests.hasura_double import HasuraDouble
from tests.support.servers import RunningServer, start_http_server, start_server
from tests.support.tokens import JWT_SECRET_JSON

DOUBLE_ADMIN_SECRET = "double-admin-secret-for-tests"


@pytest.fixture(scope="session")
def hasura_server() -> Iterator[tuple[HasuraDouble, RunningServer]]:
    double = HasuraDouble(admin_secret=DOUBLE_ADMIN_SECRET)
    server = start_server(double.app)
    yield double, server
    double.reset()
    server.stop()


@pytest.fixture
def hasura(hasura_server: tuple[HasuraDouble, RunningServer]) -> Iterator[HasuraDouble]:
    double, _ = hasura_server
    double.reset()
    yield double
    double.reset()


@pytest.fixture
def hasura_url(hasura_server: tuple[HasuraDouble, RunningServer]) -> str:
    return hasura_server[1].url


EdgeFactory = Callable[..., RunningServer]


def edge_settings(hasura_url: str, **overrides: Any) -> EdgeSettings:
    values: dict[str, Any] = {
        "hasura_url": hasura_url,
        "hasura_admin_secret": DOUBLE_ADMIN_SECRET,
        "jwt_secret": JWT_SECRET_JSON,
        "upstream_connect_timeout_seconds": 2.0,
        "upstream_read_timeout_seconds": 5.0,
        # The edge's own statuses whatever the client accepts: most tests assert them with httpx, whose
        # Accept (*/*) would otherwise get Hasura's 200 (test_error_statuses.py and
        # test_real_http_clients.py pass error_statuses="negotiate", the default of EdgeSettings).
        "error_statuses": "edge",
    }
    values.update(overrides)
    return EdgeSettings(**values)


def start_edge_server(settings: EdgeSettings) -> RunningServer:
    """The edge app built from ``settings`` under its own server, as ``python -m edge`` runs it."""
    return start_edge_app(create_app(settings), settings)


def start_edge_app(app: EdgeApp, settings: EdgeSettings) -> RunningServer:
    server = edge_server(app, settings)
    return start_http_server(app, server.config, direct=server.direct, drain_websockets=server.drain_websockets)


@pytest.fixture
def start_edge(hasura_server: tuple[HasuraDouble, RunningServer]) -> Iterator[EdgeFactory]:
    """Start an edge (``start_edge(**settings_overrides)``); stopped when the test ends.

    The edge introspects Hasura while it starts (type-aware cost); the double's records are
    cleared once it is up, so tests see only what their own requests caused.
    """
    double, double_server = hasura_server
    hasura_url = double_server.url
    running: list[RunningServer] = []

    def start(**overrides: Any) -> RunningServer:
        settings = edge_settings(overrides.pop("hasura_url", hasura_url), **overrides)
        server = start_edge_server(settings)
        running.append(server)
        double.reset()
        return server

    yield start
    for server in running:
        server.stop()


@pytest.fixture
def edge(start_edge: EdgeFactory) -> RunningServer:
    """An edge with the default test settings (HS256 JWT, no unauthorized role)."""
    return start_edge()

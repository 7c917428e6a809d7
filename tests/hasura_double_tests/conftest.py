"""Fixtures: a fresh double per test, served by real uvicorn on loopback, and an httpx client for it."""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.hasura_double import HasuraDouble
from tests.support.servers import RunningServer, serving

SECRET = "double-admin-secret"
ADMIN = {"x-hasura-admin-secret": SECRET}


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def http_client(base_url: str, **options: Any) -> httpx.AsyncClient:
    """An AsyncClient for a loopback server; shares one TLS context (building one per client costs ~30 ms)."""
    options.setdefault("timeout", 5.0)
    return httpx.AsyncClient(base_url=base_url, verify=_tls_context(), **options)


@pytest.fixture(scope="session")
def shared() -> Iterator[tuple[HasuraDouble, RunningServer]]:
    """One default double and server for the whole session (starting uvicorn costs ~0.2 s)."""
    double = HasuraDouble()
    with serving(double.app) as running:
        yield double, running


@pytest.fixture
def double(shared: tuple[HasuraDouble, RunningServer]) -> Iterator[HasuraDouble]:
    shared[0].reset()
    yield shared[0]
    shared[0].reset()


@pytest.fixture
def server(shared: tuple[HasuraDouble, RunningServer], double: HasuraDouble) -> RunningServer:
    return shared[1]


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(server.url) as http:
        yield http


async def gql(
    client: httpx.AsyncClient,
    query: str,
    *,
    variables: dict[str, object] | None = None,
    operation_name: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST one GraphQL request as admin unless ``headers`` says otherwise."""
    body: dict[str, object] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    if operation_name is not None:
        body["operationName"] = operation_name
    return await client.post("/v1/graphql", json=body, headers=ADMIN if headers is None else headers)


def only_error(response: httpx.Response) -> dict[str, Any]:
    """The single Hasura error of a 200 GraphQL error response, checking the envelope on the way."""
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["errors"]
    (error,) = body["errors"]
    assert isinstance(error, dict)
    assert list(error) == ["message", "extensions"]
    assert list(error["extensions"]) == ["path", "code"]
    return dict(error)

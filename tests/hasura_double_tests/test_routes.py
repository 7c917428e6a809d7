"""Routes other than POST /v1/graphql, and response headers (server/src-lib/Hasura/Server/App.hs: the routes and
``mkSpockAction``; ``getRequestId`` in server/src-lib/Hasura/Server/Types.hs)."""

from __future__ import annotations

import gzip
import uuid

import httpx
import pytest

from tests.hasura_double import HasuraDouble

from .conftest import ADMIN, gql, only_error


async def test_success_echoes_the_request_id(client: httpx.AsyncClient, double: HasuraDouble) -> None:
    response = await gql(client, "{ users { id } }", headers={**ADMIN, "x-request-id": "req-123"})
    assert response.headers["x-request-id"] == "req-123"
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert double.last().request_id == "req-123"


async def test_success_without_request_id_gets_a_fresh_uuid(client: httpx.AsyncClient) -> None:
    first = await gql(client, "{ users { id } }")
    second = await gql(client, "{ users { id } }")
    assert uuid.UUID(first.headers["x-request-id"]).version == 4
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_errors_carry_no_request_id(client: httpx.AsyncClient) -> None:
    response = await gql(client, "{ nope }", headers={**ADMIN, "x-request-id": "req-1"})
    assert "x-request-id" not in response.headers
    assert response.headers["content-type"] == "application/json; charset=utf-8"


async def test_success_is_gzipped_only_for_clients_accepting_gzip(client: httpx.AsyncClient) -> None:
    body = {"query": "{ users { id } }"}
    zipped = await client.post("/v1/graphql", json=body, headers={**ADMIN, "accept-encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert "users" in zipped.json()["data"]
    plain = await client.post("/v1/graphql", json=body, headers={**ADMIN, "accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    async with client.stream("POST", "/v1/graphql", json=body, headers=ADMIN) as raw:
        payload = b"".join([chunk async for chunk in raw.aiter_raw()])
    assert gzip.decompress(payload).startswith(b'{"data"')


async def test_get_graphql_is_persisted_query_not_supported(client: httpx.AsyncClient) -> None:
    error = only_error(await client.get("/v1/graphql", params={"query": "{ users { id } }"}, headers=ADMIN))
    assert error == {"message": "PersistedQueryNotSupported", "extensions": {"path": "$", "code": "not-supported"}}


@pytest.mark.parametrize("path", ["/healthz", "/hasura/healthz"])
async def test_health_follows_the_healthy_switch(client: httpx.AsyncClient, double: HasuraDouble, path: str) -> None:
    ok = await client.get(path)
    assert (ok.status_code, ok.text) == (200, "OK")
    double.healthy = False
    bad = await client.get(path)
    assert (bad.status_code, bad.text) == (500, "ERROR")


async def test_version(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/version")
    assert response.json() == {"version": "v2.48.16", "server_type": "ce"}


async def test_console_exists(client: httpx.AsyncClient) -> None:
    assert (await client.get("/console")).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("POST", "/v1/graphqlx"),
        ("PUT", "/v1/graphql"),
        ("GET", "/api/orders"),  # /api/rest/* is the RESTified endpoints (test_rest.py)
        ("GET", "/v1/metadata"),
    ],
)
async def test_unknown_routes_are_not_found(
    client: httpx.AsyncClient, double: HasuraDouble, method: str, path: str
) -> None:
    response = await client.request(method, path, headers=ADMIN)
    assert response.status_code == 404
    assert response.json() == {"error": "resource does not exist", "path": "$", "code": "not-found"}
    assert double.last().path == path

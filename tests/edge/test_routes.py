"""Health, readiness, CORS, and nothing of Hasura but its GraphQL endpoint reachable through the edge."""

from __future__ import annotations

import httpx
import pytest

from edge.http.response_headers import SECURITY_HEADERS
from tests.edge.conftest import EdgeFactory
from tests.hasura_double import HasuraDouble
from tests.support.servers import RunningServer
from tests.support.tokens import mint


def test_healthz_answers_while_the_process_is_up(edge: RunningServer, hasura: HasuraDouble):
    response = httpx.get(f"{edge.url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_follows_hasura_health(edge: RunningServer, hasura: HasuraDouble):
    assert httpx.get(f"{edge.url}/readyz").json() == {"status": "ready", "checks": {"hasura": "ok"}}
    hasura.healthy = False
    response = httpx.get(f"{edge.url}/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"hasura": "unavailable"}


def test_readyz_checks_redis_when_configured(
    start_edge: EdgeFactory, hasura: HasuraDouble, topology_redis_url: str
):  # one server, Sentinel and Cluster in turn
    edge = start_edge(redis_url=topology_redis_url)
    assert httpx.get(f"{edge.url}/readyz").json()["checks"] == {"hasura": "ok", "redis": "ok"}
    broken = start_edge(redis_url="redis://127.0.0.1:1/0")
    response = httpx.get(f"{broken.url}/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"] == "unavailable"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/metadata"),
        ("POST", "/v2/query"),
        ("POST", "/v1/query"),
        ("GET", "/console"),
        ("POST", "/v1alpha1/graphql"),
        ("POST", "/v1beta1/relay"),
        ("GET", "/v1/version"),
        ("GET", "/graphql/"),
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
    ],
)
def test_nothing_else_of_hasura_is_reachable(edge: RunningServer, hasura: HasuraDouble, method: str, path: str):
    response = httpx.request(
        method,
        f"{edge.url}{path}",
        json={"type": "export_metadata", "args": {}},
        headers={"Authorization": f"Bearer {mint()}", "X-Hasura-Admin-Secret": "x"},
    )
    assert response.status_code == 404
    assert response.json()["errors"][0]["extensions"]["code"] == "not-found"
    assert hasura.requests == []
    # The security headers of a /graphql answer: this JSON is not for a browser to render either.
    assert [response.headers.get(name.decode()) for name, _ in SECURITY_HEADERS] == [
        value.decode() for _, value in SECURITY_HEADERS
    ]


def test_cors_preflight_from_an_allowed_origin(start_edge: EdgeFactory):
    edge = start_edge(allowed_origins="https://app.example.com,https://admin.example.com")
    response = httpx.options(
        f"{edge.url}/graphql",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "authorization" in response.headers["access-control-allow-headers"]


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "null", "https://app.example.com.evil.example", "http://app.example.com"],
)
def test_cors_preflight_from_other_origins_is_refused(start_edge: EdgeFactory, origin: str):
    edge = start_edge(allowed_origins="https://app.example.com")
    response = httpx.options(f"{edge.url}/graphql", headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers


def test_cors_headers_only_for_allowed_origins_on_responses(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(allowed_origins=["https://app.example.com"])
    headers = {"Authorization": f"Bearer {mint()}"}
    query = {"query": "{ products { id } }"}
    allowed = httpx.post(f"{edge.url}/graphql", json=query, headers={**headers, "Origin": "https://app.example.com"})
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    other = httpx.post(f"{edge.url}/graphql", json=query, headers={**headers, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers

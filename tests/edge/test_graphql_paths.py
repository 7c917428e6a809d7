"""Hasura's ``/v1/graphql`` through the edge: the same endpoint as ``/graphql`` (over HTTP here; WebSocket in
``tests/edge/ws/test_paths.py``), and Hasura's other GraphQL paths still unreachable."""

from __future__ import annotations

import uuid

import httpx
import pytest

from edge.app import create_app
from tests.edge.conftest import EdgeFactory, edge_settings
from tests.hasura_double import HasuraDouble
from tests.support.servers import RunningServer
from tests.support.tokens import hasura_claims, mint

QUERY = {"query": "query Products { products(limit: 2) { id } }"}
# The edge's own statuses for its errors (an application/json client gets Hasura's 200 for some of them).
MODERN = {"Accept": "application/graphql-response+json"}


def bearer(user: str = "user-1") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(hasura_claims(user))}"}


def code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["extensions"]["code"])


def test_v1_graphql_answers_as_graphql_does(edge: RunningServer, hasura: HasuraDouble):
    on_graphql = httpx.post(f"{edge.url}/graphql", json=QUERY, headers=bearer("user-5"))
    on_v1 = httpx.post(f"{edge.url}/v1/graphql", json=QUERY, headers=bearer("user-5"))
    assert on_v1.status_code == on_graphql.status_code == 200
    assert on_v1.json() == on_graphql.json()
    assert len(on_v1.json()["data"]["products"]) == 2
    first, second = hasura.graphql_requests()
    assert first.path == second.path == "/v1/graphql"
    assert second.session == {"x-hasura-role": "user", "x-hasura-user-id": "user-5"}


def test_v1_graphql_runs_the_same_trust_boundary(edge: RunningServer, hasura: HasuraDouble):
    spoofed = {
        **MODERN,
        **bearer(),
        "X-Hasura-Role": "admin",
        "X-Hasura-Admin-Secret": "guess",
        "X-Hasura-User-Id": "root",
    }
    response = httpx.post(f"{edge.url}/v1/graphql", json=QUERY, headers=spoofed)
    assert response.status_code == 403  # admin is not among the token's allowed roles, as on /graphql
    assert hasura.requests == []
    response = httpx.post(f"{edge.url}/v1/graphql", json=QUERY, headers={**bearer(), "X-Hasura-User-Id": "root"})
    assert response.status_code == 200
    assert hasura.last().session == {"x-hasura-role": "user", "x-hasura-user-id": "user-1"}


@pytest.mark.parametrize(
    ("headers", "body", "status", "error"),
    [
        ({}, QUERY, 401, None),
        ({"Content-Type": "text/plain"}, b'{"query":"{ products { id } }"}', 415, "unsupported-media-type"),
        (None, {"query": "{ products { orders { product { orders { id } } } } }"}, 400, "depth-limit-exceeded"),
        (None, {"query": "{ __schema { types { name } } }"}, 400, "introspection-disabled"),
    ],
)
def test_v1_graphql_refuses_what_graphql_refuses(
    start_edge: EdgeFactory,
    hasura: HasuraDouble,
    headers: dict[str, str] | None,
    body: object,
    status: int,
    error: str | None,
):
    edge = start_edge(plans={"default": {"graphql": {"max_depth": 2}}})
    sent = {**MODERN, **(bearer() if headers is None else headers)}
    for path in ("/graphql", "/v1/graphql"):
        if isinstance(body, bytes):
            response = httpx.post(f"{edge.url}{path}", content=body, headers=sent)
        else:
            response = httpx.post(f"{edge.url}{path}", json=body, headers=sent)
        assert response.status_code == status, path
        if error is not None:
            assert code(response) == error, path
    assert hasura.requests == []


def test_both_paths_draw_on_one_rate_limit(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(
        plans={"free": {"rate": {"requests_per_second": 0.1, "burst": 2}}}, jwt_plan="free", anonymous_plan="free"
    )
    headers = bearer(f"user-{uuid.uuid4()}")
    statuses = [
        httpx.post(f"{edge.url}{path}", json=QUERY, headers=headers).status_code
        for path in ("/graphql", "/v1/graphql", "/v1/graphql", "/graphql")
    ]
    assert statuses == [200, 200, 429, 429]
    assert len(hasura.graphql_requests()) == 2


def test_get_on_v1_graphql_is_a_query_sent_on_as_post(edge: RunningServer, hasura: HasuraDouble):
    params = {"query": QUERY["query"], "operationName": "Products"}
    response = httpx.get(
        f"{edge.url}/v1/graphql", params=params, headers={**bearer(), "graphql-require-preflight": "1"}
    )
    assert response.status_code == 200
    assert hasura.last().method == "POST" and hasura.last().json() == params
    mutation = {"query": "mutation { delete_products(where: {}) { affected_rows } }"}
    refused = httpx.get(
        f"{edge.url}/v1/graphql", params=mutation, headers={**bearer(), "graphql-require-preflight": "1"}
    )
    assert refused.status_code == 405 and refused.headers["allow"] == "POST"


def test_cors_preflight_on_v1_graphql(start_edge: EdgeFactory):
    edge = start_edge(allowed_origins="https://app.example.com")
    allowed = httpx.options(
        f"{edge.url}/v1/graphql",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    other = httpx.options(
        f"{edge.url}/v1/graphql", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert other.status_code == 403 and "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1beta1/relay"),
        ("POST", "/v1alpha1/graphql"),
        ("POST", "/v1/graphql/explain"),
        ("POST", "/v1/graphql/"),
        ("POST", "/V1/GRAPHQL"),
        ("GET", "/v1beta1/relay"),
    ],
)
def test_hasuras_other_graphql_paths_stay_unreachable(
    edge: RunningServer, hasura: HasuraDouble, method: str, path: str
):
    response = httpx.request(method, f"{edge.url}{path}", json=QUERY, headers=bearer())
    assert response.status_code == 404
    assert code(response) == "not-found"
    assert hasura.requests == []


def test_each_path_has_a_handler_of_its_own_sharing_every_stage(hasura_url: str):
    app = create_app(edge_settings(hasura_url))
    graphql, v1 = app.direct_routes[b"/graphql"], app.direct_routes[b"/v1/graphql"]
    assert sorted(app.direct_routes) == [b"/graphql", b"/v1/graphql"]
    assert (graphql.path, v1.path) == ("/graphql", "/v1/graphql")
    assert graphql is app.graphql
    assert v1.stages is graphql.stages
    assert all(ours is theirs for ours, theirs in zip(graphql.sequence, v1.sequence, strict=True))
    for part in ("cors", "observer", "tracing"):
        assert getattr(v1, part) is getattr(graphql, part), part
    assert v1.security_headers == graphql.security_headers

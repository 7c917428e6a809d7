"""``/api/rest/...`` through a running edge and the Hasura double, with the demo's metadata
(``hasura/metadata``: ``products``, ``products/:id``, ``orders``, ``documents/:id``)."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from edge.keys.cli import main as keys_main
from tests.edge.conftest import EdgeFactory
from tests.edge.observability.test_tracing import Collector
from tests.hasura_double import HasuraDouble
from tests.support.edge_database import edge_database
from tests.support.servers import RunningServer, start_server
from tests.support.tokens import hasura_claims, mint

METADATA = Path(__file__).resolve().parents[3] / "hasura" / "metadata"
PRODUCT_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
KEY = re.compile(r"hek_[a-z2-7]{10}_[A-Za-z0-9_-]{43}")


def token(user: str | None = None) -> str:
    return mint(hasura_claims(user or f"user-{uuid.uuid4()}"))


def call(edge: RunningServer, method: str, path: str, *, bearer: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = dict(kwargs.pop("headers", {}))
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    return httpx.request(method, f"{edge.url}/api/rest/{path}", headers=headers, timeout=10, **kwargs)


def rest_requests(hasura: HasuraDouble) -> list[Any]:
    return [record for record in hasura.requests if record.path.startswith("/api/rest/")]


@pytest.fixture
def edge(start_edge: EdgeFactory) -> RunningServer:
    return start_edge(hasura_metadata_dir=str(METADATA))


def test_a_get_reaches_hasuras_endpoint_with_the_edges_session(edge: RunningServer, hasura: HasuraDouble):
    response = call(
        edge,
        "GET",
        "products?limit=2",
        bearer=token("user-1"),
        headers={"x-hasura-role": "user", "x-hasura-user-id": "someone-else", "X-Hasura-Admin-Secret": "guess"},
    )
    assert response.status_code == 200, response.text
    assert "products" in response.json()  # Hasura's REST shape: the root fields, no data envelope
    [record] = rest_requests(hasura)
    assert (record.method, record.path, record.query_string) == ("GET", "/api/rest/products", b"limit=2")
    assert record.session == {"x-hasura-role": "user", "x-hasura-user-id": "user-1"}
    assert record.header("authorization") is None


def test_only_what_decided_the_variables_reaches_hasura(edge: RunningServer, hasura: HasuraDouble):
    # The path wins over the body and the body over the query string, as at Hasura; Hasura gets each
    # variable from one place only, and names that are not GraphQL names are dropped.
    response = call(
        edge,
        "POST",
        "documents/11111111-1111-4111-8111-111111111111?title=from-query&not-a-name=1",
        bearer=token(),
        json={"id": "ignored", "title": "from-body", "content": "text"},
    )
    [record] = rest_requests(hasura)
    assert record.method == "POST"
    assert record.path == "/api/rest/documents/11111111-1111-4111-8111-111111111111"
    assert record.query_string == b""
    assert record.json() == {"title": "from-body", "content": "text"}
    assert response.status_code == 200, response.text
    assert "update_documents_by_pk" in response.json()


def test_unknown_path_and_wrong_method_get_hasuras_bodies(edge: RunningServer, hasura: HasuraDouble):
    missing = call(edge, "GET", "nothing/here", bearer=token())
    assert missing.status_code == 404
    assert missing.json() == {"error": "Endpoint not found", "path": "$", "code": "not-found"}
    wrong = call(edge, "DELETE", "documents/1", bearer=token())
    assert wrong.status_code == 405
    assert wrong.json() == {"error": "Allowed methods: PATCH, POST", "path": "$", "code": "method-not-allowed"}
    assert wrong.headers["allow"] == "PATCH, POST"
    head = call(edge, "TRACE", "products", bearer=token())
    assert head.status_code == 400
    assert head.json()["code"] == "bad-request"
    assert rest_requests(hasura) == []


def test_credentials_are_checked_before_anything_reaches_hasura(edge: RunningServer, hasura: HasuraDouble):
    missing = call(edge, "GET", "products")
    assert missing.status_code == 401
    assert missing.json()["errors"][0]["extensions"]["code"] == "access-denied"
    forged = call(edge, "GET", "products", bearer=token()[:-4] + "AAAA")
    assert forged.status_code == 401
    assert forged.json()["errors"][0]["extensions"]["code"] == "invalid-jwt"
    assert rest_requests(hasura) == []


def test_a_variable_of_the_wrong_type_is_refused_without_a_round_trip(edge: RunningServer, hasura: HasuraDouble):
    response = call(edge, "GET", "products?limit=abc", bearer=token())
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "validation-failed"
    assert "limit" in error["message"]
    not_utf8 = call(edge, "GET", "products?limit=%FF", bearer=token())
    assert not_utf8.status_code == 400
    assert not_utf8.json()["errors"][0]["message"] == "The query string is not valid UTF-8"
    semicolon = call(edge, "GET", "products?limit=1;offset=2", bearer=token())  # WAI separates with ";" too
    assert semicolon.json()["errors"][0]["message"] == "Unexpected variable offset"
    unexpected = call(edge, "GET", "products?offset=1", bearer=token())
    assert unexpected.status_code == 400
    assert unexpected.json()["errors"][0]["message"] == "Unexpected variable offset"
    duplicate_key = call(
        edge,
        "POST",
        "documents/1",
        bearer=token(),
        content=b'{"title": "a", "title": "b", "content": "c"}',
        headers={"content-type": "application/json"},
    )
    assert duplicate_key.status_code == 400
    assert duplicate_key.json()["errors"][0]["extensions"]["code"] == "duplicate-json-key"
    assert rest_requests(hasura) == []


def test_a_mutation_endpoint_needs_a_json_body_type(edge: RunningServer, hasura: HasuraDouble):
    response = call(
        edge,
        "POST",
        "documents/1",
        bearer=token(),
        content=b'{"title": "a", "content": "c"}',
        headers={"content-type": "text/plain"},
    )
    assert response.status_code == 415
    assert rest_requests(hasura) == []


def test_one_rate_limit_for_rest_and_graphql_calls_of_one_user(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(
        hasura_metadata_dir=str(METADATA),
        plans={"free": {"rate": {"requests_per_second": 0.05, "burst": 2}}},
        jwt_plan="free",
        anonymous_plan="free",
    )
    bearer = token()
    rest = call(edge, "GET", "products", bearer=bearer)
    assert rest.status_code == 200
    assert rest.headers["ratelimit-remaining"] == "1"
    graphql = httpx.post(
        f"{edge.url}/graphql",
        json={"query": "{ products(limit: 1) { id } }"},
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=10,
    )
    assert graphql.status_code == 200
    assert graphql.headers["ratelimit-remaining"] == "0"
    refused = call(edge, "GET", "products", bearer=bearer)
    assert refused.status_code == 429
    assert refused.json()["errors"][0]["extensions"]["code"] == "rate-limited"
    assert len(rest_requests(hasura)) == 1


def test_a_rest_call_is_charged_to_the_cost_budget(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(
        hasura_metadata_dir=str(METADATA),
        plans={"metered": {"cost_budget": {"maximum": 3000, "restore_rate": 0.001}}},
        jwt_plan="metered",
        anonymous_plan="metered",
    )
    bearer = token()
    first = call(edge, "GET", "products?limit=2", bearer=bearer)
    assert first.status_code == 200, first.text
    cost = first.json()["extensions"]["cost"]
    assert cost["requestedQueryCost"] > 0
    assert cost["throttleStatus"]["maximumAvailable"] == 3000
    assert cost["throttleStatus"]["currentlyAvailable"] < 3000
    # 50 rows, each with its stock list, cost more than the budget holds.
    refused = call(edge, "GET", "products?limit=50", bearer=bearer)
    assert refused.status_code == 429
    assert refused.json()["errors"][0]["extensions"]["code"] == "cost-budget-exceeded"
    assert len(rest_requests(hasura)) == 1


@pytest.fixture(scope="module")
def keys_database(postgres_server_url: str) -> Iterator[str]:
    with edge_database(postgres_server_url, "edge_keys_rest") as url:
        yield url


def test_one_rate_limit_for_rest_and_graphql_calls_of_one_api_key(
    start_edge: EdgeFactory, hasura: HasuraDouble, keys_database: str
):
    plans = {"partner": {"rate": {"requests_per_second": 0.05, "burst": 3}}, "free": {}}
    out = io.StringIO()
    assert (
        keys_main(
            ["create", "--owner", "rest-bot", "--plan", "partner", "--role", "user", "--var", "x-hasura-user-id=bot"],
            database_url=keys_database,
            known_plans=plans.keys(),
            out=out,
        )
        == 0
    )
    key = KEY.search(out.getvalue())
    assert key is not None
    headers = {"X-API-Key": key.group(0)}
    edge = start_edge(
        hasura_metadata_dir=str(METADATA),
        database_url=keys_database,
        plans=plans,
        jwt_plan="free",
        anonymous_plan="free",
    )
    graphql = {"query": "{ products(limit: 1) { id } }"}
    statuses = [
        call(edge, "GET", "products", headers=headers).status_code,
        httpx.post(f"{edge.url}/graphql", json=graphql, headers=headers, timeout=10).status_code,
        call(edge, "GET", f"products/{PRODUCT_ID}", headers=headers).status_code,
    ]
    assert statuses == [200, 200, 200]
    refused_graphql = httpx.post(f"{edge.url}/graphql", json=graphql, headers=headers, timeout=10)
    refused_rest = call(edge, "GET", "products", headers=headers)
    assert (refused_graphql.status_code, refused_rest.status_code) == (429, 429)
    assert refused_rest.json()["errors"][0]["extensions"]["code"] == "rate-limited"
    [first, second] = rest_requests(hasura)
    assert first.session == second.session == {"x-hasura-role": "user", "x-hasura-user-id": "bot"}
    assert first.header("x-api-key") is None


def test_a_mutation_reached_without_a_json_body_needs_a_header_a_cross_site_request_cannot_carry(
    start_edge: EdgeFactory, hasura: HasuraDouble
):
    edge = start_edge(hasura_metadata_dir=str(METADATA), unauthorized_role="user")
    path = "documents/11111111-1111-4111-8111-111111111111?title=t&content=c"
    forged = call(edge, "POST", path)  # what a cross-site form could send, running as the unauthorized role
    assert forged.status_code == 400
    assert forged.json()["errors"][0]["extensions"]["code"] == "csrf-header-required"
    assert rest_requests(hasura) == []
    allowed = call(edge, "POST", path, headers={"GraphQL-Require-Preflight": "1"})
    assert allowed.status_code == 200, allowed.text
    assert call(edge, "POST", path, bearer=token()).status_code == 200
    assert call(edge, "GET", "products").status_code == 200  # a query needs no such header
    assert len(rest_requests(hasura)) == 3


SAVED = {
    "name": "saved",
    "definition": {
        "queries": [
            {"name": "Feed", "query": "subscription Feed { products { id } }"},
            {"name": "One", "query": "query One($id: uuid!) { products_by_pk(id: $id) { id } }"},
        ]
    },
}


def test_subscriptions_are_not_served_and_two_matching_endpoints_are_hasuras_500(
    start_edge: EdgeFactory, hasura: HasuraDouble, tmp_path: Path
):
    def endpoint(name: str, url: str, query: str) -> dict[str, Any]:
        return {
            "name": name,
            "url": url,
            "methods": ["GET"],
            "definition": {"query": {"collection_name": "saved", "query_name": query}},
        }

    endpoints = [endpoint("feed", "feed", "Feed"), endpoint("a", ":id/b", "One"), endpoint("b", "a/:id", "One")]
    (tmp_path / "rest_endpoints.yaml").write_text(yaml.safe_dump(endpoints))
    (tmp_path / "query_collections.yaml").write_text(yaml.safe_dump([SAVED]))
    (tmp_path / "databases").mkdir()
    (tmp_path / "databases" / "databases.yaml").write_text("[]\n")
    edge = start_edge(hasura_metadata_dir=str(tmp_path))
    feed = call(edge, "GET", "feed", bearer=token())
    assert (feed.status_code, feed.json()) == (404, {"error": "Endpoint not found", "path": "$", "code": "not-found"})
    both = call(edge, "GET", "a/b", bearer=token())
    assert both.status_code == 500
    assert both.json() == {"error": "Multiple endpoints match request", "path": "$", "code": "unexpected"}
    assert rest_requests(hasura) == []


def test_a_rest_call_is_traced_and_hasura_gets_the_client_spans_traceparent(
    start_edge: EdgeFactory, hasura: HasuraDouble, monkeypatch: pytest.MonkeyPatch
):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    collector = Collector()
    server = start_server(collector)
    client_trace = "0af7651916cd43dd8448eb211c80319c"
    try:
        edge = start_edge(hasura_metadata_dir=str(METADATA), otel_exporter_otlp_endpoint=f"{server.url}/v1/traces")
        traceparent = f"00-{client_trace}-b7ad6b7169203331-01"
        response = call(edge, "GET", "products", bearer=token(), headers={"traceparent": traceparent})
        assert response.status_code == 200
        [record] = rest_requests(hasura)
        sent = record.header("traceparent")
        assert sent is not None and sent.split("-")[1] == client_trace and sent != traceparent
        edge.stop()  # the lifespan's shutdown exports the queued spans
        assert collector.received.wait(5)
    finally:
        server.stop()
    body = b"".join(body for _, body in collector.bodies)
    assert b"GET /api/rest" in body and b"ListProducts" in body


def test_the_path_is_read_segment_by_segment_as_hasura_reads_it_and_forwarded_canonically(
    edge: RunningServer, hasura: HasuraDouble
):
    # Percent-decoded, split on "/" (an encoded one too), empty segments dropped; then encoded again.
    response = call(edge, "GET", f"%70roducts%2F{PRODUCT_ID}//", bearer=token())
    assert response.status_code == 200, response.text
    [record] = rest_requests(hasura)
    assert record.path == f"/api/rest/products/{PRODUCT_ID}"
    encoded = call(edge, "GET", "products/a%20b%3Fc", bearer=token())
    assert encoded.status_code == 200
    last = rest_requests(hasura)[-1]  # (the double records the decoded path)
    assert (last.path, last.query_string) == ("/api/rest/products/a b?c", b"")


def test_the_saved_operation_is_held_to_the_plans_graphql_limits(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(
        hasura_metadata_dir=str(METADATA),
        plans={"tight": {"graphql": {"max_depth": 1}}},
        jwt_plan="tight",
        anonymous_plan="tight",
    )
    deep = call(edge, "GET", "orders", bearer=token())  # orders { items { product { name } } }: depth 3
    assert deep.status_code == 400
    assert deep.json()["errors"][0]["extensions"]["code"] == "depth-limit-exceeded"
    assert rest_requests(hasura) == []


def test_a_preflight_from_an_allowed_origin_allows_the_rest_methods(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(hasura_metadata_dir=str(METADATA), allowed_origins=["https://app.example"])
    asked = {"Origin": "https://app.example", "Access-Control-Request-Method": "PATCH"}
    allowed = call(edge, "OPTIONS", "documents/1", headers=asked)
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert allowed.headers["access-control-allow-methods"] == "GET, POST, PUT, PATCH, DELETE"
    other = call(edge, "OPTIONS", "documents/1", headers={**asked, "Origin": "https://evil.example"})
    assert other.status_code == 403
    assert "access-control-allow-origin" not in other.headers
    answered = call(edge, "GET", "products", bearer=token(), headers={"Origin": "https://app.example"})
    assert answered.headers["access-control-allow-origin"] == "https://app.example"
    assert rest_requests(hasura) != []


def test_hasuras_own_refusals_reach_the_client_as_hasura_sent_them(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(hasura_metadata_dir=str(METADATA))
    refusal = b'{"error":"field \\"orders\\" not found in type: \'query_root\'","path":"$","code":"validation-failed"}'
    hasura.faults.status, hasura.faults.status_body = 400, refusal
    response = call(edge, "GET", "orders", bearer=token())
    assert (response.status_code, response.content) == (400, refusal)
    hasura.faults.status, hasura.faults.status_body = 503, None
    unavailable = call(edge, "GET", "orders", bearer=token())
    assert unavailable.status_code == 503  # Hasura's own 503, passed on (the edge's would be GraphQL-shaped)
    assert "errors" not in unavailable.text

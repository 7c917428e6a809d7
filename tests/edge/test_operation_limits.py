"""Operation analysis through the real edge: limits, type-aware cost, budgets, and graphql-cop's checks.

Every rejection is proven not to have reached the Hasura double.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.edge.conftest import EdgeFactory
from tests.hasura_double import HasuraDouble
from tests.support.servers import RunningServer
from tests.support.tokens import hasura_claims, mint

METADATA = Path(__file__).resolve().parents[2] / "hasura" / "metadata"


def auth(user: str | None = None, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(hasura_claims(user or f'u-{uuid.uuid4()}', **claims))}"}


def post(edge: RunningServer, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{edge.url}/graphql", json=body, headers=headers or auth(), timeout=10)


def code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["extensions"]["code"])


def nested(depth: int) -> str:
    """users { orders { user { orders ... } } } with ``depth`` levels below the root field."""
    inner = "id"
    for level in range(depth):
        inner = f"{'user' if level % 2 else 'orders'} {{ {inner} }}"
    return f"{{ users(limit: 1) {{ {inner} }} }}"


def test_depth_at_the_limit_passes_and_one_more_is_rejected_before_hasura(
    start_edge: EdgeFactory, hasura: HasuraDouble
):
    edge = start_edge(plans={"default": {"graphql": {"max_depth": 4}}})
    assert post(edge, {"query": nested(3)}).status_code == 200
    hasura.reset()
    rejected = post(edge, {"query": nested(4)})
    assert rejected.status_code == 400
    assert code(rejected) == "depth-limit-exceeded"
    assert hasura.requests == []


def test_depth_through_fragments_counts(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(plans={"default": {"graphql": {"max_depth": 2}}})
    query = "query { users { ...A } } fragment A on users { orders { ...B } } fragment B on orders { user { id } }"
    rejected = post(edge, {"query": query})
    assert code(rejected) == "depth-limit-exceeded"
    assert hasura.requests == []


def test_warn_only_limits_forward_the_operation(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(plans={"default": {"graphql": {"max_depth": 1, "warn_only": ["max_depth"]}}})
    assert post(edge, {"query": nested(3)}).status_code == 200
    assert len(hasura.graphql_requests()) == 1


def test_cost_is_type_aware_with_permission_limits_per_role(start_edge: EdgeFactory, hasura: HasuraDouble):
    # products: one object per row; the anonymous role's select permission caps rows (hasura/metadata).
    edge = start_edge(
        unauthorized_role="anonymous",
        hasura_metadata_dir=str(METADATA),
        plans={"default": {"graphql": {"max_cost": 60}}},
    )
    cheap = post(edge, {"query": "{ products(limit: 10) { id name } }"}, headers={})
    assert cheap.status_code == 200
    hasura.reset()
    pricey = post(edge, {"query": "{ products(limit: 1000) { id inventory(limit: 100) { quantity } } }"}, headers={})
    assert pricey.status_code == 400
    assert code(pricey) == "cost-limit-exceeded"
    assert hasura.requests == []


def test_cost_budget_charges_estimates_refunds_actuals_and_reports_extensions_cost(
    start_edge: EdgeFactory, hasura: HasuraDouble
):
    edge = start_edge(
        hasura_metadata_dir=str(METADATA),
        plans={"default": {"cost_budget": {"maximum": 300, "restore_rate": 0.01}}},
    )
    headers = auth()
    # Estimated at limit 30 and the double returns 30 rows: nothing to refund.
    first = post(edge, {"query": "{ products(limit: 30) { id } }"}, headers)
    cost = first.json()["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 30
    assert cost["actualQueryCost"] == 30
    assert cost["throttleStatus"] == {"maximumAvailable": 300, "currentlyAvailable": 270, "restoreRate": 0.01}
    # No limit argument: priced at the user role's permission limit (100 in hasura/metadata), but the
    # double returns 3 rows, so the 97 points over-charged come back at once.
    second = post(edge, {"query": "{ warehouses { id } }"}, headers).json()["extensions"]["cost"]
    assert (second["requestedQueryCost"], second["actualQueryCost"]) == (100, 3)
    assert second["throttleStatus"]["currentlyAvailable"] == 267
    three = " ".join(f"p{i}: products(limit: 100) {{ id }}" for i in range(3))
    refused = post(edge, {"query": f"{{ {three} }}"}, headers)
    assert refused.status_code == 429
    assert code(refused) == "cost-budget-exceeded"
    assert int(refused.headers["retry-after"]) > 0
    assert len(hasura.graphql_requests()) == 2


def test_suggestions_are_stripped_for_plans_without_introspection(start_edge: EdgeFactory, hasura: HasuraDouble):
    hasura.executor.field_suggestions = True
    try:
        closed = start_edge()
        response = post(closed, {"query": "{ prodcts { id } }"})
        assert response.status_code == 200
        assert "Did you mean" not in response.text
        assert response.json()["errors"][0]["extensions"]["code"] == "validation-failed"
        opened = start_edge(plans={"default": {"graphql": {"introspection": True}}})
        assert "Did you mean" in post(opened, {"query": "{ prodcts { id } }"}).text
    finally:
        hasura.executor.field_suggestions = False


def test_introspection_only_for_plans_that_allow_it(start_edge: EdgeFactory, hasura: HasuraDouble):
    closed = start_edge()
    refused = post(closed, {"query": "{ __schema { types { name } } }"})
    assert refused.status_code == 400
    assert code(refused) == "introspection-disabled"
    assert post(closed, {"query": "{ __typename }"}).status_code == 200
    opened = start_edge(plans={"default": {"graphql": {"introspection": True}}})
    assert post(opened, {"query": "{ __schema { queryType { name } } }"}).json()["data"]["__schema"]["queryType"]


class TestGraphQLCop:
    """The twelve checks of graphql-cop (dolevf/graphql-cop), each clean for a normal plan."""

    def test_field_suggestions(self, start_edge: EdgeFactory, hasura: HasuraDouble):
        hasura.executor.field_suggestions = True
        try:
            response = post(start_edge(), {"query": "{ __schema { directive } }"})
            assert "Did you mean" not in response.text
        finally:
            hasura.executor.field_suggestions = False

    def test_introspection(self, edge: RunningServer, hasura: HasuraDouble):
        response = post(edge, {"query": "query cop { __schema { types { name fields { name } } } }"})
        assert response.status_code == 400 and "data" not in response.json()
        assert hasura.requests == []

    def test_ide_exposure(self, edge: RunningServer):
        for path in ("/graphql", "/graphiql", "/playground", "/console", "/"):
            response = httpx.get(f"{edge.url}{path}", headers={"Accept": "text/html"})
            assert "graphiql" not in response.text.lower() and "playground" not in response.text.lower()

    def test_get_method_query_support_needs_a_csrf_header(self, start_edge: EdgeFactory, hasura: HasuraDouble):
        # graphql-cop's probe, as a cross-site page would send it: no credential header, so a preflight
        # header is required (with a bearer token the GET is served: tests/edge/test_get_csrf.py).
        edge = start_edge(unauthorized_role="anonymous")
        response = httpx.get(f"{edge.url}/graphql", params={"query": "query cop { __typename }"})
        assert response.status_code == 400 and code(response) == "csrf-header-required"
        assert hasura.requests == []

    def test_alias_overloading(self, edge: RunningServer, hasura: HasuraDouble):
        query = "query cop { " + " ".join(f"alias{i}: __typename" for i in range(101)) + " }"
        response = post(edge, {"query": query})
        assert code(response) == "alias-limit-exceeded" and "alias100" not in response.text
        assert hasura.requests == []

    def test_batch_queries(self, edge: RunningServer, hasura: HasuraDouble):
        response = post(edge, [{"query": "query cop { __typename }"}] * 10)
        assert response.status_code == 400 and code(response) == "batch-size-exceeded"
        assert hasura.requests == []

    def test_tracing_mode(self, edge: RunningServer):
        response = post(edge, {"query": "query cop { __typename }"})
        assert "tracing" not in response.json().get("extensions", {})

    def test_directive_overloading(self, edge: RunningServer, hasura: HasuraDouble):
        response = post(edge, {"query": "query cop { __typename @aa@aa@aa@aa@aa@aa@aa@aa@aa@aa }"})
        assert response.status_code == 400 and len(response.json()["errors"]) == 1
        assert hasura.requests == []

    def test_circular_introspection(self, start_edge: EdgeFactory, hasura: HasuraDouble):
        edge = start_edge(plans={"default": {"graphql": {"introspection": True}}})
        deep = "{ __schema { types { fields { type { fields { type { fields { type { fields { type { fields { type {"
        query = deep + " fields { type { fields { type { fields { type { name } } } } } } } } } } } } } } } } } } }"
        response = post(edge, {"query": query})
        assert response.status_code == 400 and code(response) == "depth-limit-exceeded"
        assert hasura.requests == []

    def test_get_based_mutation(self, edge: RunningServer, hasura: HasuraDouble):
        response = httpx.get(
            f"{edge.url}/graphql",
            params={"query": "mutation cop { __typename }"},
            headers={**auth(), "graphql-require-preflight": "1"},
        )
        assert response.status_code == 405
        assert hasura.requests == []

    def test_post_based_csrf(self, edge: RunningServer, hasura: HasuraDouble):
        response = httpx.post(
            f"{edge.url}/graphql",
            content="query=query+cop+%7B__typename%7D",
            headers={**auth(), "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 415
        assert hasura.requests == []

    @pytest.mark.parametrize("body", [b"{", b'{"query": "{"}', b'{"query": "query cop { __typename @include }"}'])
    def test_unhandled_error_detection(self, edge: RunningServer, body: bytes):
        response = httpx.post(
            f"{edge.url}/graphql", content=body, headers={**auth(), "Content-Type": "application/json"}
        )
        assert response.status_code < 500
        text = response.text.lower()
        assert "traceback" not in text and "exception" not in text and 'file "' not in text


def test_introspection_roles_may_introspect_whatever_their_plan(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(introspection_roles="editor")
    query = {"query": "{ __schema { queryType { name } } }"}
    assert code(post(edge, query, auth())) == "introspection-disabled"
    editor = {"Authorization": auth()["Authorization"], "x-hasura-role": "editor"}
    assert post(edge, query, editor).json()["data"]["__schema"]["queryType"]["name"] == "query_root"

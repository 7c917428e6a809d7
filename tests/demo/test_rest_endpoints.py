"""hasura/metadata/rest_endpoints.yaml: the demo's RESTified endpoints are consistent metadata for Hasura.

What Hasura checks when it builds its schema cache (server/src-lib/Hasura/RQL/DDL/Schema/Cache.hs:
``resolveEndpoint``, the duplicate/invalid/ambiguous URL checks, ``getInconsistentQueryCollections``; methods per
``EndpointMethod`` in server/src-lib/Hasura/RQL/Types/Endpoint.hs), plus what makes an endpoint callable at all
(server/src-lib/Hasura/Server/Rest.hs): every ``:name`` in the URL is a variable the operation declares, else
each call is 400 ``Unexpected variable <name>``. The operations are validated against the admin schema
generated from the migrated database and the metadata (tests/support/hasura_schema.py).
"""

from __future__ import annotations

import io
from typing import Any

import psycopg
import pytest
from graphql import GraphQLSchema, ListTypeNode, NonNullTypeNode, build_schema, parse, validate

from edge.db.cli import main as db_main
from tests.hasura_double.rest import ENDPOINT_METHODS, RestEndpoints
from tests.support.hasura_metadata import Catalog, load_metadata
from tests.support.hasura_schema import admin_sdl

ENDPOINT_KEYS = {"name", "url", "methods", "definition", "comment"}  # EndpointMetadata (aesonDrop 3 snakeCase)


@pytest.fixture(scope="module")
def metadata() -> dict[str, Any]:
    return load_metadata()


@pytest.fixture(scope="module")
def endpoints(metadata: dict[str, Any]) -> RestEndpoints:
    return RestEndpoints(metadata["rest_endpoints"], metadata["query_collections"])


def test_the_demo_ships_the_documented_endpoints(metadata: dict[str, Any]) -> None:
    shipped = {
        (e["url"], tuple(e["methods"])): e["definition"]["query"]["query_name"] for e in metadata["rest_endpoints"]
    }
    assert shipped == {
        ("products", ("GET",)): "ListProducts",
        ("products/:id", ("GET",)): "ProductById",
        ("orders", ("GET",)): "MyOrders",
        ("documents/:id", ("PATCH", "POST")): "UpdateDocument",
    }


def test_endpoints_have_hasuras_keys_and_methods(metadata: dict[str, Any]) -> None:
    names = [e["name"] for e in metadata["rest_endpoints"]]
    assert len(set(names)) == len(names)
    for endpoint in metadata["rest_endpoints"]:
        assert {"name", "url", "methods", "definition"} <= set(endpoint) <= ENDPOINT_KEYS
        assert set(endpoint["definition"]) == {"query"}
        assert set(endpoint["definition"]["query"]) == {"collection_name", "query_name"}
        assert endpoint["methods"] and set(endpoint["methods"]) <= set(ENDPOINT_METHODS)
        assert not endpoint["url"].startswith("/") and not endpoint["url"].endswith("/")


def test_no_endpoint_would_be_inconsistent(metadata: dict[str, Any], endpoints: RestEndpoints) -> None:
    # missing collection/query, subscription, not exactly one typed operation, duplicate or unnamed :variables,
    # empty segments, ambiguous templates (the same checks the Hasura double applies when it loads metadata)
    assert endpoints.inconsistencies == []
    assert len(endpoints.endpoints) == len(metadata["rest_endpoints"])


def test_path_variables_are_declared_scalar_variables(endpoints: RestEndpoints) -> None:
    # Rest.hs resolveVar: an undeclared name is "Unexpected variable", a list type cannot come from the URL
    for endpoint in endpoints.endpoints:
        declared = {d.variable.name.value: d.type for d in endpoint.operation.variable_definitions or ()}
        for name in endpoint.path_variables:
            assert name in declared, (endpoint.name, name)
            type_node = declared[name]
            inner = type_node.type if isinstance(type_node, NonNullTypeNode) else type_node
            assert not isinstance(inner, ListTypeNode), (endpoint.name, name)


def test_queries_are_read_only_methods_and_mutations_are_not(endpoints: RestEndpoints) -> None:
    # the demo's convention, after Hasura's defaults (GET and POST for queries, POST for mutations): no mutation
    # behind a GET, which caches, prefetchers and crawlers treat as safe
    for endpoint in endpoints.endpoints:
        if endpoint.operation.operation.value == "mutation":
            assert "GET" not in endpoint.methods, endpoint.name
        else:
            assert set(endpoint.methods) <= {"GET", "POST"}, endpoint.name


def test_endpoint_operations_are_allow_listed(metadata: dict[str, Any]) -> None:
    allowed = {
        entry["collection"]
        for entry in metadata["allowlist"]
        if entry.get("scope", {"global": True}).get("global", True)
    }
    for endpoint in metadata["rest_endpoints"]:
        assert endpoint["definition"]["query"]["collection_name"] in allowed, endpoint["name"]


# --- against the schema Hasura generates for the migrated database ---------------------------------------------


@pytest.fixture(scope="module")
def admin_schema(metadata: dict[str, Any], migrated_database_url: str) -> GraphQLSchema:
    assert db_main(["upgrade"], database_url=migrated_database_url, out=io.StringIO()) == 0
    with psycopg.connect(migrated_database_url) as conn:
        catalog = Catalog.load(conn, schemas=("public", "edge"))
        return build_schema(admin_sdl(metadata, catalog, conn))


@pytest.mark.postgres
def test_every_endpoint_operation_validates_against_the_admin_schema(
    endpoints: RestEndpoints, admin_schema: GraphQLSchema
) -> None:
    problems = {
        e.name: [error.message for error in validate(admin_schema, parse(e.query))] for e in endpoints.endpoints
    }
    assert problems == {e.name: [] for e in endpoints.endpoints}


@pytest.mark.postgres
def test_every_saved_operation_validates_against_the_admin_schema(
    metadata: dict[str, Any], admin_schema: GraphQLSchema
) -> None:
    problems = {
        query["name"]: [error.message for error in validate(admin_schema, parse(query["query"]))]
        for collection in metadata["query_collections"]
        for query in collection["definition"]["queries"]
    }
    assert problems == {name: [] for name in problems}


@pytest.mark.postgres
def test_the_generated_schema_refuses_what_hasura_would(admin_schema: GraphQLSchema) -> None:
    # the check can fail: an unknown column, a wrong argument type and a missing relationship are reported
    for query in (
        "query { products { colour } }",
        "query ($id: String!) { products_by_pk(id: $id) { id } }",
        "query { documents { history_entries { version } } }",
    ):
        assert validate(admin_schema, parse(query)), query

"""REST endpoints read from a metadata directory, matched and given their variables as Hasura does
(``server/src-lib/Hasura/RQL/Types/Endpoint/Trie.hs``, ``server/src-lib/Hasura/Server/Rest.hs``)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from graphql import build_schema

from edge.errors import BadRequest, JSONNumberOutOfRange
from edge.graphql.permissions import MetadataError
from edge.rest.endpoints import Endpoint, RestEndpoints
from edge.rest.variables import InvalidVariables, resolve_arguments, validate_variables

QUERIES = {
    "by_id": "query ById($id: Int!) { users_by_pk(id: $id) { id } }",
    "search": "query Search($name: String, $active: Boolean, $limit: Int, $ids: [Int!], $when: timestamptz) "
    "{ users(limit: $limit) { id } }",
    "create": "mutation Create($name: String!) { insert_users_one(object: {name: $name}) { id } }",
    "feed": "subscription Feed { users { id } }",
    "two": "query A { a } query B { b }",
    "with_fragment": "query A { users { ...F } } fragment F on users { id }",
    "shorthand": "{ users { id } }",
}


def endpoint(name: str, url: str, query: str, *methods: str) -> dict[str, Any]:
    return {
        "name": name,
        "url": url,
        "methods": list(methods or ("GET",)),
        "definition": {"query": {"collection_name": "allowed-queries", "query_name": query}},
    }


def write_metadata(directory: Path, endpoints: list[dict[str, Any]], *, include: bool = False) -> Path:
    collections = [
        {"name": "allowed-queries", "definition": {"queries": [{"name": k, "query": v} for k, v in QUERIES.items()]}}
    ]
    directory.mkdir(parents=True, exist_ok=True)
    if include:  # as the Hasura CLI may split a file: a string "!include <file>"
        (directory / "collections").mkdir(exist_ok=True)
        (directory / "collections" / "allowed.yaml").write_text(yaml.safe_dump(collections[0]))
        (directory / "query_collections.yaml").write_text('- "!include collections/allowed.yaml"\n')
    else:
        (directory / "query_collections.yaml").write_text(yaml.safe_dump(collections))
    (directory / "rest_endpoints.yaml").write_text(yaml.safe_dump(endpoints))
    return directory


def load(tmp_path: Path, *endpoints: dict[str, Any], include: bool = False) -> RestEndpoints:
    return RestEndpoints.from_metadata_dir(write_metadata(tmp_path, list(endpoints), include=include))


# --- loading ----------------------------------------------------------------------------------------------


def test_endpoints_and_their_operations_are_read_through_includes(tmp_path: Path):
    endpoints = load(tmp_path, endpoint("user", "users/:id", "by_id", "GET", "POST"), include=True)
    [user] = endpoints.endpoints
    assert (user.url, user.methods, user.params, user.segments) == (
        "users/:id",
        ("GET", "POST"),
        ("id",),
        ("users", None),
    )
    assert user.operation_type == "query"
    assert [definition.variable.name.value for definition in user.variables] == ["id"]


def test_what_hasura_does_not_serve_is_left_out_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.WARNING, "edge.rest")
    endpoints = load(
        tmp_path,
        endpoint("ok", "users/:id", "by_id"),
        endpoint("feed", "feed", "feed"),
        endpoint("two", "two", "two"),
        endpoint("fragment", "fragment", "with_fragment"),
        endpoint("shorthand", "shorthand", "shorthand"),
        endpoint("missing", "missing", "no_such_query"),
    )
    assert [e.name for e in endpoints.endpoints] == ["ok"]
    skipped = {record.endpoint for record in caplog.records if record.msg == "rest_endpoint_skipped"}  # type: ignore[attr-defined]
    assert skipped == {"feed", "two", "fragment", "shorthand", "missing"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (endpoint("head", "head", "by_id", "HEAD"), "endpoint head: Method HEAD not supported."),
        ({**endpoint("nourl", "x", "by_id"), "url": ""}, "endpoint nourl: Endpoint url must be non-empty"),
        ({**endpoint("nomethods", "x", "by_id"), "methods": []}, "endpoint nomethods: at least one method"),
    ],
)
def test_what_hasura_cannot_parse_stops_the_edge(tmp_path: Path, entry: dict[str, Any], message: str):
    with pytest.raises(MetadataError, match=f"rest_endpoints.yaml: {re.escape(message)}"):
        load(tmp_path, endpoint("ok", "users/:id", "by_id"), entry)


def test_no_rest_endpoints_file_means_no_endpoints_and_a_bad_file_is_a_metadata_error(tmp_path: Path):
    assert len(RestEndpoints.from_metadata_dir(tmp_path)) == 0
    (tmp_path / "rest_endpoints.yaml").write_text("name: not-a-list\n")
    with pytest.raises(MetadataError, match="rest_endpoints.yaml"):
        RestEndpoints.from_metadata_dir(tmp_path)


# --- matching ---------------------------------------------------------------------------------------------


@pytest.fixture
def endpoints(tmp_path: Path) -> RestEndpoints:
    return load(
        tmp_path,
        endpoint("user", "users/:id", "by_id", "GET"),
        endpoint("rename", "users/:name", "create", "POST"),
        endpoint("search", "users/search", "search", "GET", "PATCH"),
        endpoint("one", ":a/b", "by_id", "PUT"),
        endpoint("two", "a/:b", "by_id", "PUT"),
    )


def test_a_parameter_matches_any_segment_and_returns_its_value(endpoints: RestEndpoints):
    match = endpoints.match("GET", ["users", "42"])
    assert (match.kind, match.endpoint and match.endpoint.name, match.values) == ("found", "user", ("42",))


def test_one_found_result_beats_a_node_without_the_method(endpoints: RestEndpoints):
    # users/search is a literal node (GET, PATCH) and users/:id a parameter node (GET; POST through :name).
    found = endpoints.match("POST", ["users", "search"])
    assert found.kind == "found" and found.endpoint is not None and found.endpoint.name == "rename"
    both = endpoints.match("GET", ["users", "search"])
    assert both.kind == "ambiguous"  # users/:id and users/search both serve GET: Hasura's 500


def test_methods_of_every_node_reached_are_the_allowed_ones(endpoints: RestEndpoints):
    match = endpoints.match("DELETE", ["users", "search"])
    assert (match.kind, match.allowed) == ("method-not-allowed", ("GET", "PATCH", "POST"))


def test_unknown_paths_and_lengths_are_not_found(endpoints: RestEndpoints):
    assert endpoints.match("GET", ["users"]).kind == "not-found"
    assert endpoints.match("GET", ["users", "1", "x"]).kind == "not-found"
    assert endpoints.match("GET", ["nobody", "1"]).kind == "not-found"


def test_two_shapes_serving_one_method_are_ambiguous(endpoints: RestEndpoints):
    assert endpoints.match("PUT", ["a", "b"]).kind == "ambiguous"
    assert endpoints.match("PUT", ["x", "b"]).kind == "found"


# --- variables --------------------------------------------------------------------------------------------


def one(endpoints: RestEndpoints, name: str) -> Endpoint:
    return next(e for e in endpoints.endpoints if e.name == name)


def test_path_beats_body_beats_query_and_only_the_winner_is_forwarded(endpoints: RestEndpoints):
    user = one(endpoints, "user")
    arguments = resolve_arguments(user, ("7",), [("id", "5")], {"id": 6})
    assert arguments.variables == {"id": 7}
    assert (arguments.query, arguments.body) == ((), None)
    arguments = resolve_arguments(one(endpoints, "search"), (), [("limit", "5"), ("name", "x")], {"limit": 6})
    assert arguments.variables == {"limit": 6, "name": "x"}
    assert (arguments.query, arguments.body) == ((("name", "x"),), {"limit": 6})


def test_text_values_follow_the_declared_types(endpoints: RestEndpoints):
    search = one(endpoints, "search")
    arguments = resolve_arguments(
        search, (), [("name", "42"), ("active", ""), ("limit", "10"), ("when", "2024-01-01")], None
    )
    assert arguments.variables == {"name": "42", "active": True, "limit": 10, "when": "2024-01-01"}
    assert resolve_arguments(search, (), [("active", "false"), ("limit", "")], None).variables == {"active": False}
    assert resolve_arguments(search, (), [("name", "true")], None).variables == {"name": "true"}
    assert arguments.query_string() == "name=42&active=&limit=10&when=2024-01-01"


def test_unexpected_duplicated_and_list_arguments_are_refused(endpoints: RestEndpoints):
    search = one(endpoints, "search")
    with pytest.raises(BadRequest, match="Unexpected variable offset"):
        resolve_arguments(search, (), [("offset", "1")], None)
    with pytest.raises(BadRequest, match="given more than once"):
        resolve_arguments(search, (), [("limit", "1"), ("limit", "2")], None)
    with pytest.raises(BadRequest, match="List variables are not currently supported"):
        resolve_arguments(search, (), [("ids", "[1]")], None)
    assert resolve_arguments(search, (), [("not-a-name", "1")], {"ids": [1, 2]}).variables == {"ids": [1, 2]}
    with pytest.raises(JSONNumberOutOfRange):
        resolve_arguments(search, (), [("limit", "1.00000000000000000001")], None)


SCHEMA = build_schema("""
    scalar timestamptz
    type users { id: Int }
    type Query { users(limit: Int): [users!]! users_by_pk(id: Int!): users }
    type Mutation { insert_users_one(object: users_insert_input!): users }
    input users_insert_input { name: String }
""")


@pytest.mark.parametrize("schema", [SCHEMA, None], ids=["introspected", "declared-types"])
def test_values_are_coerced_against_the_variable_types(endpoints: RestEndpoints, schema: Any):
    search, user, create = one(endpoints, "search"), one(endpoints, "user"), one(endpoints, "rename")
    validate_variables(search, {"limit": 5, "when": "whenever", "ids": [1]}, schema)
    with pytest.raises(InvalidVariables, match=r"\$limit") as refused:
        validate_variables(search, {"limit": "abc"}, schema)
    assert refused.value.code == "validation-failed" and refused.value.status == 400
    with pytest.raises(InvalidVariables, match=r"\$id"):
        validate_variables(user, {}, schema)
    with pytest.raises(InvalidVariables, match=r"\$name"):
        validate_variables(create, {"name": 5}, schema)

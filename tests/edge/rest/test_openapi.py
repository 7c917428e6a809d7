"""The OpenAPI 3.1 document of the REST endpoints: valid against the OpenAPI 3.1 schema, and saying what the
edge serves (paths, methods, parameters and bodies with JSON Schema types, security schemes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import build_schema
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from edge.rest.endpoints import RestEndpoints
from edge.rest.openapi import openapi_document
from tests.edge.conftest import EdgeFactory
from tests.edge.rest.test_endpoints_and_variables import endpoint, write_metadata
from tests.support.tokens import hasura_claims, mint

METADATA = Path(__file__).resolve().parents[3] / "hasura" / "metadata"
SCHEMA = build_schema("""
    scalar uuid
    scalar timestamptz
    enum users_select_column { id name }
    input users_bool_exp { name: String }
    type users { id: Int }
    type Query {
        users(limit: Int, where: users_bool_exp): [users!]!
        users_by_pk(id: Int!): users
    }
    type Mutation { insert_users_one(name: String!): users }
""")


def document(tmp_path: Path, schema: Any = SCHEMA, **options: bool) -> dict[str, Any]:
    endpoints = RestEndpoints.from_metadata_dir(
        write_metadata(
            tmp_path,
            [
                endpoint("user", "users/:id", "by_id", "GET", "DELETE"),
                endpoint("search", "users", "search", "GET"),
                endpoint("rename", "users/:name/rename", "create", "POST", "PUT"),
            ],
        )
    )
    return openapi_document(endpoints.endpoints, schema, **options)


def test_the_document_is_valid_openapi_3_1(tmp_path: Path):
    spec = document(tmp_path)
    assert spec["openapi"] == "3.1.0"
    validate(spec)  # raises OpenAPIValidationError


def test_the_validator_refuses_a_broken_document(tmp_path: Path):
    spec = document(tmp_path)
    spec["paths"]["/api/rest/users/{id}"]["get"]["parameters"][0]["in"] = "body"  # not an OpenAPI location
    with pytest.raises(OpenAPIValidationError):
        validate(spec)


def test_paths_methods_and_parameters_follow_the_endpoints(tmp_path: Path):
    paths = document(tmp_path)["paths"]
    assert sorted(paths) == ["/api/rest/users", "/api/rest/users/{id}", "/api/rest/users/{name}/rename"]
    assert sorted(paths["/api/rest/users/{id}"]) == ["delete", "get"]
    get = paths["/api/rest/users/{id}"]["get"]
    assert get["operationId"] == "user_get"
    assert get["parameters"] == [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "format": "int32"}}
    ]
    search = {p["name"]: p for p in paths["/api/rest/users"]["get"]["parameters"]}
    assert search["limit"] == {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "format": "int32"},
    }
    assert search["active"]["schema"] == {"type": "boolean"}
    assert search["when"]["schema"] == {"type": "string", "format": "date-time"}
    # A list can only come in a body (Hasura refuses lists in query strings).
    body = paths["/api/rest/users"]["get"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["ids"] == {"type": "array", "items": {"type": "integer", "format": "int32"}}


def test_a_post_takes_its_variables_in_a_json_body(tmp_path: Path):
    post = document(tmp_path)["paths"]["/api/rest/users/{name}/rename"]["post"]
    assert post["parameters"] == [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    assert "requestBody" not in post  # its only variable is in the path


def test_security_schemes_are_those_the_edge_accepts(tmp_path: Path):
    spec = document(tmp_path, bearer=True, api_key=True, anonymous=False)
    assert spec["components"]["securitySchemes"] == {
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    assert spec["paths"]["/api/rest/users"]["get"]["security"] == [{"bearerAuth": []}, {"apiKey": []}]
    anonymous = document(tmp_path, bearer=True, api_key=False, anonymous=True)
    assert anonymous["paths"]["/api/rest/users"]["get"]["security"] == [{"bearerAuth": []}, {}]
    validate(anonymous)


def test_without_a_schema_the_declared_types_are_used(tmp_path: Path):
    spec = document(tmp_path, schema=None)
    validate(spec)
    assert spec["paths"]["/api/rest/users/{id}"]["get"]["parameters"][0]["schema"]["type"] == "integer"


def test_the_edge_serves_the_demos_document(start_edge: EdgeFactory):
    edge = start_edge(hasura_metadata_dir=str(METADATA))
    anonymous = httpx.get(f"{edge.url}/api/openapi.json", timeout=10)
    assert anonymous.status_code == 401  # for the callers the edge authenticates, as the endpoints are
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "access-denied"
    bearer = {"Authorization": f"Bearer {mint(hasura_claims('user-1'))}"}
    response = httpx.get(f"{edge.url}/api/openapi.json", headers=bearer, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    spec = response.json()
    validate(spec)
    assert set(spec["paths"]) == {
        "/api/rest/products",
        "/api/rest/products/{id}",
        "/api/rest/orders",
        "/api/rest/documents/{id}",
    }
    by_id = spec["paths"]["/api/rest/products/{id}"]["get"]["parameters"][0]
    assert by_id == {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
    patch = spec["paths"]["/api/rest/documents/{id}"]["patch"]["requestBody"]["content"]["application/json"]
    assert patch["schema"]["required"] == ["title", "content"]
    assert httpx.post(f"{edge.url}/api/openapi.json", headers=bearer, timeout=10).status_code == 405


def test_the_200_answer_is_typed_from_the_selection(tmp_path: Path):
    paths = document(tmp_path)["paths"]
    answer = paths["/api/rest/users/{id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    user = {
        "type": "object",
        "properties": {"id": {"anyOf": [{"type": "integer", "format": "int32"}, {"type": "null"}]}},
    }
    assert answer == {"type": "object", "properties": {"users_by_pk": {"anyOf": [user, {"type": "null"}]}}}
    listed = paths["/api/rest/users"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed["properties"]["users"] == {"type": "array", "items": user}  # [users!]!
    untyped = document(tmp_path, schema=None)["paths"]["/api/rest/users"]["get"]["responses"]["200"]
    assert untyped["content"]["application/json"]["schema"] == {"type": "object"}

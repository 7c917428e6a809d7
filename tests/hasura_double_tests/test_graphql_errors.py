"""Request-level errors of ``/v1/graphql``: shapes, codes, paths and texts (``encodeGQErr`` and ``GQLReq`` in
server/src-lib/Hasura/GraphQL/Transport/HTTP/Protocol.hs, ``encodeGQLErr`` in server/src-lib/Hasura/Base/Error.hs)."""

from __future__ import annotations

import httpx
import pytest

from tests.hasura_double import HasuraDouble
from tests.support.servers import serving

from .conftest import ADMIN, gql, http_client, only_error


async def test_body_that_is_not_json_is_invalid_json(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/graphql", content=b"{not json", headers=ADMIN)
    error = only_error(response)
    assert error["extensions"] == {"path": "$", "code": "invalid-json"}
    assert "x-request-id" not in response.headers


async def test_body_without_query_is_parse_failed(client: httpx.AsyncClient) -> None:
    error = only_error(await client.post("/v1/graphql", json={"variables": {}}, headers=ADMIN))
    assert error["extensions"] == {"path": "$", "code": "parse-failed"}


async def test_persisted_query_post_is_not_supported(client: httpx.AsyncClient) -> None:
    body = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "abc"}}}
    error = only_error(await client.post("/v1/graphql", json=body, headers=ADMIN))
    assert error == {"message": "PersistedQueryNotSupported", "extensions": {"path": "$", "code": "not-supported"}}


@pytest.mark.parametrize(
    ("query", "variables", "operation_name", "message", "path"),
    [
        ("{ users(", None, None, "not a valid graphql query", "$.query"),
        (
            "query A { users { id } } query B { products { id } }",
            None,
            None,
            "exactly one operation has to be present in the document when operationName is not specified",
            "$",
        ),
        ("query A { users { id } }", None, "B", 'no such operation found in the document: "B"', "$"),
        ("{ usrs { id } }", None, None, "field 'usrs' not found in type: 'query_root'", "$.selectionSet.usrs"),
        (
            "{ users { orders { totl } } }",
            None,
            None,
            "field 'totl' not found in type: 'orders'",
            "$.selectionSet.users.selectionSet.orders.selectionSet.totl",
        ),
        (
            "mutation { insert_wat(objects: []) { affected_rows } }",
            None,
            None,
            "field 'insert_wat' not found in type: 'mutation_root'",
            "$.selectionSet.insert_wat",
        ),
        ("{ users(lmit: 1) { id } }", None, None, "'users' has no argument named 'lmit'", "$.selectionSet.users"),
        ("{ users }", None, None, "missing selection set for 'users'", "$.selectionSet.users.selectionSet"),
        (
            "{ users { id { x } } }",
            None,
            None,
            "unexpected subselection set for non-object field",
            "$.selectionSet.users.selectionSet.id",
        ),
        (
            "{ orders_by_pk { id } }",
            None,
            None,
            "missing required field 'id'",
            "$.selectionSet.orders_by_pk.args.id",
        ),
        (
            "query Q($id: uuid!) { orders_by_pk(id: $id) { id } }",
            None,
            None,
            'expecting a value for non-nullable variable: "id"',
            "$",
        ),
        ("{ users { id } }", {"extra": 1}, None, "unexpected variables in variableValues: extra", "$"),
        ("query A { ...F }", None, None, "Unknown fragment 'F'.", "$"),
    ],
)
async def test_validation_errors_use_hasura_texts_and_paths(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, object] | None,
    operation_name: str | None,
    message: str,
    path: str,
) -> None:
    response = await gql(client, query, variables=variables, operation_name=operation_name)
    error = only_error(response)
    assert error == {"message": message, "extensions": {"path": path, "code": "validation-failed"}}
    assert "x-request-id" not in response.headers


async def test_no_suggestions_by_default(client: httpx.AsyncClient) -> None:
    error = only_error(await gql(client, "{ usrs { id } }"))
    assert "Did you mean" not in str(error["message"])


async def test_field_suggestions_flag_appends_did_you_mean() -> None:
    double = HasuraDouble(field_suggestions=True)
    with serving(double.app) as server:
        async with http_client(server.url) as client:
            unknown_field = only_error(await gql(client, "{ usrs { id } }"))
            unknown_arg = only_error(await gql(client, "{ users(lmit: 1) { id } }"))
    assert unknown_field["message"] == "field 'usrs' not found in type: 'query_root'. Did you mean 'users'?"
    assert unknown_arg["message"] == "'users' has no argument named 'lmit'. Did you mean 'limit'?"


async def test_subscription_over_http_is_rejected_like_hasura(client: httpx.AsyncClient) -> None:
    error = only_error(await gql(client, "subscription { users { id } }"))
    assert error == {
        "message": "subscriptions are not supported over HTTP, use websockets instead",
        "extensions": {"path": "$", "code": "unexpected-payload"},
    }


async def test_batch_answers_an_array_in_order_with_per_item_errors(client: httpx.AsyncClient) -> None:
    batch = [
        {"query": "{ users(limit: 1) { id } }"},
        {"query": "{ nope }"},
        {"query": "query P($n: Int) { products(limit: $n) { sku } }", "variables": {"n": 2}, "operationName": "P"},
    ]
    response = await client.post("/v1/graphql", json=batch, headers=ADMIN)
    assert response.status_code == 200
    first, second, third = response.json()
    assert len(first["data"]["users"]) == 1
    assert second["errors"][0]["extensions"] == {"path": "$.selectionSet.nope", "code": "validation-failed"}
    assert third == {"data": {"products": [{"sku": "sku-1"}, {"sku": "sku-2"}]}}
    assert "x-request-id" in response.headers


async def test_batch_with_wrong_secret_is_one_error_object(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/graphql", json=[{"query": "{ users { id } }"}], headers={"x-hasura-admin-secret": "x"}
    )
    assert only_error(response)["extensions"]["code"] == "access-denied"


async def test_v1alpha1_graphql_keeps_real_error_statuses(client: httpx.AsyncClient) -> None:
    denied = await client.post("/v1alpha1/graphql", json={"query": "{ users { id } }"})
    assert denied.status_code == 401
    invalid = await client.post("/v1alpha1/graphql", json={"query": "{ nope }"}, headers=ADMIN)
    assert invalid.status_code == 400
    assert invalid.json()["errors"][0]["extensions"]["code"] == "validation-failed"
    ok = await client.post("/v1alpha1/graphql", json={"query": "{ users { id } }"}, headers=ADMIN)
    assert ok.status_code == 200

"""Deterministic data (the brief's contract) and introspection through graphql-core."""

from __future__ import annotations

from typing import Any

import httpx
from graphql import build_client_schema, get_introspection_query

from tests.hasura_double import DEMO_SDL

from .conftest import gql


async def data(client: httpx.AsyncClient, query: str, variables: dict[str, object] | None = None) -> Any:
    response = await gql(client, query, variables=variables)
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["data"], body
    return body["data"]


async def test_lists_return_limit_rows_or_three(client: httpx.AsyncClient) -> None:
    result = await data(client, "{ a: users(limit: 5) { id } b: users { id } c: users(limit: 0) { id } }")
    assert [len(result[k]) for k in "abc"] == [5, 3, 0]


async def test_limit_is_capped_at_one_hundred(client: httpx.AsyncClient) -> None:
    assert len((await data(client, "{ users(limit: 1000) { id } }"))["users"]) == 100


async def test_values_are_derived_from_field_name_and_index(client: httpx.AsyncClient) -> None:
    rows = (await data(client, "{ products(limit: 2) { id name price active created_at attributes } }"))["products"]
    assert [row["name"] for row in rows] == ["name-1", "name-2"]
    assert [row["price"] for row in rows] == ["10.00", "20.00"]
    assert [row["active"] for row in rows] == [True, False]
    assert rows[0]["created_at"] == "2026-01-01T00:00:00+00:00"
    assert rows[0]["attributes"] == {"field": "attributes", "index": 1}
    assert rows[0]["id"] != rows[1]["id"]
    assert len(rows[0]["id"]) == 36
    again = (await data(client, "{ products(limit: 2) { id } }"))["products"]
    assert [row["id"] for row in again] == [row["id"] for row in rows]


async def test_offset_shifts_the_row_index(client: httpx.AsyncClient) -> None:
    rows = (await data(client, "{ users(limit: 2, offset: 10) { name } }"))["users"]
    assert rows == [{"name": "name-11"}, {"name": "name-12"}]


async def test_variables_drive_limit_and_by_pk(client: httpx.AsyncClient) -> None:
    query = "query Q($n: Int!, $id: uuid!) { orders(limit: $n) { id } orders_by_pk(id: $id) { id status } }"
    result = await data(client, query, {"n": 4, "id": "11111111-2222-3333-4444-555555555555"})
    assert len(result["orders"]) == 4
    assert result["orders_by_pk"] == {"id": "11111111-2222-3333-4444-555555555555", "status": "status-1"}


async def test_int_primary_key_by_pk(client: httpx.AsyncClient) -> None:
    result = await data(client, "{ document_history_by_pk(id: 7) { id version change } }")
    assert result["document_history_by_pk"]["id"] == 7


async def test_aggregate_counts_the_rows_it_returns(client: httpx.AsyncClient) -> None:
    query = "{ orders_aggregate(limit: 4) { aggregate { count max { total } min { total } } nodes { id } } }"
    aggregate = (await data(client, query))["orders_aggregate"]
    assert aggregate["aggregate"] == {"count": 4, "max": {"total": "40.00"}, "min": {"total": "10.00"}}
    assert len(aggregate["nodes"]) == 4


async def test_object_and_array_relationships(client: httpx.AsyncClient) -> None:
    query = """{
      orders(limit: 1) {
        user { email }
        items(limit: 2) { quantity product { sku inventory(limit: 1) { warehouse { code } } } }
        payments_aggregate { aggregate { count } }
      }
      documents(limit: 1) { owner { name } history(limit: 5) { version } collaborators_aggregate(limit: 2) {
        aggregate { count } } }
    }"""
    result = await data(client, query)
    order = result["orders"][0]
    assert order["user"] == {"email": "email-1"}
    assert len(order["items"]) == 2
    assert order["items"][1]["product"]["inventory"][0]["warehouse"] == {"code": "code-1"}
    assert order["payments_aggregate"]["aggregate"]["count"] == 3
    document = result["documents"][0]
    assert len(document["history"]) == 5
    assert document["collaborators_aggregate"]["aggregate"]["count"] == 2


async def test_mutations_echo_their_input(client: httpx.AsyncClient) -> None:
    query = """mutation M($objects: [users_insert_input!]!) {
      insert_users(objects: $objects) { affected_rows returning { name email } }
      insert_products_one(object: {sku: "S-1", price: "9.99"}) { sku price name }
      update_orders_by_pk(pk_columns: {id: "o-1"}, _set: {status: "paid"}) { id status }
      delete_documents_by_pk(id: "d-1") { id }
    }"""
    result = await data(client, query, {"objects": [{"name": "ann"}, {"name": "bob", "email": "b@x"}]})
    assert result["insert_users"] == {
        "affected_rows": 2,
        "returning": [{"name": "ann", "email": "email-1"}, {"name": "bob", "email": "b@x"}],
    }
    assert result["insert_products_one"] == {"sku": "S-1", "price": "9.99", "name": "name-1"}
    assert result["update_orders_by_pk"] == {"id": "o-1", "status": "paid"}
    assert result["delete_documents_by_pk"] == {"id": "d-1"}


async def test_process_payment_action_returns_a_payment_result(client: httpx.AsyncClient) -> None:
    query = """mutation Pay($order: uuid!, $amount: numeric!) {
      processPayment(orderId: $order, amount: $amount, currency: "EUR", idempotencyKey: "k-1") {
        __typename paymentId orderId amount currency status createdAt
      }
    }"""
    result = (await data(client, query, {"order": "o-9", "amount": "12.50"}))["processPayment"]
    assert result["__typename"] == "PaymentResult"
    assert (result["orderId"], result["amount"], result["currency"]) == ("o-9", "12.50", "EUR")
    assert result["paymentId"] and result["status"] and result["createdAt"]


async def test_introspection_reports_hasura_roots_and_fields(client: httpx.AsyncClient) -> None:
    query = """{
      __schema { queryType { name } mutationType { name } subscriptionType { name } }
      q: __type(name: "query_root") { fields { name } }
      m: __type(name: "mutation_root") { fields { name } }
    }"""
    result = await data(client, query)
    assert result["__schema"] == {
        "queryType": {"name": "query_root"},
        "mutationType": {"name": "mutation_root"},
        "subscriptionType": {"name": "subscription_root"},
    }
    query_fields = {f["name"] for f in result["q"]["fields"]}
    tables = [
        "users",
        "products",
        "warehouses",
        "inventory",
        "orders",
        "order_items",
        "payments",
        "documents",
        "document_collaborators",
        "document_history",
    ]
    for table in tables:
        assert {table, f"{table}_by_pk", f"{table}_aggregate"} <= query_fields
    mutation_fields = {f["name"] for f in result["m"]["fields"]}
    assert {
        "processPayment",
        "insert_orders",
        "insert_orders_one",
        "update_orders_by_pk",
        "delete_orders_by_pk",
    } <= mutation_fields


async def test_full_introspection_query_builds_a_client_schema(client: httpx.AsyncClient) -> None:
    schema = build_client_schema(await data(client, get_introspection_query()))
    assert schema.subscription_type is not None
    assert "users_stream" in schema.subscription_type.fields
    assert "schema {" in DEMO_SDL

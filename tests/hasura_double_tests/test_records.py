"""What the double records (the brief's API): every request, headers exactly as received."""

from __future__ import annotations

import httpx

from tests.hasura_double import HasuraDouble

from .conftest import ADMIN


async def test_headers_keep_order_duplicates_and_lower_case_names(
    client: httpx.AsyncClient, double: HasuraDouble
) -> None:
    headers = [
        ("X-Trace", "one"),
        ("x-hasura-admin-secret", ADMIN["x-hasura-admin-secret"]),
        ("X-Trace", "two"),
        ("X-Hasura-Role", "user"),
    ]
    await client.post("/v1/graphql?debug=1", json={"query": "{ users { id } }"}, headers=headers)
    record = double.last()
    names = [name for name, _ in record.headers]
    assert [n for n in names if n in ("x-trace", "x-hasura-admin-secret", "x-hasura-role")] == [
        "x-trace",
        "x-hasura-admin-secret",
        "x-trace",
        "x-hasura-role",
    ]
    assert record.header_all("X-Trace") == ["one", "two"]
    assert record.header("x-trace") == "one"
    assert record.header("x-missing") is None
    assert (record.method, record.path, record.query_string) == ("POST", "/v1/graphql", b"debug=1")
    assert record.json() == {"query": "{ users { id } }"}
    assert record.status == 200


async def test_every_request_is_recorded_in_order(client: httpx.AsyncClient, double: HasuraDouble) -> None:
    await client.get("/healthz")
    await client.post("/v1/graphql", json={"query": "{ users { id } }"}, headers=ADMIN)
    await client.get("/nowhere")
    await client.post("/v1/metadata", json={"type": "x"}, headers=ADMIN)
    assert [(r.method, r.path) for r in double.requests] == [
        ("GET", "/healthz"),
        ("POST", "/v1/graphql"),
        ("GET", "/nowhere"),
        ("POST", "/v1/metadata"),
    ]
    assert [r.path for r in double.graphql_requests()] == ["/v1/graphql"]
    double.reset()
    assert double.requests == []

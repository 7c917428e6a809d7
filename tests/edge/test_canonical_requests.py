"""Client JSON that parsers could read differently never reaches Hasura (edge/strict_json.py).

Hasura's aeson keeps the first of two equal keys, orjson the last: with the raw body forwarded, a second
``query`` would be what the edge checks and the first what Hasura runs. Every test here proves the
Hasura double was never called, or that what it got is what the edge analysed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.edge.conftest import EdgeFactory
from tests.hasura_double import HasuraDouble
from tests.support.json_readings import read_alike
from tests.support.servers import RunningServer
from tests.support.tokens import mint

LISTED = "query Listed { products(limit: 1) { id } }"
UNLISTED = "query Unlisted { users { id email } }"
DEEP = "{ users(limit: 1) { orders { user { orders { user { id } } } } } }"
SHALLOW = "{ products(limit: 1) { id } }"
CSRF = {"graphql-require-preflight": "1"}


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {mint()}"}


def post_raw(edge: RunningServer, body: bytes | str) -> httpx.Response:
    data = body.encode() if isinstance(body, str) else body
    headers = {**auth(), "Content-Type": "application/json"}
    return httpx.post(f"{edge.url}/graphql", content=data, headers=headers, timeout=10)


def get_raw(edge: RunningServer, query_string: str) -> httpx.Response:
    return httpx.get(f"{edge.url}/graphql?{query_string}", headers={**auth(), **CSRF}, timeout=10)


def error_code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["extensions"]["code"])


def nested(depth: int) -> str:
    text = "1"
    for level in range(depth):
        text = f'{{"k":{text}}}' if level % 2 else f"[{text}]"
    return text


def manifest_file(tmp_path: Path, *queries: str) -> str:
    operations = [
        {"id": hashlib.sha256(query.encode()).hexdigest(), "name": None, "type": "query", "body": query}
        for query in queries
    ]
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations}))
    return str(path)


# --- the bypasses -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        f'{{"query":{json.dumps(UNLISTED)},"query":{json.dumps(LISTED)}}}',
        f'{{"query":{json.dumps(UNLISTED)},"\\u0071uery":{json.dumps(LISTED)}}}',
        f'[{{"query":{json.dumps(LISTED)}}},{{"query":{json.dumps(UNLISTED)},"query":{json.dumps(LISTED)}}}]',
    ],
)
def test_a_second_query_key_cannot_carry_an_unlisted_operation_past_the_safelist(
    start_edge: EdgeFactory, hasura: HasuraDouble, tmp_path: Path, body: str
) -> None:
    edge = start_edge(
        persisted_manifest_file=manifest_file(tmp_path, LISTED), plans={"default": {"graphql": {"safelist": True}}}
    )
    assert post_raw(edge, json.dumps({"query": LISTED})).status_code == 200
    hasura.reset()
    response = post_raw(edge, body)
    assert response.status_code == 400
    assert error_code(response) == "duplicate-json-key"
    assert "'query'" in response.json()["errors"][0]["message"]
    assert hasura.requests == []


@pytest.mark.parametrize(
    ("plan", "checked", "smuggled"),
    [
        ({"max_depth": 3}, SHALLOW, DEEP),
        ({"max_aliases": 1}, SHALLOW, "{ a: products { id } b: products { id } c: products { id } }"),
        ({"max_root_fields": 1}, SHALLOW, "{ products { id } users { id } }"),
        ({"max_cost": 50}, SHALLOW, "{ users(limit: 1000) { orders(limit: 1000) { id } } }"),
        ({}, SHALLOW, "{ __schema { types { name } } }"),  # introspection is off by default
    ],
)
def test_a_second_query_key_cannot_carry_an_operation_past_the_limits(
    start_edge: EdgeFactory, hasura: HasuraDouble, plan: dict[str, Any], checked: str, smuggled: str
) -> None:
    edge = start_edge(plans={"default": {"graphql": plan}})
    assert post_raw(edge, json.dumps({"query": smuggled})).status_code == 400  # the limit holds on its own
    response = post_raw(edge, f'{{"query":{json.dumps(smuggled)},"query":{json.dumps(checked)}}}')
    assert response.status_code == 400
    assert error_code(response) == "duplicate-json-key"
    assert hasura.requests == []


def test_duplicates_inside_variables_and_extensions_are_refused(edge: RunningServer, hasura: HasuraDouble) -> None:
    query = json.dumps("query Q($limit: Int) { products(limit: $limit) { id } }")
    for body in (
        f'{{"query":{query},"variables":{{"limit":1,"limit":1000}}}}',
        f'{{"query":{query},"extensions":{{"tag":"a","tag":"b"}}}}',
        f'{{"query":{query},"variables":{{"filter":[{{"id":{{"_eq":1,"_eq":2}}}}]}}}}',
        f'{{"query":{query},"operationName":null,"operationName":"Q"}}',
    ):
        response = post_raw(edge, body)
        assert response.status_code == 400, body
        assert error_code(response) == "duplicate-json-key"
    assert hasura.requests == []


def test_a_get_with_duplicate_keys_inside_variables_or_extensions_is_refused(
    edge: RunningServer, hasura: HasuraDouble
) -> None:
    query = quote("query Q($limit: Int) { products(limit: $limit) { id } }")
    repeated = quote('{"limit":1,"limit":1000}')
    for parameter in ("variables", "extensions"):
        response = get_raw(edge, f"query={query}&{parameter}={repeated}")
        assert response.status_code == 400
        assert error_code(response) == "duplicate-json-key"
        assert response.json()["errors"][0]["message"].startswith(f"Query parameter {parameter!r} repeats the key")
    assert hasura.requests == []


# --- nesting and numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [300, 1000])
def test_deep_extensions_are_a_400_never_a_500(start_edge: EdgeFactory, hasura: HasuraDouble, depth: int) -> None:
    edge = start_edge(max_url_bytes=65_536)
    persisted = {"version": 1, "sha256Hash": hashlib.sha256(SHALLOW.encode()).hexdigest()}
    posted = [
        f'{{"query":{json.dumps(SHALLOW)},"extensions":{{"deep":{nested(depth)}}}}}',
        # with a persisted query the body is re-serialised: orjson.dumps fails from 255 levels
        f'{{"query":{json.dumps(SHALLOW)},"extensions":{{"persistedQuery":{json.dumps(persisted)},"deep":{nested(depth)}}}}}',
    ]
    for body in posted:
        response = post_raw(edge, body)
        assert response.status_code == 400
        assert error_code(response) == "json-too-deep"
    response = get_raw(edge, f"query={quote(SHALLOW)}&extensions={quote(nested(depth))}")
    assert response.status_code == 400
    assert error_code(response) == "json-too-deep"
    assert hasura.requests == []


def test_numbers_the_edge_cannot_read_exactly_are_refused(edge: RunningServer, hasura: HasuraDouble) -> None:
    query = json.dumps("query Q($limit: Int) { products(limit: $limit) { id } }")
    for number in ("18446744073709551616", "1.00000000000000000001", "-9223372036854775809"):
        response = post_raw(edge, f'{{"query":{query},"variables":{{"limit":{number}}}}}')
        assert response.status_code == 400
        assert error_code(response) == "json-number-out-of-range"
        assert "as strings" in response.json()["errors"][0]["message"]
    assert hasura.requests == []


# --- what is forwarded ------------------------------------------------------------------------------


def test_an_unambiguous_body_reaches_hasura_byte_for_byte(edge: RunningServer, hasura: HasuraDouble) -> None:
    body = (
        '{ "query" : "query Q($limit: Int, $name: String) { products(limit: $limit) { id } }",\n'
        '  "variables": {"limit": 1E0, "name": "say \\"hi\\" \\u00e9", "big": 18446744073709551615, "x": 0.1},'
        ' "operationName": "Q"}'
    )
    response = post_raw(edge, body)
    assert response.status_code == 200, response.text
    [record] = hasura.graphql_requests()
    assert record.body == body.encode()


def test_a_persisted_query_reaches_hasura_as_the_request_the_edge_analysed(
    edge: RunningServer, hasura: HasuraDouble
) -> None:
    query = "query Q($limit: Int) { products(limit: $limit) { id } }"
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(query.encode()).hexdigest()}}
    assert post_raw(edge, json.dumps({"query": query, "extensions": persisted})).status_code == 200
    sent = {"extensions": {**persisted, "tag": "t"}, "variables": {"limit": 2, "ratio": 0.1}}
    response = post_raw(edge, json.dumps(sent))
    assert response.status_code == 200, response.text
    forwarded = hasura.graphql_requests()[-1].body
    assert json.loads(forwarded) == {
        "query": query,
        "extensions": {"tag": "t"},
        "variables": {"limit": 2, "ratio": 0.1},
    }
    assert read_alike(forwarded)

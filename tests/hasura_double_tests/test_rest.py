"""RESTified endpoints, ``/api/rest/<url>`` (tests/hasura_double/rest.py).

Hasura's source for each rule: server/src-lib/Hasura/Server/Rest.hs (``runCustomEndpoint``, ``resolveVar``),
server/src-lib/Hasura/RQL/Types/Endpoint/Trie.hs (``matchPath``, ``ambiguousPaths``), the ``api/rest`` route in
server/src-lib/Hasura/Server/App.hs, ``buildEndpoint``/``resolveEndpoint`` in
server/src-lib/Hasura/RQL/DDL/Schema/Cache.hs, and the expectations of server/tests-py/queries/endpoints/*.yaml.
The served data is the double's deterministic data: ``_by_pk`` and update mutations echo their arguments,
which makes the variables Hasura would receive observable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.hasura_double import HasuraDouble
from tests.hasura_double.data import scalar_value
from tests.hasura_double.errors import HasuraError
from tests.hasura_double.rest import RestEndpoints, RestMetadataError, haskell_show, parse_query, rest_path
from tests.support.servers import RunningServer, serving

from .conftest import ADMIN, SECRET, http_client

COLLECTION = "test_collection"
QUERIES = {
    "simple": "query { users(limit: 1) { id } }",
    "users_limit": "query ($limit: Int = 2) { users(limit: $limit) { id } }",
    "rename_user": (
        "mutation ($id: uuid!, $name: String!) "
        "{ update_users_by_pk(pk_columns: {id: $id}, _set: {name: $name}) { id name } }"
    ),
    "typed": (
        "mutation ($id: uuid!, $active: Boolean!, $price: numeric, $sku: String, $description: String) "
        "{ update_products_by_pk(pk_columns: {id: $id}, "
        "_set: {active: $active, price: $price, sku: $sku, description: $description}) "
        "{ id active price sku description } }"
    ),
    "quantity": (
        "mutation ($id: uuid!, $quantity: Int!) "
        "{ update_inventory_by_pk(pk_columns: {id: $id}, _set: {quantity: $quantity}) { id quantity } }"
    ),
    "by_ids": "query ($ids: [uuid!]) { users(where: {id: {_in: $ids}}, limit: 1) { id } }",
    "user": "query ($id: uuid!) { users_by_pk(id: $id) { id } }",
    "subscription": "subscription { users { id } }",
    "shorthand": "{ users { id } }",
    "two_operations": "query A { users { id } } query B { users { id } }",
    "with_fragment": "query C { users { ...F } } fragment F on users { id }",
}
ENDPOINTS = [
    ("simple", "simple", ["GET"], "simple"),
    ("users", "users", ["GET"], "users_limit"),
    ("rename_user", "users/:id", ["POST", "PATCH"], "rename_user"),
    ("typed", "products/:id/typed", ["GET", "POST"], "typed"),
    ("quantity", "inventory/:id", ["GET"], "quantity"),
    ("by_ids", "by_ids", ["GET", "POST"], "by_ids"),
    ("user", "user", ["GET"], "user"),
    ("any_segment", "amb/:id", ["GET"], "user"),
    ("literal_segment", "amb/literal", ["GET"], "simple"),
    ("subscription", "sub", ["GET"], "subscription"),
    ("shorthand", "shorthand", ["GET"], "shorthand"),
    ("two_operations", "two", ["GET"], "two_operations"),
    ("with_fragment", "fragment", ["GET"], "with_fragment"),
    ("missing_query", "missing", ["GET"], "nope"),
]
USER_ID = "81f1bfea-c169-44b5-b4c8-37e9a071abd0"


def endpoint(
    name: str, url: str, query: str, *, methods: list[Any] | None = None, collection: str = COLLECTION
) -> dict[str, Any]:
    """One ``rest_endpoints`` entry in Hasura's metadata format."""
    return {
        "name": name,
        "url": url,
        "methods": methods or ["GET"],
        "definition": {"query": {"collection_name": collection, "query_name": query}},
    }


def rest_metadata() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    collections = [
        {"name": COLLECTION, "definition": {"queries": [{"name": n, "query": q} for n, q in QUERIES.items()]}}
    ]
    return [endpoint(name, url, query, methods=methods) for name, url, methods, query in ENDPOINTS], collections


@pytest.fixture(scope="module")
def rest_double() -> HasuraDouble:
    endpoints, collections = rest_metadata()
    return HasuraDouble(rest_endpoints=endpoints, query_collections=collections)


@pytest.fixture(scope="module")
def rest_server(rest_double: HasuraDouble) -> Iterator[RunningServer]:
    with serving(rest_double.app) as running:
        yield running


@pytest.fixture
async def rest(rest_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(rest_server.url, headers=ADMIN) as http:
        yield http


def api_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """``encodeQErr``: the error body of every non-GraphQL API, with the real status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert "x-request-id" not in response.headers
    body = response.json()
    assert list(body) == ["error", "path", "code"]
    return dict(body)


# --- metadata (Cache.hs buildEndpoint / resolveEndpoint, buildSchemaCacheRule) -------------------------------


def test_inconsistent_endpoints_are_reported_and_not_served() -> None:
    endpoints, collections = rest_metadata()
    built = RestEndpoints(endpoints, collections)
    served = {endpoint.name for endpoint in built.endpoints}
    assert served == {"simple", "users", "rename_user", "typed", "quantity", "by_ids", "user"} | {
        "any_segment",
        "literal_segment",
    }
    # queries/endpoints/endpoint_subscription.yaml: "in endpoint foo: query with name simple_subscription is a
    # subscription"; a shorthand query and fragments fall in resolveEndpoint's "multiple definitions" case.
    assert built.inconsistencies == [
        "Inconsistent object: in endpoint subscription: query with name subscription is a subscription",
        "Inconsistent object: in endpoint shorthand: query with name shorthand has multiple definitions.",
        "Inconsistent object: in endpoint two_operations: query with name two_operations has multiple definitions.",
        "Inconsistent object: in endpoint with_fragment: query with name with_fragment has multiple definitions.",
        "Inconsistent object: in endpoint missing_query: query with name nope does not exist in collection "
        "test_collection",
        "Ambiguous URL paths: amb/:id, amb/literal",
    ]


def test_url_problems_are_reported_but_served() -> None:
    # Cache.hs: DuplicateRestVariables, InvalidRestSegments (imReason texts in Hasura/RQL/Types/SchemaCache.hs)
    collections = [{"name": "c", "definition": {"queries": [{"name": "q", "query": "query { users { id } }"}]}}]
    endpoints = [
        endpoint("dup", "foo/:id/bar/:id", "q", collection="c"),
        endpoint("empty", "foo/:/bar", "q", collection="c"),
        endpoint("other", "elsewhere", "q", collection="c"),
        endpoint("gone", "gone", "q", collection="x"),
    ]
    built = RestEndpoints(endpoints, collections)
    assert [e.name for e in built.endpoints] == ["dup", "empty", "other"]
    assert built.inconsistencies == [
        "Inconsistent object: in endpoint gone: collection with name x does not exist",
        "Duplicate variables found in endpoint path: foo/:id/bar/:id",
        "Empty segments or unnamed variables are not allowed: foo/:/bar",
    ]


@pytest.mark.parametrize(
    ("methods", "message"),
    [(["GET", "HEAD"], "Method HEAD not supported."), (["get"], "Method get not supported."), ([1], "standard")],
)
def test_methods_outside_hasuras_five_do_not_parse(methods: list[Any], message: str) -> None:
    # EndpointMethod's FromJSON (server/src-lib/Hasura/RQL/Types/Endpoint.hs)
    with pytest.raises(RestMetadataError, match=message):
        RestEndpoints([endpoint("e", "e", "q", methods=methods)], [])


def test_the_demo_metadata_is_consistent() -> None:
    double = HasuraDouble()
    assert double.rest.inconsistencies == []
    assert {e.url for e in double.rest.endpoints} >= {"products", "products/:id", "orders", "documents/:id"}


# --- routing, matching, methods (App.hs, Trie.hs matchPath, Rest.hs) ------------------------------------------


async def test_success_is_the_data_object_without_envelope(rest: httpx.AsyncClient) -> None:
    response = await rest.get("/api/rest/simple", headers={"x-request-id": "rest-1", "accept-encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["x-request-id"] == "rest-1"
    assert response.headers["content-encoding"] == "gzip"
    assert response.json() == {"users": [{"id": scalar_value("uuid", "id", 0)}]}


async def test_unknown_path_is_404_endpoint_not_found(rest: httpx.AsyncClient) -> None:
    # queries/endpoints/endpoint_missing.yaml
    error = api_error(await rest.get("/api/rest/void"), 404)
    assert error == {"error": "Endpoint not found", "path": "$", "code": "not-found"}
    for path in ("/api/rest", "/api/rest/", "/api/rest/simple/extra", "/api/rest/Simple"):
        assert api_error(await rest.get(path), 404)["error"] == "Endpoint not found", path


async def test_wrong_method_is_405_with_the_allowed_methods(rest: httpx.AsyncClient) -> None:
    # queries/endpoints/endpoint_simple_wrong_method.yaml
    error = api_error(await rest.delete("/api/rest/simple"), 405)
    assert error == {"error": "Allowed methods: GET", "path": "$", "code": "method-not-allowed"}
    several = api_error(await rest.get(f"/api/rest/users/{USER_ID}"), 405)
    assert several["error"] == "Allowed methods: POST, PATCH"


async def test_two_matching_templates_are_a_500(rest: httpx.AsyncClient) -> None:
    # Rest.hs MatchAmbiguous; "amb/literal" matches both amb/:id and amb/literal
    error = api_error(await rest.get("/api/rest/amb/literal"), 500)
    assert error == {"error": "Multiple endpoints match request", "path": "$", "code": "unexpected"}
    other = await rest.get("/api/rest/amb/other")
    assert other.json() == {"users_by_pk": {"id": "other"}}


@pytest.mark.parametrize(
    ("method", "message"),
    [
        ("HEAD", None),
        ("OPTIONS", "Method OPTIONS not supported."),
        ("TRACE", "Method TRACE not supported."),
        ("PURGE", "Nonstandard method not allowed for REST endpoints"),
    ],
)
async def test_methods_other_than_the_five_are_400(rest: httpx.AsyncClient, method: str, message: str | None) -> None:
    # App.hs customEndpointHandler: before any endpoint lookup, so even an unknown path gets this error
    for path in ("/api/rest/simple", "/api/rest/void"):
        response = await rest.request(method, path)
        assert response.status_code == 400
        if message is not None:  # a HEAD response has no body
            assert response.json() == {"error": message, "path": "$", "code": "bad-request"}


async def test_authentication_comes_before_the_endpoint_lookup(rest_server: RunningServer) -> None:
    async with http_client(rest_server.url) as anonymous:
        missing = api_error(await anonymous.get("/api/rest/void"), 401)
        assert missing == {
            "error": "x-hasura-admin-secret/x-hasura-access-key required, but not found",
            "path": "$",
            "code": "access-denied",
        }
        wrong = api_error(await anonymous.get("/api/rest/simple", headers={"x-hasura-admin-secret": "no"}), 401)
        assert wrong["error"] == "invalid x-hasura-admin-secret/x-hasura-access-key"
        ok = await anonymous.get("/api/rest/simple", headers={"x-hasura-admin-secret": SECRET, "x-hasura-role": "user"})
        assert ok.status_code == 200


async def test_the_session_is_recorded_as_for_graphql(rest_server: RunningServer, rest_double: HasuraDouble) -> None:
    double = rest_double
    headers = {**ADMIN, "x-hasura-role": "user", "x-hasura-user-id": "u1"}
    async with http_client(rest_server.url) as client:
        await client.get("/api/rest/simple", headers=headers)
    record = double.last()
    assert (record.method, record.path, record.status) == ("GET", "/api/rest/simple", 200)
    assert record.session == {"x-hasura-role": "user", "x-hasura-user-id": "u1"}


async def test_empty_segments_are_dropped_and_segments_percent_decoded(rest: httpx.AsyncClient) -> None:
    # Spock's router filters empty path pieces; WAI decodes each piece (%2F becomes a separator)
    assert (await rest.get("/api/rest//simple/")).status_code == 200
    assert (await rest.get("/api//rest/simple")).status_code == 200
    renamed = await rest.post("/api/rest/users/a%20b+c", json={"name": "n"})
    assert renamed.json() == {"update_users_by_pk": {"id": "a b+c", "name": "n"}}
    split = await rest.post("/api/rest/users/a%2Fb", json={"name": "n"})
    assert api_error(split, 404)["error"] == "Endpoint not found"


# --- variables (Rest.hs resolveVar and the order of reqArgs ++ path variables) ---------------------------------


async def test_path_beats_body_beats_query_string(rest: httpx.AsyncClient) -> None:
    response = await rest.post(
        f"/api/rest/users/{USER_ID}?id=from-query&name=from-query", json={"id": "from-body", "name": "from-body"}
    )
    assert response.json() == {"update_users_by_pk": {"id": USER_ID, "name": "from-body"}}
    from_query = await rest.post(f"/api/rest/users/{USER_ID}?name=from-query", content=b"")
    assert from_query.json()["update_users_by_pk"]["name"] == "from-query"


async def test_query_string_values_are_parsed_against_the_declared_types(rest: httpx.AsyncClient) -> None:
    response = await rest.get(f"/api/rest/products/{USER_ID}/typed?active=false&price=12.5&sku=123&description=")
    assert response.json() == {
        "update_products_by_pk": {
            "id": USER_ID,
            "active": False,  # JSON boolean for a Boolean
            "price": 12.5,  # JSON number for numeric
            "sku": "123",  # String: the text itself, though it parses as a number
            "description": "description-1",  # empty text for a nullable variable: left unset
        }
    }
    flag = await rest.get(f"/api/rest/products/{USER_ID}/typed?active&price=abc")
    assert flag.json()["update_products_by_pk"]["active"] is True  # a Boolean key without value is true
    assert flag.json()["update_products_by_pk"]["price"] == "abc"  # not a number: passed as text
    quantity = await rest.get(f"/api/rest/inventory/{USER_ID}?quantity=7")
    assert quantity.json() == {"update_inventory_by_pk": {"id": USER_ID, "quantity": 7}}
    limited = await rest.get("/api/rest/users?limit=5")
    assert len(limited.json()["users"]) == 5
    defaulted = await rest.get("/api/rest/users?limit=")  # nullable and empty: unset, so the default 2
    assert len(defaulted.json()["users"]) == 2


async def test_text_that_does_not_fit_the_type_fails_in_graphql_validation(rest: httpx.AsyncClient) -> None:
    error = api_error(await rest.get(f"/api/rest/products/{USER_ID}/typed?active=yes"), 400)
    assert error["code"] == "validation-failed"
    assert api_error(await rest.get(f"/api/rest/inventory/{USER_ID}?quantity=NaN"), 400)["code"] == "validation-failed"


async def test_body_values_pass_unchanged(rest: httpx.AsyncClient) -> None:
    response = await rest.post(
        f"/api/rest/products/{USER_ID}/typed", json={"active": True, "price": "99.90", "description": None}
    )
    assert response.json()["update_products_by_pk"] | {"sku": None} == {
        "id": USER_ID,
        "active": True,
        "price": "99.90",
        "sku": None,
        "description": None,
    }
    listed = await rest.post("/api/rest/by_ids", json={"ids": [USER_ID]})
    assert listed.status_code == 200


async def test_a_body_that_is_not_a_json_object_is_ignored(rest: httpx.AsyncClient) -> None:
    for body in (b"[1]", b'"x"', b"not json", b"{"):
        response = await rest.post(f"/api/rest/users/{USER_ID}?name=q", content=body)
        assert response.json()["update_users_by_pk"]["name"] == "q", body


async def test_form_encoded_bodies_are_text_parameters(rest: httpx.AsyncClient) -> None:
    response = await rest.post(f"/api/rest/products/{USER_ID}/typed", data={"active": "true", "price": "3"})
    assert response.json()["update_products_by_pk"]["active"] is True
    assert response.json()["update_products_by_pk"]["price"] == 3


async def test_an_undeclared_variable_is_400_unexpected_variable(rest: httpx.AsyncClient) -> None:
    error = api_error(await rest.get("/api/rest/simple?utm=x"), 400)
    assert error == {"error": "Unexpected variable utm", "path": "$", "code": "bad-request"}
    # a :name path segment the operation does not declare is just as unexpected
    path_only = HasuraDouble(rest_endpoints=[endpoint("p", "p/:x", "simple")], query_collections=rest_metadata()[1])
    ep, bound = path_only.rest.match("GET", "p/1")
    with pytest.raises(HasuraError, match="Unexpected variable x"):
        path_only.rest.variables(ep, bound, b"", None, b"")
    body = api_error(await rest.post(f"/api/rest/users/{USER_ID}", json={"name": "n", "extra": 1}), 400)
    assert body["error"] == "Unexpected variable extra"
    # names that are not GraphQL names are dropped (G.mkName), so they never count as unexpected
    assert (await rest.get("/api/rest/simple?utm-source=x&a.b=1&=v&1x=2")).status_code == 200


async def test_list_variables_cannot_come_from_text(rest: httpx.AsyncClient) -> None:
    error = api_error(await rest.get('/api/rest/by_ids?ids=a"b'), 400)
    assert error == {
        "error": "List variables are not currently supported in URL or Query parameters. "
        '(Variable ids, with value "a\\"b")',
        "path": "$",
        "code": "bad-request",
    }


async def test_a_missing_non_nullable_variable_fails_validation(rest: httpx.AsyncClient) -> None:
    # queries/endpoints/endpoint_with_query_arg_missing_arg.yaml
    error = api_error(await rest.get("/api/rest/user"), 400)
    assert error == {
        "error": 'expecting a value for non-nullable variable: "id"',
        "path": "$",
        "code": "validation-failed",
    }


async def test_query_strings_are_decoded_like_wai(rest: httpx.AsyncClient) -> None:
    # queries/endpoints/endpoint_with_query_arg_url_encoded*.yaml: %46 is F, %2520 stays %20 after one decoding
    response = await rest.post(f"/api/rest/users/{USER_ID}?name=%46oo+X%2520Y", content=b"")
    assert response.json()["update_users_by_pk"]["name"] == "Foo X%20Y"


def test_query_string_and_path_helpers() -> None:
    assert parse_query(b"a=1&b=x+y;c&d=&a=2&&%41=%zz") == [
        ("a", "1"), ("b", "x y"), ("c", ""), ("d", ""), ("a", "2"), ("", ""), ("A", "%zz"),
    ]  # fmt: skip
    assert rest_path(b"/api/rest/products/a%2Fb") == "products/a/b"
    assert rest_path(b"//api//rest//x//") == "x"
    assert rest_path(b"/api/rest") == ""
    assert rest_path(b"/api/restful/x") is None
    assert haskell_show('a"\\\n\u00e9' + "1") == '"a\\"\\\\\\n\\233\\&1"'


# --- the demo's endpoints (hasura/metadata/rest_endpoints.yaml) on the default double -------------------------


async def test_the_demo_endpoints_run_on_the_default_double(client: httpx.AsyncClient) -> None:
    headers = {**ADMIN, "x-hasura-role": "user", "x-hasura-user-id": USER_ID}
    products = await client.get("/api/rest/products?limit=2", headers=headers)
    assert [set(p) for p in products.json()["products"]] == [
        {"id", "sku", "name", "price", "currency", "inventory"}
    ] * 2
    product = await client.get(f"/api/rest/products/{USER_ID}", headers=headers)
    assert product.json()["products_by_pk"]["id"] == USER_ID
    orders = await client.get("/api/rest/orders", headers=headers)
    assert len(orders.json()["orders"]) == 3
    edit = {"title": "Launch plan", "content": "- ship it\n"}
    for method in ("PATCH", "POST"):
        updated = await client.request(method, f"/api/rest/documents/{USER_ID}", json=edit, headers=headers)
        assert updated.json() == {"update_documents_by_pk": {"id": USER_ID, "version": 1}}, method
    assert api_error(await client.get(f"/api/rest/documents/{USER_ID}", headers=headers), 405)["error"] == (
        "Allowed methods: PATCH, POST"
    )


async def test_faults_apply_to_rest_requests(rest: httpx.AsyncClient, rest_double: HasuraDouble) -> None:
    rest_double.faults.status = 503
    rest_double.faults.times = 1
    failed = await rest.get("/api/rest/simple")
    assert (failed.status_code, failed.text) == (503, "Service Unavailable")
    assert rest_double.last().fault == "status"
    assert (await rest.get("/api/rest/simple")).status_code == 200

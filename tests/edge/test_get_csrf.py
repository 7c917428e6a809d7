"""GET queries and CSRF: a GET that carries a header no cross-site request can carry (a bearer token, an
API key, the JWT config's custom header) needs no preflight header; one that relies on cookies or on no
credentials at all still does (``edge/pipeline/receive_request.py``, ``_cannot_be_cross_site``)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import httpx
import pytest

from edge.pipeline.receive_request import ReceiveRequest
from tests.edge.conftest import EdgeFactory
from tests.hasura_double import HasuraDouble
from tests.support.servers import RunningServer
from tests.support.tokens import HS256_KEY, mint

QUERY = "query Products($n: Int!) { products(limit: $n) { id } }"
VARIABLES = {"n": 2}
# What urql's fetchExchange sends for a query by default (@urql/core 6: ``preferGetMethod`` is
# "within-url-limit", ``makeFetchURL`` and ``makeFetchOptions``): the request in the URL, this Accept,
# no Content-Type, and the caller's fetchOptions headers.
URQL_ACCEPT = (
    "application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed"
)
# graphql-request's GET: the request in the URL and its Accept, no Content-Type.
GRAPHQL_REQUEST_ACCEPT = "application/graphql-response+json, application/json"
CSRF = "csrf-header-required"


def urql_get(url: str, **headers: str) -> httpx.Response:
    params = {"query": QUERY, "operationName": "Products", "variables": json.dumps(VARIABLES)}
    return httpx.get(f"{url}/graphql?{urlencode(params)}", headers={"accept": URQL_ACCEPT, **headers})


def graphql_request_get(url: str, **headers: str) -> httpx.Response:
    params = {"query": QUERY, "variables": json.dumps(VARIABLES), "operationName": "Products"}
    return httpx.get(f"{url}/v1/graphql?{urlencode(params)}", headers={"Accept": GRAPHQL_REQUEST_ACCEPT, **headers})


def code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["extensions"]["code"])


def test_an_urql_get_with_a_bearer_token_is_served(edge: RunningServer, hasura: HasuraDouble):
    response = urql_get(edge.url, authorization=f"Bearer {mint()}")
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]["products"]) == 2
    forwarded = hasura.last()
    assert forwarded.method == "POST"
    assert forwarded.json() == {"query": QUERY, "operationName": "Products", "variables": VARIABLES}


def test_a_graphql_request_get_with_a_bearer_token_is_served(edge: RunningServer, hasura: HasuraDouble):
    response = graphql_request_get(edge.url, Authorization=f"Bearer {mint()}")
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]["products"]) == 2
    assert hasura.last().session == {"x-hasura-role": "user", "x-hasura-user-id": "user-1"}


@pytest.mark.parametrize("token", ["not-a-jwt", mint(key="another-key-that-is-long-enough-0123456789abcdef")])
def test_a_get_with_a_bad_token_gets_the_authentication_error(edge: RunningServer, hasura: HasuraDouble, token: str):
    response = urql_get(edge.url, authorization=f"Bearer {token}")
    assert response.status_code == 401  # urql's Accept names application/graphql-response+json
    assert code(response) == "invalid-jwt"
    assert hasura.requests == []


def test_a_get_with_an_api_key_is_not_refused_as_csrf(edge: RunningServer, hasura: HasuraDouble):
    response = urql_get(edge.url, **{"x-api-key": "hk_anything"})
    assert response.status_code == 401  # this edge has no key store: the key is refused, not the request
    assert code(response) == "invalid-headers"
    assert hasura.requests == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Basic dXNlcjpwYXNz"},  # browsers attach Basic/Digest/Negotiate by themselves
        {"authorization": "Negotiate YIIBhgYGKwYBBQUCoIIBejCCAXag"},
        {"content-type": "text/plain"},
        {"x-hasura-role": "anonymous", "cookie": "session=abc"},
    ],
)
def test_a_get_without_a_header_only_scripts_set_still_needs_the_preflight_header(
    start_edge: EdgeFactory, hasura: HasuraDouble, headers: dict[str, str]
):
    edge = start_edge(unauthorized_role="anonymous")
    response = urql_get(edge.url, **headers)
    assert response.status_code == 400
    assert code(response) == CSRF
    assert hasura.requests == []
    if "authorization" not in headers:
        # The preflight header is all it lacked: the unauthorized role runs it then.
        served = urql_get(edge.url, **headers, **{"graphql-require-preflight": "1"})
        assert served.status_code == 200
        assert hasura.last().session == {"x-hasura-role": "anonymous"}


def test_a_cookie_jwt_get_still_needs_the_preflight_header(start_edge: EdgeFactory, hasura: HasuraDouble):
    secret = {"type": "HS256", "key": HS256_KEY, "header": {"type": "Cookie", "name": "hasura_token"}}
    edge = start_edge(jwt_secret=json.dumps(secret))
    cookie = f"hasura_token={mint()}"
    refused = urql_get(edge.url, cookie=cookie)
    assert refused.status_code == 400 and code(refused) == CSRF
    assert hasura.requests == []
    served = urql_get(edge.url, cookie=cookie, **{"apollo-require-preflight": "true"})
    assert served.status_code == 200
    assert hasura.last().session == {"x-hasura-role": "user", "x-hasura-user-id": "user-1"}


def test_a_get_with_the_custom_jwt_header_is_served(start_edge: EdgeFactory, hasura: HasuraDouble):
    secret = {"type": "HS256", "key": HS256_KEY, "header": {"type": "CustomHeader", "name": "X-Auth-Token"}}
    edge = start_edge(jwt_secret=json.dumps(secret), allowed_origins="https://app.example.com")
    response = urql_get(edge.url, **{"x-auth-token": mint()})
    assert response.status_code == 200, response.text
    assert hasura.last().session == {"x-hasura-role": "user", "x-hasura-user-id": "user-1"}
    assert hasura.last().header("x-auth-token") is None  # consumed by the edge, never forwarded
    # A browser on an allowed origin may send it: the preflight names it.
    preflight = httpx.options(
        f"{edge.url}/graphql",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-auth-token",
        },
    )
    assert preflight.status_code == 204
    assert "x-auth-token" in preflight.headers["access-control-allow-headers"].split(", ")


@pytest.mark.parametrize(
    "query", ["mutation { delete_products(where: {}) { affected_rows } }", "subscription { products { id } }"]
)
def test_a_get_mutation_with_a_bearer_token_is_still_405(edge: RunningServer, hasura: HasuraDouble, query: str):
    response = httpx.get(f"{edge.url}/graphql", params={"query": query}, headers={"Authorization": f"Bearer {mint()}"})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert hasura.requests == []


@pytest.mark.parametrize(
    ("token_headers", "counted"),
    [
        ([b"x-auth-token"], (b"x-api-key", b"x-auth-token")),
        ([b"X-Auth-Token", b"x-auth-token"], (b"x-api-key", b"x-auth-token")),
        # Headers a cross-site request can carry prove nothing, whatever the JWT config names.
        ([b"cookie", b"authorization", b"accept", b"content-language", b"referer", b"sec-fetch-site"], (b"x-api-key",)),
    ],
)
def test_only_headers_a_simple_request_cannot_carry_lift_the_check(
    token_headers: list[bytes], counted: tuple[bytes, ...]
):
    receive = ReceiveRequest(max_body_bytes=1024, allow_get=True, token_headers=token_headers)
    assert receive.credential_headers == counted

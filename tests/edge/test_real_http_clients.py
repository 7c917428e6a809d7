"""Real GraphQL clients against a running edge: what each makes of the edge's errors.

Apollo Client 4, urql and graphql-request run under Node from ``tests/clients/`` (``make install`` installs them with
``npm ci``; the tests skip, saying why, when ``node`` or the packages are absent); gql runs here. The
point is the one ``docs/errors.md`` makes: an expired token must reach a Hasura-style token-refresh
error link as a GraphQL error with ``extensions.code == "invalid-jwt"``, whatever the client accepts.

The client code runs as the user guide shows it: the ``apollo-http``, ``urql`` and ``graphql-request``
recipes (regions of ``tests/clients/apollo.mjs``, ``urql.mjs`` and ``graphql-request.mjs``) and ``gql-http``
(``tests/clients/gql_recipes.py``).
"""

from __future__ import annotations

from typing import Any

import pytest
from gql import Client, gql
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXTransport

from tests.clients import gql_recipes
from tests.edge.conftest import EdgeFactory
from tests.hasura_double import HasuraDouble
from tests.support.node_clients import run_node
from tests.support.tokens import hasura_claims, mint

QUERY = "query Users { users(limit: 1) { id } }"
MODERN = "application/graphql-response+json; charset=utf-8"
LEGACY = "application/json; charset=utf-8"


# --- Apollo Client 4 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "first_response"),
    [
        (None, {"status": 401, "contentType": MODERN}),  # Apollo Client 4's own Accept: the modern type first
        ("application/json", {"status": 200, "contentType": LEGACY}),  # a client set up for Hasura
        ("*/*", {"status": 200, "contentType": LEGACY}),  # Apollo Client 3's default Accept
    ],
    ids=["default-accept", "application-json", "any"],
)
def test_apollo_error_link_refreshes_an_expired_token_and_retries(
    start_edge: EdgeFactory, hasura: HasuraDouble, accept: str | None, first_response: dict[str, Any]
) -> None:
    edge = start_edge(error_statuses="negotiate")
    outcome = run_node(
        "apollo.mjs",
        graphqlUrl=f"{edge.url}/v1/graphql",
        token=mint(expires_in=-3600),
        freshToken=mint(),
        accept=accept,
        query=QUERY,
    )
    assert outcome["refreshes"] == 1  # the error link saw invalid-jwt as a GraphQL error
    assert outcome["responses"] == [first_response, {"status": 200, "contentType": LEGACY}]
    assert outcome["error"] is None
    assert len(outcome["data"]["users"]) == 1
    assert len(hasura.graphql_requests()) == 1  # only the retry with the fresh token reached Hasura


@pytest.mark.parametrize("accept", [None, "application/json"], ids=["default-accept", "application-json"])
def test_apollo_sees_a_bad_token_as_a_graphql_error(start_edge: EdgeFactory, accept: str | None) -> None:
    edge = start_edge(error_statuses="negotiate")
    outcome = run_node("apollo.mjs", graphqlUrl=f"{edge.url}/v1/graphql", token="not-a-jwt", accept=accept, query=QUERY)
    # The link saw invalid-jwt, refreshed (the harness's refresh gives no better token), retried once, gave up.
    assert outcome["refreshes"] == 1
    assert len(outcome["responses"]) == 2
    assert outcome["error"] == {"name": "CombinedGraphQLErrors", "graphQLCodes": ["invalid-jwt"], "statusCode": None}


def test_apollo_with_forced_edge_statuses_and_only_json_gets_a_server_error(start_edge: EdgeFactory) -> None:
    """The problem this negotiation solves: a 401 sent as ``application/json`` never reaches the link as
    a GraphQL error (Apollo Client 4 trusts an ``application/json`` body only with a 2xx)."""
    edge = start_edge(error_statuses="edge")
    outcome = run_node(
        "apollo.mjs",
        graphqlUrl=f"{edge.url}/v1/graphql",
        token=mint(expires_in=-3600),
        freshToken=mint(),
        accept="application/json",
        query=QUERY,
    )
    assert outcome["responses"] == [{"status": 401, "contentType": LEGACY}]
    assert outcome["refreshes"] == 0  # the link saw a ServerError, not invalid-jwt
    assert outcome["error"] == {"name": "ServerError", "graphQLCodes": None, "statusCode": 401}


# --- urql ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "status", "content_type"),
    [(None, 401, MODERN), ("application/json", 200, LEGACY)],
    ids=["default-accept", "application-json"],
)
def test_urql_sees_an_expired_token_as_a_graphql_error(
    start_edge: EdgeFactory, hasura: HasuraDouble, accept: str | None, status: int, content_type: str
) -> None:
    edge = start_edge(error_statuses="negotiate")
    outcome = run_node(
        "urql.mjs",
        graphqlUrl=f"{edge.url}/v1/graphql",
        token=mint(expires_in=-3600),
        accept=accept,
        preferGetMethod=False,  # POST, as Hasura clients send (a GET must pass the edge's CSRF check first)
        query=QUERY,
    )
    assert outcome["responses"] == [{"status": status, "contentType": content_type}]
    assert outcome["data"] is None
    assert outcome["error"] == {
        "name": "CombinedError",
        "graphQLCodes": ["invalid-jwt"],
        "graphQLMessages": ["Could not verify JWT: JWTExpired"],
        "networkError": None,
        "status": status,
    }
    assert hasura.graphql_requests() == []


def test_the_apollo_recipe_sends_the_token_and_gets_data(start_edge: EdgeFactory, hasura: HasuraDouble) -> None:
    edge = start_edge(error_statuses="negotiate")
    outcome = run_node("apollo.mjs", graphqlUrl=f"{edge.url}/v1/graphql", token=mint(), query=QUERY)
    assert outcome["error"] is None
    assert len(outcome["data"]["users"]) == 1
    assert outcome["refreshes"] == 0
    assert [(r["method"], r["path"]) for r in outcome["requests"]] == [("POST", "/v1/graphql")]
    assert hasura.last().session == {"x-hasura-role": "user", "x-hasura-user-id": "user-1"}


def test_the_urql_recipe_queries_with_a_get_and_no_csrf_header(start_edge: EdgeFactory, hasura: HasuraDouble) -> None:
    """urql sends a query that fits in a URL as a GET (its default); the bearer token is what lets the edge
    serve it without a CSRF preflight header (tests/edge/test_get_csrf.py)."""
    edge = start_edge(error_statuses="negotiate")
    outcome = run_node("urql.mjs", graphqlUrl=f"{edge.url}/v1/graphql", token=mint(), query=QUERY)
    assert outcome["error"] is None
    assert len(outcome["data"]["users"]) == 1
    assert outcome["requests"] == [{"method": "GET", "path": "/v1/graphql", "headers": ["accept", "authorization"]}]
    assert outcome["responses"] == [{"status": 200, "contentType": LEGACY}]
    assert hasura.last().session == {"x-hasura-role": "user", "x-hasura-user-id": "user-1"}


def test_the_urql_recipe_sees_a_bad_token_on_its_get_as_invalid_jwt(
    start_edge: EdgeFactory, hasura: HasuraDouble
) -> None:
    edge = start_edge(error_statuses="negotiate")
    outcome = run_node("urql.mjs", graphqlUrl=f"{edge.url}/v1/graphql", token=mint(expires_in=-3600), query=QUERY)
    assert outcome["requests"][0]["method"] == "GET"
    assert outcome["error"]["name"] == "CombinedError"
    assert outcome["error"]["graphQLCodes"] == ["invalid-jwt"]
    assert hasura.graphql_requests() == []


# --- gql (Python) ----------------------------------------------------------------------------


async def test_gql_aiohttp_sees_an_expired_token_as_hasura_did(start_edge: EdgeFactory) -> None:
    edge = start_edge(error_statuses="negotiate")
    transport = AIOHTTPTransport(
        url=f"{edge.url}/graphql", headers={"Authorization": f"Bearer {mint(expires_in=-3600)}"}
    )
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        with pytest.raises(TransportQueryError) as raised:
            await session.execute(gql(QUERY))
    # aiohttp sends Accept: */*, so the answer is Hasura's: 200 and Hasura's error body.
    assert raised.value.errors == [
        {"message": "Could not verify JWT: JWTExpired", "extensions": {"path": "$", "code": "invalid-jwt"}}
    ]
    assert transport.response_headers is not None
    assert transport.response_headers["Content-Type"] == LEGACY


@pytest.mark.parametrize(("accept", "content_type"), [(None, LEGACY), (MODERN, MODERN)])
def test_gql_httpx_sees_an_expired_token_as_a_graphql_error(
    start_edge: EdgeFactory, accept: str | None, content_type: str
) -> None:
    edge = start_edge(error_statuses="negotiate")
    headers = {"Authorization": f"Bearer {mint(expires_in=-3600)}"}
    if accept is not None:
        headers["Accept"] = accept
    transport = HTTPXTransport(url=f"{edge.url}/graphql", headers=headers)
    with (
        Client(transport=transport, fetch_schema_from_transport=False) as session,
        pytest.raises(TransportQueryError) as raised,
    ):
        session.execute(gql(QUERY))
    assert raised.value.errors is not None
    assert raised.value.errors[0]["extensions"]["code"] == "invalid-jwt"
    assert transport.response_headers is not None
    assert transport.response_headers["Content-Type"] == content_type


# --- gql recipe (tests/clients/gql_recipes.py) --------------------------------------------------


async def test_the_gql_http_recipe_gets_data(
    start_edge: EdgeFactory, hasura: HasuraDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    edge = start_edge(error_statuses="negotiate")
    monkeypatch.setattr(gql_recipes, "GRAPHQL_URL", f"{edge.url}/v1/graphql")
    result = await gql_recipes.run_query(QUERY, mint(hasura_claims("gql-recipe-user")))
    assert len(result["users"]) == 1
    assert hasura.last().session == {"x-hasura-role": "user", "x-hasura-user-id": "gql-recipe-user"}


@pytest.mark.parametrize("token", [mint(expires_in=-3600), "not-a-jwt"], ids=["expired", "garbage"])
async def test_the_gql_http_recipe_fails_fast_on_a_bad_token(
    start_edge: EdgeFactory, hasura: HasuraDouble, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    edge = start_edge(error_statuses="negotiate")
    monkeypatch.setattr(gql_recipes, "GRAPHQL_URL", f"{edge.url}/v1/graphql")
    with pytest.raises(TransportQueryError) as raised:
        await gql_recipes.run_query(QUERY, token)
    assert raised.value.errors is not None
    assert raised.value.errors[0]["extensions"]["code"] == "invalid-jwt"
    assert gql_recipes.is_invalid_jwt(raised.value)
    assert hasura.graphql_requests() == []


# --- graphql-request ---------------------------------------------------------------------------


def test_the_graphql_request_recipe_queries_with_a_get_and_no_csrf_header(
    start_edge: EdgeFactory, hasura: HasuraDouble
) -> None:
    edge = start_edge(error_statuses="negotiate")
    outcome = run_node("graphql-request.mjs", graphqlUrl=f"{edge.url}/v1/graphql", token=mint(), query=QUERY)
    assert outcome["error"] is None
    assert len(outcome["data"]["users"]) == 1
    [request] = outcome["requests"]
    assert (request["method"], request["path"]) == ("GET", "/v1/graphql")
    assert not {"graphql-require-preflight", "apollo-require-preflight", "x-apollo-operation-name"} & set(
        request["headers"]
    )
    assert hasura.last().session == {"x-hasura-role": "user", "x-hasura-user-id": "user-1"}


@pytest.mark.parametrize(
    ("accept", "status"),
    [(None, 401), ("application/json", 200)],  # graphql-request's own Accept; one set up for Hasura
    ids=["default-accept", "application-json"],
)
def test_graphql_request_sees_an_expired_token_as_invalid_jwt(
    start_edge: EdgeFactory, hasura: HasuraDouble, accept: str | None, status: int
) -> None:
    edge = start_edge(error_statuses="negotiate")
    outcome = run_node(
        "graphql-request.mjs",
        graphqlUrl=f"{edge.url}/v1/graphql",
        token=mint(expires_in=-3600),
        accept=accept,
        query=QUERY,
    )
    assert outcome["data"] is None
    assert outcome["error"] == {
        "name": "ClientError",
        "invalidJwt": True,
        "graphQLCodes": ["invalid-jwt"],
        "status": status,
    }
    assert hasura.graphql_requests() == []

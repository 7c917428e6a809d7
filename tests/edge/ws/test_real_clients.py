"""Real client libraries through the edge over wss: gql (both subprotocols), and the npm ``graphql-ws``,
``subscriptions-transport-ws`` and Apollo Client clients, pinned in ``tests/clients/`` (``make install`` runs
``npm ci`` there; the tests skip, saying why, when node or the packages are missing).

The client code runs as the user guide shows it: the recipes ``apollo-ws``, ``graphql-ws-fail-fast``,
``graphql-ws-refresh``, ``subscriptions-transport-ws`` (regions of ``tests/clients/*.mjs``) and ``gql-ws``
(``tests/clients/gql_recipes.py``)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from gql import Client, gql
from gql.transport.exceptions import TransportConnectionFailed, TransportServerError
from gql.transport.websockets import WebsocketsTransport
from websockets.exceptions import ConnectionClosedError

from tests.clients import gql_recipes
from tests.edge.ws.conftest import LEGACY, TRANSPORT, WssEdge
from tests.hasura_double import HasuraDouble
from tests.support.node_clients import run_node
from tests.support.tokens import hasura_claims, mint

SUBSCRIPTION = "subscription Users { users(limit: 2) { id name } }"


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_gql_subscribes_through_the_edge(wss_edge: WssEdge, hasura: HasuraDouble, subprotocol: str) -> None:
    hasura.ws.tick_seconds = 0.05
    transport = WebsocketsTransport(
        url=wss_edge.url,
        ssl=wss_edge.ssl(),
        init_payload={"headers": {"Authorization": f"Bearer {mint(hasura_claims('gql-user'))}"}},
        subprotocols=[subprotocol],
    )
    results = []
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        async for result in session.subscribe(gql(SUBSCRIPTION)):
            results.append(result)
            if len(results) == 3:
                break
        answer = await session.execute(gql("query { users(limit: 1) { id } }"))
    assert all(len(result["users"]) == 2 for result in results)
    assert len(answer["users"]) == 1
    assert hasura.ws.connections[0].session == {"x-hasura-role": "user", "x-hasura-user-id": "gql-user"}


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_gql_sees_plan_errors_as_graphql_errors(start_wss_edge: object, subprotocol: str) -> None:
    edge = start_wss_edge(plans={"default": {"graphql": {"max_depth": 1}}})  # type: ignore[operator]
    transport = WebsocketsTransport(
        url=edge.url, ssl=edge.ssl(), init_payload={"Authorization": f"Bearer {mint()}"}, subprotocols=[subprotocol]
    )
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        with pytest.raises(Exception, match="depth"):
            async for _ in session.subscribe(gql("subscription { users { orders { user { id } } } }")):
                pass


# --- npm clients and the recipes (tests/clients/*.mjs, run with tests/support/node_clients.run_node) -------

NODE_SUBSCRIPTION = "subscription Users { users(limit: 2) { id } }"
NODE_QUERY = "query Users { users(limit: 1) { id } }"


def node_input(edge: WssEdge, token: str, **extra: Any) -> dict[str, Any]:
    return {
        "graphqlUrl": f"{edge.https_url}/v1/graphql",
        "wsUrl": edge.url_at("/v1/graphql"),
        "token": token,
        "ca_file": edge.tls.ca,
        **extra,
    }


@pytest.mark.parametrize(
    ("script", "subprotocol"),
    [("graphql-ws-fail-fast.mjs", TRANSPORT), ("subscriptions-transport-ws.mjs", LEGACY)],
    ids=["graphql-ws", "subscriptions-transport-ws"],
)
def test_the_npm_clients_subscribe_through_the_edge(
    wss_edge: WssEdge, hasura: HasuraDouble, script: str, subprotocol: str
) -> None:
    hasura.ws.tick_seconds = 0.05
    outcome = run_node(
        script, **node_input(wss_edge, mint(hasura_claims("node-user")), subscription=NODE_SUBSCRIPTION, results=2)
    )
    assert outcome.get("error") is None, outcome
    assert [len(r["data"]["users"]) for r in outcome["results"]] == [2, 2]
    assert [socket["protocols"] for socket in outcome["sockets"]] == [[subprotocol]]
    assert hasura.ws.connections[0].subprotocol == subprotocol
    assert hasura.ws.connections[0].session == {"x-hasura-role": "user", "x-hasura-user-id": "node-user"}


def test_the_apollo_ws_recipe_subscribes_over_the_socket_and_queries_over_http(
    wss_edge: WssEdge, hasura: HasuraDouble
) -> None:
    hasura.ws.tick_seconds = 0.05
    outcome = run_node(
        "apollo-ws.mjs",
        **node_input(
            wss_edge, mint(hasura_claims("apollo-user")), subscription=NODE_SUBSCRIPTION, query=NODE_QUERY, results=2
        ),
    )
    assert outcome["failed"] is None, outcome
    assert [len(result["users"]) for result in outcome["results"]] == [2, 2]
    assert len(outcome["queryData"]["users"]) == 1
    assert [socket["protocols"] for socket in outcome["sockets"]] == [[TRANSPORT]]  # the subscription
    assert [(r["method"], r["path"]) for r in outcome["requests"]] == [("POST", "/v1/graphql")]  # the query
    assert hasura.ws.connections[0].session == {"x-hasura-role": "user", "x-hasura-user-id": "apollo-user"}
    assert hasura.last().session == {"x-hasura-role": "user", "x-hasura-user-id": "apollo-user"}


@pytest.mark.parametrize("token", [mint(expires_in=-3600), "not-a-jwt"], ids=["expired", "garbage"])
def test_the_graphql_ws_fail_fast_recipe_gives_up_on_the_first_4403(
    wss_edge: WssEdge, hasura: HasuraDouble, token: str
) -> None:
    outcome = run_node("graphql-ws-fail-fast.mjs", **node_input(wss_edge, token, subscription=NODE_SUBSCRIPTION))
    assert outcome["results"] == []
    assert outcome["error"]["code"] == 4403, outcome
    assert json.loads(outcome["error"]["reason"]) == {"server_error_msg": "4403: Forbidden"}
    # One connection: without the recipe's shouldRetry, graphql-ws would have tried 5 more times.
    assert len(outcome["sockets"]) == 1
    assert outcome["sockets"][0]["close"]["code"] == 4403
    assert hasura.ws.connections == []  # the edge refused the token itself


def test_the_graphql_ws_refresh_recipe_reconnects_with_a_new_token(wss_edge: WssEdge, hasura: HasuraDouble) -> None:
    hasura.ws.tick_seconds = 0.05
    outcome = run_node(
        "graphql-ws-refresh.mjs",
        **node_input(
            wss_edge,
            mint(hasura_claims("refresh-user"), expires_in=-3600),
            freshToken=mint(hasura_claims("refresh-user")),
            subscription=NODE_SUBSCRIPTION,
            results=2,
        ),
    )
    assert outcome["error"] is None, outcome
    assert [len(r["data"]["users"]) for r in outcome["results"]] == [2, 2]
    assert outcome["refreshes"] == 1
    assert len(outcome["sockets"]) == 2  # the expired token's connection, closed 4403, then the fresh one
    assert outcome["sockets"][0]["close"]["code"] == 4403
    assert len(hasura.ws.connections) == 1
    assert hasura.ws.connections[0].session == {"x-hasura-role": "user", "x-hasura-user-id": "refresh-user"}


def test_the_subscriptions_transport_ws_recipe_stops_on_a_refused_token(
    wss_edge: WssEdge, hasura: HasuraDouble
) -> None:
    outcome = run_node(
        "subscriptions-transport-ws.mjs",
        # settleMs: longer than the client's first reconnection delay (its backoff starts at 1 s).
        **node_input(wss_edge, mint(expires_in=-3600), subscription=NODE_SUBSCRIPTION, results=1, settleMs=3000),
    )
    assert outcome["results"] == []
    assert outcome["logged"] == ["The edge refused the token: Could not verify JWT: JWTExpired"], outcome
    assert len(outcome["sockets"]) == 1  # closed in connectionCallback: no reconnection
    assert hasura.ws.connections == []


# --- gql recipe (tests/clients/gql_recipes.py) ----------------------------------------------------


@pytest.fixture
def gql_ws_recipe(wss_edge: WssEdge, monkeypatch: pytest.MonkeyPatch) -> WssEdge:
    """The recipe's WS_URL pointed at the edge, and the test CA trusted (the recipe passes no ssl context:
    websockets' default context reads SSL_CERT_FILE)."""
    monkeypatch.setattr(gql_recipes, "WS_URL", wss_edge.url_at("/v1/graphql"))
    monkeypatch.setenv("SSL_CERT_FILE", str(wss_edge.tls.ca))
    return wss_edge


async def test_the_gql_ws_recipe_subscribes(gql_ws_recipe: WssEdge, hasura: HasuraDouble) -> None:
    hasura.ws.tick_seconds = 0.05
    results = []
    async with asyncio.timeout(30):
        async for result in gql_ws_recipe_subscribe(mint(hasura_claims("gql-ws-user"))):
            results.append(result)
            if len(results) == 2:
                break
    assert [len(result["users"]) for result in results] == [2, 2]
    assert hasura.ws.connections[0].subprotocol == TRANSPORT  # gql offers both; the edge picks this one
    assert hasura.ws.connections[0].session == {"x-hasura-role": "user", "x-hasura-user-id": "gql-ws-user"}


async def test_the_gql_ws_recipe_fails_at_connect_on_a_bad_token(gql_ws_recipe: WssEdge, hasura: HasuraDouble) -> None:
    """gql offers both subprotocols and the edge picks graphql-transport-ws: a refused token closes the
    socket with 4403, which gql raises as TransportConnectionFailed (caused by websockets'
    ConnectionClosedError carrying the close)."""
    with pytest.raises(TransportConnectionFailed) as raised:
        async with asyncio.timeout(30):
            async for _ in gql_ws_recipe_subscribe(mint(expires_in=-3600)):
                pass
    closed = raised.value.__cause__
    assert isinstance(closed, ConnectionClosedError)
    assert closed.rcvd is not None
    assert closed.rcvd.code == 4403
    assert json.loads(closed.rcvd.reason) == {"server_error_msg": "4403: Forbidden"}
    assert hasura.ws.connections == []


async def test_gql_on_the_legacy_subprotocol_sees_a_bad_token_as_a_server_error(
    wss_edge: WssEdge, hasura: HasuraDouble
) -> None:
    """With ``subprotocols=["graphql-ws"]`` the edge refuses with connection_error: gql raises
    TransportServerError with the message."""
    transport = WebsocketsTransport(
        url=wss_edge.url_at("/v1/graphql"),
        ssl=wss_edge.ssl(),
        init_payload={"headers": {"Authorization": f"Bearer {mint(expires_in=-3600)}"}},
        subprotocols=[LEGACY],
    )
    with pytest.raises(TransportServerError, match="JWTExpired"):
        async with Client(transport=transport, fetch_schema_from_transport=False) as session:
            async for _ in session.subscribe(gql(SUBSCRIPTION)):
                pass
    assert hasura.ws.connections == []


def gql_ws_recipe_subscribe(token: str) -> Any:
    return gql_recipes.subscribe(SUBSCRIPTION, token)

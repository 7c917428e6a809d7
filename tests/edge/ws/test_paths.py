"""Subscriptions on Hasura's own path, ``/v1/graphql``: the same endpoint as ``/graphql``, both protocols."""

from __future__ import annotations

import pytest

from edge.plans import GraphQLLimits, Plan
from tests.edge.ws.conftest import LEGACY, TRANSPORT, WssEdge, WssEdgeFactory, bearer, open_client
from tests.hasura_double import HasuraDouble
from tests.support.tokens import hasura_claims

QUERY = "subscription { users(limit: 2) { id name } }"


@pytest.mark.parametrize(("subprotocol", "data_type"), [(TRANSPORT, "next"), (LEGACY, "data")])
async def test_a_subscription_on_v1_graphql_runs_through_the_edge(
    wss_edge: WssEdge, hasura: HasuraDouble, subprotocol: str, data_type: str
) -> None:
    async with open_client(wss_edge, subprotocol, path="/v1/graphql") as client:
        assert client.subprotocol == subprotocol
        assert await client.init(bearer(claims=hasura_claims("user-3"))) == {"type": "connection_ack"}
        await client.subscribe("1", QUERY)
        message = await client.receive()
        assert message["type"] == data_type and message["id"] == "1"
        assert len(message["payload"]["data"]["users"]) == 2
    # The edge's identity, not the client's: the same trust boundary as on /graphql.
    assert hasura.ws.connections[0].session == {"x-hasura-role": "user", "x-hasura-user-id": "user-3"}


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_v1_graphql_applies_the_plan_limits_of_graphql(
    start_wss_edge: WssEdgeFactory, hasura: HasuraDouble, subprotocol: str
) -> None:
    edge = start_wss_edge(plans={"default": Plan(graphql=GraphQLLimits(max_depth=2))})
    async with open_client(edge, subprotocol, path="/v1/graphql") as client:
        assert await client.init(bearer()) == {"type": "connection_ack"}
        await client.subscribe("deep", "subscription { users { orders { user { id } } } }")
        message = await client.receive()
        assert message["type"] == "error" and message["id"] == "deep"
        errors = message["payload"] if isinstance(message["payload"], list) else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "depth-limit-exceeded"
    assert hasura.ws.connections[0].operations == []


async def test_credentials_are_required_on_v1_graphql(wss_edge: WssEdge) -> None:
    async with open_client(wss_edge, TRANSPORT, path="/v1/graphql") as client:
        await client.send({"type": "connection_init"})
        assert (await client.closed())[0] == 4403

"""Operations over the socket: plan policies per operation, subscription caps, message caps, keep-alives."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edge.plans import GraphQLLimits, Plan
from tests.edge.ws.conftest import LEGACY, TRANSPORT, WssEdge, WssEdgeFactory, bearer, open_client
from tests.hasura_double import HasuraDouble

SUB = "subscription { users(limit: 1) { id } }"
DEEP = "subscription { users { orders { user { orders { user { id } } } } } }"


def _plans(**plan: Any) -> dict[str, Any]:
    return {"plans": {"default": Plan(**plan)}}


async def _error_for(client: Any, op_id: str) -> dict[str, Any]:
    message = await client.receive()
    assert message["type"] == "error" and message["id"] == op_id, message
    return message


def _code(message: dict[str, Any]) -> str:
    payload = message["payload"]
    errors = payload if isinstance(payload, list) else payload["errors"]
    return str(errors[0]["extensions"]["code"])


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_an_operation_over_a_plan_limit_gets_an_error_and_the_connection_lives(
    start_wss_edge: WssEdgeFactory, hasura: HasuraDouble, subprotocol: str
) -> None:
    edge = start_wss_edge(**_plans(graphql=GraphQLLimits(max_depth=2)))
    async with open_client(edge, subprotocol) as client:
        await client.init(bearer())
        await client.subscribe("deep", DEEP)
        error = await _error_for(client, "deep")
        assert _code(error) == "depth-limit-exceeded"
        if subprotocol == LEGACY:
            assert await client.receive() == {"type": "complete", "id": "deep"}
        await client.subscribe("ok", SUB)
        assert (await client.receive())["id"] == "ok"
    assert [op["id"] for op in hasura.ws.connections[0].operations] == ["ok"]


async def test_queries_and_mutations_over_the_socket_are_checked_and_relayed(wss_edge: WssEdge) -> None:
    async with open_client(wss_edge, TRANSPORT) as client:
        await client.init(bearer())
        await client.subscribe("q", "query { users(limit: 2) { id } }")
        assert (await client.receive())["type"] == "next"
        assert await client.receive() == {"type": "complete", "id": "q"}
        await client.subscribe("i", "query { __schema { types { name } } }")
        assert _code(await _error_for(client, "i")) == "introspection-disabled"


async def test_an_unparsable_query_is_an_operation_error(wss_edge: WssEdge) -> None:
    async with open_client(wss_edge, TRANSPORT) as client:
        await client.init(bearer())
        await client.subscribe("bad", "subscription { users { ")
        await _error_for(client, "bad")
        await client.send({"type": "ping"})
        assert await client.receive() == {"type": "pong"}


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_subscriptions_per_connection_are_capped_by_the_plan(
    start_wss_edge: WssEdgeFactory, subprotocol: str
) -> None:
    edge = start_wss_edge(**_plans(max_subscriptions=2))
    async with open_client(edge, subprotocol) as client:
        await client.init(bearer())
        for op_id in ("a", "b"):
            await client.subscribe(op_id, SUB)
            assert (await client.receive())["id"] == op_id
        await client.subscribe("c", SUB)
        assert _code(await _error_for(client, "c")) == "subscription-limit-exceeded"
        if subprotocol == LEGACY:
            assert await client.receive() == {"type": "complete", "id": "c"}
        stop = "complete" if subprotocol == TRANSPORT else "stop"
        await client.send({"type": stop, "id": "a"})
        await client.subscribe("d", SUB)
        assert (await client.receive())["id"] == "d"


async def test_subscriptions_per_user_are_capped_across_connections(start_wss_edge: WssEdgeFactory) -> None:
    edge = start_wss_edge(**_plans(max_subscriptions=2))
    async with open_client(edge, TRANSPORT) as first, open_client(edge, TRANSPORT) as second:
        await first.init(bearer())
        await second.init(bearer())
        await first.subscribe("a", SUB)
        await second.subscribe("a", SUB)
        assert (await first.receive())["id"] == "a"
        assert (await second.receive())["id"] == "a"
        await second.subscribe("b", SUB)
        assert _code(await _error_for(second, "b")) == "subscription-limit-exceeded"
        await first.close()
    async with open_client(edge, TRANSPORT) as third:
        await third.init(bearer())
        await third.subscribe("x", SUB)
        assert (await third.receive())["id"] == "x"


async def test_the_plan_rate_applies_per_operation(start_wss_edge: WssEdgeFactory) -> None:
    edge = start_wss_edge(plans={"default": {"rate": {"requests_per_second": 0.01, "burst": 1}}})
    async with open_client(edge, TRANSPORT) as client:
        await client.init(bearer())
        await client.subscribe("a", SUB)
        assert (await client.receive())["id"] == "a"
        await client.subscribe("b", SUB)
        assert _code(await _error_for(client, "b")) == "rate-limited"


async def test_the_cost_budget_applies_per_operation_after_the_rate(start_wss_edge: WssEdgeFactory) -> None:
    edge = start_wss_edge(
        plans={
            "default": {
                "rate": {"requests_per_second": 0.01, "burst": 2},
                "cost_budget": {"maximum": 1, "restore_rate": 0.001},
            }
        }
    )
    async with open_client(edge, TRANSPORT) as client:
        await client.init(bearer())
        await client.subscribe("a", SUB)  # costs the budget's one point
        assert (await client.receive())["id"] == "a"
        await client.subscribe("b", SUB)
        assert _code(await _error_for(client, "b")) == "cost-budget-exceeded"
        await client.subscribe("c", SUB)  # the one the budget refused used the rate's second unit
        assert _code(await _error_for(client, "c")) == "rate-limited"


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_a_duplicate_id_closes_with_4409(wss_edge: WssEdge, subprotocol: str) -> None:
    async with open_client(wss_edge, subprotocol) as client:
        await client.init(bearer())
        await client.subscribe("same", SUB)
        await client.subscribe("same", SUB)
        assert (await client.closed())[0] == 4409


async def test_a_message_over_the_size_cap_closes_with_1009(start_wss_edge: WssEdgeFactory) -> None:
    edge = start_wss_edge(ws_max_message_bytes=4096)
    async with open_client(edge, TRANSPORT) as client:
        await client.init(bearer())
        await client.subscribe("big", "subscription { users { id } }" + " " * 5000)
        assert (await client.closed())[0] == 1009


async def test_a_message_flood_closes_with_1008(start_wss_edge: WssEdgeFactory) -> None:
    edge = start_wss_edge(ws_max_messages_per_second=10, ws_message_burst=20)
    async with open_client(edge, TRANSPORT) as client:
        await client.init(bearer())
        for _ in range(200):
            await client.send({"type": "pong"})
        assert (await client.closed())[0] == 1008


async def test_unknown_messages_close_with_4400_on_graphql_transport_ws(wss_edge: WssEdge) -> None:
    async with open_client(wss_edge, TRANSPORT) as client:
        await client.init(bearer())
        await client.send({"type": "test"})
        assert (await client.closed())[0] == 4400


async def test_unknown_messages_get_connection_error_on_graphql_ws_and_the_socket_lives(wss_edge: WssEdge) -> None:
    async with open_client(wss_edge, LEGACY) as client:
        await client.init(bearer())
        await client.send({"type": "test"})
        assert (await client.receive())["type"] == "connection_error"
        await client.send("not json")
        assert (await client.receive())["type"] == "connection_error"
        await client.subscribe("1", SUB)
        assert (await client.receive())["type"] == "data"


async def test_connection_terminate_closes_with_1000(wss_edge: WssEdge) -> None:
    async with open_client(wss_edge, LEGACY) as client:
        await client.init(bearer())
        await client.send({"type": "connection_terminate"})
        assert (await client.closed())[0] == 1000


async def test_keepalives_both_ways(start_wss_edge: WssEdgeFactory, hasura: HasuraDouble) -> None:
    hasura.ws.keepalive = 0.1  # Hasura's keep-alives are answered by the edge, never relayed
    edge = start_wss_edge(ws_keepalive_seconds=0.2)
    async with open_client(edge, TRANSPORT) as client:
        await client.init(bearer())
        seen = [(await client.receive(keepalives=True)) for _ in range(2)]
        assert seen == [{"type": "ping", "payload": {"message": "keepalive"}}] * 2
        await client.send({"type": "ping", "payload": {"n": 1}})
        message = await client.receive(keepalives=True)
        while message["type"] == "ping":
            message = await client.receive(keepalives=True)
        assert message == {"type": "pong", "payload": {"n": 1}}
    async with open_client(edge, LEGACY) as client:
        await client.init(bearer())
        assert await client.receive(keepalives=True) == {"type": "ka"}  # right after the ack, as Hasura
        assert await client.receive(keepalives=True) == {"type": "ka"}


async def test_subscription_data_is_relayed_with_the_clients_ids(wss_edge: WssEdge, hasura: HasuraDouble) -> None:
    hasura.ws.tick_seconds = 0.02
    async with open_client(wss_edge, TRANSPORT) as client:
        await client.init(bearer())
        await client.subscribe("s-1", SUB, variables={}, operationName=None)
        messages = [await client.receive() for _ in range(5)]
        assert {m["id"] for m in messages} == {"s-1"}
        await client.send({"type": "complete", "id": "s-1"})
        await client.send({"type": "ping"})
        message = await client.receive()
        while message["type"] != "pong":
            assert message["type"] == "next"  # in flight before the complete reached Hasura
            message = await client.receive()
    sent = hasura.ws.connections[0].operations[0]
    assert sent["id"] == "s-1" and json.dumps(sent["payload"]).count("users") == 1


async def test_introspection_roles_may_introspect_over_the_socket_as_over_http(
    start_wss_edge: WssEdgeFactory, hasura: HasuraDouble
) -> None:
    edge = start_wss_edge(introspection_roles="editor")
    schema = "query { __schema { queryType { name } } }"
    async with open_client(edge, TRANSPORT) as client:
        await client.init(bearer())
        await client.subscribe("user", schema)
        assert _code(await _error_for(client, "user")) == "introspection-disabled"
    async with open_client(edge, TRANSPORT) as client:
        init = bearer()
        init["headers"]["x-hasura-role"] = "editor"
        await client.init(init)
        await client.subscribe("editor", schema)
        message = await client.receive()
        assert message["type"] == "next", message
        assert message["payload"]["data"]["__schema"]["queryType"]["name"] == "query_root"

"""Hasura going away with operations in flight: subscriptions follow the new connection, a query or
mutation is never sent again and ends with an error for its id (before any close of the client socket)."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.edge.ws.conftest import LEGACY, TRANSPORT, Client, WssEdgeFactory, bearer, open_client
from tests.hasura_double import HasuraDouble

SUB = "subscription { users(limit: 1) { id } }"
MUTATION = 'mutation { insert_orders_one(object: {status: "pending"}) { id } }'
LOST = {"message": "The connection to the GraphQL engine was lost; the result is unknown"}


def received_by_hasura(hasura: HasuraDouble, op_id: str) -> int:
    return sum(1 for connection in hasura.ws.connections for op in connection.operations if op["id"] == op_id)


def wait_until_received(hasura: HasuraDouble, op_id: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while received_by_hasura(hasura, op_id) == 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"Hasura never received {op_id}")
        time.sleep(0.01)


async def expect_lost(client: Client, op_id: str) -> None:
    """The error that ends an operation whose result was lost: the protocol's shape, code upstream-unavailable."""
    message = await client.receive()
    error = {**LOST, "extensions": {"code": "upstream-unavailable"}}
    if client.subprotocol == TRANSPORT:
        assert message == {"type": "error", "id": op_id, "payload": [error]}
    else:
        assert message == {"type": "error", "id": op_id, "payload": {"errors": [error]}}
        assert await client.receive() == {"type": "complete", "id": op_id}


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_a_mutation_in_flight_when_hasura_goes_away_is_not_sent_again(
    start_wss_edge: WssEdgeFactory, hasura: HasuraDouble, subprotocol: str
) -> None:
    edge = start_wss_edge(ws_upstream_reconnect_attempts=2)
    hasura.ws.hold_mutations = True  # after the start: starting an edge resets the double
    data = "next" if subprotocol == TRANSPORT else "data"
    async with open_client(edge, subprotocol) as client:
        await client.init(bearer())
        await client.subscribe("sub", SUB)
        assert (await client.receive())["id"] == "sub"
        await client.subscribe("mut", MUTATION)
        await asyncio.to_thread(wait_until_received, hasura, "mut")  # Hasura has it and does not answer
        await asyncio.to_thread(hasura.ws.close_all, 1012)
        await expect_lost(client, "mut")
        await asyncio.to_thread(hasura.ws.wait_for_connections, 2)
        again = await client.receive()  # the subscription, re-subscribed under its id
        assert (again["type"], again["id"]) == (data, "sub")
        await client.subscribe("after", "query { users(limit: 1) { id } }")
        after = await client.receive()
        assert (after["type"], after["id"]) == (data, "after")  # the socket carries on
    assert received_by_hasura(hasura, "mut") == 1
    assert [op["id"] for op in hasura.ws.connections[1].operations] == ["sub", "after"]


async def test_the_error_for_a_mutation_in_flight_comes_before_the_close(
    start_wss_edge: WssEdgeFactory, hasura: HasuraDouble
) -> None:
    """Without a reconnect the client is closed with 1012, which graphql-ws clients answer by reconnecting and
    re-sending every operation still open: the mutation's error must reach them first."""
    edge = start_wss_edge(ws_upstream_reconnect_attempts=0)
    hasura.ws.hold_mutations = True
    async with open_client(edge, TRANSPORT) as client:
        await client.init(bearer())
        await client.subscribe("mut", MUTATION)
        await asyncio.to_thread(wait_until_received, hasura, "mut")
        await asyncio.to_thread(hasura.ws.close_all, 1012)
        await expect_lost(client, "mut")
        assert (await client.closed())[0] == 1012
    assert received_by_hasura(hasura, "mut") == 1


# --- the edge itself closing: shutdown, expired credentials -----------------------------------------------


def _result(message: dict[str, object], op_id: str, subprotocol: str) -> bool:
    return message.get("id") == op_id and message.get("type") == ("next" if subprotocol == TRANSPORT else "data")


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_graceful_shutdown_lets_a_mutation_in_flight_finish_before_closing_with_1001(
    start_wss_edge: WssEdgeFactory, hasura: HasuraDouble, subprotocol: str
) -> None:
    edge = start_wss_edge()
    hasura.ws.mutation_delay = 0.5
    async with open_client(edge, subprotocol) as client:
        await client.init(bearer())
        await client.subscribe("sub", SUB)
        assert (await client.receive())["id"] == "sub"
        await client.subscribe("mut", MUTATION)
        await asyncio.to_thread(wait_until_received, hasura, "mut")
        stopping = asyncio.create_task(asyncio.to_thread(edge.server.stop))
        await asyncio.sleep(0.1)  # the drain has begun: a new operation is not forwarded
        await client.subscribe("late", "query { users(limit: 1) { id } }")
        assert _result(await client.receive(), "mut", subprotocol)  # the result, not an error
        assert (await client.closed())[0] == 1001
        await stopping
    assert received_by_hasura(hasura, "mut") == 1
    assert received_by_hasura(hasura, "late") == 0  # the client sends it again on its next connection


async def test_at_the_end_of_the_drain_a_mutation_still_in_flight_ends_with_an_error_before_1001(
    start_wss_edge: WssEdgeFactory, hasura: HasuraDouble
) -> None:
    edge = start_wss_edge(upstream_drain_seconds=0.3)
    hasura.ws.hold_mutations = True
    async with open_client(edge, TRANSPORT) as client:
        await client.init(bearer())
        await client.subscribe("mut", MUTATION)
        await asyncio.to_thread(wait_until_received, hasura, "mut")
        stopping = asyncio.create_task(asyncio.to_thread(edge.server.stop))
        message = await client.receive()
        assert message["id"] == "mut" and message["type"] == "error"
        assert message["payload"][0]["extensions"]["code"] == "connection-closed"  # type: ignore[index]
        assert (await client.closed())[0] == 1001
        await stopping
    assert received_by_hasura(hasura, "mut") == 1


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_expired_credentials_end_a_mutation_in_flight_before_the_4403(
    start_wss_edge: WssEdgeFactory, hasura: HasuraDouble, subprotocol: str
) -> None:
    edge = start_wss_edge()
    hasura.ws.hold_mutations = True
    async with open_client(edge, subprotocol) as client:
        await client.init(bearer(expires_in=2))
        await client.subscribe("mut", MUTATION)
        await asyncio.to_thread(wait_until_received, hasura, "mut")
        message = await client.receive(timeout=10)
        assert (message["type"], message["id"]) == ("error", "mut")
        code = (message["payload"][0] if subprotocol == TRANSPORT else message["payload"]["errors"][0])["extensions"]  # type: ignore[index]
        assert code == {"code": "connection-closed"}
        assert (await client.closed(timeout=10))[0] == 4403
    assert received_by_hasura(hasura, "mut") == 1

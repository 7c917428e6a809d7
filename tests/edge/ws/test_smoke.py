from __future__ import annotations

from tests.edge.ws.conftest import LEGACY, TRANSPORT, WssEdge, bearer, open_client

QUERY = "subscription { users(limit: 2) { id name } }"


async def test_transport_subscription_over_wss(wss_edge: WssEdge) -> None:
    async with open_client(wss_edge, TRANSPORT) as client:
        assert client.subprotocol == TRANSPORT
        assert await client.init(bearer()) == {"type": "connection_ack"}
        await client.subscribe("1", QUERY)
        message = await client.receive()
        assert message["type"] == "next" and message["id"] == "1"
        assert len(message["payload"]["data"]["users"]) == 2


async def test_legacy_subscription_over_wss(wss_edge: WssEdge) -> None:
    async with open_client(wss_edge, LEGACY) as client:
        assert client.subprotocol == LEGACY
        assert await client.init(bearer()) == {"type": "connection_ack"}
        await client.subscribe("1", QUERY)
        message = await client.receive()
        assert message["type"] == "data" and message["id"] == "1"

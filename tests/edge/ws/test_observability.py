"""Open sockets and subscriptions are visible in metrics; subscription-seconds are metered per user."""

from __future__ import annotations

import asyncio

import httpx

from tests.edge.ws.conftest import TRANSPORT, WssEdgeFactory, bearer, open_client
from tests.support.tokens import hasura_claims

QUERY = "subscription { products(limit: 1) { id } }"


async def test_gauges_and_subscription_seconds(start_wss_edge: WssEdgeFactory) -> None:
    edge = start_wss_edge(metrics_token="scrape", usage_admin_secret="billing")
    async with httpx.AsyncClient(verify=edge.ssl()) as http:

        async def scrape() -> str:
            response = await http.get(f"{edge.https_url}/metrics", headers={"Authorization": "Bearer scrape"})
            return response.text

        async with open_client(edge, TRANSPORT) as client:
            assert await client.init(bearer(claims=hasura_claims("sub-user"))) == {"type": "connection_ack"}
            await client.subscribe("1", QUERY)
            assert (await client.receive())["type"] == "next"
            text = await scrape()
            assert "edge_websocket_connections 1.0" in text
            assert "edge_subscriptions 1.0" in text
            await asyncio.sleep(0.3)
            await client.send({"type": "complete", "id": "1"})
            await asyncio.sleep(0.2)
        rows: list[dict[str, object]] = []
        for _ in range(50):  # the socket's end is processed just after the client leaves
            report = await http.get(
                f"{edge.https_url}/admin/usage", params={"kind": "user"}, headers={"X-Edge-Usage-Secret": "billing"}
            )
            rows = [row for row in report.json()["subjects"] if row["subject"] == "sub-user"]
            if rows and float(rows[0]["subscription_seconds"]) > 0:  # type: ignore[arg-type]
                break
            await asyncio.sleep(0.05)
        assert rows and float(rows[0]["subscription_seconds"]) >= 0.3  # type: ignore[arg-type]
        assert "edge_subscriptions 0.0" in await scrape()

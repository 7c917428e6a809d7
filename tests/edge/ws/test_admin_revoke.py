"""Revoking an API key through the edge's admin route closes that key's open sockets at once."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Iterator

import httpx
import pytest

from edge.keys.cli import main as keys_main
from tests.edge.ws.conftest import TRANSPORT, WssEdgeFactory, open_client
from tests.hasura_double import HasuraDouble
from tests.support.edge_database import edge_database

KEY = re.compile(r"hek_[a-z2-7]{10}_[A-Za-z0-9_-]{43}")


@pytest.fixture(scope="module")
def keys_database(postgres_server_url: str) -> Iterator[str]:
    with edge_database(postgres_server_url, "edge_ws_revoke") as url:
        yield url


async def test_admin_revoke_closes_the_keys_sockets_with_4403(
    start_wss_edge: WssEdgeFactory, hasura: HasuraDouble, keys_database: str
) -> None:
    out = io.StringIO()
    created = await asyncio.to_thread(  # the CLI runs its own event loop
        keys_main,
        ["create", "--owner", "socket-bot", "--plan", "default", "--role", "service"],
        database_url=keys_database,
        known_plans=["default"],
        out=out,
    )
    assert created == 0
    match = KEY.search(out.getvalue())
    assert match is not None
    key = match.group(0)
    key_id = key.split("_")[1]
    edge = start_wss_edge(database_url=keys_database, admin_secret="ops", api_key_cache_seconds=3600)
    async with open_client(edge, TRANSPORT) as client:
        assert (await client.init({"headers": {"X-API-Key": key}}))["type"] == "connection_ack"
        async with httpx.AsyncClient(verify=edge.ssl()) as http:
            revoked = await http.post(
                f"{edge.https_url}/admin/keys/{key_id}/revoke", headers={"X-Edge-Admin-Secret": "ops"}
            )
        assert revoked.json() == {"revoked": True, "key_id": key_id, "sockets_closed": 1}
        code, _ = await client.closed(timeout=5)
        assert code == 4403

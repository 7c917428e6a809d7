"""Real client libraries through the edge over wss: gql (both subprotocols), and the npm ``graphql-ws`` and
``subscriptions-transport-ws`` clients (installed under ``tests/edge/ws/node/``, gitignored; skipped only when
npm itself is missing)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from gql import Client, gql
from gql.transport.websockets import WebsocketsTransport

from tests.edge.ws.conftest import LEGACY, TRANSPORT, WssEdge
from tests.hasura_double import HasuraDouble
from tests.support.tokens import hasura_claims, mint

SUBSCRIPTION = "subscription Users { users(limit: 2) { id name } }"
NODE_DIR = Path(__file__).parent / "node"


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


def _npm_clients() -> Path:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed")
    if (
        not (NODE_DIR / "node_modules" / "graphql-ws").exists()
        or not (NODE_DIR / "node_modules" / "subscriptions-transport-ws").exists()
    ):
        NODE_DIR.mkdir(exist_ok=True)
        subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--silent",
                "--prefix",
                str(NODE_DIR),
                "graphql-ws@5",
                "subscriptions-transport-ws@0.11",
                "graphql@16",
                "ws@8",
            ],
            check=True,
            timeout=300,
            capture_output=True,
        )
    return NODE_DIR


NODE_SCRIPT = r"""
const WebSocket = require('ws');
const [,, url, protocol, token] = process.argv;
const query = 'subscription { users(limit: 2) { id } }';
const params = { headers: { Authorization: 'Bearer ' + token } };
const done = (value) => { console.log(JSON.stringify(value)); process.exit(0); };
setTimeout(() => done({error: 'timeout'}), 8000);
const got = [];
const sink = {
  next: (r) => { got.push(r); if (got.length === 2) done({results: got}); },
  error: (e) => done({error: String(e && (e.code || e.message || e))}),
  complete: () => {},
};
if (protocol === 'graphql-transport-ws') {
  const { createClient } = require('graphql-ws');
  const client = createClient({ url, webSocketImpl: WebSocket, connectionParams: params, retryAttempts: 0 });
  client.subscribe({ query }, sink);
} else {
  const { SubscriptionClient } = require('subscriptions-transport-ws');
  const client = new SubscriptionClient(url, { connectionParams: params, reconnect: false }, WebSocket);
  client.request({ query }).subscribe(sink);
}
"""


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_the_npm_clients_subscribe_through_the_edge(
    wss_edge: WssEdge, hasura: HasuraDouble, subprotocol: str
) -> None:
    node_dir = await asyncio.to_thread(_npm_clients)
    hasura.ws.tick_seconds = 0.05
    script = node_dir / "client.js"
    script.write_text(NODE_SCRIPT)
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(wss_edge.tls.ca), "NODE_PATH": str(node_dir / "node_modules")}
    process = await asyncio.create_subprocess_exec(
        "node",
        str(script),
        wss_edge.url,
        subprotocol,
        mint(hasura_claims("node-user")),
        cwd=node_dir,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert "results" in result, (result, err.decode()[-500:])
    assert [len(r["data"]["users"]) for r in result["results"]] == [2, 2]
    assert hasura.ws.connections[0].subprotocol == subprotocol
    assert hasura.ws.connections[0].session == {"x-hasura-role": "user", "x-hasura-user-id": "node-user"}

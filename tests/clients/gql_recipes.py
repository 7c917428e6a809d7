"""Recipes gql-http and gql-ws: gql (Python) against the edge, over HTTP and over WebSocket.

The tests (tests/edge/test_real_http_clients.py, tests/edge/ws/test_real_clients.py) point GRAPHQL_URL and
WS_URL at a running edge (they set the module attributes) and call these functions. What gql raises:

- HTTP, expired or refused token: ``TransportQueryError``; its ``errors`` are Hasura's, and
  ``errors[0]["extensions"]["code"] == "invalid-jwt"`` (aiohttp sends ``Accept: */*``, so the edge answers
  as Hasura does: 200 and the error body).
- WebSocket, refused token: the edge refuses at connection_init, so ``session.subscribe`` raises before
  any result. gql offers both subprotocols and the edge picks ``graphql-transport-ws``: it closes 4403 and
  gql raises ``TransportConnectionFailed`` whose ``__cause__`` is websockets' ``ConnectionClosedError``
  (``.rcvd.code == 4403``). On the legacy ``graphql-ws`` subprotocol (``subprotocols=["graphql-ws"]``) the
  edge sends connection_error and gql raises ``TransportServerError`` with the message.
"""

# ruff: noqa: E402  (each recipe region holds its own imports, as a user would paste it)
from __future__ import annotations

GRAPHQL_URL = "https://edge.example.com/v1/graphql"
WS_URL = "wss://edge.example.com/v1/graphql"

# ruff format would add blank lines before "# end recipe", inside the regions.
# fmt: off
# recipe: gql-http
from typing import Any

from gql import Client, gql
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportQueryError


async def run_query(query: str, token: str) -> dict[str, Any]:
    transport = AIOHTTPTransport(url=GRAPHQL_URL, headers={"Authorization": f"Bearer {token}"})
    async with Client(transport=transport) as session:
        result: dict[str, Any] = await session.execute(gql(query))
        return result


def is_invalid_jwt(error: TransportQueryError) -> bool:
    """The edge (like Hasura) refused the token: get a new one; retrying with this one cannot succeed."""
    return any((e.get("extensions") or {}).get("code") == "invalid-jwt" for e in error.errors or [])
# end recipe
# fmt: on


# fmt: off
# recipe: gql-ws
from collections.abc import AsyncIterator

from gql.transport.websockets import WebsocketsTransport


async def subscribe(query: str, token: str) -> AsyncIterator[dict[str, Any]]:
    # A refused token fails the connection before any result: no retry here, get a new token instead.
    transport = WebsocketsTransport(url=WS_URL, init_payload={"headers": {"Authorization": f"Bearer {token}"}})
    async with Client(transport=transport) as session:
        async for result in session.subscribe(gql(query)):
            yield result
# end recipe
# fmt: on

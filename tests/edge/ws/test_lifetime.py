"""Beyond Hasura: token expiry, in-band refresh, key revocation, upstream loss, shutdown, slow readers."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from jose import jwt as jose_jwt

from edge.app import EdgeApp, create_app
from edge.keys.key_format import generate_key, hash_key
from edge.keys.model import ApiKey
from edge.keys.store import ApiKeyStore
from tests.edge.conftest import edge_settings, start_edge_app
from tests.edge.ws.conftest import LEGACY, TRANSPORT, TLSFiles, WssEdge, WssEdgeFactory, bearer, open_client
from tests.hasura_double import HasuraDouble
from tests.support.servers import RunningServer
from tests.support.tokens import hasura_claims, mint

SUB = "subscription { users(limit: 1) { id } }"


def _app(edge: WssEdge) -> EdgeApp:
    app = edge.server.app
    assert isinstance(app, EdgeApp)
    return app


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_the_socket_closes_with_4403_when_the_token_expires(wss_edge: WssEdge, subprotocol: str) -> None:
    credentials = bearer(expires_in=2)
    expires_at = jose_jwt.get_unverified_claims(credentials["headers"]["Authorization"].removeprefix("Bearer "))["exp"]
    async with open_client(wss_edge, subprotocol) as client:
        assert (await client.init(credentials))["type"] == "connection_ack"
        await client.subscribe("1", SUB)
        # The waits below only turn a socket that is never closed into an error; the reason names the cause.
        if subprotocol == LEGACY:
            message = await client.receive(timeout=30)
            while message["type"] != "connection_error":
                message = await client.receive(timeout=30)
            assert message["payload"] == "Credentials expired"
        code, reason = await client.closed(timeout=30)
        assert (code, reason) == (4403, "Credentials expired")
        # Not before the token's exp (this clock is read after the edge's, which closed the socket).
        assert time.time() >= expires_at


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_a_refresh_keeps_subscriptions_with_their_ids_past_the_old_expiry(
    wss_edge: WssEdge, hasura: HasuraDouble, subprotocol: str
) -> None:
    hasura.ws.tick_seconds = 0.1
    data = "next" if subprotocol == TRANSPORT else "data"
    async with open_client(wss_edge, subprotocol) as client:
        await client.init(bearer(expires_in=2))
        await client.subscribe("live", SUB)
        assert (await client.receive())["type"] == data
        fresh = mint(hasura_claims(**{"x-hasura-org-id": "org-2"}), expires_in=300)
        await client.send({"type": "refresh", "payload": {"headers": {"Authorization": f"Bearer {fresh}"}}})
        message = await client.receive()
        while message["type"] == data:
            message = await client.receive()
        assert message == {"type": "refresh_ack"}
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:  # past the first token's expiry
            message = await client.receive()
            assert message["type"] == data and message["id"] == "live"
    first, second = hasura.ws.connections[:2]
    assert [op["id"] for op in second.operations] == ["live"]
    assert second.session is not None and second.session["x-hasura-org-id"] == "org-2"
    assert first.closed


async def test_a_refresh_for_another_user_is_refused_and_the_socket_lives(wss_edge: WssEdge) -> None:
    async with open_client(wss_edge, TRANSPORT) as client:
        await client.init(bearer())
        other = mint(hasura_claims("someone-else"))
        await client.send({"type": "refresh", "payload": {"Authorization": f"Bearer {other}"}})
        reply = await client.receive()
        assert reply["type"] == "refresh_error"
        assert reply["payload"]["extensions"]["code"] == "access-denied"
        await client.send({"type": "refresh", "payload": {"Authorization": "Bearer broken.token.value"}})
        assert (await client.receive())["type"] == "refresh_error"
        await client.subscribe("1", SUB)
        assert (await client.receive())["type"] == "next"


async def test_a_refresh_before_the_ack_closes_with_4401(wss_edge: WssEdge) -> None:
    async with open_client(wss_edge, TRANSPORT) as client:
        await client.send({"type": "refresh", "payload": bearer()})
        assert (await client.closed())[0] == 4401


@pytest.mark.parametrize(("hasura_code", "client_code"), [(1012, 1012), (1011, 1011), (1001, 1012)])
async def test_losing_hasura_closes_clients_with_a_fitting_code(
    start_wss_edge: WssEdgeFactory, hasura: HasuraDouble, hasura_code: int, client_code: int
) -> None:
    edge = start_wss_edge(ws_upstream_reconnect_attempts=0)
    async with open_client(edge, TRANSPORT) as client:
        await client.init(bearer())
        await client.subscribe("1", SUB)
        await client.receive()
        await asyncio.to_thread(hasura.ws.close_all, hasura_code)
        assert (await client.closed())[0] == client_code


async def test_hasura_down_after_a_loss_closes_clients_with_1013_or_1012(
    start_wss_edge: WssEdgeFactory, hasura: HasuraDouble
) -> None:
    edge = start_wss_edge(ws_upstream_reconnect_attempts=1)
    async with open_client(edge, LEGACY) as client:
        await client.init(bearer())
        hasura.ws.refuse = True
        await asyncio.to_thread(hasura.ws.close_all, 1012)
        assert (await client.closed())[0] == 1012


async def test_after_a_restart_the_edge_reconnects_and_resubscribes(
    start_wss_edge: WssEdgeFactory, hasura: HasuraDouble
) -> None:
    edge = start_wss_edge(ws_upstream_reconnect_attempts=2)
    hasura.ws.tick_seconds = 0.05  # after the start: starting an edge resets the double
    async with open_client(edge, TRANSPORT) as client:
        await client.init(bearer())
        await client.subscribe("kept", SUB)
        await client.receive()
        await asyncio.to_thread(hasura.ws.close_all, 1012)
        await asyncio.to_thread(hasura.ws.wait_for_connections, 2)
        for _ in range(5):
            message = await client.receive()
            assert message["type"] == "next" and message["id"] == "kept"
    assert [op["id"] for op in hasura.ws.connections[1].operations] == ["kept"]


async def test_graceful_shutdown_closes_clients_with_1001(start_wss_edge: WssEdgeFactory, hasura: HasuraDouble) -> None:
    edge = start_wss_edge()
    async with open_client(edge, TRANSPORT) as client:
        await client.init(bearer())
        await client.subscribe("1", SUB)
        await client.receive()
        stopping = asyncio.create_task(asyncio.to_thread(edge.server.stop))
        assert (await client.closed())[0] == 1001
        await stopping
    deadline = time.monotonic() + 3
    while hasura.ws.active() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert hasura.ws.active() == 0


async def test_a_client_that_stops_reading_is_closed_with_1013_and_its_memory_released(
    start_wss_edge: WssEdgeFactory, hasura: HasuraDouble
) -> None:
    edge = start_wss_edge(ws_send_queue_messages=16)
    hasura.ws.tick_seconds = 0.0005
    registry = _app(edge).websocket.services.registry  # type: ignore[union-attr]
    big = "subscription { users(limit: 100) { id name email created_at } }"
    async with open_client(edge, TRANSPORT, max_queue=1) as client:
        await client.init(bearer())
        await client.subscribe("flood", big)
        deadline = time.monotonic() + 20
        while len(registry) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(registry) == 0  # the bridge is gone while the client still has not read
        code, reason = await client.closed(timeout=20)
        assert (code, reason) == (1013, "Client too slow: send queue full")


# --- API key revocation ----------------------------------------------------------------------------------


class _Keys:
    def __init__(self) -> None:
        self.rows: dict[str, tuple[ApiKey, str]] = {}

    async def get_by_key_id(self, key_id: str) -> tuple[ApiKey, str] | None:
        return self.rows.get(key_id)


@pytest.fixture
def key_edge(hasura_server: Any, hasura: HasuraDouble, tls_files: TLSFiles) -> Iterator[tuple[WssEdge, _Keys, str]]:
    keys = _Keys()
    parsed = generate_key()
    now = datetime.now(UTC)
    record = ApiKey(
        uuid.uuid4(), parsed.key_id, "ops", "default", "user", {"x-hasura-user-id": "svc-1"}, now, None, None, None
    )
    keys.rows[parsed.key_id] = (record, hash_key(parsed.key))
    settings = edge_settings(
        hasura_server[1].url, tls_cert_file=tls_files.cert, tls_key_file=tls_files.key, ws_recheck_seconds=0.2
    )
    app = create_app(settings, api_keys=ApiKeyStore(keys, ttl=0.1))
    server: RunningServer = start_edge_app(app, settings)
    try:
        yield WssEdge(server, tls_files), keys, parsed.key
    finally:
        server.stop()


async def test_revoking_a_key_closes_its_sockets_with_4403(key_edge: tuple[WssEdge, _Keys, str]) -> None:
    edge, keys, key = key_edge
    async with open_client(edge, TRANSPORT) as client:
        assert await client.init({"headers": {"X-API-Key": key}}) == {"type": "connection_ack"}
        await client.subscribe("1", SUB)
        assert (await client.receive())["type"] == "next"
        record, stored = next(iter(keys.rows.values()))
        keys.rows[record.key_id] = (replace(record, revoked_at=datetime.now(UTC)), stored)
        code, _ = await client.closed()
        assert code == 4403


async def test_registry_close_key_closes_at_once(key_edge: tuple[WssEdge, _Keys, str]) -> None:
    edge, keys, key = key_edge
    registry = _app(edge).websocket.services.registry  # type: ignore[union-attr]
    async with open_client(edge, LEGACY) as client:
        await client.init({"headers": {"X-API-Key": key}})
        key_id = next(iter(keys.rows))
        loop = edge.server.loop
        closed = asyncio.run_coroutine_threadsafe(_close_key(registry, key_id), loop)
        assert await asyncio.wrap_future(closed) == 1
        message = await client.receive()
        assert message == {"type": "connection_error", "payload": "API key revoked"}
        assert (await client.closed())[0] == 4403


async def _close_key(registry: Any, key_id: str) -> int:
    return int(registry.close_key(key_id))


async def test_recheck_key_after_invalidate_closes_revoked_sockets_at_once(
    key_edge: tuple[WssEdge, _Keys, str],
) -> None:
    edge, keys, key = key_edge
    app = _app(edge)
    registry = app.websocket.services.registry  # type: ignore[union-attr]
    store = app.websocket.services.authenticate.api_keys  # type: ignore[union-attr]
    async with open_client(edge, TRANSPORT) as client:
        assert await client.init({"headers": {"X-API-Key": key}}) == {"type": "connection_ack"}
        key_id = next(iter(keys.rows))

        async def revoke() -> int:
            record, stored = keys.rows[key_id]
            keys.rows[key_id] = (replace(record, revoked_at=datetime.now(UTC)), stored)
            store.invalidate(key_id)
            return int(await registry.recheck_key(key_id))

        closed = asyncio.run_coroutine_threadsafe(revoke(), edge.server.loop)
        assert await asyncio.wrap_future(closed) == 1
        assert (await client.closed())[0] == 4403

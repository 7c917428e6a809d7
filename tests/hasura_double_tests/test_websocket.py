"""The double's WebSocket side against contracts §5: subprotocols, init auth, both vocabularies, close codes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.hasura_double import HasuraDouble
from tests.hasura_double_tests.conftest import SECRET
from tests.support.servers import RunningServer

TRANSPORT = "graphql-transport-ws"
LEGACY = "graphql-ws"
ADMIN_INIT = {"type": "connection_init", "payload": {"headers": {"X-Hasura-Admin-Secret": SECRET}}}
SUB = "subscription { users(limit: 1) { id } }"


def _url(server: RunningServer, path: str = "/v1/graphql") -> str:
    return server.url.replace("http://", "ws://") + path


async def _open(server: RunningServer, subprotocols: list[str] | None) -> ClientConnection:
    return await connect(_url(server), subprotocols=subprotocols, open_timeout=5)  # type: ignore[arg-type]


async def _recv(ws: ClientConnection, *, keepalives: bool = False) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if keepalives or message["type"] not in ("ka", "ping"):
            return dict(message)


async def _close_code(ws: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    assert ws.protocol.close_rcvd is not None
    return ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason


@pytest.mark.parametrize(
    ("offered", "upstream"),
    [([TRANSPORT], TRANSPORT), ([LEGACY], LEGACY), (None, LEGACY), ([TRANSPORT, LEGACY], LEGACY)],
)
async def test_graphql_transport_ws_only_when_it_is_the_single_offer(
    server: RunningServer, double: HasuraDouble, offered: list[str] | None, upstream: str
) -> None:
    ws = await _open(server, offered)
    await ws.send(json.dumps(ADMIN_INIT))
    assert await _recv(ws) == {"type": "connection_ack"}
    await ws.close()
    assert double.ws.connections[0].subprotocol == upstream


async def test_other_paths_are_refused(server: RunningServer) -> None:
    with pytest.raises(InvalidStatus):
        await connect(_url(server, "/v2/graphql"), open_timeout=5)


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_the_ack_is_followed_by_one_keepalive(server: RunningServer, subprotocol: str) -> None:
    ws = await _open(server, [subprotocol])
    await ws.send(json.dumps(ADMIN_INIT))
    assert await _recv(ws, keepalives=True) == {"type": "connection_ack"}
    expected = {"type": "ka"} if subprotocol == LEGACY else {"type": "ping", "payload": {"message": "keepalive"}}
    assert await _recv(ws, keepalives=True) == expected
    await ws.close()


async def test_keepalives_run_every_interval(server: RunningServer, double: HasuraDouble) -> None:
    double.ws.keepalive = 0.05
    ws = await _open(server, [LEGACY])
    assert [await _recv(ws, keepalives=True) for _ in range(2)] == [{"type": "ka"}] * 2
    await ws.close()


async def test_init_headers_resolve_the_session_like_http(server: RunningServer, double: HasuraDouble) -> None:
    ws = await _open(server, [TRANSPORT])
    headers = {"X-Hasura-Admin-Secret": SECRET, "X-Hasura-Role": "user", "X-Hasura-User-Id": "42"}
    await ws.send(json.dumps({"type": "connection_init", "payload": {"headers": headers}}))
    assert await _recv(ws) == {"type": "connection_ack"}
    await ws.close()
    assert double.ws.connections[0].session == {"x-hasura-role": "user", "x-hasura-user-id": "42"}
    assert double.ws.connections[0].init_payload == {"headers": headers}


async def test_a_failed_init_closes_4403_on_graphql_transport_ws(server: RunningServer) -> None:
    ws = await _open(server, [TRANSPORT])
    await ws.send(json.dumps({"type": "connection_init", "payload": {"headers": {"X-Hasura-Admin-Secret": "no"}}}))
    assert await _close_code(ws) == (4403, '{"server_error_msg":"4403: Forbidden"}')


async def test_a_failed_init_sends_connection_error_then_4400_on_graphql_ws(server: RunningServer) -> None:
    ws = await _open(server, [LEGACY])
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    message = await _recv(ws)
    assert message == {
        "type": "connection_error",
        "payload": "x-hasura-admin-secret/x-hasura-access-key required, but not found",
    }
    code, reason = await _close_code(ws)
    assert code == 4400 and "Connection initialization failed" in reason


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_queries_answer_once_then_complete(server: RunningServer, subprotocol: str) -> None:
    ws = await _open(server, [subprotocol])
    await ws.send(json.dumps(ADMIN_INIT))
    await _recv(ws)
    start = "subscribe" if subprotocol == TRANSPORT else "start"
    await ws.send(json.dumps({"type": start, "id": "q", "payload": {"query": "{ users(limit: 2) { id } }"}}))
    data = await _recv(ws)
    assert data["type"] == ("next" if subprotocol == TRANSPORT else "data")
    assert len(data["payload"]["data"]["users"]) == 2
    assert await _recv(ws) == {"type": "complete", "id": "q"}
    await ws.close()


async def test_subscriptions_repeat_on_each_tick(server: RunningServer, double: HasuraDouble) -> None:
    double.ws.tick_seconds = 0.02
    ws = await _open(server, [TRANSPORT])
    await ws.send(json.dumps(ADMIN_INIT))
    await _recv(ws)
    await ws.send(json.dumps({"type": "subscribe", "id": "s", "payload": {"query": SUB}}))
    assert [(await _recv(ws))["id"] for _ in range(3)] == ["s"] * 3
    await ws.close()


async def test_validation_errors_before_execution(server: RunningServer) -> None:
    ws = await _open(server, [LEGACY])
    await ws.send(json.dumps(ADMIN_INIT))
    await _recv(ws)
    await ws.send(json.dumps({"type": "start", "id": "x", "payload": {"query": "subscription { nope }"}}))
    error = await _recv(ws)
    assert error["type"] == "error" and error["payload"]["errors"][0]["extensions"]["code"] == "validation-failed"
    assert await _recv(ws) == {"type": "complete", "id": "x"}
    await ws.close()


async def test_a_duplicate_id_on_graphql_ws_errors_and_the_socket_stays(server: RunningServer) -> None:
    ws = await _open(server, [LEGACY])
    await ws.send(json.dumps(ADMIN_INIT))
    await _recv(ws)
    for _ in range(2):
        await ws.send(json.dumps({"type": "start", "id": "d", "payload": {"query": SUB}}))
    messages = [await _recv(ws) for _ in range(3)]  # the first result may come before or after the error
    assert sorted(m["type"] for m in messages) == ["complete", "data", "error"]
    error = next(m for m in messages if m["type"] == "error")
    assert error["payload"]["errors"][0]["extensions"]["code"] == "start-failed"
    await ws.close()


async def test_a_duplicate_id_on_graphql_transport_ws_closes_1000(server: RunningServer) -> None:
    ws = await _open(server, [TRANSPORT])
    await ws.send(json.dumps(ADMIN_INIT))
    await _recv(ws)
    for _ in range(2):
        await ws.send(json.dumps({"type": "subscribe", "id": "d", "payload": {"query": SUB}}))
    code, reason = await _close_code(ws)
    assert code == 1000 and "4400" in reason


async def test_unparsable_messages(server: RunningServer) -> None:
    legacy = await _open(server, [LEGACY])
    await legacy.send(json.dumps({"type": "test"}))
    assert (await _recv(legacy))["type"] == "connection_error"
    await legacy.send(json.dumps({"type": "connection_terminate"}))
    assert await _close_code(legacy) == (1000, "GQL_CONNECTION_TERMINATE received")
    transport = await _open(server, [TRANSPORT])
    await transport.send(json.dumps({"type": "complete"}))
    assert (await _close_code(transport))[0] == 4400


async def test_close_all_and_refuse_simulate_a_restarting_hasura(server: RunningServer, double: HasuraDouble) -> None:
    ws = await _open(server, [TRANSPORT])
    await ws.send(json.dumps(ADMIN_INIT))
    await _recv(ws)
    await asyncio.to_thread(double.ws.close_all, 1012)
    assert (await _close_code(ws))[0] == 1012
    double.ws.refuse = True
    with pytest.raises(InvalidStatus):
        await _open(server, [TRANSPORT])

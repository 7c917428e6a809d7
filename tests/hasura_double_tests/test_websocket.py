"""The double's WebSocket side as Hasura serves it: subprotocols, init auth, both vocabularies, close codes.

Hasura's sources: server/src-lib/Hasura/GraphQL/Transport/WebSocket.hs, WSServerApp.hs, WebSocket/Server.hs and
WebSocket/Protocol.hs (close reasons ``{"server_error_msg": ...}``).
"""

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


def _shortened_from(reason: str, message: str) -> bool:
    """``reason`` is Hasura's ``{"server_error_msg": message}``, the message shortened (``...``) to fit 123 bytes."""
    sent = json.loads(reason)["server_error_msg"]
    fits = len(reason.encode()) <= 123
    return fits and (sent == message or (sent.endswith("...") and message.startswith(sent.removesuffix("..."))))


async def _messages_until_close(ws: ClientConnection) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    with pytest.raises(ConnectionClosed):
        while True:
            received.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
    return received


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
    assert code == 4400
    assert _shortened_from(reason, f"4400: Connection initialization failed: {message['payload']}")


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_a_second_init_is_authenticated_again(server: RunningServer, subprotocol: str) -> None:
    ws = await _open(server, [subprotocol])
    for _ in range(2):
        await ws.send(json.dumps(ADMIN_INIT))
        assert await _recv(ws) == {"type": "connection_ack"}
    await ws.close()


async def test_a_malformed_init_payload_is_a_parse_failure(server: RunningServer, double: HasuraDouble) -> None:
    bad = {"type": "connection_init", "payload": {"headers": {"X-Hasura-Admin-Secret": 7}}}
    legacy = await _open(server, [LEGACY])
    await legacy.send(json.dumps(bad))
    message = await _recv(legacy)
    assert message["type"] == "connection_error"
    assert message["payload"].startswith("parsing ClientMessage failed: Error in $.payload.headers")
    await legacy.send(json.dumps(ADMIN_INIT))  # the socket lives
    assert await _recv(legacy) == {"type": "connection_ack"}
    await legacy.close()
    transport = await _open(server, [TRANSPORT])
    await transport.send(json.dumps(bad))
    code, reason = await _close_code(transport)
    assert code == 4400
    assert json.loads(reason)["server_error_msg"].startswith("4400: Parsing client message failed: parsing")


async def test_no_init_in_time_closes_4408_on_graphql_transport_ws_only(
    server: RunningServer, double: HasuraDouble
) -> None:
    double.ws.init_timeout = 0.1
    double.ws.keepalive = 0.05
    transport = await _open(server, [TRANSPORT])
    assert await _close_code(transport) == (4408, "Connection initialisation timed out")
    legacy = await _open(server, [LEGACY])
    assert [await _recv(legacy, keepalives=True) for _ in range(4)] == [{"type": "ka"}] * 4  # 0.2 s, still open
    await legacy.send(json.dumps(ADMIN_INIT))
    assert await _recv(legacy) == {"type": "connection_ack"}
    await legacy.close()


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
    assert error["payload"] == {  # one error object, not a list (sendStartErr)
        "message": "an operation already exists with this id: d",
        "extensions": {"path": "$", "code": "start-failed"},
    }
    await ws.close()


async def test_a_duplicate_id_on_graphql_transport_ws_closes_1000(server: RunningServer) -> None:
    ws = await _open(server, [TRANSPORT])
    await ws.send(json.dumps(ADMIN_INIT))
    await _recv(ws)
    for _ in range(2):
        await ws.send(json.dumps({"type": "subscribe", "id": "d", "payload": {"query": SUB}}))
    message = "an operation already exists with this id: d"
    received = await _messages_until_close(ws)  # the first result may come before the errors, or not at all
    errors = [m["payload"] for m in received if m["type"] == "error"]
    assert errors == [{"message": message, "extensions": {"path": "$", "code": "start-failed"}}, message]
    assert ws.protocol.close_rcvd is not None
    reason = json.dumps({"server_error_msg": f"4400: {message}"}, separators=(",", ":"))
    assert (ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason) == (1000, reason)


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_an_operation_before_the_init(server: RunningServer, subprotocol: str) -> None:
    ws = await _open(server, [subprotocol])
    start = "subscribe" if subprotocol == TRANSPORT else "start"
    await ws.send(json.dumps({"type": start, "id": "early", "payload": {"query": SUB}}))
    message = "start received before the connection is initialised"
    error = {"message": message, "extensions": {"path": "$", "code": "start-failed"}}
    assert await _recv(ws) == {"type": "error", "id": "early", "payload": error}
    if subprotocol == LEGACY:
        assert await _recv(ws) == {"type": "complete", "id": "early"}
        await ws.close()
        return
    assert await _recv(ws) == {"type": "error", "id": "early", "payload": message}
    assert await _close_code(ws) == (1000, json.dumps({"server_error_msg": f"4400: {message}"}, separators=(",", ":")))


async def test_unparsable_messages(server: RunningServer) -> None:
    legacy = await _open(server, [LEGACY])
    await legacy.send(json.dumps({"type": "test"}))
    assert await _recv(legacy) == {
        "type": "connection_error",
        "payload": "parsing ClientMessage failed: Error in $: unexpected type for ClientMessage: test",
    }
    await legacy.send(json.dumps({"type": "connection_terminate"}))
    assert await _close_code(legacy) == (1000, "GQL_CONNECTION_TERMINATE received")
    transport = await _open(server, [TRANSPORT])
    await transport.send(json.dumps({"type": "complete"}))
    reason = '4400: Parsing client message failed: parsing ClientMessage failed: Error in $: key "id" not found'
    assert await _close_code(transport) == (4400, json.dumps({"server_error_msg": reason}, separators=(",", ":")))


async def test_connection_terminate_on_graphql_transport_ws(server: RunningServer) -> None:
    transport = await _open(server, [TRANSPORT])
    await transport.send(json.dumps({"type": "connection_terminate"}))
    assert await _close_code(transport) == (1000, "GQL_CONNECTION_TERMINATE received")


async def test_a_long_reason_is_shortened_inside_its_json(server: RunningServer) -> None:
    transport = await _open(server, [TRANSPORT])
    await transport.send(json.dumps({"type": "x" * 300}))
    code, reason = await _close_code(transport)
    assert code == 4400
    whole = (
        "4400: Parsing client message failed: parsing ClientMessage failed: "
        f"Error in $: unexpected type for ClientMessage: {'x' * 300}"
    )
    assert _shortened_from(reason, whole) and reason.endswith('..."}')


async def test_close_all_and_refuse_simulate_a_restarting_hasura(server: RunningServer, double: HasuraDouble) -> None:
    ws = await _open(server, [TRANSPORT])
    await ws.send(json.dumps(ADMIN_INIT))
    await _recv(ws)
    await asyncio.to_thread(double.ws.close_all, 1012)
    assert (await _close_code(ws))[0] == 1012
    double.ws.refuse = True
    with pytest.raises(InvalidStatus):
        await _open(server, [TRANSPORT])

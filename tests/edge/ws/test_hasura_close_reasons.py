"""Closes and connection_error payloads where Hasura has the same condition, with Hasura's words.

Hasura's sources: server/src-lib/Hasura/GraphQL/Transport/WebSocket.hs (``onMessage``, ``onConnInit``),
WSServerApp.hs (``mkOnErrorMessageAction``), WebSocket/Server.hs (``mkWSServerErrorCode``,
``createServerApp``) and WebSocket/Protocol.hs (``encodeServerErrorMsg``: reasons are JSON,
``{"server_error_msg":"4400: ..."}``). The edge's own closes (docs/subscriptions.md) keep plain reasons.
"""

from __future__ import annotations

import json

import pytest

from edge.ws.protocols import MAX_REASON_BYTES, server_error_reason
from tests.edge.ws.conftest import LEGACY, TRANSPORT, Client, WssEdge, WssEdgeFactory, bearer, open_client
from tests.hasura_double import HasuraDouble

SUB = "subscription { users(limit: 1) { id } }"
PARSE_FAILED = "parsing ClientMessage failed: "
BAD_TOKEN = {"headers": {"Authorization": "Bearer nope.nope.nope"}}


async def hasura_reason(client: Client) -> tuple[int | None, str]:
    """The close code and the message inside Hasura's JSON reason."""
    code, reason = await client.closed()
    assert len(reason.encode("utf-8")) <= MAX_REASON_BYTES
    return code, json.loads(reason)["server_error_msg"]


async def unparsable(client: Client, subprotocol: str, detail: str) -> None:
    """Refused as Hasura refuses a message it cannot parse: 4400, or connection_error on graphql-ws."""
    if subprotocol == TRANSPORT:
        code, message = await hasura_reason(client)
        whole = f"4400: Parsing client message failed: {PARSE_FAILED}{detail}"
        assert code == 4400
        assert message == whole or (message.endswith("...") and whole.startswith(message.removesuffix("...")))
    else:
        assert await client.receive() == {"type": "connection_error", "payload": f"{PARSE_FAILED}{detail}"}


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_an_unknown_message_type(wss_edge: WssEdge, subprotocol: str) -> None:
    async with open_client(wss_edge, subprotocol) as client:
        await client.init(bearer())
        await client.send({"type": "test"})
        await unparsable(client, subprotocol, "Error in $: unexpected type for ClientMessage: test")
        if subprotocol == LEGACY:  # the socket lives, as in Hasura
            await client.subscribe("1", SUB)
            assert (await client.receive())["type"] == "data"


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
@pytest.mark.parametrize(
    ("frame", "detail"),
    [
        ("[1]", "Error in $: parsing ClientMessage failed, expected Object"),
        ('{"payload": {}}', 'Error in $: key "type" not found'),
        ('{"type": 7}', "Error in $.type: expected String"),
        ("not json", "Message is not valid JSON"),
    ],
)
async def test_a_message_that_is_not_a_client_message(
    wss_edge: WssEdge, subprotocol: str, frame: str, detail: str
) -> None:
    async with open_client(wss_edge, subprotocol) as client:
        await client.init(bearer())
        await client.send(frame)
        await unparsable(client, subprotocol, detail)


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_refused_credentials(wss_edge: WssEdge, hasura: HasuraDouble, subprotocol: str) -> None:
    async with open_client(wss_edge, subprotocol) as client:
        await client.send({"type": "connection_init", "payload": BAD_TOKEN})
        if subprotocol == TRANSPORT:
            assert await hasura_reason(client) == (4403, "4403: Forbidden")
        else:
            error = await client.receive()
            assert error["type"] == "connection_error" and error["payload"].startswith("Could not verify JWT")
            assert await hasura_reason(client) == (4400, f"4400: Connection initialization failed: {error['payload']}")
    assert hasura.ws.connections == []


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_a_malformed_init_payload_is_a_message_hasura_cannot_parse(
    wss_edge: WssEdge, hasura: HasuraDouble, subprotocol: str
) -> None:
    async with open_client(wss_edge, subprotocol) as client:
        await client.send({"type": "connection_init", "payload": {"headers": {"Authorization": 42}}})
        detail = "Error in $.payload: connection_init payload value for 'Authorization' must be a string"
        await unparsable(client, subprotocol, detail)
        if subprotocol == LEGACY:  # the socket lives, and a good connection_init is still welcome
            assert await client.init(bearer()) == {"type": "connection_ack"}
    assert len(hasura.ws.connections) == (0 if subprotocol == TRANSPORT else 1)


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_connection_init_timeout(start_wss_edge: WssEdgeFactory, subprotocol: str) -> None:
    edge = start_wss_edge(ws_init_timeout_seconds=0.3)
    async with open_client(edge, subprotocol) as client:
        assert await client.closed() == (4408, "Connection initialisation timed out")


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_connection_terminate_on_either_protocol(wss_edge: WssEdge, subprotocol: str) -> None:
    async with open_client(wss_edge, subprotocol) as client:
        await client.init(bearer())
        await client.send({"type": "connection_terminate"})
        assert await client.closed() == (1000, "GQL_CONNECTION_TERMINATE received")


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_a_binary_frame_is_read_like_a_text_frame(wss_edge: WssEdge, subprotocol: str) -> None:
    async with open_client(wss_edge, subprotocol) as client:
        await client.ws.send(json.dumps({"type": "connection_init", "payload": bearer()}).encode())
        assert await client.receive() == {"type": "connection_ack"}
        await client.ws.send(b"\xff\xfe")
        await unparsable(client, subprotocol, "Error in $: Failed reading: the message is not valid UTF-8")


async def test_the_edges_own_closes_keep_the_graphql_ws_protocols_words(wss_edge: WssEdge) -> None:
    """4401 and 4409 follow the graphql-ws protocol, where Hasura differs (docs/subscriptions.md)."""
    async with open_client(wss_edge, TRANSPORT) as client:
        await client.subscribe("1", SUB)
        assert await client.closed() == (4401, "Unauthorized")
    async with open_client(wss_edge, TRANSPORT) as client:
        await client.init(bearer())
        await client.subscribe("1", SUB)
        await client.subscribe("1", SUB)
        assert await client.closed() == (4409, "Subscriber for 1 already exists")


@pytest.mark.parametrize(
    "message",
    [
        "4403: Forbidden",
        "4400: Parsing client message failed: parsing ClientMessage failed: " + "x" * 200,
        "é" * 300,
        '"' * 300,
        "\x01" * 300,
        "\U0001f600" * 100,
        "lone \ud800 surrogate",
    ],
)
def test_a_reason_is_hasuras_json_and_fits_a_close_frame(message: str) -> None:
    reason = server_error_reason(message)
    assert len(reason.encode("utf-8")) <= MAX_REASON_BYTES
    sent = json.loads(reason)["server_error_msg"]
    if sent.endswith("..."):  # shortened only when the whole message would not fit
        assert message.startswith(sent.removesuffix("..."))
        whole = json.dumps({"server_error_msg": message}, ensure_ascii=False, separators=(",", ":"))
        assert len(whole.encode("utf-8")) > MAX_REASON_BYTES
    else:
        assert sent == message.encode("utf-8", "replace").decode("utf-8")

"""WebSocket frames that JSON parsers could read differently are refused like unparsable ones.

Subscribe and stop frames reach Hasura as the client wrote them, and Hasura's aeson keeps the first of two
equal keys where the edge's orjson keeps the last. Like Hasura for a message it cannot parse
(server/src-lib/Hasura/GraphQL/Transport/WSServerApp.hs, ``mkOnErrorMessageAction``): graphql-transport-ws
closes with 4400, the legacy graphql-ws answers ``connection_error`` and the socket lives.
"""

from __future__ import annotations

import json

import pytest

from tests.edge.ws.conftest import LEGACY, TRANSPORT, Client, WssEdge, WssEdgeFactory, bearer, open_client
from tests.hasura_double import HasuraDouble
from tests.support.ws_frames import FrameRecorder

SUB = "subscription { users(limit: 1) { id } }"
DEEP = "subscription { users { orders { user { orders { user { id } } } } } }"


def kind(subprotocol: str) -> str:
    return "subscribe" if subprotocol == TRANSPORT else "start"


def two_payloads(subprotocol: str, op_id: str = "1") -> str:
    unchecked, checked = json.dumps({"query": DEEP}), json.dumps({"query": SUB})
    return f'{{"type":"{kind(subprotocol)}","id":"{op_id}","payload":{unchecked},"payload":{checked}}}'


PARSE_FAILED = "4400: Parsing client message failed: parsing ClientMessage failed: "


async def closed_as_unparsable(client: Client) -> str:
    """graphql-transport-ws: 4400 with Hasura's JSON reason; the detail it carries (shortened to fit a close frame)."""
    code, reason = await client.closed()
    assert code == 4400
    message = json.loads(reason)["server_error_msg"]
    assert message.startswith(PARSE_FAILED), message
    return str(message).removeprefix(PARSE_FAILED)


async def refused(client: Client, subprotocol: str, key: str) -> None:
    """The frame was refused as Hasura refuses an unparsable one, naming the repeated key (in full on graphql-ws)."""
    if subprotocol == TRANSPORT:
        assert (await closed_as_unparsable(client)).startswith("Message repeats the key")
        return
    message = await client.receive()
    assert message["type"] == "connection_error"
    assert message["payload"].startswith(f"parsing ClientMessage failed: Message repeats the key {key!r}")


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_a_frame_with_two_payloads_never_reaches_hasura(
    start_wss_edge: WssEdgeFactory, hasura: HasuraDouble, subprotocol: str
) -> None:
    edge = start_wss_edge(plans={"default": {"graphql": {"max_depth": 3}}})
    async with open_client(edge, subprotocol) as client:
        await client.init(bearer())
        await client.send(two_payloads(subprotocol))
        await refused(client, subprotocol, "payload")
        if subprotocol == LEGACY:  # the socket lives, as it does in Hasura
            await client.subscribe("2", SUB)
            assert (await client.receive())["id"] == "2"
    assert [op["id"] for op in hasura.ws.connections[0].operations] == ([] if subprotocol == TRANSPORT else ["2"])


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
@pytest.mark.parametrize("order", ["stop-last", "stop-first"])
async def test_a_frame_with_two_types_never_reaches_hasura(
    wss_edge: WssEdge, hasura: HasuraDouble, subprotocol: str, order: str
) -> None:
    # Read last-wins, the frame is a stop for a running operation and would be relayed as written;
    # Hasura, reading the first "type", would start its unchecked payload instead.
    stop = "complete" if subprotocol == TRANSPORT else "stop"
    first, last = (kind(subprotocol), stop) if order == "stop-last" else (stop, kind(subprotocol))
    frame = f'{{"type":"{first}","id":"1","payload":{json.dumps({"query": DEEP})},"type":"{last}"}}'
    async with open_client(wss_edge, subprotocol) as client:
        await client.init(bearer())
        await client.subscribe("1", SUB)
        assert (await client.receive())["id"] == "1"
        await client.send(frame)
        await refused(client, subprotocol, "type")
    assert [op["payload"]["query"] for op in hasura.ws.connections[0].operations] == [SUB]


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
@pytest.mark.parametrize(
    ("frame", "key"),
    [
        ('{{"type":"connection_init","payload":{good},"payload":{{}}}}', "payload"),
        ('{{"type":"connection_init","type":"ping","payload":{good}}}', "type"),
        (
            '{{"type":"connection_init","payload":{{"headers":'
            '{{"Authorization":"Bearer x","Authorization":{token}}}}}}}',
            "Authorization",
        ),
    ],
)
async def test_an_ambiguous_connection_init_opens_nothing_upstream(
    wss_edge: WssEdge, hasura: HasuraDouble, subprotocol: str, frame: str, key: str
) -> None:
    good = bearer()
    text = frame.format(good=json.dumps(good), token=json.dumps(good["headers"]["Authorization"]))
    async with open_client(wss_edge, subprotocol) as client:
        await client.send(text)
        await refused(client, subprotocol, key)
        if subprotocol == LEGACY:  # the socket lives and a clean init still works
            assert (await client.init(good))["type"] == "connection_ack"
    assert len(hasura.ws.connections) == (0 if subprotocol == TRANSPORT else 1)


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_numbers_the_edge_cannot_read_exactly_refuse_the_frame(wss_edge: WssEdge, subprotocol: str) -> None:
    query = json.dumps("subscription ($n: Int) { users(limit: $n) { id } }")
    payload = f'{{"query":{query},"variables":{{"n":18446744073709551616}}}}'
    frame = f'{{"type":"{kind(subprotocol)}","id":"1","payload":{payload}}}'
    async with open_client(wss_edge, subprotocol) as client:
        await client.init(bearer())
        await client.send(frame)
        if subprotocol == TRANSPORT:
            assert (await closed_as_unparsable(client)).startswith("Message has the number")
        else:
            message = await client.receive()
            assert message["type"] == "connection_error"
            assert "send such values as strings" in message["payload"]


@pytest.mark.parametrize("subprotocol", [TRANSPORT, LEGACY])
async def test_an_unambiguous_frame_reaches_hasura_as_the_client_wrote_it(
    wss_edge: WssEdge, hasura: HasuraDouble, monkeypatch: pytest.MonkeyPatch, subprotocol: str
) -> None:
    recorder = FrameRecorder(hasura.websocket_app)
    monkeypatch.setattr(hasura, "websocket_app", recorder)
    frame = (
        f'{{ "type" : "{kind(subprotocol)}", "id": "a\\"b", "payload": {{"query": {json.dumps(SUB)},'
        ' "variables": {"x": 1E0, "s": "\\u00e9 \\"q\\""}, "extensions": {"n": 18446744073709551615}}}'
    )
    async with open_client(wss_edge, subprotocol) as client:
        await client.init(bearer())
        await client.send(frame)
        assert (await client.receive())["id"] == 'a"b'
    assert frame in recorder.frames

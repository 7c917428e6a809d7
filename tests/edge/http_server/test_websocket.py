"""The server's WebSocket connection (``edge.http_server.websocket``), driven directly over a recording
transport: races too narrow to time over a socket, and the edge's rules beyond the protocol. Over a real
socket: the HTTP answer an application may give instead of the handshake (WebSocket Denial Response)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from edge.http_server import ServerConfig, WebSocketOptions
from edge.http_server.connection import HttpConnection
from edge.http_server.state import ServerState
from edge.http_server.websocket import GOING_AWAY, WebSocketConnection
from tests.edge.http_server.transport import RecordingTransport
from tests.support import raw_http
from tests.support.servers import RunningServer, start_http_server


async def echo_until_disconnect(scope: Any, receive: Any, send: Any) -> None:
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept", "subprotocol": "graphql-transport-ws"})
    while (message := await receive())["type"] != "websocket.disconnect":
        await send({"type": "websocket.send", "text": message["text"]})


async def refuse(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.close", "code": 1008})


def server_state(app: Any, **options: Any) -> ServerState:
    config = ServerConfig(websocket=WebSocketOptions(ping_interval=None, **options))
    return ServerState(asyncio.get_running_loop(), config, app, {})


async def upgrade(state: ServerState) -> tuple[WebSocketConnection, RecordingTransport, ClientProtocol]:
    """A handshake through the HTTP connection, which hands the socket over."""
    transport = RecordingTransport()
    http = HttpConnection(state)
    http.connection_made(transport)
    client = ClientProtocol(parse_uri("ws://edge/graphql"), subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    client.send_request(client.connect())
    http.data_received(b"".join(client.data_to_send()))
    websocket = transport.protocol
    assert isinstance(websocket, WebSocketConnection)
    for _ in range(100):  # the application task answers the handshake
        if websocket.answered:
            break
        await asyncio.sleep(0)
    client.receive_data(transport.written)
    transport.written = b""
    return websocket, transport, client


def frames_sent(client: ClientProtocol, transport: RecordingTransport) -> list[Frame]:
    client.receive_data(transport.written)
    transport.written = b""
    return [event for event in client.events_received() if isinstance(event, Frame)]


def close_code(frame: Frame) -> int:
    assert frame.opcode is Opcode.CLOSE
    return int.from_bytes(frame.data[:2], "big")


async def test_the_handshake_reaches_the_application_and_messages_flow() -> None:
    websocket, transport, client = await upgrade(server_state(echo_until_disconnect))
    assert client.state is State.OPEN
    assert websocket.scope["subprotocols"] == ["graphql-transport-ws"]
    assert websocket.scope["path"] == "/graphql"
    client.send_text(b'{"type":"ping"}')
    websocket.data_received(b"".join(client.data_to_send()))
    for _ in range(10):
        await asyncio.sleep(0)
    (echo,) = frames_sent(client, transport)
    assert echo.opcode is Opcode.TEXT and echo.data == b'{"type":"ping"}'


async def test_a_refusal_before_accept_is_an_http_403() -> None:
    websocket, transport, client = await upgrade(server_state(refuse))
    assert client.state is not State.OPEN
    assert transport.closed
    assert websocket.answered and not websocket.accepted


async def test_shutdown_after_the_client_closed_sends_nothing_more() -> None:
    websocket, transport, client = await upgrade(server_state(echo_until_disconnect))
    client.send_close(1000)
    websocket.data_received(b"".join(client.data_to_send()))  # websockets answers the close by itself
    assert websocket.conn.state is not State.OPEN
    answered = transport.written
    websocket.shutdown()
    assert transport.closed
    assert transport.written == answered  # only the close reply, no second close frame
    await asyncio.sleep(0)


async def test_shutdown_of_an_open_connection_closes_with_1001() -> None:
    websocket, transport, client = await upgrade(server_state(echo_until_disconnect))
    websocket.shutdown()
    (close,) = [frame for frame in frames_sent(client, transport) if frame.opcode is Opcode.CLOSE]
    assert close_code(close) == GOING_AWAY
    assert websocket.close_timer is not None
    websocket.close_timer.cancel()
    await asyncio.sleep(0)


async def test_a_close_is_written_while_the_client_does_not_read() -> None:
    received: list[Any] = []

    async def close_at_once(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        websocket.pause_writing()  # the client stopped reading
        await send({"type": "websocket.close", "code": 1013, "reason": "Slow reader"})
        received.append(await receive())

    state = server_state(close_at_once)
    transport = RecordingTransport()
    http = HttpConnection(state)
    http.connection_made(transport)
    client = ClientProtocol(parse_uri("ws://edge/graphql"))
    client.send_request(client.connect())
    http.data_received(b"".join(client.data_to_send()))
    websocket = transport.protocol
    for _ in range(100):
        if received:
            break
        await asyncio.sleep(0)
    assert received == [{"type": "websocket.disconnect", "code": 1013, "reason": "Slow reader"}]
    (close,) = frames_sent(client, transport)  # after the 101, although writing is paused
    assert close_code(close) == 1013
    websocket.close_timer.cancel()


async def test_a_message_over_the_limit_closes_with_1009() -> None:
    websocket, transport, client = await upgrade(server_state(echo_until_disconnect, max_message_bytes=1024))
    client.send_text(b"x" * 2048)
    websocket.data_received(b"".join(client.data_to_send()))
    (close,) = frames_sent(client, transport)
    assert close_code(close) == 1009
    assert transport.closed
    disconnect = await websocket.queue.get()
    assert disconnect == {"type": "websocket.disconnect", "code": 1009}


async def test_reading_pauses_until_the_application_asks_for_the_next_message() -> None:
    gate = asyncio.Event()

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await gate.wait()
        while (await receive())["type"] != "websocket.disconnect":
            pass

    websocket, transport, client = await upgrade(server_state(slow))
    client.send_text(b"1")
    websocket.data_received(b"".join(client.data_to_send()))
    assert not transport.reading  # one message waits for the application: the socket is not read
    gate.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert transport.reading


@pytest.mark.parametrize("key", [None, "not-base64"])
async def test_an_invalid_handshake_is_refused_by_websockets(key: str | None) -> None:
    transport = RecordingTransport()
    http = HttpConnection(server_state(echo_until_disconnect))
    http.connection_made(transport)
    key_line = b"" if key is None else b"Sec-WebSocket-Key: " + key.encode() + b"\r\n"
    http.data_received(
        b"GET /graphql HTTP/1.1\r\nHost: edge\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + key_line
        + b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    assert transport.written.startswith(b"HTTP/1.1 400 ")
    assert transport.closed


HANDSHAKE = (
    b"GET /graphql HTTP/1.1\r\nHost: edge\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class Denying:
    """An application that answers the handshake with the messages it is given, then records what it hears."""

    def __init__(self, *messages: dict[str, Any]) -> None:
        self.messages = messages
        self.extensions: Any = None
        self.heard: list[Any] = []
        self.done = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return  # the lifespan
        self.extensions = scope.get("extensions")
        await receive()
        try:
            for message in self.messages:
                await send(message)
            self.heard.append(await receive())
        finally:
            self.done.set()


@pytest.fixture
def serve() -> Iterator[Any]:
    running: list[RunningServer] = []

    def start(app: Denying) -> RunningServer:
        server = start_http_server(app, ServerConfig(websocket=WebSocketOptions(ping_interval=None)), lifespan=False)
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop()


def denied(server: RunningServer) -> raw_http.RawResponse:
    """The answer to a valid handshake, read until the server closes the connection."""
    with raw_http.connect(server.host, server.port) as sock:
        sock.sendall(HANDSHAKE)
        response = raw_http.read_response(sock)
        assert sock.recv(1) == b""  # the connection is closed after the answer
    return response


def test_an_application_may_answer_the_handshake_over_http(serve: Any) -> None:
    app = Denying(
        {"type": "websocket.http.response.start", "status": 404, "headers": [(b"Content-Type", b"application/json")]},
        {"type": "websocket.http.response.body", "body": b'{"errors":', "more_body": True},
        {"type": "websocket.http.response.body", "body": b"[]}"},
    )
    response = denied(serve(app))
    assert app.extensions == {"websocket.http.response": {}}
    assert response.status == 404
    assert response.body == b'{"errors":[]}'
    assert response.header("content-type") == "application/json"
    assert response.header("content-length") == "13"  # the parts together, announced before the first
    assert response.header("connection") == "close"
    assert app.done.wait(5)
    assert app.heard == [{"type": "websocket.disconnect", "code": 1006}]


@pytest.mark.parametrize(
    "messages",
    [
        [{"type": "websocket.http.response.body", "body": b"{}"}],  # a body without its head
        [{"type": "websocket.http.response.start", "status": 101, "headers": []}],  # would pretend to accept
        [
            {"type": "websocket.http.response.start", "status": 404, "headers": []},
            {"type": "websocket.accept"},  # a head sent: only its body may follow
        ],
    ],
)
def test_a_broken_http_answer_to_the_handshake_is_a_500(serve: Any, messages: list[dict[str, Any]]) -> None:
    response = denied(serve(Denying(*messages)))
    assert response.status == 500

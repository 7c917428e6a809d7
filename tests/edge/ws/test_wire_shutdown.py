"""The edge's WebSocket protocol at server shutdown, driven directly (a race too narrow to time over a socket)."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from edge.ws.wire import GOING_AWAY, EdgeWebSocketProtocol


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)


async def echo_until_disconnect(scope: Any, receive: Any, send: Any) -> None:
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


async def open_connection() -> tuple[EdgeWebSocketProtocol, RecordingTransport, ClientProtocol]:
    config = Config(app=echo_until_disconnect, ws=EdgeWebSocketProtocol, lifespan="off", ws_ping_interval=None)
    protocol = EdgeWebSocketProtocol(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    client = ClientProtocol(parse_uri("ws://edge/graphql"))
    client.send_request(client.connect())
    protocol.data_received(b"".join(client.data_to_send()))
    for _ in range(100):  # the application task accepts
        if protocol.handshake_complete:
            break
        await asyncio.sleep(0)
    assert protocol.handshake_complete
    client.receive_data(transport.written)
    assert client.state is State.OPEN
    transport.written = b""
    return protocol, transport, client


def frames_sent(client: ClientProtocol, transport: RecordingTransport) -> list[Frame]:
    client.receive_data(transport.written)
    return [event for event in client.events_received() if isinstance(event, Frame)]


async def test_shutdown_after_the_client_closed_sends_nothing_more() -> None:
    protocol, transport, client = await open_connection()
    client.send_close(1000)
    protocol.data_received(b"".join(client.data_to_send()))  # websockets answers the close by itself
    assert protocol.conn.state is not State.OPEN
    answered = transport.written
    protocol.shutdown()  # uvicorn's own shutdown raised InvalidState here
    assert transport.closed
    assert transport.written == answered  # only the close reply, no second close frame
    await asyncio.sleep(0)


async def test_shutdown_of_an_open_connection_closes_with_1001() -> None:
    protocol, transport, client = await open_connection()
    protocol.shutdown()
    closes = [frame for frame in frames_sent(client, transport) if frame.opcode is Opcode.CLOSE]
    assert len(closes) == 1
    assert int.from_bytes(closes[0].data[:2], "big") == GOING_AWAY
    if protocol.close_timer is not None:
        protocol.close_timer.cancel()
    await asyncio.sleep(0)

"""A bounded fuzz smoke test of the request layer: byte-level mutations of valid POST bodies, GET query
strings and graphql-ws frames (a fixed seed, a few hundred of each, well under a minute).

Whatever arrives, the edge never answers 5xx (nor closes a socket with 1011), every error it makes itself is
GraphQL-shaped with an ``extensions.code``, and what it forwards reads the same to first-wins and last-wins
parsers and orjson.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.edge.conftest import EdgeFactory
from tests.hasura_double import HasuraDouble
from tests.support import raw_http
from tests.support.json_readings import read_alike
from tests.support.servers import RunningServer
from tests.support.tokens import mint
from tests.support.ws_frames import FrameRecorder

SEED = 20261123
ROUNDS = 250
# Bytes that change JSON's structure, escapes and numbers, and bytes that break UTF-8.
INTERESTING = b'{}[],:"\\/0123456789eE.+- \t\nutfnrlq\x00\x7f\x80\xbf\xc3\xa9\xed\xa0\xf0\xff'
QUERY = "query Q($limit: Int) { products(limit: $limit) { id } }"
SHA = "1" * 64
POST_SEEDS = [
    json.dumps({"query": QUERY, "variables": {"limit": 1}, "operationName": "Q"}),
    json.dumps([{"query": QUERY, "variables": {"limit": 2}}, {"query": "{ warehouses { id } }"}]),
    json.dumps({"query": 'query { products(where: {name: {_eq: "a\\"b"}}) { id } }', "extensions": {"x": [1.5, None]}}),
    json.dumps({"query": QUERY, "variables": {"limit": 3, "s": "é\u00e9\U0001f600", "f": 0.1, "big": 2**63}}),
    json.dumps({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": SHA}}}),
]
GET_SEEDS = [
    "query=%7B%20products(limit%3A%201)%20%7B%20id%20%7D%20%7D",
    "query=query%20Q(%24limit%3A%20Int)%20%7B%20products(limit%3A%20%24limit)%20%7B%20id%20%7D%20%7D"
    "&variables=%7B%22limit%22%3A1%7D&operationName=Q",
    "query=%7B%20products%20%7B%20id%20%7D%20%7D&extensions=%7B%22a%22%3A%5B1%2C2.5%2C%22%5Cu00e9%22%5D%7D",
]
WS_SEEDS = [
    json.dumps({"type": "start", "id": "f", "payload": {"query": QUERY, "variables": {"limit": 1}}}),
    json.dumps({"type": "start", "id": "g", "payload": {"query": "{ products { id } }", "extensions": {"n": 0.5}}}),
    json.dumps({"type": "stop", "id": "f"}),
    json.dumps({"type": "ping", "payload": {"n": 1}}),
]
# Characters a request target may carry as they are; every other byte is percent-encoded.
TARGET_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?%")


def mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(out) + 1)
        operation = rng.randrange(5)
        if operation == 0 and out:
            out[min(at, len(out) - 1)] = rng.choice(INTERESTING) if rng.random() < 0.8 else rng.randrange(256)
        elif operation == 1:
            out[at:at] = bytes([rng.choice(INTERESTING)])
        elif operation == 2 and out:
            del out[at : at + rng.randint(1, 3)]
        elif operation == 3 and out:  # a copied slice: repeated keys and members
            start = rng.randrange(len(out))
            out[at:at] = out[start : start + rng.randint(1, 40)]
        elif out:
            other = rng.randrange(len(out))
            at = min(at, len(out) - 1)
            out[at], out[other] = out[other], out[at]
    return bytes(out)


def assert_graphql_shaped(body: bytes) -> str:
    error = json.loads(body)["errors"][0]
    assert isinstance(error["message"], str)
    code = error["extensions"]["code"]
    assert isinstance(code, str) and code
    return code


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {mint()}"}


@pytest.fixture
def edge(start_edge: EdgeFactory) -> RunningServer:
    return start_edge(ws_max_messages_per_second=10_000, ws_message_burst=10_000)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, headers=auth()) as http:
        yield http


def test_mutated_post_bodies(edge: RunningServer, hasura: HasuraDouble, client: httpx.Client) -> None:
    rng = random.Random(SEED)
    for _ in range(ROUNDS):
        body = mutate(rng.choice(POST_SEEDS).encode(), rng)
        hasura.reset()
        response = client.post(f"{edge.url}/graphql", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code < 500, (body, response.text)
        forwarded = [record.body for record in hasura.graphql_requests()]
        if not forwarded:  # the edge answered itself (an error, or Apollo's PersistedQueryNotFound)
            assert_graphql_shaped(response.content)
        for sent in forwarded:
            assert read_alike(sent), body


def test_mutated_get_query_strings(edge: RunningServer, hasura: HasuraDouble) -> None:
    rng = random.Random(SEED)
    headers = "".join(f"{name}: {value}\r\n" for name, value in {**auth(), "graphql-require-preflight": "1"}.items())
    for _ in range(ROUNDS):
        mutated = mutate(rng.choice(GET_SEEDS).encode(), rng)
        target = "".join(chr(byte) if byte in TARGET_SAFE else f"%{byte:02X}" for byte in mutated)
        hasura.reset()
        request = f"GET /graphql?{target} HTTP/1.1\r\nHost: edge\r\n{headers}Connection: close\r\n\r\n".encode()
        response = raw_http.exchange(edge.host, edge.port, request)
        assert response.status is not None and response.status < 500, (target, response.body)
        forwarded = [record.body for record in hasura.graphql_requests()]
        if not forwarded:
            assert_graphql_shaped(response.body)
        for sent in forwarded:
            assert read_alike(sent), target


class Socket:
    """A graphql-ws connection to the edge that reconnects whenever the edge closes it."""

    def __init__(self, edge: RunningServer) -> None:
        self.edge = edge
        self.ws: ClientConnection | None = None
        self.connection = contextlib.ExitStack()
        self.closes: list[int | None] = []
        self.syncs = 0

    def open(self) -> ClientConnection:
        if self.ws is None:
            url = f"ws://{self.edge.host}:{self.edge.port}/graphql"
            self.ws = self.connection.enter_context(connect(url, subprotocols=["graphql-ws"], open_timeout=5))  # type: ignore[list-item]
            self.ws.send(json.dumps({"type": "connection_init", "payload": {"headers": auth()}}))
            assert json.loads(self.ws.recv(timeout=5))["type"] == "connection_ack"
        return self.ws

    def send_and_settle(self, frame: bytes) -> None:
        """Send ``frame`` (as text when it is UTF-8), then a plain query; wait for its end or a close."""
        ws = self.open()
        self.syncs += 1
        sync = f"sync-{self.syncs}"
        try:
            try:
                ws.send(frame.decode("utf-8"))
            except UnicodeDecodeError:
                ws.send(frame)  # binary, read like text as Hasura does; not UTF-8: a connection_error
            ws.send(json.dumps({"type": "start", "id": sync, "payload": {"query": "{ products(limit: 1) { id } }"}}))
            while True:
                message = json.loads(ws.recv(timeout=5))
                check_server_message(message)
                if message.get("id") == sync and message["type"] == "complete":
                    return
        except ConnectionClosed as closed:
            self.closes.append(closed.rcvd.code if closed.rcvd is not None else None)
            self.close()

    def close(self) -> None:
        self.connection.close()
        self.ws = None


def check_server_message(message: dict[str, Any]) -> None:
    if message["type"] == "connection_error":
        assert isinstance(message["payload"], str)
    elif message["type"] == "error":
        for error in message["payload"]["errors"]:
            assert isinstance(error["message"], str) and isinstance(error["extensions"]["code"], str)


def test_mutated_websocket_frames(edge: RunningServer, hasura: HasuraDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = FrameRecorder(hasura.websocket_app)
    monkeypatch.setattr(hasura, "websocket_app", recorder)
    rng = random.Random(SEED)
    socket = Socket(edge)
    try:
        for _ in range(ROUNDS):
            socket.send_and_settle(mutate(rng.choice(WS_SEEDS).encode(), rng))
    finally:
        socket.close()
    assert None not in socket.closes and 1011 not in socket.closes, socket.closes
    for frame in recorder.frames:
        assert read_alike(frame), frame

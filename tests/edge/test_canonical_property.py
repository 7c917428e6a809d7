"""The request layer's property, over real sockets: whatever a client sends, either the edge refuses it, or
what reaches the Hasura double reads the same to a first-wins parser (Hasura's aeson), a last-wins parser
and orjson, numbers exactly.

Generated POST bodies (single and batched), GET query strings and graphql-ws frames, with repeated keys
(also equal only once unescaped), nesting around the bound of 128, big and small numbers, escapes and
unicode. Examples are derandomised, so CI runs the same ones every time.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect

from tests.edge.conftest import EdgeFactory
from tests.hasura_double import HasuraDouble
from tests.support.json_readings import read_alike
from tests.support.json_texts import deep, json_texts, object_text, objects
from tests.support.servers import RunningServer
from tests.support.tokens import mint
from tests.support.ws_frames import FrameRecorder

QUERIES = ["{ products(limit: 1) { id } }", 'query Q { products(where: {name: {_eq: "a\\"b"}}) { id } }']
QUERY_KEYS = st.sampled_from(["query", r"\u0071uery"])
EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Mostly objects (what variables and extensions must be), sometimes any value, sometimes 120-140 levels deep.
VALUES = st.one_of(
    objects(json_texts(max_leaves=6)),
    objects(json_texts(max_leaves=6, distinct_spellings=True), distinct_spellings=True),
    json_texts(max_leaves=6),
    deep().map(lambda text: object_text([("k", text)])),
)


@st.composite
def operation(draw: st.DrawFn) -> str:
    """A GraphQL-over-HTTP request object as text; any member may come twice."""
    members = [(draw(QUERY_KEYS), json.dumps(draw(st.sampled_from(QUERIES))))]
    for name in draw(st.lists(st.sampled_from(["variables", "extensions", "operationName"]), max_size=3)):
        value = draw(st.sampled_from(["null", '"Q"'])) if name == "operationName" else draw(VALUES)
        members.append((name, value))
    if draw(st.integers(0, 3)) == 0:
        members.append(draw(st.sampled_from(members)))  # an exact repeat
    return object_text(draw(st.permutations(members)))


BODIES = st.one_of(operation(), st.lists(operation(), min_size=1, max_size=3).map(lambda ops: f"[{','.join(ops)}]"))


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {mint()}"}


def edge_refused(response: httpx.Response) -> bool:
    """An edge-made error: GraphQL-shaped with an ``extensions.code`` (never a 5xx)."""
    assert response.status_code < 500, response.text
    if response.status_code < 400:
        event("forwarded")
        return False
    error = response.json()["errors"][0]
    assert isinstance(error["message"], str) and isinstance(error["extensions"]["code"], str)
    event(f"refused: {error['extensions']['code']}")
    return True


@pytest.fixture
def edge(start_edge: EdgeFactory) -> RunningServer:
    return start_edge(max_url_bytes=65_536, ws_max_messages_per_second=10_000, ws_message_burst=10_000)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, headers=auth()) as http:
        yield http


def test_post_bodies(edge: RunningServer, hasura: HasuraDouble, client: httpx.Client) -> None:
    @EXAMPLES
    @given(BODIES)
    def check(body: str) -> None:
        hasura.reset()
        response = client.post(
            f"{edge.url}/graphql", content=body.encode(), headers={"Content-Type": "application/json"}
        )
        forwarded = [record.body for record in hasura.graphql_requests()]
        if edge_refused(response):
            assert forwarded == []
            return
        [sent] = forwarded
        assert read_alike(sent), body
        if "persistedQuery" not in body:
            assert sent == body.encode()  # the client's bytes, as analysed

    check()


def test_get_query_strings(edge: RunningServer, hasura: HasuraDouble, client: httpx.Client) -> None:
    @EXAMPLES
    @given(st.sampled_from(QUERIES), VALUES, st.one_of(st.none(), VALUES))
    def check(query: str, variables: str, extensions: str | None) -> None:
        hasura.reset()
        parameters = f"query={quote(query)}&variables={quote(variables)}"
        if extensions is not None:
            parameters += f"&extensions={quote(extensions)}"
        response = client.get(f"{edge.url}/graphql?{parameters}", headers={"graphql-require-preflight": "1"})
        forwarded = [record.body for record in hasura.graphql_requests()]
        if edge_refused(response):
            assert forwarded == []
            return
        [sent] = forwarded
        assert read_alike(sent)
        analysed: dict[str, Any] = {"query": query}
        for name, text in (("variables", variables), ("extensions", extensions)):
            if text is not None and orjson.loads(text) is not None:
                analysed[name] = orjson.loads(text)
        assert orjson.loads(sent) == analysed

    check()


@st.composite
def frame(draw: st.DrawFn, op_id: str) -> str:
    """A graphql-ws ``start`` frame as text; any member, top level or in the payload, may come twice."""
    members = [("type", '"start"'), ("id", json.dumps(op_id)), ("payload", draw(operation()))]
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        name = draw(st.sampled_from(["type", "id", "payload"]))
        value = {"type": st.sampled_from(['"start"', '"stop"']), "id": st.just('"other"'), "payload": operation()}[name]
        members.append((name, draw(value)))
    return object_text(draw(st.permutations(members)))


def test_websocket_frames(edge: RunningServer, hasura: HasuraDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = FrameRecorder(hasura.websocket_app)
    monkeypatch.setattr(hasura, "websocket_app", recorder)
    ids = itertools.count()
    with connect(f"ws://{edge.host}:{edge.port}/graphql", subprotocols=["graphql-ws"], open_timeout=5) as ws:  # type: ignore[list-item]
        ws.send(json.dumps({"type": "connection_init", "payload": {"headers": auth()}}))
        assert json.loads(ws.recv(timeout=5))["type"] == "connection_ack"

        @EXAMPLES
        @given(st.data())
        def check(data: st.DataObject) -> None:
            op_id = f"op-{next(ids)}"
            text = data.draw(frame(op_id))
            before = len(recorder.frames)
            ws.send(text)
            sync(ws, f"sync-{op_id}")  # frames are handled and relayed in order
            relayed = [seen for seen in recorder.frames[before:] if f'"sync-{op_id}"' not in seen]
            event("relayed" if relayed else "refused")
            for seen in relayed:
                assert seen == text  # the client's frame as written, and nothing else
                assert read_alike(seen), text

        check()


def sync(ws: ClientConnection, op_id: str) -> None:
    """Start a plain query and wait for its ``complete``: everything sent before it has been handled."""
    ws.send(json.dumps({"type": "start", "id": op_id, "payload": {"query": QUERIES[0]}}))
    while True:
        message = json.loads(ws.recv(timeout=5))
        assert message["type"] != "connection_error" or message["payload"].startswith("parsing ClientMessage failed")
        if message.get("id") == op_id and message["type"] == "complete":
            return

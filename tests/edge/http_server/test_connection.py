"""The edge's HTTP/1.1 connection (``edge.http_server.connection``) with the real pipeline behind it.

The rest of the suite already runs every test through this server (``start_edge``); these pin the
HTTP/1.1 semantics it implements itself: pipelining, keep-alive, ``Connection: close`` and HTTP/1.0,
HEAD, targets, back-pressure, graceful shutdown, and the ASGI adapter that serves the same handler
under any other server. ``tests/edge/http/`` compares the parser with reference parsers.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import threading
import time
from collections.abc import Sequence
from http import HTTPStatus

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.app import create_app
from edge.http_server import ServerConfig, connection
from edge.http_server.responses import encode_head
from edge.http_server.state import ServerState
from edge.serve import YOUNG_COLLECTION_THRESHOLD, serve
from edge.upstream.base import UpstreamResponse
from tests.edge.conftest import EdgeFactory, edge_settings, start_edge_app
from tests.edge.http_server.transport import RecordingTransport
from tests.hasura_double import HasuraDouble
from tests.support import raw_http
from tests.support.servers import RunningServer, free_loopback_socket, start_server
from tests.support.tokens import mint


def post(target: bytes, body: bytes, *, extra: bytes = b"", version: bytes = b"1.1") -> bytes:
    return (
        b"POST " + target + b" HTTP/" + version + b"\r\nHost: edge\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + mint().encode() + b"\r\n" + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body
    )


def products(limit: int) -> bytes:
    return orjson.dumps({"query": f"{{ products(limit: {limit}) {{ id }} }}"})


def read_responses(sock: socket.socket, count: int) -> list[raw_http.RawResponse]:
    """Read ``count`` Content-Length framed responses that may arrive in one segment."""
    sock.settimeout(5.0)
    data = b""
    responses: list[raw_http.RawResponse] = []
    while len(responses) < count:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {len(responses)} responses"
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
        length = next(int(v) for k, v in headers if k.lower() == "content-length")
        while len(rest) < length:
            chunk = sock.recv(65536)
            assert chunk
            rest += chunk
        responses.append(raw_http.RawResponse(int(lines[0].split()[1]), headers, rest[:length], False))
        data = rest[length:]
    return responses


def test_pipelined_requests_on_one_connection_are_answered_in_order(edge: RunningServer, hasura: HasuraDouble):
    with raw_http.connect(edge.host, edge.port) as sock:
        sock.sendall(post(b"/graphql", products(2)) + post(b"/graphql", products(1)) + post(b"/graphql", products(3)))
        responses = read_responses(sock, 3)
    assert [len(orjson.loads(r.body)["data"]["products"]) for r in responses] == [2, 1, 3]
    assert len(hasura.requests) == 3


@pytest.mark.parametrize(
    ("version", "extra"), [(b"1.0", b""), (b"1.1", b"Connection: close\r\n")], ids=["http-1.0", "connection-close"]
)
def test_the_connection_closes_after_the_response_when_the_client_asks(
    edge: RunningServer, hasura: HasuraDouble, version: bytes, extra: bytes
):
    with raw_http.connect(edge.host, edge.port) as sock:
        sock.sendall(post(b"/graphql", products(1), extra=extra, version=version))
        response = raw_http.read_response(sock)
        closed, _, _ = raw_http.wait_closed(sock, 3.0)
    assert response.status == 200
    assert response.header("connection") == "close"
    assert closed
    assert ("connection", "close") not in [(k, v.lower()) for k, v in hasura.requests[0].headers]


def test_head_is_answered_without_a_body_and_the_connection_stays_usable(edge: RunningServer, hasura: HasuraDouble):
    with raw_http.connect(edge.host, edge.port) as sock:
        sock.sendall(b"HEAD /graphql HTTP/1.1\r\nHost: edge\r\n\r\n")
        sock.settimeout(5.0)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 405")
        assert b"content-length: 0" not in head.lower()  # the length of the body a GET would get
        assert rest == b""  # ... but no body bytes follow
        sock.sendall(post(b"/graphql", products(1)))
        (after,) = read_responses(sock, 1)
    assert after.status == 200


def test_a_query_string_on_the_target_is_the_direct_path_too(edge: RunningServer, hasura: HasuraDouble):
    response = raw_http.exchange(edge.host, edge.port, post(b"/graphql?trace=1", products(1)))
    assert response.status == 200
    assert len(hasura.requests) == 1


@pytest.mark.parametrize(
    ("target", "status"),
    [
        (b"/graphql", 200),
        (b"/graphql?query=x", 200),
        (b"/graph%71l", 200),  # routes match the decoded path
        (b"http://edge/graphql", 200),  # absolute-form (RFC 9112 §3.2.2), routed by its path
        (b"/graphql/", 404),
        (b"/graphqlx", 404),
        (b"/healthz", 405),  # FastAPI's route, GET only
        (b"/graphql#fragment", 400),  # a fragment is not part of a request target
        (b"*", 400),
    ],
)
def test_requests_are_routed_by_their_decoded_path(
    edge: RunningServer, hasura: HasuraDouble, target: bytes, status: int
):
    response = raw_http.exchange(edge.host, edge.port, post(target, products(1)))
    assert response.status == status, response.body
    assert len(hasura.requests) == (1 if status == 200 else 0)
    assert orjson.loads(response.body).get("errors") is None or status != 200


def test_responses_carry_a_date_header(edge: RunningServer, hasura: HasuraDouble):
    response = raw_http.exchange(edge.host, edge.port, post(b"/graphql", products(1)))
    assert response.header("date") is not None


def test_a_request_in_flight_is_answered_during_graceful_shutdown(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge()
    hasura.faults.delay = 0.5
    results: list[raw_http.RawResponse] = []
    sock = raw_http.connect(edge.host, edge.port)
    sock.sendall(post(b"/graphql", products(1)))
    reader = threading.Thread(target=lambda: results.append(raw_http.read_response(sock)))
    reader.start()
    hasura.wait_for_requests(1)
    edge.stop()  # should_exit while Hasura is still answering
    reader.join(10)
    sock.close()
    assert results and results[0].status == 200
    assert results[0].header("connection") == "close"  # keep-alive ends with the shutdown


class _BrokenUpstream:
    """An upstream whose client fails in a way no stage maps: a bug, from the handler's view."""

    async def post(
        self,
        body: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        *,
        timeout: float | None = None,
        idempotent: bool = False,
    ) -> UpstreamResponse:
        raise ValueError("a bug in the client")

    async def get(self, path: str, *, timeout: float | None = None) -> UpstreamResponse:
        return UpstreamResponse(200, [], b"OK")

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize("direct", [True, False], ids=["edge-server", "asgi-under-uvicorn"])
def test_a_bug_is_a_graphql_shaped_500_and_is_logged_without_the_token(
    direct: bool, hasura_url: str, caplog: pytest.LogCaptureFixture
):
    settings = edge_settings(hasura_url)
    app = create_app(settings, upstream=_BrokenUpstream())
    server = start_edge_app(app, settings) if direct else start_server(app)
    token = mint()
    try:
        with caplog.at_level(logging.ERROR, logger="edge.graphql"):
            response = httpx.post(
                f"{server.url}/graphql",
                json={"query": "{ products { id } }"},
                headers={"Authorization": f"Bearer {token}"},
            )
    finally:
        server.stop()
    assert response.status_code == 500
    assert response.json() == {
        "errors": [{"message": "The edge could not handle this request", "extensions": {"code": "internal-error"}}]
    }
    assert response.headers["x-request-id"]
    assert "edge_internal_error" in caplog.text
    assert token not in caplog.text


def test_the_asgi_adapter_serves_the_same_pipeline_under_a_plain_uvicorn(hasura_url: str, hasura: HasuraDouble):
    settings = edge_settings(hasura_url)
    server = start_server(create_app(settings))  # uvicorn's own protocol: every request goes through ASGI
    try:
        ok = httpx.post(
            f"{server.url}/graphql",
            json={"query": "{ products(limit: 1) { id } }"},
            headers={"Authorization": f"Bearer {mint()}", "X-Hasura-Role": "admin"},
        )
        refused = httpx.post(f"{server.url}/graphql", json={"query": "{ products { id } }"})
    finally:
        server.stop()
    assert ok.status_code == 403  # admin is not among the token's allowed roles
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["extensions"]["code"] == "access-denied"


DATE = b"date: Sat, 21 Nov 2026 10:00:00 GMT\r\n"


def test_encode_head_frames_the_response_and_closes_when_asked():
    head, keep_alive = encode_head(200, DATE, [(b"content-type", b"application/json")], 12, keep_alive=True)
    assert head == (
        b"HTTP/1.1 200 OK\r\ndate: Sat, 21 Nov 2026 10:00:00 GMT\r\ncontent-type: application/json\r\n"
        b"content-length: 12\r\n\r\n"
    )
    assert keep_alive
    head, keep_alive = encode_head(413, DATE, [(b"connection", b"close")], 0, keep_alive=True)
    assert not keep_alive
    assert head.count(b"connection: close\r\n") == 1
    head, keep_alive = encode_head(200, DATE, [], 0, keep_alive=False)
    assert b"connection: close\r\n" in head and not keep_alive


def test_encode_head_writes_the_framing_itself():
    head, _ = encode_head(
        200, DATE, [(b"content-length", b"999"), (b"transfer-encoding", b"chunked"), (b"x", b"y")], 3, keep_alive=True
    )
    assert head.endswith(b"x: y\r\ncontent-length: 3\r\n\r\n")
    assert b"999" not in head and b"transfer-encoding" not in head
    chunked, _ = encode_head(200, DATE, [], -1, keep_alive=True)
    assert chunked.endswith(b"transfer-encoding: chunked\r\n\r\n")
    assert b"content-length" not in chunked


@pytest.mark.parametrize(
    "header",
    [
        (b"x-injected", b"a\r\nSet-Cookie: session=evil"),
        (b"x-injected", b"a\nb"),
        (b"x-injected", b"a\rb"),
        (b"x-bad\r\nname", b"v"),
    ],
)
def test_encode_head_refuses_cr_or_lf_in_a_header(header: tuple[bytes, bytes]):
    with pytest.raises(ValueError, match="CR or LF"):
        encode_head(200, DATE, [header], 0, keep_alive=True)
    with pytest.raises(ValueError, match="CR or LF"):  # among valid ones, wherever it is
        encode_head(200, DATE, [(b"a", b"1"), header, (b"b", b"2")], 0, keep_alive=True)


def reference_encode_head(
    status: int, date: bytes, headers: list[tuple[bytes, bytes]], content_length: int, *, keep_alive: bool
) -> tuple[bytes, bool]:
    """encode_head written the obvious way: each header checked and written on its own."""
    lines = []
    for name, value in headers:
        if name == b"connection":
            keep_alive = keep_alive and b"close" not in value.lower()
        elif name not in (b"content-length", b"transfer-encoding"):
            if b"\r" in name + value or b"\n" in name + value:
                raise ValueError("invalid HTTP response header (CR or LF in a name or value)")
            lines.append(name + b": " + value + b"\r\n")
    if not 100 <= status <= 599:
        raise ValueError(f"invalid HTTP status {status}")
    try:
        phrase = HTTPStatus(status).phrase.encode()
    except ValueError:  # a status without a registered phrase
        phrase = b""
    head = b"HTTP/1.1 %d %s\r\n" % (status, phrase) + date + b"".join(lines)
    if not keep_alive:
        head += b"connection: close\r\n"
    if content_length < 0:
        return head + b"transfer-encoding: chunked\r\n\r\n", keep_alive
    return head + b"content-length: " + str(content_length).encode() + b"\r\n\r\n", keep_alive


# Names and values made mostly of the pieces that matter: CR, LF, the framing and connection names
# and the close token in any case, next to arbitrary bytes.
_PIECES = [b"\r", b"\n", b"\r\n", b"close", b"Close", b"keep-alive", b",", b" ", b":", b"a", b"\x00", b"\xff", b"\t"]
_names = st.one_of(
    st.sampled_from([b"connection", b"content-length", b"transfer-encoding", b"Connection", b"content-type", b""]),
    st.lists(st.sampled_from(_PIECES)).map(b"".join),
    st.binary(max_size=12),
)
_values = st.one_of(st.lists(st.sampled_from(_PIECES), max_size=6).map(b"".join), st.binary(max_size=40))


@settings(max_examples=1500, deadline=None)
@given(
    status=st.one_of(st.sampled_from([200, 204, 304, 413, 500]), st.integers(0, 700)),
    headers=st.lists(st.tuples(_names, _values), max_size=12),
    content_length=st.one_of(st.just(-1), st.integers(0, 10**12)),
    keep_alive=st.booleans(),
)
def test_encode_head_writes_what_the_obvious_version_writes(
    status: int, headers: list[tuple[bytes, bytes]], content_length: int, keep_alive: bool
):
    try:
        expected: tuple[bytes, bool] | str = reference_encode_head(
            status, DATE, headers, content_length, keep_alive=keep_alive
        )
    except ValueError as error:
        expected = str(error)
    try:
        got: tuple[bytes, bool] | str = encode_head(status, DATE, list(headers), content_length, keep_alive=keep_alive)
    except ValueError as error:
        got = str(error)
    assert got == expected


def test_python_m_edge_freezes_what_start_up_built_and_collects_young_objects_less_often(hasura_url: str):
    sock = free_loopback_socket()
    port = sock.getsockname()[1]
    sock.close()
    settings = edge_settings(hasura_url, port=port)
    frozen_before = gc.get_freeze_count()
    threshold_before = gc.get_threshold()
    box: dict[str, object] = {}

    def run() -> None:
        async def main() -> None:
            box["stop"] = stop = asyncio.Event()
            box["loop"] = asyncio.get_running_loop()
            await serve(settings, stop)

        asyncio.run(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        response = None
        for _ in range(200):
            try:
                response = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": "{ products { id } }"})
                break
            except httpx.ConnectError:
                time.sleep(0.05)
        frozen = gc.get_freeze_count()  # after a request: start-up (and the freeze) has finished
        threshold = gc.get_threshold()
    finally:
        loop = box["loop"]
        assert isinstance(loop, asyncio.AbstractEventLoop)
        stop = box["stop"]
        assert isinstance(stop, asyncio.Event)
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        gc.unfreeze()  # the test process's own objects were frozen with the server's
        gc.set_threshold(*threshold_before)
    assert response is not None and response.status_code == 401  # and it serves as usual
    assert frozen > frozen_before
    assert threshold == (YOUNG_COLLECTION_THRESHOLD, *threshold_before[1:])
    assert not thread.is_alive()  # the stop event shut it down


def test_an_idle_keep_alive_connection_is_closed_after_the_timeout(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(keep_alive_seconds=0.5)
    with raw_http.connect(edge.host, edge.port) as sock:
        sock.sendall(post(b"/graphql", products(1)))
        (response,) = read_responses(sock, 1)
        closed, _, waited = raw_http.wait_closed(sock, 5.0)
    assert response.status == 200
    assert closed and 0.3 < waited < 2.0


def test_a_connection_in_use_outlives_the_keep_alive_timeout(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(keep_alive_seconds=0.5)
    with raw_http.connect(edge.host, edge.port) as sock:
        for _ in range(6):  # 1.8 s in all, never idle for 0.5 s
            sock.sendall(post(b"/graphql", products(1)))
            (response,) = read_responses(sock, 1)
            assert response.status == 200
            time.sleep(0.3)
        sock.sendall(post(b"/graphql", products(1)))
        (last,) = read_responses(sock, 1)
    assert last.status == 200


def test_pipelined_requests_wait_while_the_client_is_not_reading(edge: RunningServer, hasura: HasuraDouble):
    # Back-pressure: when the transport says its buffer is full (pause_writing), the next pipelined
    # request is not started until it drains (resume_writing). The transport's own signals are
    # raised here on the edge's loop, as uvloop raises them when a client stops reading.
    with raw_http.connect(edge.host, edge.port) as sock:
        sock.sendall(post(b"/graphql", products(1)))
        read_responses(sock, 1)
        (protocol,) = list(edge.server.state.connections)
        edge.loop.call_soon_threadsafe(protocol.pause_writing)
        hasura.reset()
        sock.sendall(post(b"/graphql", products(2)) + post(b"/graphql", products(3)) + post(b"/graphql", products(1)))
        time.sleep(0.5)
        while_paused = len(hasura.requests)
        edge.loop.call_soon_threadsafe(protocol.resume_writing)
        responses = read_responses(sock, 3)
    assert while_paused == 1  # the first was under way already; the other two waited
    assert [len(orjson.loads(r.body)["data"]["products"]) for r in responses] == [2, 3, 1]
    assert len(hasura.requests) == 3


def test_header_names_are_matched_in_any_case_however_many_names_clients_send(
    edge: RunningServer, hasura: HasuraDouble
):
    """Lower-case names are remembered per spelling (bounded); every request still reads its own headers."""
    with raw_http.connect(edge.host, edge.port) as sock:
        for batch in range(3):  # 3 x 300 distinct names: more than the remembered spellings, some long
            extra = b"".join(b"X-Junk-%d-%d%s: v\r\n" % (batch, i, b"-x" * (i % 50)) for i in range(300))
            sock.sendall(post(b"/graphql", products(1), extra=extra))
            assert read_responses(sock, 1)[0].status == 200
        request = (
            b"POST /graphql HTTP/1.1\r\nHOST: edge\r\ncontent-TYPE: application/json\r\nAUTHORIZATION: Bearer "
            + mint().encode()
            + b"\r\nX-Request-ID: Mixed-Case-1\r\nX-HASURA-ROLE: editor\r\n"
            + b"Content-Length: %d\r\n\r\n" % len(products(1))
            + products(1)
        )
        sock.sendall(request)
        response = read_responses(sock, 1)[0]
    assert response.status == 200, response.body
    assert dict(response.headers)["x-request-id"] == "Mixed-Case-1"
    assert hasura.last().header("x-hasura-role") == "editor"
    assert hasura.last().header("x-request-id") == "Mixed-Case-1"
    remembered = connection.HEADER_NAMES  # the edge serves from this process (a thread)
    assert 0 < len(remembered) <= connection.HEADER_NAMES_MAX
    assert all(len(name) <= connection.HEADER_NAME_MAX_LENGTH for name in remembered)


class _Answer:
    """A direct handler that answers 200 at once."""

    async def handle(self, method, headers, query_string, client, read_body, respond, arrived_body=None) -> None:  # type: ignore[no-untyped-def]
        respond(200, [], b"{}")


async def test_an_idle_connection_whose_client_does_not_read_is_cut_off_at_the_keep_alive_timeout() -> None:
    # A close would wait, without end, for the client to read what is still buffered: the edge resets instead.

    state = ServerState(asyncio.get_running_loop(), ServerConfig(keep_alive=0.05), _no_app, {b"/graphql": _Answer()})
    transport = RecordingTransport()
    http = connection.HttpConnection(state)
    http.connection_made(transport)
    http.data_received(b"GET /graphql HTTP/1.1\r\nHost: edge\r\n\r\n")
    await asyncio.sleep(0.01)
    assert transport.written.startswith(b"HTTP/1.1 200 OK\r\n")
    http.pause_writing()  # as the transport says when the client stops reading
    await asyncio.sleep(0.2)
    assert transport.aborted


async def _no_app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    raise AssertionError("no ASGI request expected")


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        (("10.0.0.1", 5678), ("10.0.0.1", 5678)),
        (["10.0.0.1", 5678], ("10.0.0.1", 5678)),  # ASGI says a two-item iterable
        (("10.0.0.1", "5678"), ("10.0.0.1", 5678)),  # granian sends the port as text
        (None, None),
        (("10.0.0.1",), None),
        (("10.0.0.1", "not-a-port"), None),
    ],
)
def test_the_asgi_adapters_read_the_client_address_as_asgi_types_it(client: object, expected: object):
    from edge.asgi import asgi_client

    assert asgi_client({"client": client}) == expected

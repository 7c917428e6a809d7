"""GraphQL-over-HTTP on the wire: methods, content types, CSRF, sizes and deadlines."""

from __future__ import annotations

import contextlib
import time

import httpx
import pytest

from edge.settings import EdgeSettings
from tests.edge.conftest import EdgeFactory
from tests.hasura_double import HasuraDouble
from tests.support import raw_http
from tests.support.servers import RunningServer
from tests.support.tokens import mint

QUERY = {"query": "query Products { products(limit: 1) { id } }"}
# How long the deadline tests wait for the edge to close a connection, at most. Below the default
# request deadline, so only the configured 0.5 s one can close it in time; far above 0.5 s, so a loaded
# machine does not make them fail. It bounds the wait: the tests assert what happened, never how fast.
PATIENCE = 8.0


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {mint()}"}


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        None,
        "application/xml",
    ],
)
def test_non_json_content_types_get_415_before_anything_else(edge: RunningServer, hasura: HasuraDouble, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    # No credentials either: 415 must come first, before authentication runs.
    response = httpx.post(f"{edge.url}/graphql", content=b'{"query":"{ products { id } }"}', headers=headers)
    assert response.status_code == 415
    assert response.json()["errors"][0]["extensions"]["code"] == "unsupported-media-type"
    assert hasura.requests == []


def test_json_with_charset_is_accepted(edge: RunningServer, hasura: HasuraDouble):
    headers = {**auth(), "Content-Type": "application/json; charset=utf-8"}
    response = httpx.post(f"{edge.url}/graphql", content=b'{"query":"{ products { id } }"}', headers=headers)
    assert response.status_code == 200


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_get_405_with_allow(edge: RunningServer, method: str):
    response = httpx.request(method, f"{edge.url}/graphql", headers=auth())
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


def test_get_query_with_csrf_header_is_forwarded_as_post(edge: RunningServer, hasura: HasuraDouble):
    params = {"query": QUERY["query"], "variables": "{}", "operationName": "Products"}
    response = httpx.get(f"{edge.url}/graphql", params=params, headers={**auth(), "graphql-require-preflight": "1"})
    assert response.status_code == 200
    record = hasura.last()
    assert record.method == "POST"
    assert record.json() == {"query": QUERY["query"], "variables": {}, "operationName": "Products"}


def test_get_without_a_non_simple_header_is_refused_as_csrf(start_edge: EdgeFactory, hasura: HasuraDouble):
    # No credentials (the unauthorized role would run it): what a cross-site <img> or form can send.
    # A GET with a bearer token needs no such header: tests/edge/test_get_csrf.py.
    edge = start_edge(unauthorized_role="anonymous")
    response = httpx.get(f"{edge.url}/graphql", params={"query": QUERY["query"]})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "csrf-header-required"
    assert hasura.requests == []


@pytest.mark.parametrize(
    "query",
    ["mutation { delete_products(where: {}) { affected_rows } }", "subscription { products { id } }"],
)
def test_get_mutation_or_subscription_gets_405_allow_post(edge: RunningServer, hasura: HasuraDouble, query: str):
    response = httpx.get(
        f"{edge.url}/graphql", params={"query": query}, headers={**auth(), "apollo-require-preflight": "1"}
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert hasura.requests == []


def test_get_never_serves_an_ide(edge: RunningServer):
    response = httpx.get(f"{edge.url}/graphql", headers={"Accept": "text/html"})
    assert "graphiql" not in response.text.lower()
    assert "playground" not in response.text.lower()
    assert response.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid-json"),
        (b"[]", "bad-request"),
        (b'"just a string"', "bad-request"),
        (b'{"query": 42}', "bad-request"),
        (b'{"query": "{ a }", "variables": [1]}', "bad-request"),
        (b'[{"query": "{ a }"}, 3]', "bad-request"),
    ],
)
def test_malformed_bodies_get_400(edge: RunningServer, hasura: HasuraDouble, body: bytes, code: str):
    response = httpx.post(f"{edge.url}/graphql", content=body, headers={**auth(), "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == code
    assert hasura.requests == []


def test_batched_requests_are_forwarded_and_answered_in_order(edge: RunningServer, hasura: HasuraDouble):
    batch = [{"query": "{ products(limit: 1) { id } }"}, {"query": "{ warehouses(limit: 2) { id } }"}]
    response = httpx.post(f"{edge.url}/graphql", json=batch, headers=auth())
    assert response.status_code == 200
    results = response.json()
    assert len(results[0]["data"]["products"]) == 1
    assert len(results[1]["data"]["warehouses"]) == 2
    assert hasura.last().json() == batch


def test_body_over_the_limit_gets_413_with_honest_length(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(max_body_bytes=2048)
    response = httpx.post(f"{edge.url}/graphql", json={"query": "{ a }" + " " * 4096}, headers=auth())
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "payload-too-large"
    assert hasura.requests == []


def test_body_over_the_limit_gets_413_when_content_length_lies(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(max_body_bytes=2048)
    body = b'{"query":"{ a }","pad":"' + b"x" * 8192 + b'"}'
    with raw_http.connect(edge.host, edge.port) as sock:
        sock.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: e\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + hex(len(body))[2:].encode() + b"\r\n" + body + b"\r\n0\r\n\r\n"
        )
        response = raw_http.read_response(sock)
    assert response.status == 413
    assert hasura.requests == []


def test_chunked_body_without_length_over_the_limit_gets_413(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(max_body_bytes=2048)
    chunk = b"x" * 1000
    with raw_http.connect(edge.host, edge.port) as sock:
        sock.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: e\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        # The edge may answer 413 and close while chunks are still being sent: that is the point.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(4):
                sock.sendall(hex(len(chunk))[2:].encode() + b"\r\n" + chunk + b"\r\n")
            sock.sendall(b"0\r\n\r\n")
        response = raw_http.read_response(sock)
    assert response.status == 413
    assert hasura.requests == []


def test_small_content_length_with_more_bytes_does_not_smuggle_a_second_request(
    start_edge: EdgeFactory, hasura: HasuraDouble
):
    edge = start_edge(max_body_bytes=2048)
    smuggled = b"POST /graphql HTTP/1.1\r\nHost: e\r\nX-Hasura-Role: admin\r\n\r\n"
    request = (
        b"POST /graphql HTTP/1.1\r\nHost: e\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{}..."
        + smuggled
    )
    with raw_http.connect(edge.host, edge.port) as sock:
        sock.sendall(request)
        first = raw_http.read_response(sock)
    assert first.status in (400, 401)
    assert hasura.requests == []


def test_header_block_over_the_limit_gets_431(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(max_header_bytes=4096)
    headers = {**auth(), **{f"X-Filler-{i}": "y" * 200 for i in range(40)}}
    response = httpx.post(f"{edge.url}/graphql", json=QUERY, headers=headers)
    assert response.status_code == 431
    assert hasura.requests == []


def test_one_endless_header_is_cut_off_without_buffering_it(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(max_header_bytes=4096)
    with raw_http.connect(edge.host, edge.port) as sock:
        sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: e\r\nX-Big: ")
        try:
            for _ in range(64):
                sock.sendall(b"z" * 16384)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = raw_http.read_response(sock)
    assert response.status == 431
    assert hasura.requests == []


def test_request_target_over_the_limit_gets_414(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(max_url_bytes=1024)
    response = httpx.get(f"{edge.url}/graphql", params={"query": "{ a }" + " " * 4000})
    assert response.status_code == 414
    assert hasura.requests == []


def test_slow_header_trickle_is_cut_off_at_the_deadline(start_edge: EdgeFactory, hasura: HasuraDouble):
    """Bytes keep coming (no read ever waits long), yet the request's total deadline ends it with a 408."""
    edge = start_edge(request_deadline_seconds=0.5)
    with raw_http.connect(edge.host, edge.port) as sock:
        sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: e\r\n")
        closed = False
        received = b""
        give_up = time.monotonic() + PATIENCE
        while time.monotonic() < give_up:  # a header line every 0.1-0.2 s
            try:
                sock.sendall(b"X-Slow: a\r\n")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            done, data, _ = raw_http.wait_closed(sock, 0.1)
            received += data
            if done:
                closed = True
                break
    assert closed
    assert received.startswith(b"HTTP/1.1 408")
    assert hasura.requests == []


def test_slow_body_trickle_is_cut_off_at_the_deadline(start_edge: EdgeFactory, hasura: HasuraDouble):
    edge = start_edge(request_deadline_seconds=0.5)
    with raw_http.connect(edge.host, edge.port) as sock:
        sock.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: e\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        closed, received, _ = raw_http.wait_closed(sock, PATIENCE)
    assert closed
    assert received.startswith(b"HTTP/1.1 408")
    assert hasura.requests == []


def test_idle_connection_that_never_sends_a_request_is_closed(start_edge: EdgeFactory):
    edge = start_edge(request_deadline_seconds=0.5)
    with raw_http.connect(edge.host, edge.port) as sock:
        closed, _, _ = raw_http.wait_closed(sock, PATIENCE)
    assert closed


def test_the_deadline_tests_wait_less_than_the_default_deadline():
    """Else a connection closed by the default deadline would pass them: the configured one must do it."""
    assert EdgeSettings.model_fields["request_deadline_seconds"].default > PATIENCE


def test_a_complete_request_is_not_limited_by_the_deadline_while_hasura_works(
    start_edge: EdgeFactory, hasura: HasuraDouble
):
    edge = start_edge(request_deadline_seconds=0.3)
    hasura.faults.delay = 0.8
    response = httpx.post(f"{edge.url}/graphql", json=QUERY, headers=auth(), timeout=5)
    assert response.status_code == 200


def test_expect_100_continue_is_answered_before_the_body_is_sent(edge: RunningServer, hasura: HasuraDouble):
    body = b'{"query":"{ products(limit: 1) { id } }"}'
    with raw_http.connect(edge.host, edge.port) as sock:
        sock.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: e\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
            b"Authorization: Bearer "
            + mint().encode()
            + b"\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
        )
        # The edge reads the body only when the pipeline asks for it, and uvicorn answers
        # 100 Continue at that moment: the interim response must not be held back.
        interim = sock.recv(64)
        assert interim.startswith(b"HTTP/1.1 100")
        sock.sendall(body)
        response = raw_http.read_response(sock)
    assert response.status == 200


def test_keep_alive_connection_serves_many_requests_in_order(edge: RunningServer, hasura: HasuraDouble):
    with httpx.Client(headers=auth()) as client:
        for limit in (1, 2, 3, 1):
            response = client.post(f"{edge.url}/graphql", json={"query": f"{{ products(limit: {limit}) {{ id }} }}"})
            assert len(response.json()["data"]["products"]) == limit

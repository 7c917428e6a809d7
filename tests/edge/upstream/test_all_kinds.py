"""Behaviour every Upstream kind must share, against real loopback servers."""

from __future__ import annotations

import asyncio
import gzip
import socket

import orjson
import pytest

from edge.upstream import UpstreamConnectError, UpstreamProtocolError, UpstreamTimeout
from tests.edge.upstream import fake_upstream as fu
from tests.edge.upstream.conftest import ClientFn, ServeFn

BODY = orjson.dumps({"query": "query { users { id } }", "variables": {}})
MUTATION = orjson.dumps({"query": "mutation { delete_users(where: {}) { affected_rows } }"})


async def test_post_roundtrip_and_keep_alive(serve: ServeFn, any_client: ClientFn) -> None:
    server = await serve(fu.ok)
    client = any_client(server.url)
    for _ in range(5):
        resp = await client.post(BODY, [(b"authorization", b"Bearer t")])
        assert resp.status == 200
        assert resp.body == fu.JSON_BODY
        assert (b"content-type", b"application/json") in resp.headers
    assert server.connections == 1
    assert [r.path for r in server.requests] == ["/v1/graphql"] * 5
    assert all(r.body == BODY for r in server.requests)


async def test_request_headers_exact(serve: ServeFn, any_client: ClientFn) -> None:
    server = await serve(fu.ok)
    client = any_client(server.url)
    sent = [
        (b"authorization", b"Bearer t"),
        (b"Host", b"evil.example"),
        (b"content-length", b"999"),
        (b"Content-Type", b"text/plain"),
        (b"x-hasura-role", b"user"),
        (b"connection", b"close"),
        (b"transfer-encoding", b"chunked"),
        (b"x-forwarded-for", b"10.0.0.1"),
    ]
    await client.post(BODY, sent)
    (seen,) = server.requests
    assert seen.values(b"host") == [f"127.0.0.1:{server.port}".encode()]
    assert seen.values(b"content-length") == [str(len(BODY)).encode()]
    assert seen.values(b"content-type") == [b"application/json"]
    assert seen.values(b"authorization") == [b"Bearer t"]
    assert seen.values(b"x-hasura-role") == [b"user"]
    assert seen.values(b"x-forwarded-for") == [b"10.0.0.1"]
    assert seen.values(b"transfer-encoding") == []
    assert seen.values(b"connection") in ([], [b"keep-alive"])
    # Nothing the caller did not send (no client-added Accept-Encoding/User-Agent/Accept).
    for name in (b"accept-encoding", b"user-agent", b"accept", b"cookie"):
        assert seen.values(name) == [], name


async def test_response_headers_hop_by_hop_stripped(serve: ServeFn, any_client: ClientFn) -> None:
    server = await serve(fu.hop_by_hop)
    client = any_client(server.url)
    resp = await client.post(BODY, [])
    assert resp.status == 201
    assert resp.headers == [
        (b"content-type", b"application/json"),
        (b"x-request-id", b"abc"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
    ]
    # The adapter keeps no cookie jar: nothing is replayed on the next request.
    await client.post(BODY, [])
    assert server.requests[1].values(b"cookie") == []


async def test_chunked_response(serve: ServeFn, any_client: ClientFn) -> None:
    server = await serve(fu.chunked)
    client = any_client(server.url)
    for _ in range(2):
        resp = await client.post(BODY, [])
        assert resp.body == fu.JSON_BODY
    assert server.connections == 1


async def test_encoded_body_passed_through_raw(serve: ServeFn, any_client: ClientFn) -> None:
    server = await serve(fu.gzipped)
    client = any_client(server.url)
    resp = await client.post(BODY, [(b"accept-encoding", b"gzip")])
    assert (b"content-encoding", b"gzip") in resp.headers
    assert gzip.decompress(resp.body) == fu.JSON_BODY


async def test_connection_close_respected(serve: ServeFn, any_client: ClientFn) -> None:
    server = await serve(fu.connection_close)
    client = any_client(server.url)
    for _ in range(3):
        assert (await client.post(BODY, [])).status == 200
    assert server.connections == 3


async def test_get(serve: ServeFn, any_client: ClientFn) -> None:
    server = await serve(fu.echo_path)
    client = any_client(server.url)
    resp = await client.get("/healthz")
    assert orjson.loads(resp.body) == {"method": "GET", "path": "/healthz"}


async def test_connection_refused(any_client: ClientFn) -> None:
    with socket.socket() as sock:  # a port that was just free: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = any_client(f"http://127.0.0.1:{port}")
    with pytest.raises(UpstreamConnectError) as info:
        await client.post(BODY, [(b"authorization", b"Bearer secret-token")])
    assert "secret-token" not in str(info.value)


async def test_read_timeout(serve: ServeFn, any_client: ClientFn) -> None:
    server = await serve(fu.hang)
    client = any_client(server.url, read_timeout=0.3)
    with pytest.raises(UpstreamTimeout):
        await client.post(BODY, [])
    assert len(server.requests) == 1


async def test_per_call_timeout(serve: ServeFn, any_client: ClientFn) -> None:
    server = await serve(fu.hang)
    client = any_client(server.url, read_timeout=30)
    with pytest.raises(UpstreamTimeout):
        await client.post(BODY, [], timeout=0.3)


async def test_closed_without_response(serve: ServeFn, any_client: ClientFn) -> None:
    server = await serve(fu.close_silently)
    client = any_client(server.url)
    with pytest.raises((UpstreamConnectError, UpstreamProtocolError)):
        await client.post(BODY, [])
    assert server.connections == 1  # a fresh connection is never retried


@pytest.mark.parametrize("idempotent", [None, False])
async def test_a_mutation_read_then_dropped_on_a_reused_connection_is_sent_once(
    idempotent: bool | None, serve: ServeFn, any_client: ClientFn
) -> None:
    """The server read the request on a pooled connection, then closed it without a byte: no client kind
    writes it again (httpcore, httpcore2 and aiohttp resend no POST; the lean client only when told so)."""
    server = await serve(fu.one_then_close_on_next)
    client = any_client(server.url)
    assert (await client.post(BODY, [])).status == 200
    with pytest.raises((UpstreamConnectError, UpstreamProtocolError)):
        if idempotent is None:
            await client.post(MUTATION, [])  # not idempotent unless the caller says so
        else:
            await client.post(MUTATION, [], idempotent=idempotent)
    assert [r.body for r in server.requests] == [BODY, MUTATION]
    assert server.connections == 1
    assert (await client.post(BODY, [])).status == 200  # the pool recovers with a new connection
    assert (len(server.requests), server.connections) == (3, 2)


async def test_idle_connections_are_not_reused_after_idle_timeout(serve: ServeFn, any_client: ClientFn) -> None:
    server = await serve(fu.ok)
    client = any_client(server.url, idle_timeout=0.1)
    assert (await client.post(BODY, [])).status == 200
    await asyncio.sleep(0.3)  # idle for longer than idle_timeout
    assert (await client.post(BODY, [])).status == 200
    assert server.connections == 2


async def test_garbage_response(serve: ServeFn, any_client: ClientFn) -> None:
    server = await serve(fu.garbage)
    client = any_client(server.url)
    with pytest.raises(UpstreamProtocolError):
        await client.post(BODY, [])


async def test_partial_response_is_protocol_error(serve: ServeFn, any_client: ClientFn) -> None:
    server = await serve(fu.one_then_partial)
    client = any_client(server.url)
    await client.post(BODY, [])
    with pytest.raises(UpstreamProtocolError):
        await client.post(BODY, [])
    assert len(server.requests) == 2  # bytes arrived: no retry

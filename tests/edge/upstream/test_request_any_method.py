"""``Upstream.request``: any of Hasura's REST methods on another path, for every client kind and the balancer."""

from __future__ import annotations

import pytest

from edge.upstream import make_upstream
from edge.upstream.balancer import BalancedUpstream, parse_targets
from tests.edge.upstream import fake_upstream as fu
from tests.edge.upstream.conftest import ClientFn, ServeFn

TARGET = "/api/rest/documents/a%2Fb?title=x%20y"


async def test_method_target_body_and_framing_reach_the_server(serve: ServeFn, any_client: ClientFn) -> None:
    server = await serve(fu.ok)
    client = any_client(server.url)
    body = b'{"content":"c"}'
    response = await client.request(
        "PATCH", TARGET, body, [(b"x-hasura-role", b"user"), (b"Content-Type", b"text/plain"), (b"host", b"evil")]
    )
    assert response.status == 200
    (seen,) = server.requests
    assert (seen.method, seen.path, seen.body) == ("PATCH", TARGET, body)
    assert seen.values(b"content-type") == [b"application/json"]
    assert seen.values(b"content-length") == [str(len(body)).encode()]
    assert seen.values(b"host") == [f"127.0.0.1:{server.port}".encode()]
    assert seen.values(b"x-hasura-role") == [b"user"]


async def test_without_a_body_no_content_type_is_sent(serve: ServeFn, any_client: ClientFn) -> None:
    server = await serve(fu.ok)
    client = any_client(server.url)
    await client.request("GET", "/api/rest/products?limit=2", None, [])
    (seen,) = server.requests
    assert (seen.method, seen.path, seen.body) == ("GET", "/api/rest/products?limit=2", b"")
    assert seen.values(b"content-type") == []


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("HEAD", "/api/rest/x"),
        ("GET", "api/rest/x"),
        ("GET", "/api/rest/x y"),
        ("GET", "/api/rest/\r\nx"),
        ("GET", "/é"),
    ],
)
async def test_what_could_split_the_request_line_is_refused(
    serve: ServeFn, any_client: ClientFn, method: str, target: str
) -> None:
    server = await serve(fu.ok)
    client = any_client(server.url)
    with pytest.raises(ValueError):
        await client.request(method, target, None, [])
    assert server.requests == []


async def test_the_balancer_passes_requests_to_a_target(serve: ServeFn) -> None:
    server = await serve(fu.ok)
    balanced = BalancedUpstream(
        parse_targets(server.url),
        make_client=lambda url: make_upstream(
            url, kind="lean", connect_timeout=2.0, read_timeout=5.0, max_connections=2
        ),
    )
    try:
        response = await balanced.request("DELETE", "/api/rest/items/1", None, [], idempotent=False)
    finally:
        await balanced.aclose()
    assert response.status == 200
    assert [(seen.method, seen.path) for seen in server.requests] == [("DELETE", "/api/rest/items/1")]

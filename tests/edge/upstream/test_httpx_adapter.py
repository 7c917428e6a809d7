"""HttpxUpstream over httpx.MockTransport, and the exception mapping for every httpx-API client."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import httpx
import pytest

from edge.upstream import (
    HttpxUpstream,
    UpstreamConnectError,
    UpstreamError,
    UpstreamPoolTimeout,
    UpstreamProtocolError,
    UpstreamTimeout,
    make_upstream,
)
from edge.upstream.httpx_adapter import map_exception
from tests.edge.upstream import fake_upstream as fu
from tests.edge.upstream.conftest import ServeFn


def mock_client(handler: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url="http://hasura:8080", transport=httpx.MockTransport(handler))


async def test_mock_transport_roundtrip() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            content=b'{"data":{}}',
            headers=[("Content-Type", "application/json"), ("Set-Cookie", "s=1"), ("Connection", "close")],
        )

    upstream = HttpxUpstream(mock_client(handler))
    try:
        resp = await upstream.post(b'{"query":"{a}"}', [(b"authorization", b"Bearer t"), (b"host", b"x")])
        await upstream.post(b"{}", [])
    finally:
        await upstream.aclose()
    assert resp.status == 200 and resp.body == b'{"data":{}}'
    assert resp.headers == [(b"content-type", b"application/json"), (b"set-cookie", b"s=1")]
    first = seen[0]
    assert str(first.url) == "http://hasura:8080/v1/graphql"
    assert first.headers.get_list("host") == ["hasura:8080"]
    assert first.headers.get_list("content-type") == ["application/json"]
    assert first.headers["authorization"] == "Bearer t"
    assert "accept-encoding" not in first.headers and "user-agent" not in first.headers
    assert "cookie" not in seen[1].headers  # no jar: cookies never cross between callers


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (httpx.ConnectError("refused"), UpstreamConnectError),
        (httpx.ConnectTimeout("slow"), UpstreamTimeout),
        (httpx.ReadTimeout("slow"), UpstreamTimeout),
        (httpx.PoolTimeout("busy"), UpstreamPoolTimeout),
        (httpx.RemoteProtocolError("bad"), UpstreamProtocolError),
        (httpx.ReadError("reset"), UpstreamConnectError),
    ],
)
async def test_mock_transport_errors_are_mapped(raised: Exception, expected: type[UpstreamError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise raised

    upstream = HttpxUpstream(mock_client(handler))
    try:
        with pytest.raises(expected) as info:
            await upstream.post(b'{"secret":"body"}', [(b"authorization", b"Bearer secret")])
    finally:
        await upstream.aclose()
    assert type(info.value) is expected
    assert "secret" not in str(info.value)


async def test_programming_errors_are_not_swallowed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise KeyError("bug")

    upstream = HttpxUpstream(mock_client(handler))
    try:
        with pytest.raises(KeyError):
            await upstream.post(b"{}", [])
    finally:
        await upstream.aclose()


async def test_size_cap(serve: ServeFn) -> None:
    server = await serve(fu.oversized)
    upstream = HttpxUpstream(httpx.AsyncClient(base_url=server.url), max_response_bytes=100_000)
    try:
        with pytest.raises(UpstreamProtocolError, match="exceeds"):
            await upstream.post(b"{}", [])
    finally:
        await upstream.aclose()


def test_map_exception_by_name_covers_httpx2() -> None:
    if importlib.util.find_spec("httpx2") is None:
        pytest.skip("httpx2 not installed")
    import httpx2

    assert isinstance(map_exception(httpx2.ConnectError("x")), UpstreamConnectError)
    assert isinstance(map_exception(httpx2.PoolTimeout("x")), UpstreamPoolTimeout)
    assert isinstance(map_exception(httpx2.ReadTimeout("x")), UpstreamTimeout)
    assert isinstance(map_exception(httpx2.RemoteProtocolError("x")), UpstreamProtocolError)
    assert map_exception(ValueError("not ours")) is None


def test_make_upstream_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown"):
        make_upstream("http://h", kind="curl", connect_timeout=1, read_timeout=1, max_connections=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "module"), [("httpx2", "httpx2"), ("httpx-aiohttp", "httpx_aiohttp")])
def test_missing_optional_package_is_a_clear_error(kind: str, module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(ImportError, match=r"pip install -e '\.\[bench\]'"):
        make_upstream("http://h", kind=kind, connect_timeout=1, read_timeout=1, max_connections=1)  # type: ignore[arg-type]

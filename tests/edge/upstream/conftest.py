from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest

from edge.upstream import Upstream, UpstreamKind, make_upstream
from edge.upstream.lean import LeanUpstream
from tests.edge.upstream.fake_upstream import FakeUpstream, Handler


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every test runs on the stdlib loop and on uvloop (what the edge runs under)."""
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
    if importlib.util.find_spec("uvloop") is not None:
        import uvloop

        factories["uvloop"] = uvloop.new_event_loop
    return factories


ServeFn = Callable[[Handler], Awaitable[FakeUpstream]]
ClientFn = Callable[..., Upstream]

ALL_KINDS: list[UpstreamKind] = ["lean", "httpx", "httpx2", "httpx-aiohttp"]
_NEEDS = {"httpx2": "httpx2", "httpx-aiohttp": "httpx_aiohttp"}


@pytest.fixture
async def serve() -> AsyncIterator[ServeFn]:
    servers: list[FakeUpstream] = []

    async def start(handler: Handler) -> FakeUpstream:
        server = await FakeUpstream(handler).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def clients() -> AsyncIterator[list[Upstream]]:
    made: list[Upstream] = []
    yield made
    for client in made:
        await client.aclose()


@pytest.fixture
def lean(clients: list[Upstream]) -> Callable[..., LeanUpstream]:
    def make(url: str, **options: Any) -> LeanUpstream:
        options.setdefault("read_timeout", 5.0)
        client = LeanUpstream(url, **options)
        clients.append(client)
        return client

    return make


@pytest.fixture(params=ALL_KINDS)
def kind(request: pytest.FixtureRequest) -> UpstreamKind:
    name: UpstreamKind = request.param
    module = _NEEDS.get(name)
    if module and importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} not installed (bench extra)")
    return name


@pytest.fixture
def any_client(kind: UpstreamKind, clients: list[Upstream]) -> ClientFn:
    """A client of the parametrized kind, built the way the edge builds it."""

    def make(url: str, *, read_timeout: float = 5.0, max_connections: int = 8, idle_timeout: float = 15.0) -> Upstream:
        client = make_upstream(
            url,
            kind=kind,
            connect_timeout=2.0,
            read_timeout=read_timeout,
            max_connections=max_connections,
            idle_timeout=idle_timeout,
        )
        clients.append(client)
        return client

    return make

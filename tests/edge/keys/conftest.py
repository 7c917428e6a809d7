"""Fixtures for the API-key tests: one database per module with the edge's tables, made by its migrations
(keys are random, so tests do not collide), a repository per test (its pool lives on the test's event loop),
and test doubles."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from edge.keys import ApiKey, ApiKeyRepository, open_repository
from tests.support.edge_database import edge_database

KNOWN_PLANS = frozenset({"free", "partner"})


@pytest.fixture(scope="module")
def database_url(postgres_server_url: str) -> Iterator[str]:
    with edge_database(postgres_server_url, "edge_keys") as url:
        yield url


@pytest.fixture
async def repository(database_url: str) -> AsyncIterator[ApiKeyRepository]:
    async with open_repository(database_url, known_plans=KNOWN_PLANS, wait=True, max_size=4) as repo:
        yield repo


@pytest.fixture
def closed_port_url() -> str:
    """A Postgres URL on a loopback port nothing listens on (connections are refused at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


class CountingLookup:
    """Wraps the repository and counts database lookups. ``gate`` (when set) holds every lookup until it
    opens: before the query, or after it with ``read_first`` (the answer is then as of the read)."""

    def __init__(self, inner: ApiKeyRepository, *, gate: asyncio.Event | None = None, read_first: bool = False) -> None:
        self.inner = inner
        self.gate = gate
        self.read_first = read_first
        self.calls: list[str] = []
        self.read = asyncio.Event()  # set once a query has returned

    async def get_by_key_id(self, key_id: str) -> tuple[ApiKey, str] | None:
        self.calls.append(key_id)
        if self.gate is not None and not self.read_first:
            await self.gate.wait()
        found = await self.inner.get_by_key_id(key_id)
        self.read.set()
        if self.gate is not None and self.read_first:
            await self.gate.wait()
        return found


class ManualClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

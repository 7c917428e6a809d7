"""Fixtures for the limiter tests: an injected clock and both store backends behind one fixture.

``stores`` is parametrized over ``memory`` and Redis in each topology (one server, Sentinel, Cluster:
``topology_params``): the same behaviour tests run against ``InMemoryLimiter``/``InMemoryCostBudgets``
and ``RedisLimiter``/``RedisCostBudgets`` on a client from ``open_shared_redis``, as the edge builds it.
The Redis ones get the test's clock as ``now`` (the script's override argument) and a key prefix unique to
the test, so a shared Redis (REDIS_URL) is never polluted across tests or runs.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import redis

from edge.limits import (
    CostBudgets,
    InMemoryCostBudgets,
    InMemoryLimiter,
    Limiter,
    RedisCostBudgets,
    RedisLimiter,
)
from edge.redis_topology import RedisClient, open_shared_redis
from tests.support.redis_topologies import topology_params, topology_url


def at(iso: str) -> float:
    """Epoch seconds of an ISO-8601 UTC instant such as ``"2024-03-10T22:00:00"``."""
    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Stores:
    backend: str
    limiter: Limiter
    budgets: CostBudgets
    clock: FakeClock


def unique_prefix() -> str:
    return f"test:limits:{uuid.uuid4().hex}:"


def purge(url: str, prefix: str) -> None:
    """Delete a test's keys: with an injected clock, quota keys can carry TTLs of up to a month."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix unique to the test on the shared Redis, purged afterwards."""
    value = unique_prefix()
    yield value
    purge(redis_url, value)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=topology_params("memory"))
def backend(request: pytest.FixtureRequest) -> str | None:
    """None for the in-memory stores, else the edge's Redis URL of each topology in turn."""
    if request.param == "memory":
        return None
    return topology_url(request, request.param)


async def purge_with(client: RedisClient, prefix: str) -> None:
    """``purge`` on any topology (a Cluster's SCAN visits every master)."""
    async for key in client.scan_iter(match=prefix + "*", count=1000):
        await client.delete(key)


@pytest.fixture
async def stores(backend: str | None, clock: FakeClock) -> AsyncIterator[Stores]:
    if backend is None:
        yield Stores("memory", InMemoryLimiter(clock=clock), InMemoryCostBudgets(clock=clock), clock)
        return
    shared = open_shared_redis(backend)
    client = shared.client
    prefix = unique_prefix()
    try:
        yield Stores(
            "redis",
            RedisLimiter(client, clock=clock, prefix=prefix),  # type: ignore[arg-type]  # any topology's client
            RedisCostBudgets(client, clock=clock, prefix=prefix),  # type: ignore[arg-type]
            clock,
        )
    finally:
        await purge_with(client, prefix)
        await shared.aclose()

"""Fixtures for the limiter tests: an injected clock and both store backends behind one fixture.

``stores`` is parametrized over ``memory`` and Redis in each topology (one server, Sentinel, Cluster:
``topology_params``) and ``lean``: the same behaviour tests run against ``InMemoryLimiter``/``InMemoryCostBudgets``
and ``RedisLimiter``/``RedisCostBudgets`` on a redis-py client from ``open_shared_redis``, and (``lean``) on
the ``LeanRedis`` it gives the edge's limit stores for one server (``SharedRedis.limits_client``).
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
from edge.limits.resp_client import LeanRedis
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


LEAN = pytest.param("lean", marks=pytest.mark.redis)
"""A store fixture's param: one server, through ``LeanRedis`` (``edge.limits.resp_client``)."""


@pytest.fixture(params=[*topology_params("memory"), LEAN])
def backend(request: pytest.FixtureRequest) -> tuple[str, bool] | None:
    """None for the in-memory stores, else the edge's Redis URL of each topology in turn, and whether the
    stores get the lean client (``lean``: one server) or redis-py (every topology)."""
    if request.param == "memory":
        return None
    if request.param == "lean":
        return topology_url(request, "standalone"), True
    return topology_url(request, request.param), False


async def purge_with(client: RedisClient, prefix: str) -> None:
    """``purge`` on any topology (a Cluster's SCAN visits every master)."""
    async for key in client.scan_iter(match=prefix + "*", count=1000):
        await client.delete(key)


@pytest.fixture
async def stores(backend: tuple[str, bool] | None, clock: FakeClock) -> AsyncIterator[Stores]:
    if backend is None:
        yield Stores("memory", InMemoryLimiter(clock=clock), InMemoryCostBudgets(clock=clock), clock)
        return
    url, lean = backend
    shared = open_shared_redis(url)
    client = shared.client
    scripts = shared.limits_client if lean else client
    assert isinstance(scripts, LeanRedis) == lean
    prefix = unique_prefix()
    try:
        yield Stores(
            "redis",
            RedisLimiter(scripts, clock=clock, prefix=prefix),
            RedisCostBudgets(scripts, clock=clock, prefix=prefix),
            clock,
        )
    finally:
        await purge_with(client, prefix)
        await shared.aclose()

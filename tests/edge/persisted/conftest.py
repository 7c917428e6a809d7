"""Fixtures for persisted operations: APQ stores (memory and Redis) and a small manifest."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator

import pytest

from edge.graphql.persisted import MemoryPersistedQueryStore, PersistedQueryStore, RedisPersistedQueryStore
from edge.redis_topology import open_shared_redis
from tests.support.redis_topologies import topology_params, topology_url


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def apq(sha256: str, query: str | None = None, **extra: object) -> dict[str, object]:
    request: dict[str, object] = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256}}, **extra}
    if query is not None:
        request["query"] = query
    return request


@pytest.fixture(params=topology_params("memory"))
async def store(request: pytest.FixtureRequest) -> AsyncIterator[PersistedQueryStore]:
    """Each APQ test runs on the memory store and on Redis in each topology (one server, Sentinel, Cluster),
    under a key prefix unique to the test, deleted after."""
    if request.param == "memory":
        yield MemoryPersistedQueryStore()
        return
    shared = open_shared_redis(topology_url(request, request.param), timeout=2.0)
    client = shared.client
    prefix = f"test:apq:{uuid.uuid4().hex}:"
    try:
        yield RedisPersistedQueryStore(client, prefix=prefix, timeout=2.0)  # type: ignore[arg-type]
    finally:
        async for key in client.scan_iter(match=prefix + "*"):
            await client.delete(key)
        await shared.aclose()

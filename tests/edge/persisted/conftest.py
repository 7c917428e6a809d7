"""Fixtures for persisted operations: APQ stores (memory and Redis) and a small manifest."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from edge.graphql.persisted import MemoryPersistedQueryStore, PersistedQueryStore, RedisPersistedQueryStore


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def apq(sha256: str, query: str | None = None, **extra: object) -> dict[str, object]:
    request: dict[str, object] = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256}}, **extra}
    if query is not None:
        request["query"] = query
    return request


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[PersistedQueryStore]:
    """Each APQ test runs on the memory store and on Redis (a key prefix unique to the test, deleted after)."""
    if request.param == "memory":
        yield MemoryPersistedQueryStore()
        return
    url: str = request.getfixturevalue("redis_url")
    client = aioredis.Redis.from_url(url)
    prefix = f"test:apq:{uuid.uuid4().hex}:"
    try:
        yield RedisPersistedQueryStore(client, prefix=prefix, timeout=2.0)
    finally:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()

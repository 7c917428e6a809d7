"""The Redis APQ store: shared between stores, TTLs, and never raising when Redis is down or tampered with."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from edge.graphql.persisted import PersistedQueries, PersistedQueryNotFound, RedisPersistedQueryStore
from tests.edge.persisted.conftest import apq, sha

QUERY = "query Shared { products { id } }"


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_redis_down_reads_as_a_miss_and_drops_writes(caplog: pytest.LogCaptureFixture) -> None:
    client = aioredis.Redis(
        host="127.0.0.1", port=closed_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    try:
        store = RedisPersistedQueryStore(client, timeout=0.5)
        with caplog.at_level(logging.WARNING, logger="edge.graphql.persisted"):
            assert await store.get(sha(QUERY)) is None
            await store.put(sha(QUERY), QUERY)  # swallowed
            persisted = PersistedQueries(store)
            assert await persisted.resolve(apq(sha(QUERY), QUERY)) == {"query": QUERY}  # still runs
            with pytest.raises(PersistedQueryNotFound):  # the client resends the full query
                await persisted.resolve(apq(sha(QUERY)))
        assert store.store_errors == 4
        warnings = [record for record in caplog.records if record.getMessage() == "apq_store_error"]
        assert len(warnings) == 1  # rate-limited
    finally:
        await client.aclose()


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.mark.redis
async def test_two_stores_on_one_redis_share_registrations_with_a_ttl(client: aioredis.Redis) -> None:
    prefix = f"test:apq:{uuid.uuid4().hex}:"
    first = PersistedQueries(RedisPersistedQueryStore(client, prefix=prefix, ttl_seconds=60, timeout=2.0))
    second = PersistedQueries(RedisPersistedQueryStore(client, prefix=prefix, ttl_seconds=60, timeout=2.0))
    try:
        await first.resolve(apq(sha(QUERY), QUERY))
        assert await second.resolve(apq(sha(QUERY))) == {"query": QUERY}
        assert 0 < await client.ttl(prefix + sha(QUERY)) <= 60
    finally:
        await client.delete(prefix + sha(QUERY))


@pytest.mark.redis
async def test_a_value_that_is_not_its_hash_is_a_miss(client: aioredis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    prefix = f"test:apq:{uuid.uuid4().hex}:"
    store = RedisPersistedQueryStore(client, prefix=prefix, timeout=2.0)
    key = prefix + sha(QUERY)
    try:
        await client.set(key, "mutation Evil { delete_everything { affected_rows } }")
        with caplog.at_level(logging.WARNING, logger="edge.graphql.persisted"):
            assert await store.get(sha(QUERY)) is None
        assert any(record.getMessage() == "apq_store_mismatch" for record in caplog.records)
    finally:
        await client.delete(key)

"""The stores: TTL and LRU/byte bounds in memory, the same contract on Redis, and Redis outages never raise."""

from __future__ import annotations

import logging
import socket

import pytest

from edge.cache import CachedResponse, MemoryResponseCache, RedisResponseCache, ResponseCacheStore
from edge.cache.directive import MAX_TTL
from edge.cache.store import CLEAR_BATCH
from edge.limits import redis_client_from_url
from tests.edge.cache.conftest import JSON, FakeClock, unique_prefix
from tests.edge.limits.conftest import purge_with
from tests.edge.limits.redis_process import RedisProcess


def entry(body: bytes = b'{"data":{}}', *, operation: str | None = "Q", ttl: int = 60) -> CachedResponse:
    return CachedResponse(200, (JSON,), body, stored_at=1_700_000_000.0, ttl=ttl, operation_name=operation)


async def test_memory_entries_expire_after_their_ttl_on_the_injected_clock() -> None:
    clock = FakeClock()
    cache = MemoryResponseCache(10, 10_000, clock=clock)
    await cache.set("k", entry(), 60)
    clock.advance(59.9)
    assert await cache.get("k") == entry()
    clock.advance(0.1)
    assert await cache.get("k") is None
    assert len(cache) == 0 and cache.bytes == 0


async def test_memory_evicts_the_least_recently_used_entry_past_max_entries() -> None:
    cache = MemoryResponseCache(2, 10_000, clock=FakeClock())
    await cache.set("a", entry(b"a"), 60)
    await cache.set("b", entry(b"b"), 60)
    assert await cache.get("a") is not None  # "b" is now the least recently used
    await cache.set("c", entry(b"c"), 60)
    assert await cache.get("b") is None
    assert await cache.get("a") is not None and await cache.get("c") is not None


async def test_memory_stays_under_max_bytes_and_skips_entries_bigger_than_the_whole_cache() -> None:
    one = entry(b"x" * 1000)
    size = one.size() + 1  # one-character keys
    cache = MemoryResponseCache(100, 2 * size, clock=FakeClock())
    await cache.set("a", one, 60)
    await cache.set("b", one, 60)
    await cache.set("c", one, 60)
    assert len(cache) == 2 and cache.bytes <= 2 * size
    assert await cache.get("a") is None
    await cache.set("d", entry(b"y" * 10_000), 60)
    assert await cache.get("d") is None
    await cache.set("b", entry(b"small"), 60)  # overwriting releases the old entry's bytes
    assert cache.bytes == size + entry(b"small").size() + 1


async def test_memory_refuses_non_positive_bounds() -> None:
    with pytest.raises(ValueError):
        MemoryResponseCache(0, 10)


async def test_both_stores_delete_one_key_or_every_entry_of_an_operation(store: ResponseCacheStore) -> None:
    await store.set("k1", entry(b"1"), 60)
    await store.set("k2", entry(b"2"), 60)
    await store.set("k3", entry(b"3", operation="Other"), 60)
    await store.set("k4", entry(b"4", operation=None), 60)
    assert (await store.get("k1")) == entry(b"1")
    assert await store.delete("k1") is True
    assert await store.delete("k1") is False
    assert await store.delete_operation("Q") == 1
    assert await store.get("k2") is None
    assert await store.delete_operation("Q") == 0
    assert await store.get("k3") == entry(b"3", operation="Other")
    assert await store.get("k4") == entry(b"4", operation=None)


def test_cached_responses_round_trip_through_their_encoding() -> None:
    original = CachedResponse(200, (JSON,), b'{"data":{"a":"\\n\xc3\xa9"}}\n', 1.5, 30, "Q")
    assert CachedResponse.decode(original.encode()) == original
    with pytest.raises(ValueError):
        CachedResponse.decode(b"no header line")
    assert original.remaining(1.5) == 30 and original.remaining(1.6) == 30 and original.remaining(31.5) == 0


@pytest.mark.redis
async def test_redis_entries_carry_a_redis_ttl_and_an_operation_index(redis_url: str) -> None:
    client = redis_client_from_url(redis_url, timeout=2.0)
    prefix = unique_prefix()
    cache = RedisResponseCache(client, prefix=prefix, timeout=2.0, clock=FakeClock(1_700_000_000.0))
    window = 1_700_000_000 // MAX_TTL
    try:
        await cache.set("k", entry(), 42)
        assert 0 < await client.ttl(f"{prefix}r:k") <= 42
        assert await client.smembers(f"{prefix}op:Q:{window}") == {f"{prefix}r:k".encode()}
        assert MAX_TTL < await client.ttl(f"{prefix}op:Q:{window}") <= MAX_TTL + 1  # outlives its entries
        await client.set(f"{prefix}r:bad", b"garbage")
        assert await cache.get("bad") is None
        assert cache.store_errors == 1
    finally:
        await purge_with(client, prefix)
        await client.aclose()


@pytest.mark.redis
async def test_an_operations_index_is_one_set_per_window_so_it_stays_bounded(redis_url: str) -> None:
    """One set refreshed by every new entry would never expire while the operation is in use, and would list
    every key ever cached for it. A window's set stops growing when the window ends, and expires after."""
    client = redis_client_from_url(redis_url, timeout=2.0)
    prefix, clock = unique_prefix(), FakeClock(MAX_TTL * 5_000_000.0)
    cache = RedisResponseCache(client, prefix=prefix, timeout=2.0, clock=clock)
    window = 5_000_000
    try:
        await cache.set("k1", entry(), 60)
        clock.advance(MAX_TTL - 1)
        await cache.set("k2", entry(), 60)  # the same window
        clock.advance(1)
        await cache.set("k3", entry(), 60)  # the next one
        assert await client.smembers(f"{prefix}op:Q:{window}") == {f"{prefix}r:k1".encode(), f"{prefix}r:k2".encode()}
        assert await client.smembers(f"{prefix}op:Q:{window + 1}") == {f"{prefix}r:k3".encode()}
    finally:
        await purge_with(client, prefix)
        await client.aclose()


@pytest.mark.redis
async def test_clearing_an_operation_reads_the_windows_around_now_and_the_index_before_windows(
    redis_url: str,
) -> None:
    client = redis_client_from_url(redis_url, timeout=2.0)
    prefix, clock = unique_prefix(), FakeClock(MAX_TTL * 5_000_000.0)
    cache = RedisResponseCache(client, prefix=prefix, timeout=2.0, clock=clock)
    try:
        await cache.set("before", entry(), 300)  # the previous window, as seen once the clock moves on
        clock.advance(MAX_TTL)
        await cache.set("now", entry(), 300)
        ahead = RedisResponseCache(client, prefix=prefix, timeout=2.0, clock=FakeClock(clock.now + MAX_TTL))
        await ahead.set("ahead", entry(), 300)  # a replica whose clock runs a window ahead
        await client.set(f"{prefix}r:legacy", entry().encode(), ex=300)  # an older release's entry and index
        await client.sadd(f"{prefix}op:Q", f"{prefix}r:legacy")
        await cache.set("other", entry(operation="Other"), 300)
        assert await cache.delete_operation("Q") == 4
        assert [await cache.get(key) for key in ("before", "now", "ahead", "legacy")] == [None] * 4
        assert await cache.get("other") == entry(operation="Other")
        assert await cache.delete_operation("Q") == 0
    finally:
        await purge_with(client, prefix)
        await client.aclose()


@pytest.mark.redis
async def test_clearing_thousands_of_entries_reads_the_index_in_parts() -> None:
    """SSCAN and pipelines of ``CLEAR_BATCH``, never SMEMBERS: one command reading a whole index would hold
    Redis for every other client."""
    server = RedisProcess()
    server.start()
    client = redis_client_from_url(server.url, timeout=5.0)
    cache = RedisResponseCache(client, prefix="c:", timeout=5.0)
    try:
        for n in range(2500):
            await cache.set(f"k{n}", entry(), 300)
        await client.config_resetstat()
        assert await cache.delete_operation("Q") == 2500
        stats: dict[str, dict[str, float]] = await client.info("commandstats")
        assert "cmdstat_smembers" not in stats
        assert stats["cmdstat_sscan"]["calls"] >= 2500 // CLEAR_BATCH + 4  # and the other three indexes
        assert await client.dbsize() == 0  # every entry, and each index emptied
        assert cache.store_errors == 0
    finally:
        await client.aclose()
        server.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_redis_down_is_a_miss_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    client = redis_client_from_url(f"redis://:secret-pw@127.0.0.1:{_closed_port()}/0", timeout=0.2)
    cache = RedisResponseCache(client, timeout=0.2)
    try:
        with caplog.at_level(logging.WARNING, logger="edge.cache.store"):
            assert await cache.get("k") is None
            await cache.set("k", entry(), 60)
            assert await cache.delete("k") is False
            assert await cache.delete_operation("Q") == 0
        assert cache.store_errors == 4
        warnings = [record for record in caplog.records if record.getMessage() == "response_cache_store_error"]
        assert len(warnings) == 1  # rate-limited
        assert "secret-pw" not in caplog.text
    finally:
        await client.aclose()

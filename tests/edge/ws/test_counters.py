"""Subscription counters: per key across replicas (Redis) or in one process, with leases against leaks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from edge.redis_topology import open_shared_redis
from edge.ws.counters import MemorySubscriptionCounter, RedisSubscriptionCounter, SubscriptionCounter, make_counter
from tests.edge.ws.conftest import TRANSPORT, WssEdgeFactory, bearer, open_client
from tests.support.tokens import hasura_claims


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_counter_caps_releases_and_refreshes() -> None:
    clock = Clock()
    counter = MemorySubscriptionCounter(lease=10, clock=clock)
    assert await counter.acquire("user:1", "a", 2)
    assert await counter.acquire("user:1", "b", 2)
    assert not await counter.acquire("user:1", "c", 2)
    assert await counter.acquire("user:1", "a", 2)  # a member already held is not counted twice
    assert await counter.acquire("user:2", "c", 2)  # keys are independent
    await counter.release("user:1", "a")
    assert await counter.acquire("user:1", "c", 2)
    clock.now += 8
    await counter.refresh("user:1", ["c"])
    clock.now += 5  # b's lease ran out (a replica died holding it); c was refreshed
    assert counter.count("user:1") == 2
    assert await counter.acquire("user:1", "d", 2)
    assert counter.count("user:1") == 2


def test_make_counter_picks_redis_only_with_a_client() -> None:
    assert isinstance(make_counter(None), MemorySubscriptionCounter)
    assert isinstance(make_counter(aioredis.Redis()), RedisSubscriptionCounter)


@pytest.fixture
async def redis_counters(topology_redis_url: str) -> AsyncIterator[tuple[SubscriptionCounter, SubscriptionCounter]]:
    """Two replicas' counters on one Redis, in each topology (one server, Sentinel, Cluster)."""
    shared = [open_shared_redis(topology_redis_url, timeout=2.0) for _ in range(2)]
    prefix = f"test:ws:{uuid.uuid4().hex}:"
    counters = tuple(RedisSubscriptionCounter(one.client, lease=1.0, prefix=prefix) for one in shared)
    yield counters  # type: ignore[misc]
    async for key in shared[0].client.scan_iter(match=prefix + "*"):
        await shared[0].client.delete(key)
    for one in shared:
        await one.aclose()


@pytest.mark.redis
async def test_redis_counter_is_shared_by_replicas(
    redis_counters: tuple[SubscriptionCounter, SubscriptionCounter],
) -> None:
    one, two = redis_counters
    assert await one.acquire("key:k", "conn1:a", 2)
    assert await two.acquire("key:k", "conn2:a", 2)
    assert not await two.acquire("key:k", "conn2:b", 2)
    await one.release("key:k", "conn1:a")
    assert await two.acquire("key:k", "conn2:b", 2)


@pytest.mark.redis
async def test_redis_leases_expire_unless_refreshed(
    redis_counters: tuple[SubscriptionCounter, SubscriptionCounter],
) -> None:
    one, two = redis_counters
    assert await one.acquire("key:k", "dead:a", 2)
    assert await two.acquire("key:k", "live:a", 2)
    for _ in range(3):
        await asyncio.sleep(0.5)
        await two.refresh("key:k", ["live:a"])
    assert await two.acquire("key:k", "live:b", 2)  # dead:a's lease is over
    assert not await one.acquire("key:k", "late", 2)


async def test_redis_failure_fails_open() -> None:
    client = aioredis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=0.2)
    counter = RedisSubscriptionCounter(client)
    assert await counter.acquire("key:k", "a", 1)
    await counter.release("key:k", "a")
    await counter.refresh("key:k", ["a"])
    await client.aclose()


@pytest.mark.redis
async def test_two_edge_replicas_share_the_subscription_cap_through_redis(
    start_wss_edge: WssEdgeFactory, redis_url: str
) -> None:
    user = f"replica-user-{uuid.uuid4().hex[:8]}"
    replicas = [start_wss_edge(redis_url=redis_url, plans={"default": {"max_subscriptions": 1}}) for _ in range(2)]
    async with open_client(replicas[0], TRANSPORT) as first, open_client(replicas[1], TRANSPORT) as second:
        await first.init(bearer(claims=hasura_claims(user)))
        await second.init(bearer(claims=hasura_claims(user)))
        await first.subscribe("a", "subscription { users(limit: 1) { id } }")
        assert (await first.receive())["type"] == "next"
        await second.subscribe("b", "subscription { users(limit: 1) { id } }")
        refused = await second.receive()
        assert refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "subscription-limit-exceeded"
        await first.send({"type": "complete", "id": "a"})
        await first.send({"type": "ping"})
        assert (await first.receive())["type"] == "pong"  # the complete was handled (slot released)
        await second.subscribe("c", "subscription { users(limit: 1) { id } }")
        assert (await second.receive())["type"] == "next"

"""Many decisions in flight at once stay exact: each is its own script, on one server, Sentinel and
Cluster, and on one server through ``LeanRedis`` (its calls share one pipelined connection); after
NOSCRIPT and during an outage each caller gets its own answer."""

from __future__ import annotations

import asyncio

import pytest

from edge.limits import RedisCostBudgets, RedisLimiter, redis_client_from_url
from edge.limits.redis_store import StoreClient
from edge.limits.resp_client import LeanRedis
from edge.plans import CostBudget, Plan
from edge.redis_topology import open_shared_redis
from tests.edge.limits.conftest import unique_prefix
from tests.edge.limits.redis_process import RedisProcess
from tests.support.store_clients import store_client

pytestmark = pytest.mark.redis

SCARCE = Plan.model_validate({"rate": {"requests_per_second": 0.001, "burst": 50}})
BURST_20 = Plan.model_validate({"rate": {"requests_per_second": 0.001, "burst": 20}})


@pytest.fixture(params=["redis-py", "lean"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def check_concurrent_decisions(client: StoreClient) -> None:
    limiter = RedisLimiter(client, prefix=unique_prefix(), failure_mode="closed")
    budgets = RedisCostBudgets(client, prefix=unique_prefix(), failure_mode="closed")
    # Two callers (different hash tags: different cluster slots), 8 decisions each at once.
    decisions = await asyncio.gather(*(limiter.hit(f"user-{n % 2}", "free", BURST_20) for n in range(16)))
    for user in (0, 1):
        mine = decisions[user::2]
        assert all(d.allowed for d in mine)
        assert sorted(d.remaining for d in mine) == list(range(12, 20))  # no two saw the same state
    more = await asyncio.gather(*(limiter.hit("user-0", "free", BURST_20) for _ in range(16)))
    assert sorted(d.remaining for d in more if d.allowed) == list(range(12))
    assert sorted(str(d.code) for d in more if not d.allowed) == ["rate-limited"] * 4
    budget = CostBudget(maximum=10, restore_rate=0.001)
    charges = await asyncio.gather(*(budgets.charge("user-0", "free", budget, 3) for _ in range(4)))
    assert sorted(c.allowed for c in charges) == [False, True, True, True]  # 3 + 3 + 3 of 10, then 1 left
    assert limiter.store_errors == budgets.store_errors == 0


async def test_concurrent_decisions_are_each_atomic_on_every_topology(topology_redis_url: str) -> None:
    shared = open_shared_redis(topology_redis_url)
    try:
        await check_concurrent_decisions(shared.client)
    finally:
        await shared.aclose()


async def test_concurrent_decisions_are_each_atomic_on_the_lean_clients_one_connection(redis_url: str) -> None:
    shared = open_shared_redis(redis_url)
    try:
        assert isinstance(shared.limits_client, LeanRedis)
        await check_concurrent_decisions(shared.limits_client)
    finally:
        await shared.aclose()


async def test_concurrent_calls_after_script_flush_reload_and_answer_everyone(redis_url: str, kind: str) -> None:
    client = store_client(redis_url, kind)
    admin = redis_client_from_url(redis_url)
    try:
        limiter = RedisLimiter(client, prefix=unique_prefix())
        assert (await limiter.hit("k", "free", SCARCE)).remaining == 49
        await admin.script_flush()
        decisions = await asyncio.gather(*(limiter.hit("k", "free", SCARCE) for _ in range(5)))
        assert sorted(d.remaining for d in decisions) == [44, 45, 46, 47, 48]
        assert not any(d.degraded for d in decisions)
        assert limiter.store_errors == 0
    finally:
        await client.aclose()
        await admin.aclose()


async def test_an_outage_fails_every_concurrent_caller_per_its_failure_mode(kind: str) -> None:
    server = RedisProcess()
    server.start()
    client = store_client(server.url, kind)
    try:
        opened = RedisLimiter(client, prefix=unique_prefix(), failure_mode="open")
        closed = RedisLimiter(client, prefix=unique_prefix(), failure_mode="closed")
        assert not (await opened.hit("k", "free", SCARCE)).degraded
        server.kill()
        allowed, refused = await asyncio.gather(
            asyncio.gather(*(opened.hit("k", "free", SCARCE) for _ in range(3))),
            asyncio.gather(*(closed.hit("k", "free", SCARCE) for _ in range(3))),
        )
        assert [(d.allowed, d.degraded) for d in allowed] == [(True, True)] * 3
        assert [(d.allowed, d.code, d.degraded) for d in refused] == [(False, "limiter-unavailable", True)] * 3
        assert opened.store_errors == closed.store_errors == 3
        server.start()
        assert not (await closed.hit("k", "free", SCARCE)).degraded
    finally:
        await client.aclose()
        server.close()

"""Decisions asked for in one event-loop turn share a pipelined round trip (``ScriptBatch``) and stay
exact: each is its own script, on one server, Sentinel and Cluster; NOSCRIPT and outages per caller."""

from __future__ import annotations

import asyncio

import pytest

from edge.limits import RedisCostBudgets, RedisLimiter, redis_client_from_url
from edge.plans import CostBudget, Plan
from edge.redis_topology import open_shared_redis
from tests.edge.limits.conftest import unique_prefix
from tests.edge.limits.redis_process import RedisProcess

pytestmark = pytest.mark.redis

SCARCE = Plan.model_validate({"rate": {"requests_per_second": 0.001, "burst": 50}})


async def test_concurrent_decisions_are_each_atomic_on_every_topology(topology_redis_url: str) -> None:
    shared = open_shared_redis(topology_redis_url)
    try:
        limiter = RedisLimiter(shared.client, prefix=unique_prefix(), failure_mode="closed")  # type: ignore[arg-type]
        budgets = RedisCostBudgets(shared.client, prefix=unique_prefix(), failure_mode="closed")  # type: ignore[arg-type]
        # Two callers (different hash tags: different cluster slots), 40 decisions each in one turn.
        decisions = await asyncio.gather(*(limiter.hit(f"user-{n % 2}", "free", SCARCE) for n in range(80)))
        for user in (0, 1):
            mine = decisions[user::2]
            assert [d.allowed for d in mine] == [True] * 40
            assert sorted(d.remaining for d in mine) == list(range(10, 50))  # no two saw the same state
        more = await asyncio.gather(*(limiter.hit("user-0", "free", SCARCE) for _ in range(15)))
        assert [d.allowed for d in more] == [True] * 10 + [False] * 5
        assert {d.code for d in more if not d.allowed} == {"rate-limited"}
        budget = CostBudget(maximum=10, restore_rate=0.001)
        charges = await asyncio.gather(*(budgets.charge("user-0", "free", budget, 3) for _ in range(4)))
        assert [c.allowed for c in charges] == [True, True, True, False]  # 3 + 3 + 3 of 10, then 1 left
        assert limiter.store_errors == budgets.store_errors == 0
    finally:
        await shared.aclose()


async def test_a_batch_after_script_flush_reloads_and_answers_everyone(redis_url: str) -> None:
    client = redis_client_from_url(redis_url)
    try:
        limiter = RedisLimiter(client, prefix=unique_prefix())
        assert (await limiter.hit("k", "free", SCARCE)).remaining == 49
        await client.script_flush()
        decisions = await asyncio.gather(*(limiter.hit("k", "free", SCARCE) for _ in range(5)))
        assert sorted(d.remaining for d in decisions) == [44, 45, 46, 47, 48]
        assert not any(d.degraded for d in decisions)
        assert limiter.store_errors == 0
    finally:
        await client.aclose()


async def test_an_outage_fails_every_caller_of_a_batch_per_its_failure_mode() -> None:
    server = RedisProcess()
    server.start()
    client = redis_client_from_url(server.url)
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

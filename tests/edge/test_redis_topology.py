"""``EDGE_REDIS_URL`` in each topology: how it is read, that every multi-key step stays in one Cluster slot,
and that the limiter follows a Sentinel failover to the new master.

The stores' own behaviour on each topology is tested where the stores are (their Redis fixtures run on one
server, Sentinel and Cluster: ``tests/support/redis_topologies.py``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from redis.crc import key_slot

from edge.configuration import load_settings
from edge.limits import RedisLimiter
from edge.observability import RedisUsageMeter
from edge.plans import Plan
from edge.redis_topology import RedisTarget, open_shared_redis, parse_redis_url
from tests.support.redis_topologies import SentinelProcesses, sentinel_processes
from tests.support.tokens import JWT_SECRET_JSON

PASSWORD = "never-shown-pw"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://:pw@cache:6379/2", RedisTarget("standalone", url="redis://:pw@cache:6379/2")),
        ("rediss://cache", RedisTarget("standalone", url="rediss://cache")),
        (
            "redis+sentinel://s1,s2:26380,[::1]:26381/mymaster/3",
            RedisTarget("sentinel", nodes=(("s1", 26379), ("s2", 26380), ("::1", 26381)), master="mymaster", db=3),
        ),
        (
            "rediss+sentinel://edge:p%40ss@s1/mymaster",
            RedisTarget(
                "sentinel", nodes=(("s1", 26379),), master="mymaster", username="edge", password="p@ss", ssl=True
            ),
        ),
        (
            "redis+cluster://:pw@n1:7000,n2:7001",
            RedisTarget("cluster", nodes=(("n1", 7000), ("n2", 7001)), password="pw"),
        ),
        ("rediss+cluster://n1/0", RedisTarget("cluster", nodes=(("n1", 6379),), ssl=True)),
    ],
)
def test_the_scheme_names_the_topology(url: str, expected: RedisTarget) -> None:
    assert parse_redis_url(url) == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (f"http://:{PASSWORD}@cache", "must start with redis:// or rediss://"),
        (f"redis+sentinel://:{PASSWORD}@s1:26379", "a Sentinel URL names the master after the sentinels"),
        (f"redis+sentinel://:{PASSWORD}@s1/m/0/extra", "a Sentinel URL names the master after the sentinels"),
        (f"redis+sentinel://:{PASSWORD}@s1/m/zero", "the database must be a number"),
        (f"redis+cluster://:{PASSWORD}@n1:7000/1", "a Redis Cluster has only database 0"),
        (f"redis+cluster://:{PASSWORD}@n1:99999", "the port of n1 must be a number from 1 to 65535"),
        (f"redis+cluster://:{PASSWORD}@n1,,n2", "every node needs a host"),
        (f"redis+cluster://:{PASSWORD}@n1?ssl=true", "takes no query parameters"),
    ],
)
def test_a_bad_url_is_one_line_naming_the_setting_and_never_the_password(
    monkeypatch: pytest.MonkeyPatch, url: str, problem: str
) -> None:
    for name, value in {
        "EDGE_HASURA_URL": "http://hasura:8080",
        "EDGE_HASURA_ADMIN_SECRET": "a-real-secret",
        "EDGE_JWT_SECRET": JWT_SECRET_JSON,
        "EDGE_REDIS_URL": url,
    }.items():
        monkeypatch.setenv(name, value)
    loaded = load_settings()
    assert loaded.settings is None
    assert len(loaded.problems) == 1
    assert loaded.problems[0].startswith("EDGE_REDIS_URL: ")
    assert problem in loaded.problems[0]
    assert PASSWORD not in loaded.problems[0]


def test_the_target_never_shows_the_password() -> None:
    target = parse_redis_url(f"redis+sentinel://:{PASSWORD}@s1/mymaster")
    assert PASSWORD not in repr(target)
    assert PASSWORD not in target.describe()
    assert PASSWORD not in repr(parse_redis_url(f"redis://:{PASSWORD}@cache"))


@pytest.mark.redis
@pytest.mark.parametrize("key", ["k", "user:{1}", "a}b{c", "}{", "203.0.113.9"])
async def test_each_script_s_keys_share_one_cluster_slot(key: str, redis_url: str) -> None:
    # What each script call stores, read back from Redis: the keys of one call must share one Cluster slot
    # whatever the caller's key holds (a hash tag is the first {...} of a name).
    shared = open_shared_redis(redis_url, timeout=2.0)
    client = shared.client
    prefix = f"test:topology:{uuid.uuid4().hex}:"

    async def stored(under: str) -> list[bytes]:
        return [name async for name in client.scan_iter(match=f"{prefix}{under}*")]

    try:
        # RedisLimiter's HIT script: the rate and the quota of one caller.
        limiter = RedisLimiter(client, prefix=prefix + "limits:")
        plan = Plan.model_validate(
            {"rate": {"requests_per_second": 1, "burst": 5}, "quota": {"limit": 3, "period": "DAY", "offset": "+00:00"}}
        )
        assert (await limiter.hit(key, "free", plan)).allowed and limiter.store_errors == 0
        written = await stored("limits:")
        assert len(written) == 2
        assert len({key_slot(name) for name in written}) == 1
        # The usage meter's flush script: every key of one period (subjects of both kinds, their indexes and the
        # meter's flush mark).
        meter = RedisUsageMeter(client, prefix + "usage:", clock=lambda: 1795000000.0)  # type: ignore[arg-type]
        for kind in ("key", "user"):
            meter.record(kind, key, requests=1)
        meter.record("key", "other", requests=1)
        assert await meter.flush() and meter.store_errors == 0
        written = await stored("usage:")
        assert len(written) == 6
        assert len({key_slot(name) for name in written}) == 1
    finally:
        async for name in client.scan_iter(match=prefix + "*"):
            await client.delete(name)
        await shared.aclose()


@pytest.mark.redis
async def test_the_report_adds_usage_stored_under_the_names_before_the_hash_tag(redis_url: str) -> None:
    shared = open_shared_redis(redis_url, timeout=2.0)
    prefix = f"test:usage:{uuid.uuid4().hex}:"
    client = shared.client
    try:
        # What an edge before the hash tag left for this month...
        await client.hset(f"{prefix}2026-11:key:k1", mapping={"requests": 2, "cost_points": 10})
        await client.sadd(f"{prefix}2026-11:index:key", "k1", "k0")
        await client.hset(f"{prefix}2026-11:key:k0", mapping={"rows": 4})
        # ...and this release after the upgrade.
        meter = RedisUsageMeter(client, prefix, clock=lambda: 1795000000.0)  # type: ignore[arg-type]  # 2026-11
        meter.record("key", "k1", requests=1, cost_points=5)
        meter.record("key", "k2", requests=1)
        rows = await meter.snapshot("key")
        assert [(row.subject, row.requests, row.cost_points, row.rows) for row in rows] == [
            ("k0", 0, 0, 4),
            ("k1", 3, 15, 0),
            ("k2", 1, 0, 0),
        ]
    finally:
        async for key in client.scan_iter(match=prefix + "*"):
            await client.delete(key)
        await shared.aclose()


@pytest.fixture
def own_sentinel() -> Iterator[SentinelProcesses]:
    """A Sentinel topology of this test only: the test kills its master."""
    with sentinel_processes() as sentinel:
        yield sentinel


@pytest.mark.redis
async def test_after_a_sentinel_failover_the_limiter_decides_on_the_new_master(
    own_sentinel: SentinelProcesses,
) -> None:
    shared = open_shared_redis(own_sentinel.url)  # the edge's own timeouts: 0.25 s, no retries
    limiter = RedisLimiter(shared.client, failure_mode="closed")
    plan = Plan.model_validate({"quota": {"limit": 3, "period": "DAY", "offset": "+00:00"}})
    try:
        assert (await limiter.hit("caller", "free", plan)).allowed
        assert limiter.store_errors == 0
        # Replication is asynchronous: a write the master took just before it died can be lost. The test waits
        # until the replica has this one, so that what follows is deterministic.
        assert await shared.client.wait(1, 5000) == 1

        own_sentinel.kill_master()
        gap = await limiter.hit("caller", "free", plan)  # the old master is gone: EDGE_LIMITER_FAILURE_MODE
        assert (gap.allowed, gap.code, gap.degraded) == (False, "limiter-unavailable", True)
        own_sentinel.wait_for_new_master()

        # Right after the promotion a decision may still find no master (the sentinels settle: redis-py's
        # MasterNotFoundError), which is the failure mode again; then the promoted replica decides, with the
        # first decision replicated to it: two more are allowed.
        for _ in range(50):
            recovered = await limiter.hit("caller", "free", plan)
            if not recovered.degraded:
                break
            await asyncio.sleep(0.1)
        after = [recovered, *[await limiter.hit("caller", "free", plan) for _ in range(2)]]
        assert [(decision.allowed, decision.degraded) for decision in after] == [
            (True, False),
            (True, False),
            (False, False),
        ]
        assert after[0].remaining == 1
    finally:
        await shared.aclose()

"""Redis-only behaviour: one limit shared by independent clients and processes, TTLs, NOSCRIPT, outages.

Each test that gives the stores a client runs with redis-py's and with ``LeanRedis`` (``kind``)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from edge.limits import RedisCostBudgets, RedisLimiter, make_cost_budgets, make_limiter, redis_client_from_url
from edge.limits.base import admit_in_turn
from edge.limits.decision import LimitDecision
from edge.limits.memory import InMemoryLimiter
from edge.limits.redis_store import FailureMode, StoreClient
from edge.limits.resp_client import LeanRedis
from edge.plans import CostBudget, Plan
from tests.edge.limits.conftest import FakeClock, unique_prefix
from tests.edge.limits.redis_process import RedisProcess, free_port
from tests.support.store_clients import store_client

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[3]
SCARCE = Plan.model_validate({"rate": {"requests_per_second": 0.001, "burst": 50}})
PASSWORD = "s3cret-not-in-logs"


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = redis_client_from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(params=["redis-py", "lean"])
def kind(request: pytest.FixtureRequest) -> str:
    """Which client the stores get: redis-py's (``redis_client_from_url``) or ``LeanRedis``."""
    return str(request.param)


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    """A dedicated server (with a password) that the test may stop, flush and restart."""
    server = RedisProcess(password=PASSWORD)
    server.start()
    yield server
    server.close()


async def test_two_clients_enforce_one_combined_limit(redis_url: str, prefix: str, kind: str) -> None:
    clients = [store_client(redis_url, kind, timeout=2.0), redis_client_from_url(redis_url, timeout=2.0)]
    try:
        # Redis TIME: the production clock; 2 s: 60 calls at once open 60 redis-py connections
        limiters = [RedisLimiter(c, prefix=prefix, timeout=2.0) for c in clients]
        decisions = await asyncio.gather(*(limiters[i % 2].hit("k", "free", SCARCE) for i in range(120)))
        assert sum(d.allowed for d in decisions) == 50
        assert all(d.code == "rate-limited" for d in decisions if not d.allowed)
    finally:
        for c in clients:
            await c.aclose()


_WORKER = textwrap.dedent(
    """
    import asyncio, sys, time
    from edge.limits import RedisLimiter, redis_client_from_url
    from edge.limits.resp_client import LeanRedis
    from edge.plans import Plan

    url, prefix, start_at, hits, kind = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    rate = {"requests_per_second": 0.001, "burst": 1000}
    plan = Plan.model_validate({"quota": {"limit": 30, "period": "MONTH"}, "rate": rate})

    async def main():
        client = LeanRedis.from_url(url, timeout=2.0) if kind == "lean" else redis_client_from_url(url, timeout=2.0)
        limiter = RedisLimiter(client, prefix=prefix, timeout=2.0)
        await (client.execute("PING") if kind == "lean" else client.ping())
        time.sleep(max(start_at - time.time(), 0))
        allowed = 0
        for _ in range(hits):
            decision = await limiter.hit("shared", "free", plan)
            assert not decision.degraded
            allowed += decision.allowed
        await client.aclose()
        print(allowed)

    asyncio.run(main())
    """
)


def test_two_processes_sharing_redis_enforce_one_quota(redis_url: str, prefix: str, kind: str) -> None:
    start_at = f"{time.time() + 1.5:.3f}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)]))}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, redis_url, prefix, start_at, "40", kind],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]  # fmt: skip
    results = [w.communicate(timeout=30) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [err.decode() for _, err in results]
    counts = [int(out) for out, _ in results]
    assert sum(counts) == 30, counts


async def test_keys_expire_once_their_state_is_full_again(
    client: aioredis.Redis, redis_url: str, prefix: str, kind: str
) -> None:
    clock = FakeClock()
    stores = store_client(redis_url, kind)
    limiter = RedisLimiter(stores, clock=clock, prefix=prefix, grace_ms=1000)
    plan = Plan.model_validate(
        {"rate": {"requests_per_second": 1, "burst": 10}, "quota": {"limit": 5, "period": "DAY"}}
    )
    clock.now = 1_700_006_400.0  # 2023-11-15T00:00:00Z: the DAY period ends in 86,400 s
    await limiter.hit("k", "free", plan, operations=3)
    keys = sorted(k.decode() if isinstance(k, bytes) else k for k in await client.keys(prefix + "*"))
    assert keys == [prefix + "{4:free:k}:q", prefix + "{4:free:k}:r"]
    assert 3000 < await client.pttl(keys[1]) <= 4000  # 3 s until full, plus grace
    assert 86_400_000 < await client.pttl(keys[0]) <= 86_401_000
    budgets = RedisCostBudgets(stores, clock=clock, prefix=prefix)
    await budgets.charge("k", "free", CostBudget(maximum=100, restore_rate=10), 50)
    assert 5000 < await client.pttl(prefix + "{4:free:k}:b") <= 6000
    await limiter.hit("k", "free", Plan.model_validate({"rate": {"requests_per_second": 1, "burst": 1}}), operations=2)
    assert await client.pttl(keys[1]) <= 4000  # a refused request writes nothing
    assert limiter.store_errors == budgets.store_errors == 0
    await stores.aclose()


async def test_scripts_are_reloaded_after_script_flush(own_redis: RedisProcess, kind: str) -> None:
    client = store_client(own_redis.url, kind)
    admin = redis_client_from_url(own_redis.url)
    try:
        limiter = RedisLimiter(client, prefix=unique_prefix())
        budgets = RedisCostBudgets(client, prefix=unique_prefix())
        assert (await limiter.hit("k", "free", SCARCE)).remaining == 49
        await admin.script_flush()
        assert (await limiter.hit("k", "free", SCARCE)).remaining == 48
        await admin.script_flush()
        assert (await budgets.charge("k", "free", CostBudget(maximum=5, restore_rate=1), 1)).allowed
        assert limiter.store_errors == budgets.store_errors == 0
    finally:
        await client.aclose()
        await admin.aclose()


async def test_outage_fails_open_or_closed_and_recovers_without_a_new_limiter(
    own_redis: RedisProcess, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    client = store_client(own_redis.url, kind)
    try:
        opened = RedisLimiter(client, prefix=unique_prefix(), failure_mode="open")
        closed = RedisLimiter(client, prefix=unique_prefix(), failure_mode="closed")
        budgets = RedisCostBudgets(client, prefix=unique_prefix(), failure_mode="closed")
        budget = CostBudget(maximum=10, restore_rate=1)
        assert not (await opened.hit("k", "free", SCARCE)).degraded
        assert (await budgets.charge("k", "free", budget, 1)).allowed

        own_redis.kill()
        with caplog.at_level(logging.WARNING, logger="edge.limits.redis_store"):
            for attempt in range(1, 4):
                decision = await opened.hit("k", "free", SCARCE)
                assert (decision.allowed, decision.degraded, decision.headers()) == (True, True, [])
                assert opened.store_errors == attempt
            refused = await closed.hit("k", "free", SCARCE)
            assert (refused.allowed, refused.code, refused.degraded) == (False, "limiter-unavailable", True)
            assert refused.headers() == [(b"retry-after", b"1")]
            assert closed.store_errors == 1
            charge = await budgets.charge("k", "free", budget, 1)
            assert (charge.allowed, charge.degraded, charge.retry_after) == (False, True, 1)
            await budgets.refund("k", "free", budget, 1)  # swallowed, counted
            assert budgets.store_errors == 2
        warnings = [r for r in caplog.records if r.name == "edge.limits.redis_store"]
        assert [r.getMessage() for r in warnings] == ["limiter_store_error"] * 3  # once per limiter per interval
        assert PASSWORD not in caplog.text
        assert all(PASSWORD not in str(r.__dict__) for r in warnings)

        own_redis.start()
        recovered = await opened.hit("k", "free", SCARCE)
        assert (recovered.allowed, recovered.degraded, recovered.remaining) == (True, False, 49)  # data was lost
        assert (await closed.hit("k", "free", SCARCE)).allowed
        assert (await budgets.charge("k", "free", budget, 1)).allowed
        assert opened.store_errors == 3
    finally:
        await client.aclose()


async def test_a_server_that_never_answers_times_out_quickly(kind: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # accepts TCP connections (backlog) but never replies
        port = silent.getsockname()[1]
        client: StoreClient = (  # the clients' own timeouts never end the call: only the store's 0.1 s can
            LeanRedis("127.0.0.1", port, connect_timeout=3600.0, timeout=3600.0)
            if kind == "lean"
            else aioredis.Redis(host="127.0.0.1", port=port)  # redis-py: no socket timeout unless given one
        )
        try:
            limiter = RedisLimiter(client, prefix=unique_prefix(), timeout=0.1)
            # The wait only turns a hang into an error: a degraded decision means the store's timeout fired.
            decision = await asyncio.wait_for(limiter.hit("k", "free", SCARCE), 30)
            assert (decision.allowed, decision.degraded, limiter.store_errors) == (True, True, 1)
        finally:
            await client.aclose()


async def test_a_plan_without_limits_never_calls_redis(kind: str) -> None:
    client = store_client(f"redis://127.0.0.1:{free_port()}/0", kind)  # nothing listens there
    try:
        limiter = RedisLimiter(client, prefix=unique_prefix(), failure_mode="closed")
        decision = await limiter.hit("k", "free", Plan())
        assert (decision.allowed, decision.degraded, limiter.store_errors) == (True, False, 0)
    finally:
        await client.aclose()


async def test_factories_choose_redis_when_given_a_client(client: aioredis.Redis) -> None:
    assert isinstance(make_limiter(client, failure_mode="closed"), RedisLimiter)
    assert isinstance(make_cost_budgets(client), RedisCostBudgets)
    lean = LeanRedis.from_url("redis://127.0.0.1:6379/0")
    assert isinstance(make_limiter(lean), RedisLimiter) and isinstance(make_cost_budgets(lean), RedisCostBudgets)
    assert isinstance(make_limiter(None), InMemoryLimiter)
    with pytest.raises(ValueError, match="failure_mode"):
        RedisLimiter(client, failure_mode="sideways")  # type: ignore[arg-type]


async def test_clients_that_decode_responses_work_too(redis_url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        limiter = RedisLimiter(client, prefix=prefix)
        budgets = RedisCostBudgets(client, prefix=prefix)
        assert (await limiter.hit("k", "free", SCARCE)).remaining == 49
        charged = await budgets.charge("k", "free", CostBudget(maximum=10, restore_rate=0.001), 4)
        assert (charged.allowed, round(charged.available)) == (True, 6)
        assert limiter.store_errors == budgets.store_errors == 0
    finally:
        await client.aclose()


def test_logged_error_details_never_carry_url_credentials() -> None:
    from edge.store_health import redact_credentials as _redact

    assert _redact("Error connecting to redis://user:hunter2@db:6379/0") == "Error connecting to redis://***@db:6379/0"
    assert _redact("rediss://:hunter2@db") == "rediss://***@db"


METERED = Plan.model_validate(
    {
        "rate": {"requests_per_second": 1, "burst": 10},
        "quota": {"limit": 100, "period": "DAY", "offset": "+00:00"},
        "cost_budget": {"maximum": 50, "restore_rate": 1},
    }
)


async def evalsha_calls(admin: aioredis.Redis) -> int:
    stats = await admin.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_admit_is_one_round_trip_when_the_budgets_share_the_limiters_redis(
    own_redis: RedisProcess, kind: str
) -> None:
    client = store_client(own_redis.url, kind)
    admin = redis_client_from_url(own_redis.url)
    prefix = unique_prefix()
    try:
        limiter = RedisLimiter(client, prefix=prefix)
        budgets = RedisCostBudgets(client, prefix=prefix)
        elsewhere = RedisCostBudgets(client, prefix=unique_prefix())  # another prefix: two calls in turn
        await limiter.admit("k", "free", METERED, operations=1, points=1, budgets=budgets)  # scripts loaded
        await limiter.admit("k", "free", METERED, operations=1, points=1, budgets=elsewhere)
        await admin.config_resetstat()
        admitted = await limiter.admit("k", "free", METERED, operations=1, points=20, budgets=budgets)
        assert (admitted.limit.remaining, admitted.budget and round(admitted.budget.available)) == (7, 29)
        assert await evalsha_calls(admin) == 1
        await limiter.admit("k", "free", METERED, operations=1, points=20, budgets=elsewhere)
        assert await evalsha_calls(admin) == 3
        refused = await limiter.admit("k", "free", METERED, operations=1, points=30, budgets=budgets)
        assert (refused.limit.allowed, refused.budget and refused.budget.allowed) == (True, False)
        assert await evalsha_calls(admin) == 4
        assert limiter.store_errors == budgets.store_errors == elsewhere.store_errors == 0
    finally:
        await client.aclose()
        await admin.aclose()


@pytest.mark.parametrize("failure_mode", ["open", "closed"])
async def test_admit_on_a_dead_server_degrades_and_counts_as_the_two_calls_would(
    own_redis: RedisProcess, kind: str, failure_mode: FailureMode
) -> None:
    client = store_client(own_redis.url, kind)
    prefix = unique_prefix()
    try:
        limiter = RedisLimiter(client, prefix=prefix, failure_mode=failure_mode)
        budgets = RedisCostBudgets(client, prefix=prefix, failure_mode=failure_mode)
        in_turn = RedisLimiter(client, prefix=prefix, failure_mode=failure_mode)
        in_turn_budgets = RedisCostBudgets(client, prefix=prefix, failure_mode=failure_mode)
        assert not (await limiter.admit("k", "free", METERED, operations=1, points=1, budgets=budgets)).limit.degraded
        own_redis.kill()
        combined = await limiter.admit("k", "free", METERED, operations=1, points=5, budgets=budgets)
        two_calls = await admit_in_turn(in_turn, in_turn_budgets, "k", "free", METERED, operations=1, points=5)
        assert combined == two_calls
        assert (limiter.store_errors, budgets.store_errors) == (in_turn.store_errors, in_turn_budgets.store_errors)
        if failure_mode == "open":
            assert combined.limit.degraded and combined.budget is not None
            assert (combined.budget.allowed, combined.budget.degraded, budgets.store_errors) == (True, True, 1)
        else:
            assert (combined.limit.code, combined.budget, budgets.store_errors) == ("limiter-unavailable", None, 0)
        assert limiter.store_errors == 1
        own_redis.start()
        recovered = await limiter.admit("k", "free", METERED, operations=1, points=5, budgets=budgets)
        assert recovered.budget is not None
        assert (recovered.limit.degraded, recovered.limit.remaining) == (False, 9)  # a new server: empty
        assert (recovered.budget.degraded, round(recovered.budget.available)) == (False, 45)
    finally:
        await client.aclose()


async def test_refunds_not_waited_for_reload_the_script_and_count_failures(own_redis: RedisProcess, kind: str) -> None:
    client = store_client(own_redis.url, kind)
    admin = redis_client_from_url(own_redis.url)
    budget = CostBudget(maximum=100, restore_rate=0.001)
    try:
        budgets = RedisCostBudgets(client, prefix=unique_prefix())
        assert (await budgets.charge("k", "free", budget, 100)).allowed  # the connection is open
        await budgets.refund("k", "free", budget, 10)  # the script's reply (a number) is no failure
        assert budgets.store_errors == 0
        assert (await budgets.charge("k", "free", budget, 10)).allowed
        await admin.script_flush()
        budgets.refund_soon("k", "free", budget, 40)  # NOSCRIPT: loaded again, then applied
        await budgets.drain()
        assert budgets.store_errors == 0
        assert round((await budgets.charge("k", "free", budget, 0)).available) == 40

        own_redis.kill()
        budgets.refund_soon("k", "free", budget, 1)
        budgets.refund_soon("k", "free", budget, 1)
        await budgets.drain()  # each answered by its failure, within the store's timeout
        assert budgets.store_errors == 2
        own_redis.start()
        assert not (await budgets.charge("k", "free", budget, 0)).degraded
        assert budgets.store_errors == 2  # recovered without a new store
    finally:
        await client.aclose()
        await admin.aclose()


SLOW_BUDGET = Plan.model_validate(
    {
        "rate": {"requests_per_second": 0.001, "burst": 10},
        "quota": {"limit": 100, "period": "DAY"},
        "cost_budget": {"maximum": 50, "restore_rate": 0.001},
    }
)


async def test_any_plan_name_and_key_get_their_documented_keys_and_decisions(
    client: aioredis.Redis, redis_url: str, prefix: str, kind: str
) -> None:
    """The lean client writes the keys' bytes itself: lengths in bytes, not characters; braces kept."""
    stores = store_client(redis_url, kind)
    limiter = RedisLimiter(stores, prefix=prefix)
    budgets = RedisCostBudgets(stores, prefix=prefix)
    names = ["ключ", "a}b{c:d", ""]
    budget = SLOW_BUDGET.cost_budget
    assert budget is not None
    try:
        for round_ in range(2):
            for name in names:
                admitted = await limiter.admit(name, "план", SLOW_BUDGET, operations=2, points=20, budgets=budgets)
                assert admitted.limit == LimitDecision(True, None, 10, 8 - 2 * round_, 2000 + 2000 * round_, None)
                assert admitted.budget is not None and round(admitted.budget.available) == 30 - 10 * round_
                budgets.refund_soon(name, "план", budget, 10)
            await budgets.drain()
        for name in names:
            assert round((await budgets.charge(name, "план", budget, 0)).available) == 30
        stored = sorted(k.decode() if isinstance(k, bytes) else k for k in await client.keys(prefix + "*"))
        assert stored == sorted(f"{prefix}{{4:план:{name}}}:{part}" for name in names for part in "bqr")
        assert limiter.store_errors == budgets.store_errors == 0
    finally:
        await stores.aclose()


async def test_admit_loads_its_script_again_after_script_flush(own_redis: RedisProcess, kind: str) -> None:
    client = store_client(own_redis.url, kind)
    admin = redis_client_from_url(own_redis.url)
    prefix = unique_prefix()
    try:
        limiter = RedisLimiter(client, prefix=prefix)
        budgets = RedisCostBudgets(client, prefix=prefix)
        first = await limiter.admit("k", "free", METERED, operations=1, points=5, budgets=budgets)
        await admin.script_flush()
        second = await limiter.admit("k", "free", METERED, operations=1, points=5, budgets=budgets)
        assert (first.limit.remaining, second.limit.remaining) == (9, 8)
        assert first.budget is not None and second.budget is not None
        assert (round(first.budget.available), round(second.budget.available)) == (45, 40)
        assert limiter.store_errors == budgets.store_errors == 0
    finally:
        await client.aclose()
        await admin.aclose()

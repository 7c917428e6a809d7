"""Usage metering: the memory meter, the buffered Redis meter, month rollover and the admin report.

The Redis meter's flush runs its script on the client the edge gives it (``scripts``): each Redis test runs
with the limits' ``LeanRedis`` on one server and with redis-py's client (one server, Sentinel, Cluster)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from edge.components import RedisClients, build_observability
from edge.limits.redis_store import RedisLimiter, StoreClient, redis_client_from_url
from edge.limits.resp_client import LeanRedis
from edge.observability.metering import (
    BATCH_SUBJECTS,
    FLUSH_MARK_SECONDS,
    READ_BATCH,
    REPORT_TIMEOUT,
    MemoryUsageMeter,
    RedisUsageMeter,
    UsageRow,
    UsageUnavailable,
    period_of,
    usage_report,
)
from edge.observability.metrics import EdgeMetrics
from edge.plans import Plan
from edge.redis_topology import open_shared_redis
from tests.edge.conftest import edge_settings
from tests.edge.limits.redis_process import RedisProcess
from tests.support.redis_topologies import topology_url
from tests.support.store_clients import store_client


def at(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("iso", "period", "name"),
    [
        ("2026-11-21T20:00:00", "month", "2026-11"),
        ("2026-12-31T23:59:59", "month", "2026-12"),
        ("2027-01-01T00:00:00", "month", "2027-01"),
        ("2026-11-21T20:00:00", "day", "2026-11-21"),
    ],
)
def test_period_of_names_the_utc_calendar_period(iso: str, period: str, name: str) -> None:
    got, start, end = period_of(at(iso), period)  # type: ignore[arg-type]
    assert got == name
    assert start <= at(iso) < end


def test_an_unknown_period_is_refused() -> None:
    with pytest.raises(ValueError, match="period"):
        MemoryUsageMeter(period="year")  # type: ignore[arg-type]


# --- memory ---------------------------------------------------------------------------------


async def test_memory_meter_accumulates_per_subject_and_kind() -> None:
    metrics = EdgeMetrics()
    meter = MemoryUsageMeter(clock=FakeClock(at("2026-11-21T12:00:00")), metrics=metrics)
    meter.record("key", "k1", requests=1, cost_points=10, rows=3)
    meter.record("key", "k1", requests=1, cost_points=5)
    meter.record("user", "u1", requests=1, subscription_seconds=2.5)
    meter.record("key", "k2", requests=1)
    assert await meter.snapshot() == [
        UsageRow("key", "k1", "2026-11", 2, 15, 3, 0.0),
        UsageRow("key", "k2", "2026-11", 1, 0, 0, 0.0),
        UsageRow("user", "u1", "2026-11", 1, 0, 0, 2.5),
    ]
    assert [row.subject for row in await meter.snapshot("user")] == ["u1"]
    body = metrics.render()[0].decode()
    assert 'edge_usage_total{measure="requests",subject_kind="key"} 3.0' in body
    await meter.reset()
    assert await meter.snapshot() == []


async def test_an_unknown_subject_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="subject_kind"):
        MemoryUsageMeter().record("team", "t1", requests=1)  # type: ignore[arg-type]


async def test_memory_meter_rolls_over_at_the_month_boundary() -> None:
    clock = FakeClock(at("2026-11-30T23:59:59"))
    meter = MemoryUsageMeter(clock=clock)
    meter.record("key", "k1", requests=1)
    clock.now = at("2026-12-01T00:00:01")
    meter.record("key", "k1", requests=2)
    assert [row.requests for row in await meter.snapshot()] == [2]
    assert [row.requests for row in await meter.snapshot(period="2026-11")] == [1]


@pytest.mark.parametrize(
    ("period", "last", "first", "names"),
    [
        ("month", "2026-11-30T23:59:59.999", "2026-12-01T00:00:00", ["2026-11", "2026-12"]),
        ("day", "2026-11-21T23:59:59.999", "2026-11-22T00:00:00", ["2026-11-21", "2026-11-22"]),
    ],
)
async def test_a_period_starts_exactly_at_its_first_second(
    period: str, last: str, first: str, names: list[str]
) -> None:
    clock = FakeClock(at(last))
    meter = MemoryUsageMeter(clock=clock, period=period)  # type: ignore[arg-type]
    meter.record("key", "k1", requests=1)
    assert meter.current_period() == names[0]
    clock.now = at(first)
    meter.record("key", "k1", requests=2)
    assert meter.current_period() == names[1]
    clock.now = at(last)  # a clock stepping back is billed to the period it names
    meter.record("key", "k1", requests=4)
    assert [row.requests for row in await meter.snapshot(period=names[0])] == [5]
    assert [row.requests for row in await meter.snapshot(period=names[1])] == [2]


async def test_usage_report_lists_subjects_and_totals() -> None:
    meter = MemoryUsageMeter(clock=FakeClock(at("2026-11-21T12:00:00")))
    meter.record("key", "k1", requests=2, cost_points=10, rows=4)
    meter.record("key", "k2", requests=1, cost_points=1)
    meter.record("user", "u1", requests=1, subscription_seconds=1.5)
    report = await usage_report(meter)
    assert report == {
        "period": "2026-11",
        "subjects": [
            {
                "subject_kind": "key",
                "subject": "k1",
                "requests": 2,
                "cost_points": 10,
                "rows": 4,
                "subscription_seconds": 0.0,
            },
            {
                "subject_kind": "key",
                "subject": "k2",
                "requests": 1,
                "cost_points": 1,
                "rows": 0,
                "subscription_seconds": 0.0,
            },
            {
                "subject_kind": "user",
                "subject": "u1",
                "requests": 1,
                "cost_points": 0,
                "rows": 0,
                "subscription_seconds": 1.5,
            },
        ],
        "totals": {
            "key": {"requests": 3, "cost_points": 11, "rows": 4, "subscription_seconds": 0},
            "user": {"requests": 1, "cost_points": 0, "rows": 0, "subscription_seconds": 1.5},
        },
    }
    assert [s["subject"] for s in (await usage_report(meter, kind="user"))["subjects"]] == ["u1"]
    assert (await usage_report(meter, period="2026-10"))["subjects"] == []


async def test_a_large_report_lets_the_edges_requests_run_between_its_parts() -> None:
    # The memory meter's snapshot never waits: any turn the other task gets comes from the report's own yields.
    subjects = 5 * READ_BATCH + 7
    meter = MemoryUsageMeter(clock=FakeClock(at("2026-11-21T12:00:00")))
    for n in range(subjects):
        meter.record("user", f"u{n}", requests=1)
    turns, reporting = 0, True

    async def other_requests() -> None:
        nonlocal turns
        while reporting:
            turns += 1
            await asyncio.sleep(0)

    others = asyncio.create_task(other_requests())
    await asyncio.sleep(0)
    before = turns
    report = await usage_report(meter)
    during, reporting = turns - before, False
    await others
    assert len(report["subjects"]) == subjects
    assert report["totals"]["user"]["requests"] == subjects
    assert during == 5  # one turn per READ_BATCH rows


# --- Redis ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EdgeRedis:
    client: aioredis.Redis
    """redis-py's client: what the meter's ``snapshot`` reads with, and what the tests check Redis with."""
    scripts: StoreClient
    """What the flush runs its script on: the limits' ``LeanRedis`` or the redis-py client."""


@pytest.fixture(
    params=[
        pytest.param(("standalone", "lean"), marks=pytest.mark.redis, id="standalone-lean"),
        pytest.param(("standalone", "redis-py"), marks=pytest.mark.redis, id="standalone-redis-py"),
        pytest.param(("sentinel", "redis-py"), marks=pytest.mark.redis, id="sentinel"),
        pytest.param(("cluster", "redis-py"), marks=pytest.mark.redis, id="cluster"),
    ]
)
async def edge_redis(request: pytest.FixtureRequest) -> AsyncIterator[EdgeRedis]:
    """The edge's clients on each topology in turn (``build_redis``: the lean client on one server)."""
    topology, kind = request.param
    shared = open_shared_redis(topology_url(request, topology), timeout=2.0)
    scripts = shared.limits_client if kind == "lean" else shared.client
    assert isinstance(scripts, LeanRedis) == (kind == "lean")
    yield EdgeRedis(shared.client, scripts)  # type: ignore[arg-type]  # a RedisCluster answers the same commands
    await shared.aclose()


@pytest.fixture
def client(edge_redis: EdgeRedis) -> aioredis.Redis:
    return edge_redis.client


@pytest.fixture
def scripts(edge_redis: EdgeRedis) -> StoreClient:
    return edge_redis.scripts


@pytest.fixture
async def down_client() -> AsyncIterator[aioredis.Redis]:
    client = redis_client_from_url(f"redis://127.0.0.1:{closed_port()}/0")
    yield client
    await client.aclose()


@pytest.fixture(params=["lean", "redis-py"])
def kind(request: pytest.FixtureRequest) -> str:
    """Which client the flush runs on where a test opens its own: ``LeanRedis`` or redis-py's."""
    return str(request.param)


@pytest.fixture
async def down_scripts(down_client: aioredis.Redis, kind: str) -> AsyncIterator[StoreClient]:
    if kind == "redis-py":
        yield down_client
        return
    lean = LeanRedis.from_url(f"redis://127.0.0.1:{closed_port()}/0")
    yield lean
    await lean.aclose()


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    """A server of the test's own, which it may pause, flush, stop and start again."""
    server = RedisProcess()
    server.start()
    yield server
    server.close()


@pytest.fixture
def prefix() -> str:
    return f"test:usage:{uuid.uuid4().hex}:"


async def purge(client: aioredis.Redis, prefix: str) -> None:
    async for name in client.scan_iter(match=prefix + "*", count=1000):
        await client.delete(name)


async def stored(client: aioredis.Redis, key: str) -> dict[str, str]:
    raw: dict[bytes, bytes] = await client.hgetall(key)  # type: ignore[assignment]  # decode_responses=False
    return {k.decode(): v.decode() for k, v in raw.items()}


@pytest.mark.redis
async def test_redis_meter_writes_nothing_per_request_and_flushes_on_close(
    client: aioredis.Redis, scripts: StoreClient, prefix: str
) -> None:
    meter = RedisUsageMeter(client, prefix, scripts=scripts, clock=FakeClock(at("2026-11-21T12:00:00")))
    meter.record("key", "k1", requests=1, cost_points=10, rows=2)
    meter.record("key", "k1", requests=1, cost_points=5, subscription_seconds=0.5)
    meter.record("user", "u1", requests=1)
    assert await client.exists(f"{prefix}{{2026-11}}:key:k1") == 0
    assert meter.pending == 2
    await meter.aclose()
    assert await stored(client, f"{prefix}{{2026-11}}:key:k1") == {
        "requests": "2",
        "cost_points": "15",
        "rows": "2",
        "subscription_seconds": "0.5",
    }
    assert await stored(client, f"{prefix}{{2026-11}}:user:u1") == {"requests": "1"}
    assert await client.smembers(f"{prefix}{{2026-11}}:index:key") == {b"k1"}
    assert meter.pending == 0


@pytest.mark.redis
async def test_redis_meter_flushes_on_its_interval(client: aioredis.Redis, scripts: StoreClient, prefix: str) -> None:
    meter = RedisUsageMeter(
        client, prefix, scripts=scripts, flush_interval=0.05, clock=FakeClock(at("2026-11-21T12:00:00"))
    )
    meter.start()
    try:
        meter.record("key", "k1", requests=3)

        async def written() -> bool:
            return await client.hget(f"{prefix}{{2026-11}}:key:k1", "requests") == b"3"

        await eventually(written)
    finally:
        await meter.aclose()


@pytest.mark.redis
async def test_redis_meter_flushes_early_after_flush_records(
    client: aioredis.Redis, scripts: StoreClient, prefix: str
) -> None:
    meter = RedisUsageMeter(
        client,
        prefix,
        scripts=scripts,
        flush_interval=3600,
        flush_records=3,
        clock=FakeClock(at("2026-11-21T12:00:00")),
    )
    meter.start()
    try:
        for _ in range(3):
            meter.record("user", "u1", requests=1)

        async def written() -> bool:
            return await client.hget(f"{prefix}{{2026-11}}:user:u1", "requests") == b"3"

        await eventually(written)
    finally:
        await meter.aclose()


@pytest.mark.redis
async def test_two_replicas_add_up_in_one_snapshot(client: aioredis.Redis, scripts: StoreClient, prefix: str) -> None:
    clock = FakeClock(at("2026-11-21T12:00:00"))
    # One replica flushes on the lean client, the other on redis-py (a rolling upgrade mixes them).
    first = RedisUsageMeter(client, prefix, scripts=scripts, clock=clock)
    second = RedisUsageMeter(client, prefix, clock=clock)
    first.record("key", "k1", requests=1, cost_points=4)
    second.record("key", "k1", requests=2, cost_points=6)
    await first.flush()
    # second's buffer is flushed by its own snapshot.
    assert await second.snapshot() == [UsageRow("key", "k1", "2026-11", 3, 10, 0, 0.0)]
    report = await usage_report(second, kind="key")
    assert report["totals"] == {"key": {"requests": 3, "cost_points": 10, "rows": 0, "subscription_seconds": 0.0}}


@pytest.mark.redis
async def test_redis_meter_bills_each_record_to_the_month_it_happened_in(
    client: aioredis.Redis, scripts: StoreClient, prefix: str
) -> None:
    clock = FakeClock(at("2026-11-30T23:59:59"))
    meter = RedisUsageMeter(client, prefix, scripts=scripts, clock=clock)
    meter.record("key", "k1", requests=1, cost_points=7)
    clock.now = at("2026-12-01T00:00:01")
    meter.record("key", "k1", requests=1, cost_points=2)
    await meter.flush()  # one flush, after midnight, for both months
    assert await stored(client, f"{prefix}{{2026-11}}:key:k1") == {"requests": "1", "cost_points": "7"}
    assert await stored(client, f"{prefix}{{2026-12}}:key:k1") == {"requests": "1", "cost_points": "2"}
    assert [row.cost_points for row in await meter.snapshot(period="2026-11")] == [7]
    assert [row.cost_points for row in await meter.snapshot()] == [2]


@pytest.mark.redis
async def test_retention_sets_a_ttl(client: aioredis.Redis, scripts: StoreClient, prefix: str) -> None:
    meter = RedisUsageMeter(
        client, prefix, scripts=scripts, retention_seconds=3600, clock=FakeClock(at("2026-11-21T12:00:00"))
    )
    meter.record("key", "k1", requests=1)
    await meter.flush()
    assert 0 < await client.ttl(f"{prefix}{{2026-11}}:key:k1") <= 3600
    assert 0 < await client.ttl(f"{prefix}{{2026-11}}:index:key") <= 3600


async def test_redis_down_never_raises_counts_errors_and_keeps_the_usage(
    down_client: aioredis.Redis, down_scripts: StoreClient
) -> None:
    metrics = EdgeMetrics()
    meter = RedisUsageMeter(
        down_client, "x:", scripts=down_scripts, metrics=metrics, clock=FakeClock(at("2026-11-21T12:00:00"))
    )
    meter.start()
    meter.record("key", "k1", requests=1, cost_points=3)
    assert await meter.flush() is False
    meter.record("key", "k1", requests=1)
    await meter.aclose()  # the final flush fails too: still no exception
    assert meter.store_errors == 2
    assert meter.pending == 2  # k1's batch, kept as it was sent, and k1's record since
    assert 'edge_store_errors_total{store="usage"} 2.0' in metrics.render()[0].decode()
    with pytest.raises(UsageUnavailable):
        await meter.snapshot()


async def test_while_redis_is_down_the_buffer_is_bounded(
    down_client: aioredis.Redis, down_scripts: StoreClient
) -> None:
    meter = RedisUsageMeter(
        down_client, "x:", scripts=down_scripts, max_pending=2, clock=FakeClock(at("2026-11-21T12:00:00"))
    )
    for subject in ("a", "b", "c"):
        meter.record("key", subject, requests=1)
    meter.record("key", "a", requests=1)  # a waiting subject still accumulates
    assert meter.pending == 2
    assert meter.dropped == 1
    assert await meter.flush() is False
    assert meter.pending == 2
    meter.record("key", "d", requests=1)  # still full after the merge back
    assert meter.dropped == 2


async def test_while_a_retry_fails_records_wake_the_flusher_once_per_flush_records(
    down_client: aioredis.Redis, down_scripts: StoreClient
) -> None:
    meter = RedisUsageMeter(
        down_client,
        "x:",
        scripts=down_scripts,
        flush_interval=3600,
        flush_records=3,
        clock=FakeClock(at("2026-11-21T12:00:00")),
    )

    def failed(count: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return meter.store_errors == count

        return check

    meter.start()
    try:
        for _ in range(3):
            meter.record("user", "u1", requests=1)
        await eventually(failed(1))  # the batch is formed, and its write fails: it waits to be retried
        for _ in range(3):
            meter.record("user", "u1", requests=1)
        await eventually(failed(2))  # the retry fails before the buffer is formed into a batch
        meter.record("user", "u1", requests=1)  # one record since that attempt: no flush
        await asyncio.sleep(0.3)  # a refused connection fails in well under a millisecond
        assert meter.store_errors == 2
        meter.record("user", "u1", requests=1)
        meter.record("user", "u1", requests=1)  # flush_records since the last attempt: the flusher wakes
        await eventually(failed(3))
    finally:
        await meter.aclose()


@pytest.mark.redis
async def test_usage_kept_during_an_outage_is_written_once_redis_is_back(own_redis: RedisProcess, kind: str) -> None:
    client, scripts = redis_client_from_url(own_redis.url), store_client(own_redis.url, kind, timeout=2.0)
    try:
        meter = RedisUsageMeter(client, "u:", scripts=scripts, clock=FakeClock(at("2026-11-21T12:00:00")))
        meter.record("key", "k1", requests=1, cost_points=3)
        assert await meter.flush()  # connected, and the script loaded
        own_redis.kill()
        meter.record("key", "k1", requests=1, cost_points=3)
        assert await meter.flush() is False
        meter.record("key", "k1", requests=1, cost_points=1)
        meter.record("user", "u1", requests=1)
        assert (meter.pending, meter.store_errors) == (3, 1)  # the failed batch's k1, the buffer's k1 and u1
        own_redis.start()  # empty again, and without the script: both clients reconnect and load it
        assert await meter.flush() is True
        assert await stored(client, "u:{2026-11}:key:k1") == {"requests": "2", "cost_points": "4"}
        assert await stored(client, "u:{2026-11}:user:u1") == {"requests": "1"}
        assert (meter.pending, meter.store_errors) == (0, 1)
    finally:
        await client.aclose()
        await scripts.aclose()


def many_subjects(meter: RedisUsageMeter, count: int, *, requests: int = 1) -> None:
    for n in range(count):
        meter.record("user", f"user-{n:05d}", requests=requests, cost_points=n, rows=2, subscription_seconds=0.25)
        meter.record("key", f"key-{n % 7}", requests=requests, cost_points=1)


def assert_many_subjects(rows: list[UsageRow], count: int, *, times: int = 1) -> None:
    users = [row for row in rows if row.subject_kind == "user"]
    keys = [row for row in rows if row.subject_kind == "key"]
    assert [row.subject for row in users] == [f"user-{n:05d}" for n in range(count)]
    assert all(
        (row.requests, row.cost_points, row.rows, row.subscription_seconds)
        == (times, n * times, 2 * times, 0.25 * times)
        for n, row in enumerate(users)
    )
    assert sum(row.requests for row in keys) == count * times and len(keys) == 7


async def marks(client: aioredis.Redis, prefix: str) -> dict[str, bytes | None]:
    """Every flush mark under ``prefix``: its key, and the sequence number of the last batch applied there."""
    return {text(name): await client.get(name) async for name in client.scan_iter(match=f"{prefix}*:flush:*")}


@pytest.mark.redis
async def test_a_flush_of_thousands_of_subjects_is_written_whole_in_scripts_of_a_thousand(
    client: aioredis.Redis, scripts: StoreClient, prefix: str
) -> None:
    meter = RedisUsageMeter(client, prefix, scripts=scripts, clock=FakeClock(at("2026-11-21T12:00:00")))
    try:
        many_subjects(meter, 5000)
        assert meter.pending == 5007
        assert BATCH_SUBJECTS == 1000
        assert await meter.flush() is True
        # 5,007 subjects: six scripts, each its own batch (a script holds Redis for every client while it runs).
        assert list((await marks(client, prefix)).values()) == [b"6"]
        many_subjects(meter, 5000)  # the same subjects again: added to what is stored
        assert await meter.flush() is True
        assert list((await marks(client, prefix)).values()) == [b"12"]
        assert (meter.pending, meter.store_errors) == (0, 0)
        assert_many_subjects(await meter.snapshot(), 5000, times=2)
    finally:
        await purge(client, prefix)


@pytest.mark.redis
async def test_the_report_reads_an_index_in_parts(own_redis: RedisProcess) -> None:
    """SSCAN and pipelines of ``READ_BATCH``, never SMEMBERS: one command reading a whole index of a month's
    users would hold Redis for every other client, as one flush script did."""
    client, scripts = redis_client_from_url(own_redis.url), store_client(own_redis.url, "lean", timeout=2.0)
    try:
        meter = RedisUsageMeter(client, "u:", scripts=scripts, clock=FakeClock(at("2026-11-21T12:00:00")))
        many_subjects(meter, 2500)
        assert await meter.flush() is True
        await client.config_resetstat()
        assert_many_subjects(await meter.snapshot(), 2500)
        stats: dict[str, dict[str, float]] = await client.info("commandstats")
        assert "cmdstat_smembers" not in stats
        # Each kind's index and its legacy one; the users' index of 2,500 takes at least three.
        assert stats["cmdstat_sscan"]["calls"] >= 2 + 2500 // READ_BATCH
        assert stats["cmdstat_hgetall"]["calls"] == 2 * 2507  # each subject's hash, and its legacy one
    finally:
        await client.aclose()
        await scripts.aclose()


async def test_the_report_waits_its_own_timeout_not_the_flushs() -> None:
    """A report of a large period takes seconds (``REPORT_TIMEOUT``); a flush must not wait that long. Against a
    server that accepts and never answers, the read gives up after ``report_timeout``, not after ``timeout``."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        client = redis_client_from_url(f"redis://127.0.0.1:{silent.getsockname()[1]}/0", timeout=60.0)
        meter = RedisUsageMeter(client, timeout=60.0, report_timeout=0.3)
        try:
            with pytest.raises(UsageUnavailable):
                await asyncio.wait_for(meter.snapshot(), 20.0)  # a TimeoutError here: the wrong timeout
        finally:
            await client.aclose()
    assert REPORT_TIMEOUT == 30.0 and RedisUsageMeter(aioredis.Redis()).report_timeout == REPORT_TIMEOUT


@pytest.mark.redis
async def test_a_batch_that_fails_keeps_it_and_the_later_ones_for_the_next_flush(
    client: aioredis.Redis, scripts: StoreClient, prefix: str
) -> None:
    meter = RedisUsageMeter(
        client, prefix, scripts=scripts, batch_subjects=2, clock=FakeClock(at("2026-11-21T12:00:00"))
    )
    try:
        for subject in ("k0", "k1", "k2", "k3", "k4"):  # batches 1: k0 k1, 2: k2 k3, 3: k4
            meter.record("key", subject, requests=1)
        await client.set(f"{prefix}{{2026-11}}:key:k3", "not a hash")
        assert await meter.flush() is False
        assert (meter.pending, meter.store_errors) == (3, 1)  # batch 1 written; 2 failed, 3 not sent
        assert await stored(client, f"{prefix}{{2026-11}}:key:k1") == {"requests": "1"}
        assert await client.exists(f"{prefix}{{2026-11}}:key:k2", f"{prefix}{{2026-11}}:key:k4") == 0
        assert list((await marks(client, prefix)).values()) == [b"1"]
        await client.delete(f"{prefix}{{2026-11}}:key:k3")
        meter.record("key", "k0", requests=1)  # a batch of its own, after the kept ones
        assert await meter.flush() is True
        assert list((await marks(client, prefix)).values()) == [b"4"]
        assert [(row.subject, row.requests) for row in await meter.snapshot("key")] == [
            ("k0", 2),
            ("k1", 1),
            ("k2", 1),
            ("k3", 1),
            ("k4", 1),
        ]
        assert (meter.pending, meter.store_errors) == (0, 1)
    finally:
        await purge(client, prefix)


@pytest.mark.redis
async def test_each_period_is_split_into_batches_of_its_own(
    client: aioredis.Redis, scripts: StoreClient, prefix: str
) -> None:
    clock = FakeClock(at("2026-11-30T23:59:59"))
    meter = RedisUsageMeter(client, prefix, scripts=scripts, batch_subjects=2, clock=clock)
    try:
        for subject in ("a", "b", "c"):  # November: batches 1 (a, b) and 2 (c)
            meter.record("key", subject, requests=1)
        clock.now = at("2026-12-01T00:00:01")
        meter.record("key", "a", requests=1)  # December: batch 3
        assert await meter.flush() is True
        found = await marks(client, prefix)
        assert sorted((name.split(":flush:")[0], value) for name, value in found.items()) == [
            (f"{prefix}{{2026-11}}", b"2"),
            (f"{prefix}{{2026-12}}", b"3"),
        ]
        assert [(row.subject, row.requests) for row in await meter.snapshot("key", period="2026-11")] == [
            ("a", 1),
            ("b", 1),
            ("c", 1),
        ]
        assert [(row.subject, row.requests) for row in await meter.snapshot("key", period="2026-12")] == [("a", 1)]
    finally:
        await purge(client, prefix)


def test_a_batch_holds_at_least_one_subject() -> None:
    with pytest.raises(ValueError, match="batch_subjects"):
        RedisUsageMeter(aioredis.Redis(), batch_subjects=0)


@pytest.mark.redis
async def test_a_large_flush_shares_the_lean_connection_with_the_limiter(redis_url: str, prefix: str) -> None:
    """As in the edge: the limiter's calls and the meter's flush pipelined on one ``LeanRedis`` connection."""
    lean, client = LeanRedis.from_url(redis_url, timeout=2.0), redis_client_from_url(redis_url, timeout=2.0)
    try:
        limiter = RedisLimiter(lean, prefix=prefix + "limits:", timeout=2.0)
        plan = Plan.model_validate({"rate": {"requests_per_second": 0.001, "burst": 200}})
        meter = RedisUsageMeter(client, prefix, scripts=lean, clock=FakeClock(at("2026-11-21T12:00:00")))
        many_subjects(meter, 5000)
        before = [asyncio.create_task(limiter.hit("k", "free", plan)) for _ in range(50)]
        flushing = asyncio.create_task(meter.flush())
        after = [asyncio.create_task(limiter.hit("k", "free", plan)) for _ in range(50)]
        decisions = await asyncio.gather(*before, *after)
        assert await flushing is True
        assert meter.store_errors == limiter.store_errors == 0
        # Each call got its own reply: every unit of the burst handed out once.
        assert sorted(decision.remaining for decision in decisions) == list(range(100, 200))
        assert_many_subjects(await meter.snapshot(), 5000)
    finally:
        await purge(client, prefix)
        await lean.aclose()
        await client.aclose()


@pytest.mark.redis
async def test_the_flush_script_is_loaded_again_after_script_flush(own_redis: RedisProcess, kind: str) -> None:
    client, scripts = redis_client_from_url(own_redis.url), store_client(own_redis.url, kind, timeout=2.0)
    try:
        meter = RedisUsageMeter(client, "u:", scripts=scripts, clock=FakeClock(at("2026-11-21T12:00:00")))
        many_subjects(meter, 5000)
        assert await meter.flush() is True  # a new server: NOSCRIPT, then loaded
        await client.script_flush()
        many_subjects(meter, 5000)
        assert await meter.flush() is True  # NOSCRIPT again: loaded and run once
        assert meter.store_errors == 0
        assert_many_subjects(await meter.snapshot(), 5000, times=2)
    finally:
        await client.aclose()
        await scripts.aclose()


@pytest.mark.redis
async def test_a_failed_script_keeps_its_period_for_the_next_flush(
    client: aioredis.Redis, scripts: StoreClient, prefix: str
) -> None:
    metrics = EdgeMetrics()
    clock = FakeClock(at("2026-11-30T23:59:59"))
    meter = RedisUsageMeter(client, prefix, scripts=scripts, clock=clock, metrics=metrics)
    try:
        meter.record("key", "k1", requests=1, cost_points=2)
        clock.now = at("2026-12-01T00:00:01")
        meter.record("key", "k1", requests=1, cost_points=5)
        # December's first key is not a hash: its script fails at its first command and writes nothing.
        await client.set(f"{prefix}{{2026-12}}:key:k1", "not a hash")
        assert await meter.flush() is False
        assert (meter.pending, meter.store_errors) == (1, 1)  # November written, December kept
        assert 'edge_store_errors_total{store="usage"} 1.0' in metrics.render()[0].decode()
        assert await stored(client, f"{prefix}{{2026-11}}:key:k1") == {"requests": "1", "cost_points": "2"}
        meter.record("key", "k1", requests=1, cost_points=1)
        await client.delete(f"{prefix}{{2026-12}}:key:k1")
        assert await meter.flush() is True
        assert await stored(client, f"{prefix}{{2026-12}}:key:k1") == {"requests": "2", "cost_points": "6"}
        assert await stored(client, f"{prefix}{{2026-11}}:key:k1") == {"requests": "1", "cost_points": "2"}
    finally:
        await purge(client, prefix)


async def blocked_clients(client: aioredis.Redis) -> int:
    info: dict[str, int] = await client.info("clients")
    return info["blocked_clients"]


@pytest.mark.redis
async def test_a_flush_past_its_timeout_is_kept_and_written_once_later(own_redis: RedisProcess, kind: str) -> None:
    client, scripts = redis_client_from_url(own_redis.url), store_client(own_redis.url, kind, timeout=2.0)
    try:
        # The meter's own timeout, not the client's: the client would wait 2 s.
        meter = RedisUsageMeter(client, "u:", scripts=scripts, timeout=0.1, clock=FakeClock(at("2026-11-21T12:00:00")))
        meter.record("key", "k1", requests=1, cost_points=3)
        await client.client_pause(60_000, all=False)  # the script waits; reads still answer
        assert await meter.flush() is False
        assert (meter.pending, meter.store_errors) == (1, 1)
        await eventually(lambda: _none_blocked(client))  # the timed-out call's connection is closed: never run
        await client.client_unpause()
        assert await meter.flush() is True
        assert await stored(client, "u:{2026-11}:key:k1") == {"requests": "1", "cost_points": "3"}
    finally:
        await client.aclose()
        await scripts.aclose()


async def _none_blocked(client: aioredis.Redis) -> bool:
    return await blocked_clients(client) == 0


@pytest.mark.redis
async def test_a_cancelled_flush_keeps_its_usage_for_a_later_flush(own_redis: RedisProcess, kind: str) -> None:
    client, scripts = redis_client_from_url(own_redis.url), store_client(own_redis.url, kind, timeout=2.0)
    try:
        meter = RedisUsageMeter(client, "u:", scripts=scripts, timeout=0.5, clock=FakeClock(at("2026-11-21T12:00:00")))
        meter.record("key", "k1", requests=1, cost_points=3)
        assert await meter.flush() is True
        meter.record("key", "k1", requests=1, cost_points=4)
        await client.client_pause(60_000, all=False)
        flushing = asyncio.create_task(meter.flush())

        async def sent() -> bool:
            return await blocked_clients(client) == 1

        await eventually(sent)  # the script is in Redis, waiting
        flushing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await flushing
        assert (meter.pending, meter.store_errors) == (1, 0)  # kept, and a cancellation is no store error
        await eventually(lambda: _none_blocked(client), timeout=5.0)  # abandoned: closed by the client
        await client.client_unpause()
        assert await meter.flush() is True
        assert await stored(client, "u:{2026-11}:key:k1") == {"requests": "2", "cost_points": "7"}
    finally:
        await client.aclose()
        await scripts.aclose()


async def applied(client: aioredis.Redis, prefix: str, count: int) -> bool:
    """Whether Redis applied ``many_subjects(count)``'s flush under ``prefix`` within a few seconds (its script is
    atomic: its last subject tells). A command not sent whole before its connection closed never runs."""

    async def last_subject_written() -> bool:
        return bool(await client.exists(f"{prefix}{{2026-11}}:user:user-{count - 1:05d}"))

    try:
        await eventually(last_subject_written, timeout=5.0)
    except TimeoutError:
        return False
    return True


async def script_seconds(client: aioredis.Redis) -> float:
    """The time Redis spent in ``EVALSHA`` since the last ``CONFIG RESETSTAT``."""
    stats: dict[str, dict[str, float]] = await client.info("commandstats")
    return stats["cmdstat_evalsha"]["usec"] / 1e6


@pytest.mark.redis
async def test_a_flush_redis_applied_after_its_timeout_counts_once(own_redis: RedisProcess, kind: str) -> None:
    """The double count a retry used to make: a flush of many subjects whose script outlives the meter's timeout.
    The meter gives up and its client closes the connection, but Redis runs a script it has received to its end:
    the batch is applied and its reply lost. The next flush must not apply it again.

    The timeout must fall while the script runs, after the command is encoded (which counts against it) and
    sent: each attempt first times a flush of the same size, then sets the timeout to that flush's duration less
    half its script's; a flush that did not end so (the box's speed varies) is followed by a larger one."""
    # Both wait as long as it takes: the checks' replies come after the script's end.
    client, scripts = (
        redis_client_from_url(own_redis.url, timeout=30.0),
        store_client(own_redis.url, kind, timeout=30.0),
    )
    clock = FakeClock(at("2026-11-21T12:00:00"))
    try:
        count, loop = 20_000, asyncio.get_running_loop()
        loading = RedisUsageMeter(client, "loading:", scripts=scripts, clock=clock)
        loading.record("key", "k", requests=1)
        assert await loading.flush() is True  # a NOSCRIPT first would lengthen the timed flush
        for attempt in range(6):
            # One script per flush: the test is about a script that outlives the meter's timeout.
            timed = RedisUsageMeter(
                client,
                f"t{attempt}:",
                scripts=scripts,
                timeout=30.0,
                max_pending=count + 7,
                batch_subjects=count + 7,
                clock=clock,
            )
            many_subjects(timed, count)
            await client.config_resetstat()
            started = loop.time()
            assert await timed.flush() is True
            took, script = loop.time() - started, await script_seconds(client)
            meter = RedisUsageMeter(
                client,
                f"u{attempt}:",
                scripts=scripts,
                timeout=took - script / 2,
                max_pending=count + 7,
                batch_subjects=count + 7,
                clock=clock,
            )
            many_subjects(meter, count)
            if not await meter.flush() and await applied(client, f"u{attempt}:", count):
                break
            count = count * 3 // 2
        else:
            pytest.fail(f"no flush of up to {count} subjects outlived its timeout")
        assert (meter.pending, meter.store_errors) == (count + 7, 1)  # failed for the meter, applied by Redis
        meter.timeout = 30.0  # the retry is not cut short in turn
        assert await meter.flush() is True
        assert (meter.pending, meter.store_errors) == (0, 1)
        assert_many_subjects(await meter.snapshot(), count)  # once, not twice
    finally:
        await client.aclose()
        await scripts.aclose()


@pytest.mark.redis
async def test_records_while_a_batch_waits_are_written_after_it(own_redis: RedisProcess, kind: str) -> None:
    client, scripts = redis_client_from_url(own_redis.url), store_client(own_redis.url, kind, timeout=2.0)
    try:
        meter = RedisUsageMeter(
            client, "u:", scripts=scripts, max_pending=4, clock=FakeClock(at("2026-11-21T12:00:00"))
        )
        meter.record("key", "a", requests=1, cost_points=1)
        meter.record("key", "b", requests=1, cost_points=2)
        own_redis.kill()
        assert await meter.flush() is False  # a and b: a batch, kept as it was sent
        meter.record("key", "a", requests=1, cost_points=10)  # in the buffer, beside the batch's a
        meter.record("key", "c", requests=1)
        assert (meter.pending, meter.dropped) == (4, 0)
        meter.record("key", "d", requests=1)  # the batch's subjects count toward max_pending
        assert (meter.pending, meter.dropped) == (4, 1)
        assert await meter.flush() is False  # the batch again; the buffer waits behind it
        meter.record("key", "c", requests=1)
        assert (meter.pending, meter.dropped, meter.store_errors) == (4, 1, 2)
        own_redis.start()
        await meter.aclose()  # the batch first, then the buffer
        assert await stored(client, "u:{2026-11}:key:a") == {"requests": "2", "cost_points": "11"}
        assert await stored(client, "u:{2026-11}:key:b") == {"requests": "1", "cost_points": "2"}
        assert await stored(client, "u:{2026-11}:key:c") == {"requests": "2"}
        assert await client.exists("u:{2026-11}:key:d") == 0
        marks = [name async for name in client.scan_iter(match="u:{2026-11}:flush:*")]
        assert [await client.get(mark) for mark in marks] == [b"2"]  # two batches: the one kept, then the buffer
        assert (meter.pending, meter.dropped) == (0, 1)
        for subject in "efgh":  # written: its subjects' room is the buffer's again
            meter.record("key", subject, requests=1)
        assert (meter.pending, meter.dropped) == (4, 1)
    finally:
        await client.aclose()
        await scripts.aclose()


@pytest.mark.redis
async def test_each_flush_marks_its_batch_in_the_periods_slot(
    client: aioredis.Redis, scripts: StoreClient, prefix: str
) -> None:
    clock = FakeClock(at("2026-11-30T23:59:59"))
    meter = RedisUsageMeter(client, prefix, scripts=scripts, retention_seconds=3600, clock=clock)

    async def mark_keys() -> list[str]:
        return sorted([text(name) async for name in client.scan_iter(match=f"{prefix}*:flush:*")])

    try:
        meter.record("key", "k1", requests=1)
        assert await meter.flush() is True
        [november] = await mark_keys()
        assert november.startswith(f"{prefix}{{2026-11}}:flush:")  # the period's hash tag: its slot
        assert key_slot(november.encode()) == key_slot(f"{prefix}{{2026-11}}:key:k1".encode())
        assert await client.get(november) == b"1"
        # Its own lifetime, not the retention's: it must outlive the retries of a batch.
        assert FLUSH_MARK_SECONDS - 3600 < await client.ttl(november) <= FLUSH_MARK_SECONDS
        meter.record("key", "k1", requests=1)
        clock.now = at("2026-12-01T00:00:01")
        meter.record("key", "k1", requests=1)
        assert await meter.flush() is True  # batches 2 (November) and 3 (December)
        december = november.replace("{2026-11}", "{2026-12}")
        assert await mark_keys() == [november, december]
        assert [await client.get(mark) for mark in (november, december)] == [b"2", b"3"]
        assert 0 < await client.ttl(december) <= FLUSH_MARK_SECONDS
        assert await stored(client, f"{prefix}{{2026-11}}:key:k1") == {"requests": "2"}
    finally:
        await purge(client, prefix)


@pytest.mark.redis
async def test_a_script_that_fails_writes_nothing_and_is_written_once_later(
    client: aioredis.Redis, scripts: StoreClient, prefix: str
) -> None:
    meter = RedisUsageMeter(client, prefix, scripts=scripts, clock=FakeClock(at("2026-11-21T12:00:00")))
    try:
        meter.record("key", "k0", requests=1)
        meter.record("key", "k1", requests=1)
        meter.record("user", "u1", requests=1)
        await client.set(f"{prefix}{{2026-11}}:key:k1", "not a hash")  # the batch's second subject
        assert await meter.flush() is False
        # Not k0 before it, nor the mark: the keys' types are checked before the first write.
        assert [name async for name in client.scan_iter(match=prefix + "*")] == [f"{prefix}{{2026-11}}:key:k1".encode()]
        await client.delete(f"{prefix}{{2026-11}}:key:k1")
        await client.set(f"{prefix}{{2026-11}}:index:key", "not a set")  # an index is checked too
        assert await meter.flush() is False
        assert await client.exists(f"{prefix}{{2026-11}}:key:k0", f"{prefix}{{2026-11}}:user:u1") == 0
        await client.delete(f"{prefix}{{2026-11}}:index:key")
        assert await meter.flush() is True
        assert [(row.subject, row.requests) for row in await meter.snapshot("key")] == [("k0", 1), ("k1", 1)]
        assert [(row.subject, row.requests) for row in await meter.snapshot("user")] == [("u1", 1)]
        assert (meter.pending, meter.store_errors) == (0, 2)
    finally:
        await purge(client, prefix)


def text(name: bytes | str) -> str:
    return name.decode() if isinstance(name, bytes) else name


@pytest.mark.redis
async def test_a_started_meter_flushes_everything_on_close(
    client: aioredis.Redis, scripts: StoreClient, prefix: str
) -> None:
    meter = RedisUsageMeter(
        client, prefix, scripts=scripts, flush_interval=3600, clock=FakeClock(at("2026-11-21T12:00:00"))
    )
    meter.start()
    meter.record("user", "u9", requests=1, rows=40)
    await meter.aclose()
    assert await stored(client, f"{prefix}{{2026-11}}:user:u9") == {"requests": "1", "rows": "40"}


@pytest.mark.redis
async def test_the_flush_runs_on_scripts_and_the_report_reads_client(
    redis_url: str, down_client: aioredis.Redis, kind: str, prefix: str
) -> None:
    checker, scripts = redis_client_from_url(redis_url), store_client(redis_url, kind, timeout=2.0)
    try:
        meter = RedisUsageMeter(down_client, prefix, scripts=scripts, clock=FakeClock(at("2026-11-21T12:00:00")))
        meter.record("key", "k1", requests=1, rows=4)
        assert await meter.flush() is True
        assert await stored(checker, f"{prefix}{{2026-11}}:key:k1") == {"requests": "1", "rows": "4"}
        with pytest.raises(UsageUnavailable):
            await meter.snapshot()
    finally:
        await purge(checker, prefix)
        await checker.aclose()
        await scripts.aclose()


@pytest.mark.redis
async def test_the_edges_meter_flushes_on_the_limits_client(redis_url: str, down_client: aioredis.Redis) -> None:
    """``build_observability`` gives the meter the limits' client for its flush (the lean one on one server)."""
    lean, checker = LeanRedis.from_url(redis_url, timeout=2.0), redis_client_from_url(redis_url)
    subject, period = f"test-{uuid.uuid4().hex}", ""
    try:
        async with contextlib.AsyncExitStack() as owned:
            redis = RedisClients(shared=down_client, limits=lean)
            meter = build_observability(edge_settings("http://127.0.0.1:9"), owned, redis, None).meter
            assert isinstance(meter, RedisUsageMeter)
            period = meter.current_period()
            meter.record("user", subject, requests=1)
            assert await meter.flush() is True
        assert await stored(checker, f"edge:usage:{{{period}}}:user:{subject}") == {"requests": "1"}
    finally:
        if period:  # the edge's own prefix: take the test's subject out again
            await checker.delete(f"edge:usage:{{{period}}}:user:{subject}")
            await checker.srem(f"edge:usage:{{{period}}}:index:user", subject)
        await checker.aclose()
        await lean.aclose()


@pytest.mark.redis
async def test_any_subject_and_figures_are_written_as_recorded(
    client: aioredis.Redis, scripts: StoreClient, prefix: str
) -> None:
    """The lean flush encodes each subject's keys and figures itself: lengths in bytes, braces and colons kept,
    the same figures shared by several subjects, fractional seconds."""
    meter = RedisUsageMeter(client, prefix, scripts=scripts, clock=FakeClock(at("2026-11-21T12:00:00")))
    subjects = ["ключ", "a}b{c:d", "plain", "x" * 300]
    try:
        for subject in subjects:
            meter.record("key", subject, requests=1, cost_points=20, rows=3)
        meter.record("user", "ключ", requests=2, subscription_seconds=1.25)
        meter.record("user", "ключ", subscription_seconds=0.125)
        assert await meter.flush() is True
        for subject in subjects:
            expected = {"requests": "1", "cost_points": "20", "rows": "3"}
            assert await stored(client, f"{prefix}{{2026-11}}:key:{subject[:256]}") == expected
        assert await stored(client, f"{prefix}{{2026-11}}:user:ключ") == {
            "requests": "2",
            "subscription_seconds": "1.375",
        }
        index = await client.smembers(f"{prefix}{{2026-11}}:index:key")
        members = {member.decode() if isinstance(member, bytes) else member for member in index}
        assert members == {subject[:256] for subject in subjects}
        assert meter.store_errors == 0
    finally:
        await purge(client, prefix)

"""Usage metering: the memory meter, the buffered Redis meter, month rollover and the admin report."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from edge.limits.redis_store import redis_client_from_url
from edge.observability.metering import (
    MemoryUsageMeter,
    RedisUsageMeter,
    UsageRow,
    UsageUnavailable,
    period_of,
    usage_report,
)
from edge.observability.metrics import EdgeMetrics
from edge.redis_topology import open_shared_redis


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


# --- Redis ----------------------------------------------------------------------------------


@pytest.fixture
async def client(topology_redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """The edge's client on each topology in turn (one server, Sentinel, Cluster)."""
    shared = open_shared_redis(topology_redis_url, timeout=2.0)
    yield shared.client  # type: ignore[misc]  # a RedisCluster answers the same commands
    await shared.aclose()


@pytest.fixture
async def down_client() -> AsyncIterator[aioredis.Redis]:
    client = redis_client_from_url(f"redis://127.0.0.1:{closed_port()}/0")
    yield client
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    return f"test:usage:{uuid.uuid4().hex}:"


async def stored(client: aioredis.Redis, key: str) -> dict[str, str]:
    raw: dict[bytes, bytes] = await client.hgetall(key)  # type: ignore[assignment]  # decode_responses=False
    return {k.decode(): v.decode() for k, v in raw.items()}


@pytest.mark.redis
async def test_redis_meter_writes_nothing_per_request_and_flushes_on_close(client: aioredis.Redis, prefix: str) -> None:
    meter = RedisUsageMeter(client, prefix, clock=FakeClock(at("2026-11-21T12:00:00")))
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
async def test_redis_meter_flushes_on_its_interval(client: aioredis.Redis, prefix: str) -> None:
    meter = RedisUsageMeter(client, prefix, flush_interval=0.05, clock=FakeClock(at("2026-11-21T12:00:00")))
    meter.start()
    try:
        meter.record("key", "k1", requests=3)

        async def written() -> bool:
            return await client.hget(f"{prefix}{{2026-11}}:key:k1", "requests") == b"3"

        await eventually(written)
    finally:
        await meter.aclose()


@pytest.mark.redis
async def test_redis_meter_flushes_early_after_flush_records(client: aioredis.Redis, prefix: str) -> None:
    meter = RedisUsageMeter(
        client, prefix, flush_interval=3600, flush_records=3, clock=FakeClock(at("2026-11-21T12:00:00"))
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
async def test_two_replicas_add_up_in_one_snapshot(client: aioredis.Redis, prefix: str) -> None:
    clock = FakeClock(at("2026-11-21T12:00:00"))
    first, second = RedisUsageMeter(client, prefix, clock=clock), RedisUsageMeter(client, prefix, clock=clock)
    first.record("key", "k1", requests=1, cost_points=4)
    second.record("key", "k1", requests=2, cost_points=6)
    await first.flush()
    # second's buffer is flushed by its own snapshot.
    assert await second.snapshot() == [UsageRow("key", "k1", "2026-11", 3, 10, 0, 0.0)]
    report = await usage_report(second, kind="key")
    assert report["totals"] == {"key": {"requests": 3, "cost_points": 10, "rows": 0, "subscription_seconds": 0.0}}


@pytest.mark.redis
async def test_redis_meter_bills_each_record_to_the_month_it_happened_in(client: aioredis.Redis, prefix: str) -> None:
    clock = FakeClock(at("2026-11-30T23:59:59"))
    meter = RedisUsageMeter(client, prefix, clock=clock)
    meter.record("key", "k1", requests=1, cost_points=7)
    clock.now = at("2026-12-01T00:00:01")
    meter.record("key", "k1", requests=1, cost_points=2)
    await meter.flush()  # one flush, after midnight, for both months
    assert await stored(client, f"{prefix}{{2026-11}}:key:k1") == {"requests": "1", "cost_points": "7"}
    assert await stored(client, f"{prefix}{{2026-12}}:key:k1") == {"requests": "1", "cost_points": "2"}
    assert [row.cost_points for row in await meter.snapshot(period="2026-11")] == [7]
    assert [row.cost_points for row in await meter.snapshot()] == [2]


@pytest.mark.redis
async def test_retention_sets_a_ttl(client: aioredis.Redis, prefix: str) -> None:
    meter = RedisUsageMeter(client, prefix, retention_seconds=3600, clock=FakeClock(at("2026-11-21T12:00:00")))
    meter.record("key", "k1", requests=1)
    await meter.flush()
    assert 0 < await client.ttl(f"{prefix}{{2026-11}}:key:k1") <= 3600
    assert 0 < await client.ttl(f"{prefix}{{2026-11}}:index:key") <= 3600


async def test_redis_down_never_raises_counts_errors_and_keeps_the_usage(down_client: aioredis.Redis) -> None:
    metrics = EdgeMetrics()
    meter = RedisUsageMeter(down_client, "x:", metrics=metrics, clock=FakeClock(at("2026-11-21T12:00:00")))
    meter.start()
    meter.record("key", "k1", requests=1, cost_points=3)
    assert await meter.flush() is False
    meter.record("key", "k1", requests=1)
    await meter.aclose()  # the final flush fails too: still no exception
    assert meter.store_errors == 2
    assert meter.pending == 1
    assert 'edge_store_errors_total{store="usage"} 2.0' in metrics.render()[0].decode()
    with pytest.raises(UsageUnavailable):
        await meter.snapshot()


async def test_while_redis_is_down_the_buffer_is_bounded(down_client: aioredis.Redis) -> None:
    meter = RedisUsageMeter(down_client, "x:", max_pending=2, clock=FakeClock(at("2026-11-21T12:00:00")))
    for subject in ("a", "b", "c"):
        meter.record("key", subject, requests=1)
    meter.record("key", "a", requests=1)  # a waiting subject still accumulates
    assert meter.pending == 2
    assert meter.dropped == 1
    await meter.flush()
    assert meter.pending == 2


@pytest.mark.redis
async def test_usage_kept_during_an_outage_is_written_once_redis_is_back(
    client: aioredis.Redis, down_client: aioredis.Redis, prefix: str
) -> None:
    meter = RedisUsageMeter(down_client, prefix, clock=FakeClock(at("2026-11-21T12:00:00")))
    meter.record("key", "k1", requests=1, cost_points=3)
    assert await meter.flush() is False
    meter.record("key", "k1", requests=1, cost_points=1)
    meter.client = client  # Redis is back (redis-py reconnects; here the client is swapped)
    assert await meter.flush() is True
    assert await stored(client, f"{prefix}{{2026-11}}:key:k1") == {"requests": "2", "cost_points": "4"}


@pytest.mark.redis
async def test_a_started_meter_flushes_everything_on_close(client: aioredis.Redis, prefix: str) -> None:
    meter = RedisUsageMeter(client, prefix, flush_interval=3600, clock=FakeClock(at("2026-11-21T12:00:00")))
    meter.start()
    meter.record("user", "u9", requests=1, rows=40)
    await meter.aclose()
    assert await stored(client, f"{prefix}{{2026-11}}:user:u9") == {"requests": "1", "rows": "40"}

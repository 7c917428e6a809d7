"""HealthChecker: rise/fall on a switchable /healthz, the Hasura double's health switch, use in the balancer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import orjson
import pytest

from edge.upstream import Upstream, UpstreamConnectError
from edge.upstream.balancer import BalancedUpstream, Target
from edge.upstream.health import HealthChecker
from edge.upstream.lean import LeanUpstream
from tests.edge.upstream import fake_upstream as fu
from tests.edge.upstream.conftest import ServeFn
from tests.hasura_double import HasuraDouble

QUERY = orjson.dumps({"query": "{ users { id } }"})


class Switchable:
    """A fake Hasura whose /healthz answers 200 or 500 (``up``); /v1/graphql always answers 200."""

    def __init__(self) -> None:
        self.up = True
        self.hang_health = False

    async def __call__(self, request: fu.Request, ctx: fu.Ctx) -> bool:
        if request.path == "/healthz":
            if self.hang_health:
                await fu.until_client_closes(ctx)
                return False
            ctx.writer.write(fu.response(status=200 if self.up else 500, body=b"OK" if self.up else b"ERROR"))
        else:
            ctx.writer.write(fu.response())
        return True


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


def graphql_posts(server: fu.FakeUpstream) -> int:
    return sum(1 for r in server.requests if r.method == "POST" and r.path == "/v1/graphql")


@pytest.fixture
async def lean_clients() -> AsyncIterator[Callable[[str], Upstream]]:
    made: list[Upstream] = []

    def make(url: str) -> Upstream:
        client = LeanUpstream(url, connect_timeout=1.0, read_timeout=5.0)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        HealthChecker([], interval=0)
    with pytest.raises(ValueError):
        HealthChecker([], rise=0)
    with pytest.raises(ValueError):
        HealthChecker([], names=["a"])


async def test_fall_and_rise_counts(serve: ServeFn, lean_clients: Callable[[str], Upstream]) -> None:
    switch = Switchable()
    server = await serve(switch)
    changes: list[tuple[int, bool]] = []
    checker = HealthChecker([lean_clients(server.url)], rise=2, fall=3, on_change=lambda i, ok: changes.append((i, ok)))
    assert checker.healthy == (True,)  # optimistic until checked
    switch.up = False
    for expected in (True, True, False):
        await checker.check_once()
        assert checker.is_healthy(0) is expected
    switch.up = True
    await checker.check_once()
    assert not checker.is_healthy(0)
    switch.up = False  # a flap resets the streak
    await checker.check_once()
    switch.up = True
    await checker.check_once()
    assert not checker.is_healthy(0)
    await checker.check_once()
    assert checker.is_healthy(0)
    assert changes == [(0, False), (0, True)]
    assert all(r.path == "/healthz" and r.method == "GET" for r in server.requests)
    await checker.aclose()


async def test_unreachable_or_hanging_health_is_down(serve: ServeFn, lean_clients: Callable[[str], Upstream]) -> None:
    switch = Switchable()
    switch.hang_health = True
    hanging = await serve(switch)
    checker = HealthChecker([lean_clients(hanging.url), lean_clients("http://127.0.0.1:9")], timeout=0.1, fall=1)
    await checker.check_once()
    assert checker.healthy == (False, False)


async def test_background_checks_mark_down_and_up(serve: ServeFn, lean_clients: Callable[[str], Upstream]) -> None:
    switch = Switchable()
    server = await serve(switch)
    checker = HealthChecker([lean_clients(server.url)], interval=0.01, timeout=1.0, rise=1, fall=1)
    checker.start()
    checker.start()  # idempotent
    switch.up = False
    await wait_until(lambda: not checker.is_healthy(0))
    switch.up = True
    await wait_until(lambda: checker.is_healthy(0))
    await checker.aclose()
    rounds = checker.rounds
    await asyncio.sleep(0.05)
    assert checker.rounds == rounds  # stopped
    checker.start()  # a no-op once closed
    await asyncio.sleep(0.03)
    assert checker.rounds == rounds


async def test_follows_the_doubles_health_switch(hasura: HasuraDouble, hasura_url: str) -> None:
    client = LeanUpstream(hasura_url, read_timeout=5.0)
    checker = HealthChecker([client], rise=1, fall=1)
    try:
        await checker.check_once()
        assert checker.is_healthy(0)
        hasura.healthy = False  # /healthz answers 500 ERROR
        await checker.check_once()
        assert not checker.is_healthy(0)
        hasura.healthy = True
        await checker.check_once()
        assert checker.is_healthy(0)
    finally:
        await checker.aclose()
        await client.aclose()


# In the balancer ----------------------------------------------------------------------------------


@pytest.fixture
async def balanced() -> AsyncIterator[list[BalancedUpstream]]:
    made: list[BalancedUpstream] = []
    yield made
    for upstream in made:
        await upstream.aclose()


async def test_unhealthy_target_gets_no_traffic_until_it_recovers(
    serve: ServeFn, balanced: list[BalancedUpstream]
) -> None:
    a_switch, b_switch = Switchable(), Switchable()
    a, b = await serve(a_switch), await serve(b_switch)
    upstream = BalancedUpstream(
        [Target(a.url), Target(b.url)],
        make_client=lambda url: LeanUpstream(url, read_timeout=5.0),
        health_interval=0.01,
        health_rise=1,
        health_fall=1,
    )
    balanced.append(upstream)
    await upstream.start()
    health = upstream.health
    assert health is not None
    b_switch.up = False
    await wait_until(lambda: health.healthy == (True, False))
    for _ in range(10):
        await upstream.post(QUERY, [])
    assert (graphql_posts(a), graphql_posts(b)) == (10, 0)

    b_switch.up = True
    await wait_until(lambda: health.healthy == (True, True))
    for _ in range(10):
        await upstream.post(QUERY, [])
    assert (graphql_posts(a), graphql_posts(b)) == (15, 5)


async def test_all_unhealthy_still_tries_them(serve: ServeFn, balanced: list[BalancedUpstream]) -> None:
    """Health checks steer traffic between targets; they never refuse what the breakers would allow."""
    a_switch, b_switch = Switchable(), Switchable()
    a, b = await serve(a_switch), await serve(b_switch)
    upstream = BalancedUpstream(
        [Target(a.url), Target(b.url)],
        make_client=lambda url: LeanUpstream(url, read_timeout=5.0),
        health_interval=0.01,
        health_fall=1,
    )
    balanced.append(upstream)
    a_switch.up = b_switch.up = False
    await upstream.start()
    health = upstream.health
    assert health is not None
    await wait_until(lambda: health.healthy == (False, False))
    for _ in range(4):
        assert (await upstream.post(QUERY, [])).status == 200
    assert (graphql_posts(a), graphql_posts(b)) == (2, 2)


async def test_health_checks_start_with_the_first_request(serve: ServeFn, balanced: list[BalancedUpstream]) -> None:
    switch = Switchable()
    server = await serve(switch)
    upstream = BalancedUpstream(
        [Target("http://127.0.0.1:9"), Target(server.url)],
        make_client=lambda url: LeanUpstream(url, connect_timeout=1.0, read_timeout=5.0),
        health_interval=0.01,
        health_fall=1,
    )
    balanced.append(upstream)
    health = upstream.health
    assert health is not None and health.rounds == 0
    with pytest.raises(UpstreamConnectError):
        await upstream.post(QUERY, [])  # a mutation to the dead one, before any check ran
    await wait_until(lambda: health.healthy == (False, True))
    for _ in range(4):
        assert (await upstream.post(QUERY, [])).status == 200  # the dead one is skipped now

"""BalancedUpstream over real loopback fake servers: weights, breakers, retries, readiness, drain."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import orjson
import pytest

from edge.upstream import (
    Upstream,
    UpstreamConnectError,
    UpstreamPoolTimeout,
    UpstreamProtocolError,
    UpstreamResponse,
    UpstreamTimeout,
)
from edge.upstream.balancer import BalancedUpstream, Target, UpstreamDraining, parse_targets
from edge.upstream.breaker import BreakerState, CircuitBreaker, UpstreamCircuitOpen
from edge.upstream.lean import LeanUpstream
from tests.edge.upstream import fake_upstream as fu
from tests.edge.upstream.conftest import ServeFn
from tests.support.servers import free_loopback_socket

QUERY = orjson.dumps({"query": "{ users { id } }"})
MUTATION = orjson.dumps({"query": "mutation { delete_users(where: {}) { affected_rows } }"})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def lean_client(url: str) -> Upstream:
    return LeanUpstream(url, connect_timeout=2.0, read_timeout=5.0)


Balance = Callable[..., BalancedUpstream]
Refused = Callable[[], tuple[str, socket.socket]]


@pytest.fixture
async def balance() -> AsyncIterator[Balance]:
    made: list[BalancedUpstream] = []

    def make(
        targets: Sequence[Target | str],
        *,
        threshold: int = 100,
        reset_timeout: float = 10.0,
        clock: Clock | None = None,
        **options: Any,
    ) -> BalancedUpstream:
        tick = clock or Clock()
        options.setdefault("make_client", lean_client)
        options.setdefault("health_interval", None)
        upstream = BalancedUpstream(
            [t if isinstance(t, Target) else Target(t) for t in targets],
            breaker_factory=lambda: CircuitBreaker(threshold, reset_timeout, clock=tick),
            **options,
        )
        made.append(upstream)
        return upstream

    yield make
    for upstream in made:
        await upstream.aclose()


@pytest.fixture
def refused() -> Iterator[Refused]:
    """URLs of ports bound but not listening (connecting is refused), with the socket holding each."""
    socks: list[socket.socket] = []

    def make() -> tuple[str, socket.socket]:
        sock = free_loopback_socket()
        socks.append(sock)
        return f"http://127.0.0.1:{sock.getsockname()[1]}", sock

    yield make
    for sock in socks:
        sock.close()


class RevivedUpstream(fu.FakeUpstream):
    """A fake server started on a given port (a target that was down comes back)."""

    async def start_on(self, port: int) -> RevivedUpstream:
        self._server = await asyncio.start_server(self._on_client, "127.0.0.1", port, reuse_address=True)
        self.port = port
        return self


def state(breaker: CircuitBreaker) -> BreakerState:
    """The breaker's state now (a call, so that mypy does not narrow a property across clock changes)."""
    return breaker.state


def posts(server: fu.FakeUpstream) -> int:
    return sum(1 for r in server.requests if r.method == "POST")


# Targets and weights -------------------------------------------------------------------------------


def test_parse_targets() -> None:
    assert parse_targets("http://a:8080|3, http://b:8080/ ,http://c:8080|1") == [
        Target("http://a:8080", 3),
        Target("http://b:8080", 1),
        Target("http://c:8080", 1),
    ]
    assert parse_targets("http://hasura:8080") == [Target("http://hasura:8080")]
    with pytest.raises(ValueError, match="integer"):
        parse_targets("http://a:8080|x")
    with pytest.raises(ValueError, match="at least 1"):
        parse_targets("http://a:8080|0")
    with pytest.raises(ValueError):
        parse_targets(" , ")


class Stub:
    """An Upstream that records calls and answers from a script (no sockets)."""

    def __init__(self, name: str, outcome: Callable[[], UpstreamResponse] | None = None) -> None:
        self.name, self.calls, self.closed = name, 0, False
        self.outcome = outcome or (lambda: UpstreamResponse(200, [], name.encode()))
        self.gate: asyncio.Event | None = None

    async def post(
        self,
        body: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        *,
        timeout: float | None = None,
        idempotent: bool = False,
    ) -> UpstreamResponse:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        return self.outcome()

    async def get(self, path: str, *, timeout: float | None = None) -> UpstreamResponse:
        return self.outcome()

    async def aclose(self) -> None:
        self.closed = True


def stubs(*names: str) -> tuple[dict[str, Stub], Callable[[str], Upstream]]:
    made = {name: Stub(name) for name in names}
    return made, lambda url: made[url]


async def test_smooth_weighted_round_robin_sequence(balance: Balance) -> None:
    _, make_client = stubs("a", "b", "c")
    upstream = balance([Target("a", 5), Target("b"), Target("c")], make_client=make_client)
    picked = [(await upstream.post(QUERY, [])).body.decode() for _ in range(14)]
    assert "".join(picked) == "aabacaa" * 2  # nginx's smooth sequence: no burst of five a's


async def test_weights_3_to_1_over_400_requests_on_real_servers(serve: ServeFn, balance: Balance) -> None:
    heavy, light = await serve(fu.ok), await serve(fu.ok)
    upstream = balance([Target(heavy.url, 3), Target(light.url, 1)])
    for _ in range(400):
        assert (await upstream.post(QUERY, [])).status == 200
    assert (posts(heavy), posts(light)) == (300, 100)


async def test_concurrent_requests_keep_the_ratio(serve: ServeFn, balance: Balance) -> None:
    a, b, c = await serve(fu.slow_ok), await serve(fu.slow_ok), await serve(fu.slow_ok)
    upstream = balance([Target(a.url, 2), Target(b.url, 1), Target(c.url, 1)])
    results = await asyncio.gather(*(upstream.post(QUERY, []) for _ in range(200)))
    assert all(r.status == 200 for r in results)
    assert (posts(a), posts(b), posts(c)) == (100, 50, 50)
    assert upstream.in_flight == 0


# Breakers ------------------------------------------------------------------------------------------


async def test_dead_target_opens_its_breaker_then_a_probe_brings_it_back(
    serve: ServeFn, balance: Balance, refused: Refused
) -> None:
    live = await serve(fu.ok)
    dead_url, dead_sock = refused()
    dead_port = dead_sock.getsockname()[1]
    clock = Clock()
    upstream = balance([dead_url, live.url], threshold=2, reset_timeout=10.0, clock=clock)
    dead_breaker, live_breaker = upstream.breakers

    errors = 0
    for _ in range(20):
        try:
            await upstream.post(MUTATION, [])  # not idempotent: the caller sees the failure
        except UpstreamConnectError:
            errors += 1
    assert errors == 2  # exactly failure_threshold requests were lost to the dead target
    assert state(dead_breaker) is BreakerState.OPEN
    assert posts(live) == 18
    assert state(live_breaker) is BreakerState.CLOSED

    # Revive it on the same port; nothing is sent to it until the reset timeout has passed.
    dead_sock.close()
    revived = await RevivedUpstream(fu.ok).start_on(dead_port)
    try:
        for _ in range(5):
            await upstream.post(QUERY, [])
        assert posts(revived) == 0
        clock.now += 10.0
        assert state(dead_breaker) is BreakerState.HALF_OPEN
        for _ in range(10):
            assert (await upstream.post(QUERY, [])).status == 200
        assert state(dead_breaker) is BreakerState.CLOSED
        assert posts(revived) == 5  # back in the even rotation
        assert dead_breaker.transitions == {
            (BreakerState.CLOSED, BreakerState.OPEN): 1,
            (BreakerState.OPEN, BreakerState.HALF_OPEN): 1,
            (BreakerState.HALF_OPEN, BreakerState.CLOSED): 1,
        }
    finally:
        await revived.stop()


async def test_5xx_answers_trip_the_breaker_but_are_returned(serve: ServeFn, balance: Balance) -> None:
    async def unavailable(request: fu.Request, ctx: fu.Ctx) -> bool:
        ctx.writer.write(fu.response(status=503, body=b"maintenance"))
        return True

    server = await serve(unavailable)
    upstream = balance([server.url], threshold=3)
    for _ in range(3):
        response = await upstream.post(QUERY, [])
        assert (response.status, response.body) == (503, b"maintenance")
    with pytest.raises(UpstreamCircuitOpen) as refused_:
        await upstream.post(QUERY, [])
    assert refused_.value.retry_after == 10
    assert posts(server) == 3


async def test_all_targets_open_raises_circuit_open_with_smallest_retry_after(
    balance: Balance, refused: Refused
) -> None:
    clock = Clock()
    (a, _), (b, _) = refused(), refused()
    upstream = balance([a, b], threshold=1, reset_timeout=10.0, clock=clock)
    with pytest.raises(UpstreamConnectError):
        await upstream.post(QUERY, [])  # a: opens
    clock.now = 4.0
    with pytest.raises(UpstreamConnectError):
        await upstream.post(QUERY, [])  # b: opens
    clock.now = 6.5
    with pytest.raises(UpstreamCircuitOpen) as refused_:
        await upstream.post(QUERY, [], idempotent=True)
    assert refused_.value.retry_after == 4  # a's circuit: ceil(10 - 6.5)
    assert [br.state for br in upstream.breakers] == [BreakerState.OPEN, BreakerState.OPEN]


async def test_a_cancelled_probe_frees_the_half_open_slot(balance: Balance) -> None:
    made, make_client = stubs("a")
    failing = [True]

    def outcome() -> UpstreamResponse:
        if failing[0]:
            raise UpstreamConnectError("refused")
        return UpstreamResponse(200, [], b"a")

    made["a"].outcome = outcome
    clock = Clock()
    upstream = balance(["a"], threshold=1, clock=clock, make_client=make_client)
    with pytest.raises(UpstreamConnectError):
        await upstream.post(QUERY, [])
    clock.now = 10.0
    failing[0] = False
    made["a"].gate = asyncio.Event()
    probe = asyncio.ensure_future(upstream.post(QUERY, []))
    await asyncio.sleep(0)
    assert made["a"].calls == 2
    with pytest.raises(UpstreamCircuitOpen) as refused_:  # the one probe slot is taken
        await upstream.post(QUERY, [])
    assert refused_.value.retry_after == 1
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    made["a"].gate.set()
    assert (await upstream.post(QUERY, [])).status == 200  # a new probe went, and closed the circuit
    assert upstream.breakers[0].state is BreakerState.CLOSED


# Retries -------------------------------------------------------------------------------------------


async def test_idempotent_post_is_retried_on_the_next_target(
    serve: ServeFn, balance: Balance, refused: Refused
) -> None:
    live = await serve(fu.ok)
    dead_url, _ = refused()
    upstream = balance([dead_url, live.url])
    response = await upstream.post(QUERY, [], idempotent=True)  # the first pick is the dead one
    assert response.status == 200
    assert posts(live) == 1
    assert upstream.breakers[0].consecutive_failures == 1


async def test_idempotent_retry_after_close_before_any_byte(serve: ServeFn, balance: Balance) -> None:
    closing, live = await serve(fu.close_silently), await serve(fu.ok)
    upstream = balance([closing.url, live.url])
    assert (await upstream.post(QUERY, [], idempotent=True)).status == 200
    assert (posts(closing), posts(live)) == (1, 1)


@pytest.mark.parametrize("first", ["refused", "close_silently"])
async def test_a_mutation_is_never_retried(first: str, serve: ServeFn, balance: Balance, refused: Refused) -> None:
    second = await serve(fu.ok)
    if first == "refused":
        first_url, _ = refused()
        first_server = None
    else:
        first_server = await serve(fu.close_silently)
        first_url = first_server.url
    upstream = balance([first_url, second.url])
    with pytest.raises(UpstreamConnectError):
        await upstream.post(MUTATION, [])  # idempotent defaults to False
    assert posts(second) == 0  # the failed mutation was not resent there
    assert (await upstream.post(MUTATION, [])).status == 200  # the rotation's turn of the second target
    with pytest.raises(UpstreamConnectError):
        await upstream.post(MUTATION, [], idempotent=False)  # back on the first target
    assert posts(second) == 1  # only the request the rotation routed to it
    assert second.requests[0].body == MUTATION
    if first_server is not None:
        assert posts(first_server) == 2  # each mutation reached the first target exactly once


async def test_mutation_retry_count_at_the_servers(serve: ServeFn, balance: Balance) -> None:
    dropping, other = await serve(fu.close_silently), await serve(fu.ok)
    upstream = balance([dropping.url, other.url])
    with pytest.raises(UpstreamConnectError):
        await upstream.post(MUTATION, [])
    assert posts(dropping) == 1
    assert posts(other) == 0  # the second target records zero requests


async def first_only_then_close(request: fu.Request, ctx: fu.Ctx) -> bool:
    """Answers the first request of the first connection; reads every later one and closes without a byte."""
    if ctx.conn_no == 0 and ctx.req_no == 0:
        ctx.writer.write(fu.response())
        return True
    return False


async def test_a_mutation_dropped_on_a_reused_connection_is_neither_resent_nor_failed_over(
    serve: ServeFn, balance: Balance
) -> None:
    a, b = await serve(first_only_then_close), await serve(fu.ok)
    upstream = balance([a.url, b.url])
    await upstream.post(QUERY, [])  # a: its connection is now pooled
    await upstream.post(QUERY, [])  # b
    with pytest.raises(UpstreamConnectError):
        await upstream.post(MUTATION, [])  # a again: read on the pooled connection, then closed
    assert [r.body for r in a.requests] == [QUERY, MUTATION]  # once, no second connection
    assert a.connections == 1
    assert [r.body for r in b.requests] == [QUERY]  # not failed over


async def test_a_query_dropped_on_a_reused_connection_is_retried_then_failed_over(
    serve: ServeFn, balance: Balance
) -> None:
    a, b = await serve(first_only_then_close), await serve(fu.ok)
    upstream = balance([a.url, b.url])
    await upstream.post(QUERY, [])  # a
    await upstream.post(QUERY, [])  # b
    response = await upstream.post(QUERY, [], idempotent=True)
    assert response.status == 200
    assert (posts(a), a.connections) == (3, 2)  # the pooled connection, then one fresh retry
    assert posts(b) == 2  # then the next target answered


@pytest.mark.parametrize(
    ("handler", "error"),
    [(fu.hang, UpstreamTimeout), (fu.garbage, UpstreamProtocolError), (fu.one_then_partial, UpstreamProtocolError)],
)
async def test_timeouts_and_protocol_errors_are_never_retried(
    handler: fu.Handler, error: type[Exception], serve: ServeFn, balance: Balance
) -> None:
    bad, other = await serve(handler), await serve(fu.ok)
    upstream = balance([bad.url, other.url])
    if handler is fu.one_then_partial:  # the first answer is fine; the second is cut mid-response
        await upstream.post(QUERY, [])
        await upstream.post(QUERY, [])  # to `other`, so that the next pick is `bad` again
    before = posts(other)
    with pytest.raises(error):
        await upstream.post(QUERY, [], idempotent=True, timeout=0.2)
    assert posts(other) == before
    assert upstream.breakers[0].consecutive_failures == 1


async def test_at_most_len_minus_one_retries(balance: Balance, refused: Refused) -> None:
    urls = [refused()[0] for _ in range(3)]
    upstream = balance(urls)
    with pytest.raises(UpstreamConnectError):
        await upstream.post(QUERY, [], idempotent=True)
    assert [b.consecutive_failures for b in upstream.breakers] == [1, 1, 1]  # each tried once


async def test_retry_skips_targets_whose_circuit_is_open(serve: ServeFn, balance: Balance, refused: Refused) -> None:
    (a, _), (b, _) = refused(), refused()
    live = await serve(fu.ok)
    upstream = balance([a, b, live.url], threshold=1)
    for _ in range(3):
        assert (await upstream.post(QUERY, [], idempotent=True)).status == 200
    assert [br.state for br in upstream.breakers] == [BreakerState.OPEN, BreakerState.OPEN, BreakerState.CLOSED]
    assert posts(live) == 3


# One target: the client plus a breaker -------------------------------------------------------------


async def test_one_target_behaves_like_its_client(serve: ServeFn, balance: Balance) -> None:
    server = await serve(fu.echo_path)
    upstream = balance([server.url + "/hasura"], health_interval=5.0)
    assert upstream.health is None  # nothing to steer between
    response = await upstream.post(QUERY, [(b"x-request-id", b"r1")], idempotent=True)
    assert orjson.loads(response.body) == {"method": "POST", "path": "/hasura/v1/graphql"}
    assert server.requests[0].values(b"x-request-id") == [b"r1"]
    response = await upstream.get("/healthz")
    assert orjson.loads(response.body) == {"method": "GET", "path": "/hasura/healthz"}
    with pytest.raises(ValueError):
        await upstream.post(QUERY, [(b"x-evil", b"a\r\nb: c")])  # the client's own checks still apply
    assert upstream.breakers[0].consecutive_failures == 0


async def test_one_target_counts_failures_opens_and_probes_back(balance: Balance) -> None:
    """The one-target fast path keeps the breaker's bookkeeping: failures, circuit open, probe, close."""
    made, make_client = stubs("a")
    script: list[Callable[[], UpstreamResponse]] = []

    def outcome() -> UpstreamResponse:
        return script.pop(0)()

    def refused_now() -> UpstreamResponse:
        raise UpstreamConnectError("refused")

    def saturated() -> UpstreamResponse:
        raise UpstreamPoolTimeout("every connection busy")

    def answer(status: int) -> Callable[[], UpstreamResponse]:
        return lambda: UpstreamResponse(status, [], b"a")

    made["a"].outcome = outcome
    clock = Clock()
    upstream = balance(["a"], threshold=3, reset_timeout=10.0, clock=clock, make_client=make_client)
    breaker = upstream.breakers[0]
    script += [answer(502), refused_now, saturated, answer(200), answer(503), refused_now]
    assert (await upstream.post(QUERY, [])).status == 502  # returned as received, counted
    with pytest.raises(UpstreamConnectError):
        await upstream.post(QUERY, [], idempotent=True)  # nothing else to retry on
    assert breaker.consecutive_failures == 2
    with pytest.raises(UpstreamPoolTimeout):
        await upstream.post(QUERY, [])  # the edge's saturation: no verdict
    assert breaker.consecutive_failures == 2
    assert (await upstream.post(QUERY, [])).status == 200
    assert breaker.consecutive_failures == 0
    assert (await upstream.post(QUERY, [])).status == 503
    with pytest.raises(UpstreamConnectError):
        await upstream.post(QUERY, [])
    assert breaker.consecutive_failures == 2 and state(breaker) is BreakerState.CLOSED
    script += [answer(504)]
    assert (await upstream.post(QUERY, [])).status == 504
    assert state(breaker) is BreakerState.OPEN
    calls = made["a"].calls
    clock.now = 3.5
    with pytest.raises(UpstreamCircuitOpen) as refused_:
        await upstream.post(QUERY, [])
    assert refused_.value.retry_after == 7  # ceil(10 - 3.5)
    assert made["a"].calls == calls and upstream.in_flight == 0
    clock.now = 10.0
    script += [answer(200)]
    assert (await upstream.post(QUERY, [])).status == 200  # the probe
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.transitions == {
        (BreakerState.CLOSED, BreakerState.OPEN): 1,
        (BreakerState.OPEN, BreakerState.HALF_OPEN): 1,
        (BreakerState.HALF_OPEN, BreakerState.CLOSED): 1,
    }


async def test_one_dead_target_raises_the_clients_error(balance: Balance, refused: Refused) -> None:
    upstream = balance([refused()[0]])
    with pytest.raises(UpstreamConnectError):
        await upstream.post(QUERY, [], idempotent=True)


# Readiness -----------------------------------------------------------------------------------------


async def test_get_is_ready_if_any_target_answers(serve: ServeFn, balance: Balance, refused: Refused) -> None:
    async def error_500(request: fu.Request, ctx: fu.Ctx) -> bool:
        ctx.writer.write(fu.response(status=500, body=b"ERROR"))
        return True

    ok, failing = await serve(fu.ok), await serve(error_500)
    dead = refused()[0]
    assert (await balance([dead, failing.url, ok.url]).get("/healthz")).status == 200
    assert (await balance([dead, failing.url]).get("/healthz")).status == 500
    with pytest.raises(UpstreamConnectError):
        await balance([dead, refused()[0]]).get("/healthz")


# Drain ---------------------------------------------------------------------------------------------


async def test_drain_waits_for_an_in_flight_request_then_closes(serve: ServeFn, balance: Balance) -> None:
    release = asyncio.Event()

    async def slow(request: fu.Request, ctx: fu.Ctx) -> bool:
        await release.wait()
        ctx.writer.write(fu.response())
        return True

    server = await serve(slow)
    upstream = balance([server.url])
    in_flight = asyncio.ensure_future(upstream.post(QUERY, []))
    await server.request_seen.wait()
    draining = asyncio.ensure_future(upstream.drain(5.0))
    await asyncio.sleep(0.05)
    assert not draining.done() and upstream.in_flight == 1
    with pytest.raises(UpstreamDraining) as refused_:  # no new request starts
        await upstream.post(QUERY, [])
    assert refused_.value.retry_after == 1
    release.set()
    assert (await in_flight).status == 200
    assert await draining is True
    async with asyncio.timeout(5):  # the drain closed the target's client: its socket too ...
        while server.closed_conns < 1:
            await asyncio.sleep(0.005)
    client = upstream.clients[0]
    assert isinstance(client, LeanUpstream)
    with pytest.raises(UpstreamConnectError, match="closed"):  # ... and it refuses new requests
        await client.post(QUERY, [])
    assert server.connections == 1


async def test_drain_timeout_closes_anyway(serve: ServeFn, balance: Balance) -> None:
    server = await serve(fu.hang)
    upstream = balance([server.url])
    in_flight = asyncio.ensure_future(upstream.post(QUERY, []))
    await server.request_seen.wait()
    assert await upstream.drain(0.1) is False
    with pytest.raises(UpstreamConnectError):  # closed under it
        await in_flight
    assert upstream.in_flight == 0


async def test_drain_waits_after_the_in_flight_count_went_up_and_down(balance: Balance) -> None:
    made, make_client = stubs("a")
    upstream = balance(["a"], make_client=make_client)
    for _ in range(3):  # in flight goes 0 -> 1 -> 0 each time: nothing to signal while not draining
        assert (await upstream.post(QUERY, [])).status == 200
    gate = made["a"].gate = asyncio.Event()
    first = asyncio.ensure_future(upstream.post(QUERY, []))
    second = asyncio.ensure_future(upstream.post(QUERY, []))
    await asyncio.sleep(0)
    assert upstream.in_flight == 2
    draining = asyncio.ensure_future(upstream.drain(5.0))
    again = asyncio.ensure_future(upstream.drain(5.0))  # a second caller waits for the same moment
    await asyncio.sleep(0.01)
    assert not draining.done() and not again.done()
    gate.set()
    assert [r.status for r in await asyncio.gather(first, second)] == [200, 200]
    assert await draining is True and await again is True
    assert made["a"].closed and upstream.in_flight == 0


async def test_drain_with_nothing_in_flight_closes_every_client(balance: Balance) -> None:
    made, make_client = stubs("a", "b")
    upstream = balance(["a", "b"], make_client=make_client, health_interval=0.05)
    await upstream.start()
    assert await upstream.drain(1.0) is True
    assert made["a"].closed and made["b"].closed
    with pytest.raises(UpstreamDraining):
        await upstream.post(QUERY, [])

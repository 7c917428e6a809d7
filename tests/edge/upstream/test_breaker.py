"""CircuitBreaker: the transition table on an injected clock, then driven by the Hasura double's fault switches."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from edge.upstream import UpstreamConnectError, UpstreamPoolTimeout, UpstreamProtocolError, UpstreamTimeout
from edge.upstream.balancer import BalancedUpstream, Target
from edge.upstream.breaker import (
    BreakerState,
    CircuitBreaker,
    UpstreamCircuitOpen,
    is_failure,
    is_failure_status,
)
from edge.upstream.lean import LeanUpstream
from tests.edge.conftest import DOUBLE_ADMIN_SECRET
from tests.hasura_double import HasuraDouble

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def breaker(clock: Clock, **options: int | float) -> CircuitBreaker:
    options.setdefault("failure_threshold", 3)
    options.setdefault("reset_timeout", 10.0)
    return CircuitBreaker(clock=clock, **options)  # type: ignore[arg-type]


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(reset_timeout=0)
    with pytest.raises(ValueError):
        CircuitBreaker(half_open_max_calls=0)


def test_closed_opens_after_threshold_consecutive_failures() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(2):
        assert b.allow()
        b.record_failure()
    assert b.state is CLOSED and b.consecutive_failures == 2
    assert b.retry_after() == 0
    b.record_failure()
    assert b.state is OPEN
    assert b.transitions == {(CLOSED, OPEN): 1}
    assert b.times_opened == 1


def test_a_success_resets_the_consecutive_count() -> None:
    b = breaker(Clock())
    b.record_failure()
    b.record_failure()
    b.record_success()
    b.record_failure()
    b.record_failure()
    assert b.state is CLOSED and b.consecutive_failures == 2


def test_open_refuses_with_retry_after_counting_down() -> None:
    clock = Clock()
    b = breaker(clock, failure_threshold=1, reset_timeout=10.0)
    b.record_failure()
    assert not b.allow() and not b.available()
    assert b.retry_after() == 10
    clock.advance(3.2)
    assert not b.allow()
    assert b.retry_after() == 7  # ceil(6.8)
    clock.advance(6.7)
    assert b.retry_after() == 1  # never 0 while refusing
    assert b.state is OPEN


@pytest.mark.parametrize(
    ("probe_outcome", "state_after", "transitions"),
    [
        ("success", CLOSED, {(CLOSED, OPEN): 1, (OPEN, HALF_OPEN): 1, (HALF_OPEN, CLOSED): 1}),
        ("failure", OPEN, {(CLOSED, OPEN): 1, (OPEN, HALF_OPEN): 1, (HALF_OPEN, OPEN): 1}),
    ],
)
def test_half_open_after_reset_timeout_admits_one_probe(
    probe_outcome: str, state_after: BreakerState, transitions: dict[tuple[BreakerState, BreakerState], int]
) -> None:
    clock = Clock()
    b = breaker(clock, failure_threshold=2, reset_timeout=5.0)
    b.record_failure()
    b.record_failure()
    clock.advance(5.0)
    assert b.state is HALF_OPEN
    assert b.allow()  # the probe
    assert not b.allow()  # only one at a time
    assert b.retry_after() == 1
    if probe_outcome == "success":
        b.record_success()
    else:
        b.record_failure()
    assert b.state is state_after
    assert b.transitions == transitions
    if state_after is OPEN:  # the reset timeout starts again from the probe's failure
        assert b.retry_after() == 5
        assert not b.allow()
        clock.advance(5.0)
        assert b.allow()
    else:
        assert all(b.allow() for _ in range(10))


def test_half_open_max_calls_and_release_of_an_unresolved_probe() -> None:
    clock = Clock()
    b = breaker(clock, failure_threshold=1, reset_timeout=1.0, half_open_max_calls=2)
    b.record_failure()
    clock.advance(1.0)
    assert b.allow() and b.allow()
    assert not b.allow()
    b.release()  # a probe was cancelled: its slot is free again, the state unchanged
    assert b.state is HALF_OPEN
    assert b.allow()


def test_outcomes_while_open_are_ignored() -> None:
    clock = Clock()
    b = breaker(clock, failure_threshold=1)
    b.record_failure()
    b.record_success()  # a late answer to a request admitted before the circuit opened
    b.record_failure()
    assert b.state is OPEN and b.retry_after() == 10
    assert b.transitions == {(CLOSED, OPEN): 1}


def test_a_closed_circuit_answers_without_reading_the_clock() -> None:
    """The per-request calls on a closed circuit (the hot path) never read the clock; opening does."""
    clock = Clock()
    reads = 0

    def counting() -> float:
        nonlocal reads
        reads += 1
        return clock()

    b = CircuitBreaker(failure_threshold=2, reset_timeout=10.0, clock=counting)
    for _ in range(100):
        assert b.available() and b.allow()
        b.record_success()
        b.release()
    b.record_failure()
    assert b.allow()
    b.record_success()  # resets the consecutive count on the fast path too
    assert b.consecutive_failures == 0
    b.record_failure()
    assert b.state is CLOSED and reads == 0
    b.record_failure()  # opens: the time it opened is read once
    assert reads == 1 and b.state is OPEN
    assert not b.available() and not b.allow() and reads > 1  # an open circuit watches the clock
    clock.advance(10.0)
    assert b.allow() and not b.available()  # the half-open probe, and only one
    b.record_success()
    assert b.state is CLOSED and b.consecutive_failures == 0
    assert b.transitions == {(CLOSED, OPEN): 1, (OPEN, HALF_OPEN): 1, (HALF_OPEN, CLOSED): 1}


def test_failure_classification() -> None:
    assert is_failure(UpstreamConnectError("refused"))
    assert is_failure(UpstreamTimeout("slow"))
    assert is_failure(UpstreamProtocolError("garbage"))
    assert not is_failure(UpstreamPoolTimeout("edge saturated"))  # the edge's load, not the upstream's health
    assert not is_failure(ValueError("bad header"))
    assert [s for s in (200, 400, 429, 500, 502, 503, 504) if is_failure_status(s)] == [502, 503, 504]
    err = UpstreamCircuitOpen("open", retry_after=7)
    assert err.retry_after == 7 and str(err) == "open"


# Driven by the Hasura double -----------------------------------------------------------------------

QUERY = orjson.dumps({"query": "{ products { id } }"})
HEADERS = [(b"x-hasura-admin-secret", DOUBLE_ADMIN_SECRET.encode())]


@pytest.fixture
async def guarded(hasura_url: str) -> AsyncIterator[tuple[BalancedUpstream, Clock]]:
    clock = Clock()
    upstream = BalancedUpstream(
        [Target(hasura_url)],
        make_client=lambda url: LeanUpstream(url, connect_timeout=2.0, read_timeout=5.0),
        breaker_factory=lambda: CircuitBreaker(failure_threshold=3, reset_timeout=10.0, clock=clock),
    )
    yield upstream, clock
    await upstream.aclose()


async def test_breaker_follows_the_doubles_fault_switches(
    guarded: tuple[BalancedUpstream, Clock], hasura: HasuraDouble
) -> None:
    upstream, clock = guarded
    (b,) = upstream.breakers
    assert (await upstream.post(QUERY, HEADERS)).status == 200

    hasura.faults.drop = True  # the connection closes before a response byte
    for _ in range(2):
        with pytest.raises(UpstreamConnectError):
            await upstream.post(QUERY, HEADERS)
    hasura.faults.drop = False
    hasura.faults.status = 503  # passed back as received, but a failure for the breaker
    response = await upstream.post(QUERY, HEADERS)
    assert response.status == 503
    assert b.state is OPEN

    seen = len(hasura.graphql_requests())
    with pytest.raises(UpstreamCircuitOpen) as refused:
        await upstream.post(QUERY, HEADERS)
    assert refused.value.retry_after == 10
    assert len(hasura.graphql_requests()) == seen  # refused without touching Hasura

    clock.advance(10.0)
    assert b.state is HALF_OPEN
    hasura.faults.status = 500  # Hasura alive but erroring on this request: not a breaker failure
    assert (await upstream.post(QUERY, HEADERS)).status == 500
    assert b.state is CLOSED
    hasura.faults.status = None
    assert (await upstream.post(QUERY, HEADERS)).status == 200
    assert b.transitions == {(CLOSED, OPEN): 1, (OPEN, HALF_OPEN): 1, (HALF_OPEN, CLOSED): 1}


async def test_failed_probe_reopens_the_circuit(guarded: tuple[BalancedUpstream, Clock], hasura: HasuraDouble) -> None:
    upstream, clock = guarded
    (b,) = upstream.breakers
    hasura.faults.status = 502
    for _ in range(3):
        await upstream.post(QUERY, HEADERS)
    assert b.state is OPEN
    clock.advance(10.0)
    hasura.faults.status = None
    hasura.faults.drop = True
    with pytest.raises(UpstreamConnectError):
        await upstream.post(QUERY, HEADERS)  # the probe
    assert b.state is OPEN
    with pytest.raises(UpstreamCircuitOpen) as refused:
        await upstream.post(QUERY, HEADERS)
    assert refused.value.retry_after == 10


async def test_graphql_errors_with_status_200_are_successes(
    guarded: tuple[BalancedUpstream, Clock], hasura: HasuraDouble
) -> None:
    upstream, _ = guarded
    bad = orjson.dumps({"query": "{ nope { id } }"})
    for _ in range(5):
        response = await upstream.post(bad, HEADERS)
        assert response.status == 200 and b"errors" in response.body
    assert upstream.breakers[0].state is CLOSED

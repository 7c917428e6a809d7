"""GCRA as a pure function: burst, steady rate, batches, exact waits."""

from __future__ import annotations

import math

import pytest

from edge.limits.gcra import EPSILON, gcra, gcra_available, gcra_refund


def run(steps: list[tuple[float, int]], *, rate: float, burst: int) -> list[tuple[bool, int, float]]:
    """Apply ``(now, cost)`` steps from an unknown key; return ``(allowed, remaining, retry_after)`` each."""
    tat: float | None = None
    out = []
    for now, cost in steps:
        result = gcra(tat, now=now, rate=rate, burst=burst, cost=cost)
        if result.allowed:
            tat = result.new_tat
        out.append((result.allowed, result.remaining, result.retry_after))
    return out


@pytest.mark.parametrize(
    ("rate", "burst", "steps", "expected"),
    [
        pytest.param(
            1.0, 3, [(100, 1), (100, 1), (100, 1), (100, 1)],
            [(True, 2, 0.0), (True, 1, 0.0), (True, 0, 0.0), (False, 0, 1.0)],
            id="burst-then-refused-with-exact-wait",
        ),
        pytest.param(
            2.0, 2, [(10, 1), (10, 1), (10.5, 1), (10.5, 1), (11.0, 1), (11.25, 1)],
            [(True, 1, 0.0), (True, 0, 0.0), (True, 0, 0.0), (False, 0, 0.5), (True, 0, 0.0), (False, 0, 0.25)],
            id="steady-rate-after-burst",
        ),
        pytest.param(
            1.0, 5, [(0, 6), (0, 5), (0, 1)],
            [(False, 5, math.inf), (True, 0, 0.0), (False, 0, 1.0)],
            id="cost-above-burst-never-fits-and-consumes-nothing",
        ),
        pytest.param(
            1.0, 4, [(0, 3), (0, 2), (1, 2)],
            [(True, 1, 0.0), (False, 1, 1.0), (True, 0, 0.0)],
            id="batch-all-or-nothing",
        ),
        pytest.param(
            10.0, 1, [(0, 1), (0.05, 1), (0.1, 1)],
            [(True, 0, 0.0), (False, 0, pytest.approx(0.05)), (True, 0, 0.0)],
            id="fractional-interval",
        ),
        pytest.param(
            1.0, 3, [(0, 3), (1000, 1)],
            [(True, 0, 0.0), (True, 2, 0.0)],
            id="idle-key-is-full-again",
        ),
        pytest.param(
            3.0, 3, [(1_700_000_000, 1), (1_700_000_000, 1), (1_700_000_000, 1), (1_700_000_000, 1)],
            [(True, 2, 0.0), (True, 1, 0.0), (True, 0, 0.0), (False, 0, pytest.approx(1 / 3))],
            id="thirds-at-real-epoch-without-float-noise",
        ),
    ],
)  # fmt: skip
def test_gcra_table(
    rate: float, burst: int, steps: list[tuple[float, int]], expected: list[tuple[bool, int, float]]
) -> None:
    assert run(steps, rate=rate, burst=burst) == expected


def test_refused_step_returns_the_state_unchanged() -> None:
    first = gcra(None, now=0.0, rate=1.0, burst=1)
    refused = gcra(first.new_tat, now=0.2, rate=1.0, burst=1)
    assert not refused.allowed
    assert refused.new_tat == first.new_tat == 1.0
    assert refused.reset_after == pytest.approx(0.8)
    assert refused.retry_after == pytest.approx(0.8)


def test_reset_after_is_time_until_full() -> None:
    result = gcra(None, now=0.0, rate=2.0, burst=4, cost=3)
    assert (result.allowed, result.remaining, result.reset_after) == (True, 1, 1.5)


def test_available_and_refund_never_exceed_full() -> None:
    tat = gcra(None, now=0.0, rate=10.0, burst=100, cost=60).new_tat
    assert gcra_available(tat, now=0.0, rate=10.0, burst=100) == pytest.approx(40.0)
    assert gcra_available(tat, now=2.0, rate=10.0, burst=100) == pytest.approx(60.0)
    refunded = gcra_refund(tat, now=0.0, rate=10.0, cost=20)
    assert gcra_available(refunded, now=0.0, rate=10.0, burst=100) == pytest.approx(60.0)
    assert gcra_refund(tat, now=0.0, rate=10.0, cost=1000) is None
    assert gcra_refund(None, now=0.0, rate=10.0, cost=5) is None
    assert gcra_available(None, now=0.0, rate=10.0, burst=100) == 100.0


@pytest.mark.parametrize(
    ("rate", "burst", "refused_at", "remaining", "retry_after"),
    [
        pytest.param(10.0, 10, 0.35, 3, 0.65, id="10-per-s"),
        pytest.param(100.0, 50, 0.2, 20, 0.3, id="100-per-s"),
        pytest.param(0.5, 4, 5.0, 2, 3.0, id="1-per-2s"),
    ],
)
def test_refused_request_reports_what_has_refilled_at_any_rate(
    rate: float, burst: int, refused_at: float, remaining: int, retry_after: float
) -> None:
    """A 429's remaining counts the operations refilled since the bucket was emptied, whatever the rate."""
    emptied = gcra(None, now=0.0, rate=rate, burst=burst, cost=burst)
    assert (emptied.allowed, emptied.remaining) == (True, 0)
    refused = gcra(emptied.new_tat, now=refused_at, rate=rate, burst=burst, cost=burst)
    assert not refused.allowed
    assert refused.remaining == remaining
    assert refused.retry_after == pytest.approx(retry_after)
    assert refused.reset_after == pytest.approx(burst / rate - refused_at)
    # What it reports is what it then admits: `remaining` operations fit, one more does not.
    assert gcra(emptied.new_tat, now=refused_at, rate=rate, burst=burst, cost=remaining).allowed
    assert not gcra(emptied.new_tat, now=refused_at, rate=rate, burst=burst, cost=remaining + 1).allowed


def test_a_request_over_capacity_by_exactly_the_slack_is_allowed() -> None:
    """EPSILON is slack for float noise: a backlog of capacity + EPSILON still fits, a bit more does not."""
    assert gcra(EPSILON, now=0.0, rate=1.0, burst=1).allowed
    assert not gcra(2 * EPSILON, now=0.0, rate=1.0, burst=1).allowed


def test_available_is_never_negative() -> None:
    far_behind = gcra(None, now=0.0, rate=1.0, burst=5, cost=5).new_tat + 100.0
    assert gcra_available(far_behind, now=0.0, rate=1.0, burst=5) == 0.0
    assert gcra_available(5.0, now=0.0, rate=1.0, burst=5) == 0.0
    assert gcra_available(4.5, now=0.0, rate=1.0, burst=5) == pytest.approx(0.5)


def test_refund_back_to_exactly_full_reports_full() -> None:
    """A refund that brings the TAT back to now leaves nothing to store: None, as for a full key."""
    tat = gcra(None, now=0.0, rate=2.0, burst=10, cost=4).new_tat
    assert tat == 2.0
    assert gcra_refund(tat, now=0.0, rate=2.0, cost=4) is None
    assert gcra_refund(tat, now=0.0, rate=2.0, cost=3) == pytest.approx(0.5)

"""One behaviour suite, run against the in-memory stores and the Redis stores (``stores`` fixture)."""

from __future__ import annotations

import math

import pytest

from edge.limits.base import admit_in_turn
from edge.limits.calendar import Period, period_window
from edge.limits.decision import Admission
from edge.plans import CostBudget, Plan
from tests.edge.limits.conftest import Stores, at


def plan(rate: tuple[float, int] | None = None, quota: tuple[int, str, str] | None = None) -> Plan:
    spec: dict[str, object] = {}
    if rate is not None:
        spec["rate"] = {"requests_per_second": rate[0], "burst": rate[1]}
    if quota is not None:
        spec["quota"] = {"limit": quota[0], "period": quota[1], "offset": quota[2]}
    return Plan.model_validate(spec)


async def outcomes(stores: Stores, p: Plan, n: int, *, key: str = "k", name: str = "free") -> list[bool]:
    return [(await stores.limiter.hit(key, name, p)).allowed for _ in range(n)]


async def test_burst_then_steady_rate(stores: Stores) -> None:
    p = plan(rate=(2.0, 4))
    assert await outcomes(stores, p, 5) == [True, True, True, True, False]
    refused = await stores.limiter.hit("k", "free", p)
    assert (refused.code, refused.limit, refused.remaining, refused.retry_after) == ("rate-limited", 4, 0, 1)
    assert refused.headers()[-1] == (b"retry-after", b"1")
    for _ in range(6):
        stores.clock.advance(0.5)
        assert await outcomes(stores, p, 2) == [True, False]
    stores.clock.advance(10)
    assert await outcomes(stores, p, 5) == [True, True, True, True, False]


async def test_quota_rolls_over_at_the_period_boundary(stores: Stores) -> None:
    p = plan(quota=(3, "DAY", "+02:00"))
    stores.clock.now = at("2024-03-10T21:59:59")
    assert await outcomes(stores, p, 3) == [True, True, True]
    refused = await stores.limiter.hit("k", "free", p)
    assert (refused.code, refused.remaining, refused.reset_seconds, refused.retry_after) == ("quota-exceeded", 0, 1, 1)
    stores.clock.now = at("2024-03-10T22:00:00")
    fresh = await stores.limiter.hit("k", "free", p)
    assert (fresh.allowed, fresh.limit, fresh.remaining, fresh.reset_seconds) == (True, 3, 2, 86_400)


async def test_monthly_quota_rolls_over_from_december_to_january(stores: Stores) -> None:
    p = plan(quota=(2, "MONTH", "-05:00"))
    stores.clock.now = at("2025-01-01T04:59:00")
    assert await outcomes(stores, p, 3) == [True, True, False]
    stores.clock.now = at("2025-01-01T05:00:00")
    decision = await stores.limiter.hit("k", "free", p)
    assert (decision.allowed, decision.reset_seconds) == (True, 31 * 86_400)


@pytest.mark.parametrize(
    ("now", "period", "offset"),
    [
        ("2024-02-29T23:00:00", "MONTH", "+02:00"),
        ("2023-02-28T23:59:59", "MONTH", "+00:00"),
        ("2024-12-31T22:00:00", "MONTH", "+02:00"),
        ("2024-03-11T07:59:59", "WEEK", "-08:00"),
        ("2024-03-10T22:00:00", "DAY", "+02:00"),
        ("1999-12-31T23:30:00", "MONTH", "+14:00"),
    ],
)
async def test_both_stores_agree_on_calendar_windows(stores: Stores, now: str, period: Period, offset: str) -> None:
    p = plan(quota=(1000, period, offset))
    stores.clock.now = at(now) + 0.25
    decision = await stores.limiter.hit("k", "free", p)
    assert p.quota is not None
    _, end = period_window(stores.clock.now, period, p.quota.offset_seconds)
    assert decision.reset_seconds == math.ceil(end - stores.clock.now)


async def test_batched_operations_count_separately(stores: Stores) -> None:
    p = plan(rate=(1.0, 5), quota=(10, "DAY", "+00:00"))
    first = await stores.limiter.hit("k", "free", p, operations=5)
    assert (first.allowed, first.limit, first.remaining) == (True, 5, 0)  # the rate is closest to refusing
    assert (await stores.limiter.hit("k", "free", p)).code == "rate-limited"
    stores.clock.advance(5)
    second = await stores.limiter.hit("k", "free", p, operations=5)
    assert (second.allowed, second.limit, second.remaining) == (True, 10, 0)  # tie at 0: the quota resets later
    stores.clock.advance(5)
    assert (await stores.limiter.hit("k", "free", p)).code == "quota-exceeded"


async def test_a_batch_larger_than_the_burst_is_refused_without_retry_after_and_consumes_nothing(
    stores: Stores,
) -> None:
    p = plan(rate=(1.0, 3), quota=(100, "DAY", "+00:00"))
    too_big = await stores.limiter.hit("k", "free", p, operations=4)
    assert (too_big.allowed, too_big.code, too_big.retry_after) == (False, "rate-limited", None)
    assert (await stores.limiter.hit("k", "free", p, operations=3)).allowed


async def test_requests_refused_by_the_rate_consume_no_quota(stores: Stores) -> None:
    p = plan(rate=(1.0, 2), quota=(3, "DAY", "+00:00"))
    stores.clock.now = at("2024-03-10T12:00:00")
    assert await outcomes(stores, p, 7) == [True, True, False, False, False, False, False]
    stores.clock.advance(10)
    assert await outcomes(stores, p, 2) == [True, False]
    assert (await stores.limiter.hit("k", "free", p)).code == "quota-exceeded"


async def test_requests_refused_by_the_quota_consume_no_rate(stores: Stores) -> None:
    p = plan(rate=(0.0001, 3), quota=(2, "DAY", "+00:00"))  # one token per ~2.8 hours
    stores.clock.now = at("2024-03-10T23:59:50")
    assert await outcomes(stores, p, 7) == [True, True, False, False, False, False, False]
    stores.clock.now = at("2024-03-11T00:00:00")
    assert await outcomes(stores, p, 2) == [True, False]
    assert (await stores.limiter.hit("k", "free", p)).code == "rate-limited"


async def test_keys_and_plans_are_independent(stores: Stores) -> None:
    p = plan(rate=(1.0, 1))
    assert await outcomes(stores, p, 2, key="a") == [True, False]
    assert await outcomes(stores, p, 2, key="b") == [True, False]
    assert await outcomes(stores, p, 2, key="a", name="pro") == [True, False]
    assert await outcomes(stores, p, 1, key="a", name="free:x") == [True]  # no collision on separators


async def test_a_plan_without_rate_or_quota_is_always_allowed(stores: Stores) -> None:
    decision = await stores.limiter.hit("k", "free", Plan())
    assert (decision.allowed, decision.headers()) == (True, [])


async def test_budget_charge_refuses_without_consuming_and_restores_over_time(stores: Stores) -> None:
    budget = CostBudget(maximum=100, restore_rate=10)
    first = await stores.budgets.charge("k", "free", budget, 60)
    assert (first.allowed, first.retry_after) == (True, None)
    assert first.available == pytest.approx(40.0)
    refused = await stores.budgets.charge("k", "free", budget, 60)
    assert (refused.allowed, refused.retry_after) == (False, 2)
    assert refused.available == pytest.approx(40.0)  # a refusal takes nothing
    stores.clock.advance(2)
    assert (await stores.budgets.charge("k", "free", budget, 60)).available == pytest.approx(0.0, abs=1e-6)


async def test_budget_refund_never_exceeds_the_maximum(stores: Stores) -> None:
    budget = CostBudget(maximum=100, restore_rate=1)
    assert (await stores.budgets.charge("k", "free", budget, 100)).allowed
    await stores.budgets.refund("k", "free", budget, 30)
    assert (await stores.budgets.charge("k", "free", budget, 30)).allowed
    assert not (await stores.budgets.charge("k", "free", budget, 1)).allowed
    await stores.budgets.refund("k", "free", budget, 10_000)
    assert (await stores.budgets.charge("k", "free", budget, 0)).available == 100.0
    assert (await stores.budgets.charge("k", "free", budget, 100)).allowed
    assert not (await stores.budgets.charge("k", "free", budget, 1)).allowed


async def test_budget_request_above_the_maximum_can_never_succeed(stores: Stores) -> None:
    budget = CostBudget(maximum=100, restore_rate=1)
    decision = await stores.budgets.charge("k", "free", budget, 101)
    assert (decision.allowed, decision.retry_after, decision.maximum, decision.requested) == (False, None, 100, 101)
    assert (await stores.budgets.charge("k", "free", budget, 100)).allowed


async def test_budgets_are_namespaced_by_plan(stores: Stores) -> None:
    budget = CostBudget(maximum=10, restore_rate=0.01)
    assert (await stores.budgets.charge("k", "free", budget, 10)).allowed
    assert not (await stores.budgets.charge("k", "free", budget, 1)).allowed
    assert (await stores.budgets.charge("k", "pro", budget, 10)).allowed


async def test_a_batch_larger_than_the_quota_is_refused_without_retry_after(stores: Stores) -> None:
    p = plan(quota=(3, "WEEK", "+00:00"))
    decision = await stores.limiter.hit("k", "free", p, operations=4)
    assert (decision.allowed, decision.code, decision.retry_after, decision.remaining) == (
        False,
        "quota-exceeded",
        None,
        3,
    )
    assert (await stores.limiter.hit("k", "free", p, operations=3)).allowed


async def test_negative_counts_are_programming_errors(stores: Stores) -> None:
    budget = CostBudget(maximum=10, restore_rate=1)
    with pytest.raises(ValueError, match="operations"):
        await stores.limiter.hit("k", "free", plan(rate=(1.0, 1)), operations=-1)
    with pytest.raises(ValueError, match="points"):
        await stores.budgets.charge("k", "free", budget, -5)
    with pytest.raises(ValueError, match="points"):
        await stores.budgets.refund("k", "free", budget, -5)


def metered(rate: tuple[float, int], quota: tuple[int, str], budget: tuple[int, float]) -> Plan:
    return Plan.model_validate(
        {
            "rate": {"requests_per_second": rate[0], "burst": rate[1]},
            "quota": {"limit": quota[0], "period": quota[1], "offset": "+00:00"},
            "cost_budget": {"maximum": budget[0], "restore_rate": budget[1]},
        }
    )


def summary(admission: Admission) -> tuple[object, ...]:
    limit, budget = admission.limit, admission.budget
    charged = None if budget is None else (budget.allowed, round(budget.available), budget.retry_after)
    return limit.code, limit.limit, limit.remaining, charged


async def test_admit_decides_as_hit_then_charge_and_a_budget_refusal_has_used_its_rate_and_quota(
    stores: Stores,
) -> None:
    """Key "one" through ``admit`` (one script on Redis), key "two" through the two calls in turn: the same
    decisions at every step, and the ones written down here."""
    p = metered(rate=(1.0, 3), quota=(5, "DAY"), budget=(30, 1.0))
    stores.clock.now = at("2024-03-10T12:00:00")
    steps = [  # (seconds to wait first, operations, points)
        (0, 1, 10),
        (0, 1, 25),  # the budget refuses; the rate and the quota count it
        (0, 1, 0),
        (0, 1, 1),  # the rate refuses: nothing charged
        (5, 1, 25),
        (0, 2, 0),  # the quota refuses: nothing charged
        (0, 1, 1),  # the budget refuses again, the quota's last unit used
        (0, 1, 0),
    ]
    seen = []
    for wait, operations, points in steps:
        stores.clock.advance(wait)
        combined = await stores.limiter.admit(
            "one", "free", p, operations=operations, points=points, budgets=stores.budgets
        )
        in_turn = await admit_in_turn(
            stores.limiter, stores.budgets, "two", "free", p, operations=operations, points=points
        )
        assert combined == in_turn
        seen.append(summary(combined))
    assert seen == [
        (None, 3, 2, (True, 20, None)),
        (None, 3, 1, (False, 20, 5)),
        (None, 3, 0, (True, 20, None)),
        ("rate-limited", 3, 0, None),
        (None, 5, 1, (True, 0, None)),
        ("quota-exceeded", 5, 1, None),
        (None, 5, 0, (False, 0, 1)),
        ("quota-exceeded", 5, 0, None),
    ]


async def test_admit_charges_the_budget_the_budgets_refund_and_charge(stores: Stores) -> None:
    p = metered(rate=(100.0, 100), quota=(100, "MONTH"), budget=(30, 0.001))
    assert summary(await stores.limiter.admit("k", "free", p, operations=1, points=30, budgets=stores.budgets)) == (
        None,
        100,
        99,
        (True, 0, None),
    )
    assert p.cost_budget is not None
    assert not (await stores.budgets.charge("k", "free", p.cost_budget, 1)).allowed
    await stores.budgets.refund("k", "free", p.cost_budget, 20)
    assert round((await stores.budgets.charge("k", "free", p.cost_budget, 5)).available) == 15
    refused = await stores.limiter.admit("k", "free", p, operations=1, points=16, budgets=stores.budgets)
    assert summary(refused)[3] == (False, 15, 1000)
    assert (await stores.limiter.admit("k", "pro", p, operations=1, points=30, budgets=stores.budgets)).budget


async def test_admit_on_plans_with_only_limits_or_only_a_budget(stores: Stores) -> None:
    limits_only = plan(rate=(1.0, 2))
    budget_only = Plan.model_validate({"cost_budget": {"maximum": 10, "restore_rate": 0.001}})
    admit = stores.limiter.admit
    assert summary(await admit("k", "free", limits_only, operations=1, points=50, budgets=stores.budgets)) == (
        None,
        2,
        1,
        None,
    )
    first = await admit("k", "free", budget_only, operations=1, points=6, budgets=stores.budgets)
    assert (first.limit.headers(), summary(first)[3]) == ([], (True, 4, None))
    assert summary(await admit("k", "free", budget_only, operations=9, points=6, budgets=stores.budgets))[3] == (
        False,
        4,
        2000,
    )


async def test_admit_refuses_negative_counts(stores: Stores) -> None:
    p = metered(rate=(1.0, 3), quota=(5, "DAY"), budget=(30, 1.0))
    with pytest.raises(ValueError, match="operations"):
        await stores.limiter.admit("k", "free", p, operations=-1, points=1, budgets=stores.budgets)
    with pytest.raises(ValueError, match="points"):
        await stores.limiter.admit("k", "free", p, operations=1, points=-1, budgets=stores.budgets)


async def test_a_refund_not_waited_for_is_applied_by_the_time_drain_returns(stores: Stores) -> None:
    budget = CostBudget(maximum=100, restore_rate=1)
    assert (await stores.budgets.charge("k", "free", budget, 100)).allowed
    stores.budgets.refund_soon("k", "free", budget, 30)
    stores.budgets.refund_soon("other", "free", budget, 30)  # a key with a full budget: nothing to give back
    await stores.budgets.drain()
    assert (await stores.budgets.charge("k", "free", budget, 30)).allowed
    assert not (await stores.budgets.charge("k", "free", budget, 1)).allowed
    stores.budgets.refund_soon("k", "free", budget, 10_000)
    await stores.budgets.drain()
    assert (await stores.budgets.charge("k", "free", budget, 0)).available == 100.0
    assert (await stores.budgets.charge("other", "free", budget, 0)).available == 100.0
    with pytest.raises(ValueError):
        stores.budgets.refund_soon("k", "free", budget, -5)

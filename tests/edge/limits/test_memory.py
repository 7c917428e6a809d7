"""In-memory stores: bounded memory under floods of keys, idle entries dropped, LRU keeps active keys."""

from __future__ import annotations

import random

from edge.limits import InMemoryCostBudgets, InMemoryLimiter
from edge.plans import CostBudget, Plan
from tests.edge.limits.conftest import FakeClock

PLAN = Plan.model_validate(
    {"rate": {"requests_per_second": 0.001, "burst": 1}, "quota": {"limit": 1000, "period": "DAY"}}
)


async def test_200k_random_keys_stay_under_the_key_cap_and_an_active_key_keeps_its_state() -> None:
    clock = FakeClock()
    limiter = InMemoryLimiter(clock=clock)  # default cap: 100,000 keys
    rng = random.Random(7)
    assert (await limiter.hit("attacker", "free", PLAN)).allowed
    for i in range(200_000):
        await limiter.hit(f"{rng.getrandbits(64):x}", "free", PLAN)
        if i % 1000 == 0:
            assert not (await limiter.hit("attacker", "free", PLAN)).allowed  # never reset by eviction
        clock.advance(0.000_01)
    assert len(limiter) <= 100_000


async def test_idle_entries_are_swept_when_their_state_is_full_again() -> None:
    clock = FakeClock(1_700_006_400.0)  # a DAY boundary
    limiter = InMemoryLimiter(clock=clock, sweep_interval=60)
    rate_only = Plan.model_validate({"rate": {"requests_per_second": 1, "burst": 5}})
    for key in range(100):
        await limiter.hit(str(key), "free", rate_only)
        await limiter.hit(str(key), "quota", PLAN)
    assert len(limiter) == 200
    clock.advance(3600)
    assert limiter.sweep() == 100  # rate-only entries are full again; quota counts live until the day ends
    clock.advance(86_400)
    await limiter.hit("trigger", "free", rate_only)  # the periodic sweep runs from hit()
    assert len(limiter) == 1


async def test_refused_requests_from_unknown_keys_store_nothing() -> None:
    limiter = InMemoryLimiter(clock=FakeClock())
    batch_too_big = Plan.model_validate({"rate": {"requests_per_second": 1, "burst": 2}})
    for key in range(1000):
        assert not (await limiter.hit(str(key), "free", batch_too_big, operations=3)).allowed
    assert len(limiter) == 0


async def test_cost_budgets_are_bounded_too() -> None:
    clock = FakeClock()
    budgets = InMemoryCostBudgets(clock=clock, max_keys=1000)
    budget = CostBudget(maximum=10, restore_rate=0.001)
    for key in range(5000):
        await budgets.charge(str(key), "free", budget, 5)
    assert len(budgets) <= 1000
    clock.advance(1_000_000)
    stored = len(budgets)
    assert budgets.sweep() == stored
    assert len(budgets) == 0

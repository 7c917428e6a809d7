"""Usage-plan enforcement: request rate with burst, calendar quota and cost budgets, per key and plan.

- ``gcra.py``, ``calendar.py``: the pure steps (GCRA; calendar periods with a UTC offset), time as ``now``.
- ``decision.py``: ``LimitDecision`` / ``BudgetDecision`` and the ``RateLimit-*`` response fields.
- ``base.py``: the ``Limiter`` and ``CostBudgets`` protocols the pipeline calls.
- ``memory.py``: one process (single replica, tests); ``redis_store.py``: shared by every replica.

``make_limiter(client)`` / ``make_cost_budgets(client)`` pick Redis when given a client (a ``redis.asyncio``
one of any topology, or ``resp_client.LeanRedis``), else the in-memory implementation. ``clock`` feeds the
in-memory stores; the Redis stores read Redis ``TIME`` unless a clock is given (tests only: see
``redis_store.py`` on clock skew).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from edge.limits.base import CostBudgets, Limiter
from edge.limits.decision import (
    LIMITER_UNAVAILABLE,
    QUOTA_EXCEEDED,
    RATE_LIMITED,
    BudgetDecision,
    LimitDecision,
)
from edge.limits.memory import InMemoryCostBudgets, InMemoryLimiter
from edge.limits.redis_store import FailureMode, RedisCostBudgets, RedisLimiter, StoreClient, redis_client_from_url

__all__ = [
    "LIMITER_UNAVAILABLE",
    "QUOTA_EXCEEDED",
    "RATE_LIMITED",
    "BudgetDecision",
    "CostBudgets",
    "FailureMode",
    "InMemoryCostBudgets",
    "InMemoryLimiter",
    "LimitDecision",
    "Limiter",
    "RedisCostBudgets",
    "RedisLimiter",
    "make_cost_budgets",
    "make_limiter",
    "redis_client_from_url",
]


def make_limiter(
    redis_client: StoreClient | None,
    *,
    failure_mode: FailureMode = "open",
    clock: Callable[[], float] | None = None,
) -> Limiter:
    """A ``RedisLimiter`` on ``redis_client``, or an ``InMemoryLimiter`` (``clock`` default ``time.time``)."""
    if redis_client is not None:
        return RedisLimiter(redis_client, failure_mode=failure_mode, clock=clock)
    return InMemoryLimiter(clock=clock or time.time)


def make_cost_budgets(
    redis_client: StoreClient | None,
    *,
    failure_mode: FailureMode = "open",
    clock: Callable[[], float] | None = None,
) -> CostBudgets:
    """A ``RedisCostBudgets`` on ``redis_client``, or an ``InMemoryCostBudgets``."""
    if redis_client is not None:
        return RedisCostBudgets(redis_client, failure_mode=failure_mode, clock=clock)
    return InMemoryCostBudgets(clock=clock or time.time)

"""The two store-backed limiter interfaces the edge's pipeline calls.

Keys are namespaced by plan name: the same key under another plan has its own, fresh state, so moving
an API key to a new plan starts it with a full burst and an unused quota. Callers pass an identifier
that is not a secret (an API key's id or hash, a user id, a client address): Redis stores it as-is.

No method raises for store failures: they become decisions (see ``redis_store.py``). Negative
``operations`` or ``points`` are programming errors and raise ``ValueError``; zero is allowed and
consumes nothing.
"""

from __future__ import annotations

from typing import Protocol

from edge.limits.decision import BudgetDecision, LimitDecision
from edge.plans import CostBudget, Plan

__all__ = ["CostBudgets", "Limiter"]


class Limiter(Protocol):
    async def hit(self, key: str, plan_name: str, plan: Plan, *, operations: int = 1) -> LimitDecision:
        """Count ``operations`` against the plan's rate/burst AND quota in one atomic step.

        All or nothing: a request refused by either limit consumes nothing from the other. A plan with
        neither a rate nor a quota is allowed at once, without touching the store.
        """
        ...


class CostBudgets(Protocol):
    async def charge(self, key: str, plan_name: str, budget: CostBudget, points: int) -> BudgetDecision:
        """Take ``points`` from the key's budget (refilling at ``restore_rate``/s up to ``maximum``), or refuse."""
        ...

    async def refund(self, key: str, plan_name: str, budget: CostBudget, points: int) -> None:
        """Give back ``points`` (e.g. the estimate exceeded the actual cost); never above ``maximum``."""
        ...

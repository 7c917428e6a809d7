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

from edge.limits.decision import Admission, BudgetDecision, LimitDecision
from edge.plans import CostBudget, Plan

__all__ = ["CostBudgets", "Limiter", "admit_in_turn"]


class Limiter(Protocol):
    async def hit(self, key: str, plan_name: str, plan: Plan, *, operations: int = 1) -> LimitDecision:
        """Count ``operations`` against the plan's rate/burst AND quota in one atomic step.

        All or nothing: a request refused by either limit consumes nothing from the other. A plan with
        neither a rate nor a quota is allowed at once, without touching the store.
        """
        ...

    async def admit(
        self, key: str, plan_name: str, plan: Plan, *, operations: int, points: int, budgets: CostBudgets
    ) -> Admission:
        """What the limit stage asks once per request: ``hit`` with ``operations``, then, only if it
        allowed and the plan has a cost budget, ``budgets.charge`` with ``points``, as one atomic step.

        The same decisions as the two calls in turn (``admit_in_turn``); a request the budget refuses
        has consumed its rate and quota units, one the rate or quota refuses is charged nothing. A
        Redis limiter makes it one round trip when ``budgets`` keeps its state in the same Redis.
        """
        ...


class CostBudgets(Protocol):
    async def charge(self, key: str, plan_name: str, budget: CostBudget, points: int) -> BudgetDecision:
        """Take ``points`` from the key's budget (refilling at ``restore_rate``/s up to ``maximum``), or refuse."""
        ...

    async def refund(self, key: str, plan_name: str, budget: CostBudget, points: int) -> None:
        """Give back ``points`` (e.g. the estimate exceeded the actual cost); never above ``maximum``."""
        ...

    def refund_soon(self, key: str, plan_name: str, budget: CostBudget, points: int) -> None:
        """``refund`` without the caller waiting for the store: what the response stage calls, so that no
        request waits for a second Redis round trip. A store that sends it to Redis counts a failure as
        ``refund`` would and waits for the refunds in flight in ``drain()``, before its client closes."""
        ...

    async def drain(self) -> None:
        """Return once every ``refund_soon`` so far has been applied or has failed."""
        ...


async def admit_in_turn(
    limiter: Limiter, budgets: CostBudgets, key: str, plan_name: str, plan: Plan, *, operations: int, points: int
) -> Admission:
    """``Limiter.admit`` as its two calls: ``limiter.hit``, then ``budgets.charge`` if it allowed."""
    decision = await limiter.hit(key, plan_name, plan, operations=operations)
    budget = plan.cost_budget
    if budget is None or not decision.allowed:
        return Admission(decision, None)
    return Admission(decision, await budgets.charge(key, plan_name, budget, points))

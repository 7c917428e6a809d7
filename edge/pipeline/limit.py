"""Stage 5: the plan's rate, burst, quota and cost budget, on shared state.

One limiter call per request (``Limiter.admit``) counts every operation of a batch (a batch of 5
uses 5 units of rate and quota) and, for plans with a cost budget, charges the estimated cost up
front, only when the rate and quota allowed (a request the budget refuses has used its units); on
Redis that is one round trip. The difference to the actual cost is refunded when Hasura's answer is
in (``finish_response``).
Refusals: 429 ``rate-limited`` / ``quota-exceeded`` / ``cost-budget-exceeded`` with
``Retry-After`` and ``RateLimit-*``; the ``RateLimit-*`` fields ride on successful responses
too. A store that is down degrades per ``EDGE_LIMITER_FAILURE_MODE`` (open: allow and count;
closed: 503 ``limiter-unavailable``), never a 500.
"""

from __future__ import annotations

from edge.context import RequestContext
from edge.errors import CostBudgetExceeded, LimiterUnavailable, QuotaExceeded, RateLimited, TooManyRequests
from edge.limits.base import CostBudgets, Limiter

__all__ = ["Limit"]

_REFUSALS: dict[str | None, type[TooManyRequests]] = {"rate-limited": RateLimited, "quota-exceeded": QuotaExceeded}


def _latin1(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]


class Limit:
    """Fills ``ctx.limit_headers`` and ``ctx.budget``; rejects 429 and (fail-closed) 503."""

    def __init__(self, *, limiter: Limiter, budgets: CostBudgets) -> None:
        self.limiter = limiter
        self.budgets = budgets

    async def __call__(self, ctx: RequestContext) -> None:
        plan = ctx.plan
        if plan is None:  # a pipeline ordering bug, never a client error
            raise RuntimeError("limit ran before identify_plan")
        budget = plan.cost_budget
        if budget is None and plan.rate is None and plan.quota is None:
            return
        admission = await self.limiter.admit(
            ctx.limit_key,
            ctx.plan_name,
            plan,
            operations=len(ctx.operations),
            points=ctx.estimated_cost,
            budgets=self.budgets,
        )
        decision = admission.limit
        if plan.rate is not None or plan.quota is not None:
            headers = decision.headers()
            if not decision.allowed:
                if decision.code == "limiter-unavailable":
                    raise LimiterUnavailable(headers=(("Retry-After", "1"),))
                refusal = _REFUSALS.get(decision.code, TooManyRequests)
                raise refusal(headers=_latin1(headers))
            ctx.limit_headers = headers
        charged = admission.budget
        if charged is not None:
            if not charged.allowed:
                retry = () if charged.retry_after is None else (("Retry-After", str(charged.retry_after)),)
                raise CostBudgetExceeded(
                    f"This operation costs {ctx.estimated_cost} points; {int(charged.available)} of "
                    f"{charged.maximum} are available (restoring {charged.restore_rate:g}/s)",
                    headers=retry,
                )
            ctx.budget = charged

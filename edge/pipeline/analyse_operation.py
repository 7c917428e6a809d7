"""Stage 4: analyse each operation and apply the plan's GraphQL limits before Hasura sees it.

Per operation (each element of a batch): a cached analysis (depth with Hasura's semantics,
aliases, root fields, directives, introspection, a cost plan), a cost estimate for this role
and these variables, then the plan's policies. The first violation that is not warn-only
rejects the whole request with 400 and its code; warn-only violations are logged (``limit_warn_only``)
and counted (``on_warn_only(limit, plan)``: ``edge_limit_warn_only_total``), once per limit exceeded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from edge.context import RequestContext
from edge.graphql.analysis import Analyser, OperationAnalysis
from edge.graphql.cost import CostModel
from edge.graphql.persisted import OperationNotSafelisted, PersistedQueries
from edge.graphql.policy import Violation, check, check_batch, first_rejection
from edge.plans import GraphQLLimits, with_introspection

__all__ = ["AnalyseOperation", "CostModelHolder"]

log = logging.getLogger("edge.analysis")
_STATIC_MEMO_SIZE: Final = 4096


class CostModelHolder:
    """The current cost model; replaced when Hasura's schema is (re)introspected."""

    def __init__(self, model: CostModel) -> None:
        self.model = model

    def replace(self, model: CostModel) -> None:
        """Use ``model`` from the next request on (``SchemaSource``'s ``on_change``)."""
        self.model = model


class AnalyseOperation:
    """Fills ``ctx.analyses`` and ``ctx.estimated_cost``; rejects 400 with the limit's code."""

    def __init__(
        self,
        *,
        analyser: Analyser,
        costs: CostModelHolder,
        persisted: PersistedQueries | None = None,
        introspection_roles: frozenset[str] = frozenset(),
        on_warn_only: Callable[[str, str], None] | None = None,
    ) -> None:
        self.introspection_roles = introspection_roles
        self.analyse = analyser
        self.lookup = analyser.lookup
        self.costs = costs
        self.persisted = persisted
        self.on_warn_only = on_warn_only
        """Called with (limit, plan name) for each warn-only violation (``EdgeMetrics.limit_warn_only``)."""
        # (id(analysis), id(limits)) -> (analysis, limits, whether every limit but cost is met).
        # Analyses are cached and limits live with the plans, so a repeated operation is checked
        # once; holding both objects keeps their ids from being reused while they are remembered.
        self._static: dict[tuple[int, int], tuple[OperationAnalysis, GraphQLLimits, bool]] = {}

    def __call__(self, ctx: RequestContext) -> None:
        plan = ctx.plan
        session = ctx.session
        if plan is None or session is None:  # a pipeline ordering bug, never a client error
            raise RuntimeError("analyse_operation ran before identify_plan")
        limits = plan.graphql
        if session.role in self.introspection_roles:
            limits = with_introspection(limits)
        if not ctx.is_batch and not limits.safelist:  # the common request: one operation, no lists
            analysis, cost = self._analyse_one(ctx, ctx.payload, limits, session.role)
            ctx.analyses = (analysis,)
            ctx.estimated_costs = (cost,)
            ctx.estimated_cost = cost
            return
        operations = ctx.operations
        if ctx.is_batch:
            self._enforce(ctx, check_batch(len(operations), limits))
        costs = []
        analyses = []
        for operation in operations:
            if limits.safelist:
                # A safelisted plan runs only operations in the persisted-operations manifest.
                if self.persisted is None:
                    raise OperationNotSafelisted()
                self.persisted.check_safelisted(operation["query"])
            analysis, cost = self._analyse_one(ctx, operation, limits, session.role)
            analyses.append(analysis)
            costs.append(cost)
        ctx.analyses = analyses
        ctx.estimated_costs = costs
        ctx.estimated_cost = sum(costs)

    def _analyse_one(
        self, ctx: RequestContext, operation: dict[str, Any], limits: GraphQLLimits, role: str
    ) -> tuple[OperationAnalysis, int]:
        """One operation's analysis and cost, with the plan's limits enforced (400 when over one)."""
        query = operation["query"]
        name = operation.get("operationName")
        found = self.lookup(query, name, limits.max_tokens)
        # A cached refusal is not an analysis: the analyser raises it (a fresh copy of the 400).
        analysis = (
            found if isinstance(found, OperationAnalysis) else self.analyse(query, name, max_tokens=limits.max_tokens)
        )
        cost = self.costs.model.estimate(analysis, variables=operation.get("variables"), role=role)
        max_cost = limits.max_cost
        if not self._within_static_limits(analysis, limits) or (max_cost is not None and cost > max_cost):
            self._enforce(ctx, check(analysis, cost, limits))
        return analysis, cost

    def _within_static_limits(self, analysis: OperationAnalysis, limits: GraphQLLimits) -> bool:
        key = (id(analysis), id(limits))
        known = self._static.get(key)
        if known is not None and known[0] is analysis and known[1] is limits:
            return known[2]
        within = not check(analysis, None, limits)
        if len(self._static) >= _STATIC_MEMO_SIZE:
            self._static.clear()  # bounded; refilled by the next requests
        self._static[key] = (analysis, limits, within)
        return within

    def _enforce(self, ctx: RequestContext, violations: list[Violation]) -> None:
        if not violations:
            return
        rejection = first_rejection(violations)
        if rejection is not None:
            raise rejection
        count = self.on_warn_only
        for violation in violations:
            if count is not None:
                count(violation.limit, ctx.plan_name)
            log.warning(
                "limit_warn_only",
                extra={
                    "request_id": ctx.request_id,
                    "code": violation.code,
                    "limit": violation.limit,
                    "plan": ctx.plan_name,
                },
            )

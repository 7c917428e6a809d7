"""Stage N+1: what the edge does with Hasura's answer before the client gets it.

- Plans with a cost budget: the actual cost is counted from the rows Hasura returned, the
  difference to the estimate charged up front is refunded, and each result carries
  ``extensions.cost`` (``requestedQueryCost``, ``actualQueryCost``, ``throttleStatus`` with
  ``maximumAvailable``, ``currentlyAvailable``, ``restoreRate``), as GitHub and Shopify do.
- Callers who may not introspect (plan and role): "Did you mean ..." suggestions are removed,
  because they leak field names (graphql-cop's ``field_suggestions``).

Only JSON answers are touched, and the body is parsed only when one of the two applies, so the
common path forwards Hasura's bytes untouched. When the cost is all that changes in a single result
without ``extensions`` of its own, only what the cost's walk needs is read
(:func:`edge.graphql.answer_shape.slim_answer`) and ``extensions.cost`` is appended to Hasura's bytes
(its numbers and escapes stay as Hasura wrote them); otherwise the whole document is read with orjson
and written again.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import orjson

from edge.context import RequestContext
from edge.graphql.actual_cost import cost_and_rows
from edge.graphql.answer_shape import slim_answer
from edge.graphql.policy import strip_suggestions
from edge.limits.base import CostBudgets
from edge.pipeline.analyse_operation import CostModelHolder
from edge.upstream.base import UpstreamResponse

__all__ = ["FinishResponse"]

log = logging.getLogger("edge.finish")
_SUGGESTION_MARK: Final = b"Did you mean"


class FinishResponse:
    """Refunds over-estimated cost, adds ``extensions.cost``, strips suggestions; never rejects.

    A plain call: the refund goes to the store without the request waiting for it (``refund_soon``).
    """

    def __init__(
        self, *, budgets: CostBudgets, costs: CostModelHolder, introspection_roles: frozenset[str] = frozenset()
    ) -> None:
        self.budgets = budgets
        self.costs = costs
        self.introspection_roles = introspection_roles

    def __call__(self, ctx: RequestContext) -> None:
        response = ctx.response
        plan = ctx.plan
        if response is None or plan is None or response.status != 200:
            return
        role = ctx.session.role if ctx.session is not None else None
        may_introspect = plan.graphql.introspection or role in self.introspection_roles
        strip = not may_introspect and response.body.find(_SUGGESTION_MARK) >= 0  # find: `in` costs a TypeError
        if ctx.budget is None and not strip:
            return
        if not strip and not ctx.is_batch and len(ctx.analyses) == 1:
            # Only the cost changes the answer: read just what its walk needs, append ``extensions``.
            slim = slim_answer(response.body, self.costs.model.tree(ctx.analyses[0]))
            if slim is not None and "extensions" not in slim and ("data" in slim or "errors" in slim):
                self._settle_cost(ctx, [slim])
                if "extensions" in slim:
                    body = _with_member(response.body, b"extensions", orjson.dumps(slim["extensions"]))
                    ctx.response = UpstreamResponse(response.status, response.headers, body)
                return
        try:
            document: Any = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            return  # not ours to judge: pass Hasura's bytes through
        results = document if ctx.is_batch and isinstance(document, list) else [document]
        if strip:
            for result in results:
                if isinstance(result, dict) and isinstance(result.get("errors"), list):
                    result["errors"] = strip_suggestions(result["errors"])
        # One result whose only change is a new ``extensions`` member: Hasura's bytes with it appended.
        appends = not strip and not ctx.is_batch and isinstance(document, dict)
        appends = appends and len(document) > 0 and "extensions" not in document
        if ctx.budget is not None:
            self._settle_cost(ctx, results)
        if appends and "extensions" in document:
            body = _with_member(response.body, b"extensions", orjson.dumps(document["extensions"]))
        else:
            body = orjson.dumps(document)
        ctx.response = UpstreamResponse(response.status, response.headers, body)

    def _settle_cost(self, ctx: RequestContext, results: list[Any]) -> None:
        budget_decision = ctx.budget
        plan = ctx.plan
        if budget_decision is None or plan is None or plan.cost_budget is None:
            return
        model = self.costs.model
        actuals: list[int] = []
        rows = 0
        for index, analysis in enumerate(ctx.analyses):
            result = results[index] if index < len(results) else None
            data = result.get("data") if isinstance(result, dict) else None
            cost, returned = cost_and_rows(analysis, data, model=model)
            actuals.append(cost)
            rows += returned
        requested = ctx.estimated_costs
        ctx.actual_costs = actuals
        ctx.rows = rows
        refund = max(0, ctx.estimated_cost - sum(actuals))
        available = budget_decision.available
        if refund:
            self.budgets.refund_soon(ctx.limit_key, ctx.plan_name, plan.cost_budget, refund)
            available = min(float(budget_decision.maximum), available + refund)
        throttle = {
            "maximumAvailable": budget_decision.maximum,
            "currentlyAvailable": int(available),
            "restoreRate": budget_decision.restore_rate,
        }
        for result, asked, actual in zip(results, requested, actuals, strict=False):
            if isinstance(result, dict):
                extensions = result.setdefault("extensions", {})
                if isinstance(extensions, dict):
                    extensions["cost"] = {
                        "requestedQueryCost": asked,
                        "actualQueryCost": actual,
                        "throttleStatus": throttle,
                    }


def _with_member(body: bytes, name: bytes, value: bytes) -> bytes:
    """``body``, the text of a JSON object with at least one member, with ``"name":value`` added as its last."""
    end = len(body.rstrip(b" \t\r\n")) - 1  # the object's closing brace; JSON's whitespace may follow it
    return b'%s,"%s":%s}' % (body[:end], name, value)

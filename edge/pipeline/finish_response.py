"""Stage N+1: what the edge does with Hasura's answer before the client gets it.

- Plans with a cost budget: the actual cost is counted from the rows Hasura returned, the
  difference to the estimate charged up front is refunded, and each result carries
  ``extensions.cost`` (``requestedQueryCost``, ``actualQueryCost``, ``throttleStatus`` with
  ``maximumAvailable``, ``currentlyAvailable``, ``restoreRate``), as GitHub and Shopify do.
- Callers who may not introspect (plan and role): "Did you mean ..." suggestions are removed,
  because they leak field names (graphql-cop's ``field_suggestions``).

Only JSON answers are touched, and the body is parsed only when one of the two applies, so the
common path forwards Hasura's bytes untouched. When the cost is all that changes in a single result
without ``extensions`` of its own (and without suggestions in its ``errors``), only what the cost's walk
needs is read
(:func:`edge.graphql.answer_shape.slim_answer`) and ``extensions.cost`` is appended to Hasura's bytes
(its numbers and escapes stay as Hasura wrote them); otherwise the whole document is read with orjson
and written again.

The appended ``extensions`` is written as bytes, without building its dicts: the parts that depend only on
the budget (``maximumAvailable``, ``restoreRate``) are encoded once per plan with orjson, and the three
numbers of the request as digits, so the bytes are the ones ``orjson.dumps`` of the dicts writes
(``tests/edge/graphql/test_finish_response.py`` compares them on generated budgets and answers).
"""

from __future__ import annotations

import logging
from typing import Any, Final, final

import orjson

from edge.context import RequestContext
from edge.graphql.actual_cost import cost_and_rows, tree_cost_and_rows
from edge.graphql.answer_shape import slim_answer
from edge.graphql.cost import ResponseField
from edge.graphql.policy import strip_suggestions
from edge.limits.base import CostBudgets
from edge.limits.decision import BudgetDecision
from edge.pipeline.analyse_operation import CostModelHolder
from edge.plans import CostBudget, Plan
from edge.upstream.base import UpstreamResponse

__all__ = ["FinishResponse"]

log = logging.getLogger("edge.finish")
_SUGGESTION_MARK: Final = b"Did you mean"
_CACHED_PLANS: Final = 1024
"""Plans whose parts (``_PlanParts``) are kept; then the cache starts again."""
_SHORT_INT: Final = 2**62 - 1
"""The figures appended are written as their digits, as orjson writes them, up to this size (mypyc's short int:
the check is two machine comparisons); a larger one goes through orjson, which refuses ints past 64 bits."""


@final
class _Throttle:
    """``"throttleStatus"``'s bytes for one budget: what comes before ``currentlyAvailable``'s digits and
    after them, as orjson writes them (``restoreRate`` a float, ``maximumAvailable`` an int)."""

    __slots__ = ("head", "maximum", "restore_rate", "tail")

    def __init__(self, maximum: int, restore_rate: float) -> None:
        self.maximum: Final = maximum
        self.restore_rate: Final = restore_rate
        self.head: Final = b',"throttleStatus":{"maximumAvailable":%b,"currentlyAvailable":' % orjson.dumps(maximum)
        self.tail: Final = b',"restoreRate":%b}}}}' % orjson.dumps(restore_rate)


@final
class _PlanParts:
    """What the stage reads of one plan (a pydantic model's attribute is a generic lookup), and the
    ``throttleStatus`` bytes last written for its budget."""

    __slots__ = ("cost_budget", "introspection", "plan", "throttle")

    def __init__(self, plan: Plan) -> None:
        self.plan: Final = plan
        self.introspection: Final = plan.graphql.introspection
        self.cost_budget: Final = plan.cost_budget
        self.throttle: _Throttle | None = None


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
        self._plans: dict[str, _PlanParts] = {}  # by plan name

    def __call__(self, ctx: RequestContext) -> None:
        response = ctx.response
        plan = ctx.plan
        if response is None or plan is None or response.status != 200:
            return
        parts = self._plans.get(ctx.plan_name)
        if parts is None or parts.plan is not plan:
            if len(self._plans) >= _CACHED_PLANS:
                self._plans.clear()
            parts = self._plans[ctx.plan_name] = _PlanParts(plan)
        role = ctx.session.role if ctx.session is not None else None
        may_introspect = parts.introspection or role in self.introspection_roles
        if ctx.budget is not None and not ctx.is_batch and len(ctx.analyses) == 1:
            # Only the cost changes the answer, unless its errors hold suggestions to strip: read just what
            # the cost's walk needs (and ``errors`` as Hasura wrote it), append ``extensions``.
            tree = self.costs.model.tree(ctx.analyses[0])
            slim = slim_answer(response.body, tree)
            if slim is not None and "extensions" not in slim and ("data" in slim or "errors" in slim):
                errors = slim.get("errors")  # msgspec.Raw: the member's bytes
                if may_introspect or errors is None or bytes(errors).find(_SUGGESTION_MARK) < 0:
                    self._append_cost(ctx, parts, response, tree, slim.get("data"))
                    return
        strip = not may_introspect and response.body.find(_SUGGESTION_MARK) >= 0  # find: `in` costs a TypeError
        if ctx.budget is None and not strip:
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

    def _append_cost(
        self,
        ctx: RequestContext,
        parts: _PlanParts,
        response: UpstreamResponse,
        tree: tuple[ResponseField, ...],
        data: Any,
    ) -> None:
        """:meth:`_settle_cost` for the one result of the slim path, whose ``extensions`` is appended to
        Hasura's bytes: the same refund, figures and bytes, without the dicts."""
        decision = ctx.budget
        budget = parts.cost_budget
        if decision is None or budget is None:
            return
        actual, rows = tree_cost_and_rows(tree, data)
        ctx.actual_costs = [actual]
        ctx.rows = rows
        currently = self._refund_over_estimate(ctx, budget, decision, actual)
        requested = ctx.estimated_costs
        if len(requested) == 0:
            return  # no estimate to report: the answer stays Hasura's (as _settle_cost's zip)
        asked = requested[0]
        throttle = _throttle(parts, decision)
        if throttle is not None and _short(asked) and _short(actual) and _short(currently):
            body = _with_cost(response.body, asked, actual, throttle, currently)
        else:
            status = {
                "maximumAvailable": decision.maximum,
                "currentlyAvailable": currently,
                "restoreRate": decision.restore_rate,
            }
            cost = {"requestedQueryCost": asked, "actualQueryCost": actual, "throttleStatus": status}
            body = _with_member(response.body, b"extensions", orjson.dumps({"cost": cost}))
        ctx.response = UpstreamResponse(response.status, response.headers, body)

    def _refund_over_estimate(
        self, ctx: RequestContext, budget: CostBudget, decision: BudgetDecision, actual: int
    ) -> int:
        """Gives back, without waiting, what the estimate charged beyond ``actual``; returns the points
        available after it (``throttleStatus.currentlyAvailable``)."""
        refund = ctx.estimated_cost - actual
        available = decision.available
        if refund > 0:
            self.budgets.refund_soon(ctx.limit_key, ctx.plan_name, budget, refund)
            ceiling = float(decision.maximum)
            restored = available + refund
            available = restored if restored < ceiling else ceiling  # min(ceiling, restored), NaN included
        return int(available)

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
        currently = self._refund_over_estimate(ctx, plan.cost_budget, budget_decision, sum(actuals))
        throttle = {
            "maximumAvailable": budget_decision.maximum,
            "currentlyAvailable": currently,
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


def _throttle(parts: _PlanParts, decision: BudgetDecision) -> _Throttle | None:
    """The ``throttleStatus`` bytes for the decision's figures; None when ``==`` cannot tell which bytes
    orjson would write (a rate that is not a positive float: ``1 == 1.0``, ``0.0 == -0.0``; an int rate
    reaches here only interpreted, mypyc stores a float)."""
    maximum = decision.maximum
    rate = decision.restore_rate
    if type(rate) is not float or not rate > 0.0:
        return None
    throttle = parts.throttle
    if throttle is None or throttle.maximum != maximum or throttle.restore_rate != rate:
        throttle = parts.throttle = _Throttle(maximum, rate)
    return throttle


def _short(value: int) -> bool:
    return -_SHORT_INT <= value <= _SHORT_INT


def _closing_brace(body: bytes) -> int:
    """Where the JSON object ``body`` ends: its last byte, unless JSON's whitespace follows the brace."""
    end = len(body) - 1
    return end if body[end] == 0x7D else len(body.rstrip(b" \t\r\n")) - 1


def _with_member(body: bytes, name: bytes, value: bytes) -> bytes:
    """``body``, the text of a JSON object with at least one member, with ``"name":value`` added as its last."""
    return b'%s,"%s":%s}' % (body[: _closing_brace(body)], name, value)


def _with_cost(body: bytes, asked: int, actual: int, throttle: _Throttle, currently: int) -> bytes:
    """``_with_member(body, b"extensions", ...)`` of the cost's member, written in one piece."""
    return b'%b,"extensions":{"cost":{"requestedQueryCost":%d,"actualQueryCost":%d%b%d%b' % (
        body[: _closing_brace(body)],
        asked,
        actual,
        throttle.head,
        currently,
        throttle.tail,
    )

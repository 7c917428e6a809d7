"""The response stage on Hasura's answers: ``extensions.cost`` added to Hasura's own bytes, refunds sent."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from edge.context import RequestContext
from edge.graphql.analysis import Analyser
from edge.graphql.cost import CostModel
from edge.limits.decision import BudgetDecision
from edge.limits.memory import InMemoryCostBudgets
from edge.pipeline.analyse_operation import CostModelHolder
from edge.pipeline.finish_response import FinishResponse
from edge.plans import CostBudget, Plan
from edge.upstream.base import UpstreamResponse

QUERY = "{ users(limit: 2) { id } }"
PLAN = Plan.model_validate({"cost_budget": {"maximum": 100, "restore_rate": 1}})
BUDGET = CostBudget(maximum=100, restore_rate=1)


def finished(analyse: Analyser, model: CostModel, body: bytes, *, budgets: InMemoryCostBudgets) -> RequestContext:
    ctx = RequestContext(method="POST", headers=[], query_string=b"", client=None, request_id="r")
    ctx.payload = {"query": QUERY}
    ctx.plan, ctx.plan_name, ctx.limit_key = PLAN, "metered", "user-1"
    ctx.analyses = (analyse(QUERY, None, max_tokens=15_000),)
    ctx.estimated_costs = (10,)
    ctx.estimated_cost = 10
    ctx.budget = BudgetDecision(True, 10, 100, 90.0, 1.0, None)
    ctx.response = UpstreamResponse(200, [(b"content-type", b"application/json")], body)
    FinishResponse(budgets=budgets, costs=CostModelHolder(model))(ctx)
    return ctx


COST = b'"extensions":{"cost":{"requestedQueryCost":10,"actualQueryCost":2,"throttleStatus":'
THROTTLE = b'{"maximumAvailable":100,"currentlyAvailable":98,"restoreRate":1.0}}}}'


@pytest.mark.parametrize(
    "hasura",
    [
        b'{"data":{"users":[{"id":1},{"id":2}]}}',
        b'{"data": {"users": [{"id": 1.50}, {"id": "\\u00e9"}]}}\n',  # spacing, digits, escapes: Hasura's bytes kept
    ],
)
def test_the_cost_is_appended_to_hasuras_bytes(analyse: Analyser, model: CostModel, hasura: bytes) -> None:
    budgets = InMemoryCostBudgets(clock=lambda: 1_000.0)
    ctx = finished(analyse, model, hasura, budgets=budgets)
    assert ctx.response is not None
    assert ctx.response.body == hasura.rstrip()[:-1] + b"," + COST + THROTTLE
    assert orjson.loads(ctx.response.body)["extensions"]["cost"]["actualQueryCost"] == 2
    assert (ctx.actual_costs, ctx.rows) == ([2], 2)


def test_an_answer_the_slim_read_declines_is_read_whole_with_the_same_rules(
    analyse: Analyser, model: CostModel
) -> None:
    """A row that is not an object (the slim read's types refuse it) counts nothing, as in the whole read."""
    hasura = b'{"data":{"users":[{"id":1},7,{"id":2,"extra":[{"a":1}]}]}}'
    ctx = finished(analyse, model, hasura, budgets=InMemoryCostBudgets(clock=lambda: 1_000.0))
    assert ctx.response is not None
    assert ctx.response.body == hasura[:-1] + b"," + COST + THROTTLE
    assert (ctx.actual_costs, ctx.rows) == ([2], 2)


@pytest.mark.parametrize(
    ("hasura", "merged"),
    [
        # Hasura's own extensions: the cost joins them, the document written again.
        (b'{"data":{"users":[]},"extensions":{"x":1}}', {"x": 1}),
        # No member to follow: the document written again, never "{,".
        (b"{}", {}),
    ],
)
def test_a_document_it_cannot_append_to_is_written_again(
    analyse: Analyser, model: CostModel, hasura: bytes, merged: dict[str, Any]
) -> None:
    ctx = finished(analyse, model, hasura, budgets=InMemoryCostBudgets(clock=lambda: 1_000.0))
    assert ctx.response is not None
    document = orjson.loads(ctx.response.body)
    extensions = document["extensions"]
    assert extensions.pop("cost")["actualQueryCost"] == 0
    assert extensions == merged


async def test_the_over_estimate_is_refunded_without_waiting(analyse: Analyser, model: CostModel) -> None:
    budgets = InMemoryCostBudgets(clock=lambda: 1_000.0)
    assert (await budgets.charge("user-1", "metered", BUDGET, 10)).available == 90.0
    finished(analyse, model, b'{"data":{"users":[{"id":1},{"id":2}]}}', budgets=budgets)
    assert (await budgets.charge("user-1", "metered", BUDGET, 0)).available == 98.0  # 8 of 10 back

"""The response stage on Hasura's answers: ``extensions.cost`` added to Hasura's own bytes, refunds sent."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.context import RequestContext
from edge.graphql.actual_cost import cost_and_rows
from edge.graphql.analysis import Analyser, make_analyser
from edge.graphql.answer_shape import slim_answer
from edge.graphql.cost import CostModel
from edge.limits.decision import BudgetDecision
from edge.limits.memory import InMemoryCostBudgets
from edge.pipeline.analyse_operation import CostModelHolder
from edge.pipeline.finish_response import FinishResponse
from edge.plans import CostBudget, Plan
from edge.upstream.base import UpstreamResponse
from tests.edge.graphql.test_answer_shape import GENERATED_QUERIES, KEYS

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


def test_suggestions_in_the_errors_are_stripped_and_the_cost_still_added(analyse: Analyser, model: CostModel) -> None:
    hasura = b'{"data":{"users":[]},"errors":[{"message":"field \\"nme\\" not found. Did you mean \\"name\\"?"}]}'
    ctx = finished(analyse, model, hasura, budgets=InMemoryCostBudgets(clock=lambda: 1_000.0))
    assert ctx.response is not None
    document = orjson.loads(ctx.response.body)
    assert [error["message"] for error in document["errors"]] == ['field "nme" not found.']
    assert document["extensions"]["cost"]["actualQueryCost"] == 0


def test_a_suggestion_mark_in_the_data_leaves_hasuras_bytes_as_they_are(analyse: Analyser, model: CostModel) -> None:
    """Suggestions are stripped from ``errors`` only: the words in a column's value change nothing."""
    hasura = b'{"data": {"users": [{"id": 1, "bio": "Did you mean it?"}]}}'
    ctx = finished(analyse, model, hasura, budgets=InMemoryCostBudgets(clock=lambda: 1_000.0))
    assert ctx.response is not None
    assert ctx.response.body.startswith(hasura[:-1] + b',"extensions":{"cost":{"requestedQueryCost":10,')


def test_a_plan_replaced_under_its_name_is_read_again(analyse: Analyser, model: CostModel) -> None:
    """The stage keeps what it reads of a plan by name; a reloaded plan (a new object) is read again."""
    hasura = b'{"errors":[{"message":"field \\"nme\\" not found. Did you mean \\"name\\"?"}]}'
    finish = FinishResponse(budgets=InMemoryCostBudgets(), costs=CostModelHolder(model))
    stripped = []
    for introspection in (False, True, False):
        ctx = RequestContext(method="POST", headers=[], query_string=b"", client=None, request_id="r")
        ctx.plan_name = "metered"
        ctx.plan = Plan.model_validate({"graphql": {"introspection": introspection}})
        ctx.analyses = (analyse(QUERY, None, max_tokens=15_000),)
        ctx.response = UpstreamResponse(200, [], hasura)
        finish(ctx)
        assert ctx.response is not None
        stripped.append(b"Did you mean" not in ctx.response.body)
    assert stripped == [True, False, True]


# --- The bytes appended to Hasura's answer, against the dicts and orjson.dumps they replaced -------------------


class RecordedBudgets:
    """The in-memory store, and the refunds the response stage gave it, in order."""

    def __init__(self) -> None:
        self.store = InMemoryCostBudgets(clock=lambda: 1_000.0)
        self.refunds: list[tuple[str, str, CostBudget, int]] = []

    async def charge(self, key: str, plan_name: str, budget: CostBudget, points: int) -> BudgetDecision:
        return await self.store.charge(key, plan_name, budget, points)

    async def refund(self, key: str, plan_name: str, budget: CostBudget, points: int) -> None:
        await self.store.refund(key, plan_name, budget, points)

    def refund_soon(self, key: str, plan_name: str, budget: CostBudget, points: int) -> None:
        self.refunds.append((key, plan_name, budget, points))
        self.store.refund_soon(key, plan_name, budget, points)

    async def drain(self) -> None:
        await self.store.drain()


def reference_body(body: bytes, decision: BudgetDecision, estimated_costs: Sequence[int], actual: int) -> bytes:
    """What the stage wrote for one result before it wrote the bytes itself: ``extensions.cost`` built as
    dicts, written by ``orjson.dumps`` and added after Hasura's last member (raises where that raised)."""
    refund = max(0, sum(estimated_costs) - sum([actual]))
    available = decision.available
    if refund:
        available = min(float(decision.maximum), available + refund)
    throttle = {
        "maximumAvailable": decision.maximum,
        "currentlyAvailable": int(available),
        "restoreRate": decision.restore_rate,
    }
    cost = {"requestedQueryCost": estimated_costs[0], "actualQueryCost": actual, "throttleStatus": throttle}
    end = len(body.rstrip(b" \t\r\n")) - 1
    return b'%s,"%s":%s}' % (body[:end], b"extensions", orjson.dumps({"cost": cost}))


SHAPED_QUERY = "{ users { id name orders { id total } } }"
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=3)
SCALAR = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT
JSON = st.recursive(
    SCALAR, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5), max_leaves=30
)
"""JSON as Hasura writes it (no NaN, Infinity or lone surrogate), which the stage always reads."""
ORDER = st.fixed_dictionaries({}, optional={"id": SCALAR, "total": SCALAR, "other": JSON})
USER = st.fixed_dictionaries(
    {},
    optional={"id": SCALAR, "name": TEXT, "orders": st.none() | st.lists(ORDER | st.none(), max_size=3)},
)
# Answers the slim read takes (rows of the query's shape) and any others (the whole read then)
ANSWERS = st.tuples(st.just(SHAPED_QUERY), st.fixed_dictionaries({"users": st.none() | st.lists(USER, max_size=4)})) | (
    st.tuples(
        st.sampled_from(GENERATED_QUERIES), st.dictionaries(st.sampled_from(["users", "other"]), JSON, max_size=2)
    )
)
# Figures where ``==`` and orjson disagree (1 and 1.0, 0.0 and -0.0, NaN), around 2**62 (the stage's digits) and
# 2**64 (past which orjson refuses an int), and any others; a run's requests share one stage, so what it keeps
# from one request meets the next one's figures under the same plan.
RATES = st.sampled_from([1, 1.0, 2, 2.0, 0.0, -0.0, 0.5, math.inf, math.nan]) | st.floats(0.001, 1e6) | st.floats()
NUMBERS = st.sampled_from([0, 1, 2**62 - 1, 2**62, 2**64 - 1, 2**64]) | st.integers(0, 10_000) | st.integers(0, 2**65)
AVAILABLE = st.sampled_from([math.nan, math.inf, -math.inf, -0.0]) | st.floats() | NUMBERS
ESTIMATES = st.integers(0, 30) | NUMBERS  # small ones: no refund, ``available`` written as it came
REQUEST = st.fixed_dictionaries(
    {
        "answer": ANSWERS,
        "errors": st.booleans(),
        "spacing": st.sampled_from([(",", ":"), (", ", ": ")]),
        "trailing": st.sampled_from(["", "\n", " \r\n\t"]),
        "maximum": NUMBERS.map(lambda n: max(n, 1)),
        "restore_rate": RATES,
        "available": AVAILABLE,
        "estimate": ESTIMATES,
    }
)


@pytest.fixture(scope="module")
def shared_analyse() -> Analyser:
    return make_analyser(maxsize=64)


@settings(max_examples=300, deadline=None)
@given(requests=st.lists(REQUEST, min_size=1, max_size=4))
def test_the_appended_cost_is_the_bytes_orjson_wrote_and_the_refund_the_same(
    shared_analyse: Analyser, model: CostModel, requests: list[dict[str, Any]]
) -> None:
    budgets = RecordedBudgets()
    finish = FinishResponse(budgets=budgets, costs=CostModelHolder(model))
    for request in requests:
        query, data = request["answer"]
        document: dict[str, Any] = {"data": data}
        if request["errors"]:
            document["errors"] = [{"message": "x"}]
        body = (json.dumps(document, separators=request["spacing"]) + request["trailing"]).encode()
        analysis = shared_analyse(query, None, max_tokens=15_000)
        actual, rows = cost_and_rows(analysis, json.loads(body)["data"], model=model)
        estimate = request["estimate"]
        decision = BudgetDecision(
            True, estimate, request["maximum"], request["available"], request["restore_rate"], None
        )
        ctx = RequestContext(method="POST", headers=[], query_string=b"", client=None, request_id="r")
        ctx.plan, ctx.plan_name, ctx.limit_key = PLAN, "metered", "user-1"
        ctx.analyses = (analysis,)
        ctx.estimated_costs, ctx.estimated_cost = (estimate,), estimate
        ctx.budget = decision
        ctx.response = UpstreamResponse(200, [(b"content-type", b"application/json")], body)
        budgets.refunds.clear()
        try:
            expected: bytes | type[Exception] = reference_body(body, decision, (estimate,), actual)
        except (ValueError, OverflowError, TypeError) as error:  # NaN or inf available, an int past 64 bits
            expected = type(error)
        if isinstance(expected, bytes):
            finish(ctx)
        else:
            with pytest.raises(expected):
                finish(ctx)
            expected = body
        assert ctx.response is not None and ctx.response.body == expected
        assert (ctx.actual_costs, ctx.rows) == ([actual], rows)
        refund = max(0, estimate - actual)
        assert budgets.refunds == ([("user-1", "metered", PLAN.cost_budget, refund)] if refund else [])


def test_rates_equal_but_written_apart_are_each_written_as_orjson_writes(analyse: Analyser, model: CostModel) -> None:
    """What the stage keeps of a budget is not reused for a rate ``==`` calls the same and orjson writes
    differently (1 and 1.0 reach here apart only interpreted: mypyc stores a float)."""
    budgets = RecordedBudgets()
    finish = FinishResponse(budgets=budgets, costs=CostModelHolder(model))
    hasura = b'{"data":{"users":[{"id":1},{"id":2}]}}'
    for rate in (1.0, 1, 1.0, 0.0, -0.0, 0.0, math.nan, math.nan, math.inf, 2.5):
        ctx = RequestContext(method="POST", headers=[], query_string=b"", client=None, request_id="r")
        ctx.plan, ctx.plan_name, ctx.limit_key = PLAN, "metered", "user-1"
        ctx.analyses = (analyse(QUERY, None, max_tokens=15_000),)
        ctx.estimated_costs, ctx.estimated_cost = (10,), 10
        ctx.budget = decision = BudgetDecision(True, 10, 100, 90.0, rate, None)
        ctx.response = UpstreamResponse(200, [], hasura)
        finish(ctx)
        assert ctx.response.body == reference_body(hasura, decision, (10,), 2)


def test_the_generated_answers_take_the_slim_read(shared_analyse: Analyser, model: CostModel) -> None:
    """The differential test above covers the slim path: the shaped answers are ones it reads."""
    body = b'{"data":{"users":[{"id":1,"name":"a","orders":null},{"orders":[{"total":2.5},null]}]}}'
    assert slim_answer(body, model.tree(shared_analyse(SHAPED_QUERY, None, max_tokens=15_000))) is not None


def test_without_an_estimate_the_slim_answer_is_hasuras(analyse: Analyser, model: CostModel) -> None:
    """No estimate to report (``estimated_costs`` empty): the refund is made, the bytes stay Hasura's."""
    budgets = RecordedBudgets()
    ctx = RequestContext(method="POST", headers=[], query_string=b"", client=None, request_id="r")
    ctx.plan, ctx.plan_name, ctx.limit_key = PLAN, "metered", "user-1"
    ctx.analyses = (analyse(QUERY, None, max_tokens=15_000),)
    ctx.estimated_cost = 10
    ctx.budget = BudgetDecision(True, 10, 100, 90.0, 1.0, None)
    hasura = b'{"data":{"users":[{"id":1},{"id":2}]}}\n'
    ctx.response = UpstreamResponse(200, [], hasura)
    FinishResponse(budgets=budgets, costs=CostModelHolder(model))(ctx)
    assert ctx.response.body == hasura
    assert (ctx.actual_costs, ctx.rows, budgets.refunds) == ([2], 2, [("user-1", "metered", BUDGET, 8)])

"""actual_cost() and cost_and_rows(): the estimate's rules applied to the rows the double actually returns.

The double returns ``limit`` rows (``batch_size`` for ``_stream``), 3 without one, one row for ``_by_pk``,
and echoes mutation inputs (tests/hasura_double/data.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from edge.graphql.actual_cost import actual_cost, cost_and_rows
from edge.graphql.analysis import Analyser
from edge.graphql.cost import CostModel
from edge.graphql.schema_info import SchemaInfo
from tests.hasura_double.double import _build_schema
from tests.hasura_double.execution import Executor, GraphQLRequest
from tests.hasura_double.schema import DEMO_SDL

TOKENS = 15_000


@pytest.fixture(scope="module")
def executor() -> Executor:
    return Executor(_build_schema(DEMO_SDL))


# query, variables, actual cost of the double's answer, estimate for a caller without permission limits
CASES: list[tuple[str, dict[str, Any] | None, int, int]] = [
    ("{ users(limit: 2) { id orders { id } } }", None, 2 * (1 + 3), 2 * (1 + 100)),
    ("query($n: Int) { users(limit: $n) { id } }", {"n": 7}, 7, 7),
    ("{ products_aggregate(limit: 4) { aggregate { count } nodes { id } } }", None, 10 + 4, 10 + 4),
    ("{ products_aggregate { aggregate { count } } }", None, 10, 10),
    ('{ users_by_pk(id: "00000000-0000-4000-8000-000000000001") { id orders(limit: 2) { id } } }', None, 3, 3),
    ("{ orders(limit: 2) { user { id } items(limit: 1) { product { id } } } }", None, 2 * (1 + 1 + 2), 8),
    ("mutation { insert_users(objects: [{}, {}]) { affected_rows returning { id } } }", None, 13, 13),
    ("mutation { insert_users_one(object: {}) { id } }", None, 11, 11),
    ("mutation { update_users(where: {}) { returning { id } } }", None, 10 + 1 + 1, 10 + 1 + 100),
    ("{ a: users(limit: 2) { id } b: users(limit: 3) { id } __typename }", None, 5, 5),
]


@pytest.mark.parametrize(("query", "variables", "actual", "estimate"), CASES)
def test_actual_cost_of_the_doubles_responses(
    analyse: Analyser,
    model: CostModel,
    executor: Executor,
    query: str,
    variables: dict[str, Any] | None,
    actual: int,
    estimate: int,
) -> None:
    analysis = analyse(query, None, max_tokens=TOKENS)
    response = executor.run(GraphQLRequest(query, variables))
    assert "errors" not in response
    assert actual_cost(analysis, response["data"], model=model) == actual
    assert model.estimate(analysis, variables=variables) == estimate
    assert actual <= estimate


def test_actual_cost_without_schema_reads_the_shape_of_the_data(
    analyse: Analyser, fallback_model: CostModel, executor: Executor
) -> None:
    query = "{ users(limit: 2) { id orders { id } } }"
    response = executor.run(GraphQLRequest(query))
    assert actual_cost(analyse(query, None, max_tokens=TOKENS), response["data"], model=fallback_model) == 8


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (None, 0),
        ([], 0),
        ("oops", 0),
        ({}, 0),
        ({"users": None}, 0),
        ({"users": []}, 0),
        ({"users": "not a list"}, 0),
        ({"users": [None, 1, "x", [], {"orders": None}]}, 1),
        ({"users": [{"orders": [{"id": 1}, None, {"id": 2}]}]}, 3),
        ({"users": {"orders": {"id": 1}}}, 2),  # an object where a list was expected still counts objects
        ({"users": [{"orders": [[{"id": 1}]]}]}, 1),  # nested lists are not rows
        ({"unexpected": [{"a": 1}], "users": [{}]}, 1),
        ({1: 2, "users": [{"orders": 5}]}, 1),
    ],
)
def test_weird_data_never_raises(analyse: Analyser, model: CostModel, data: Any, expected: int) -> None:
    analysis = analyse("{ users { orders { id } } }", None, max_tokens=TOKENS)
    assert actual_cost(analysis, data, model=model) == expected


def test_a_large_response_is_walked_without_recursion(analyse: Analyser, model: CostModel) -> None:
    query = "{ users { " + "orders { user { " * 40 + "id" + " } }" * 40 + " } }"
    analysis = analyse(query, None, max_tokens=TOKENS)
    row: dict[str, Any] = {"id": 1}
    for _ in range(40):
        row = {"orders": [{"user": row}]}
    data = {"users": [row] * 1000}
    assert actual_cost(analysis, data, model=model) == 1000 * (1 + 80)


def test_every_price_counts_where_its_field_is_present(analyse: Analyser, schema: SchemaInfo) -> None:
    """Scalars count when scalar_cost is not 0 (a null one too: it is present), absent keys never do."""
    model = CostModel(schema, None, object_cost=0, scalar_cost=1)
    analysis = analyse("{ users { id name orders { id } } }", None, max_tokens=TOKENS)
    data = {"users": [{"id": 1, "name": None, "orders": [{"id": 2}, {}]}, {"id": 3}]}
    assert actual_cost(analysis, data, model=model) == 4
    free = CostModel(schema, None, object_cost=0, scalar_cost=0)
    assert actual_cost(analysis, data, model=free) == 0
    aggregate = analyse("{ users_aggregate { aggregate { count } nodes { id } } }", None, max_tokens=TOKENS)
    answer = {"users_aggregate": {"aggregate": {"count": 2}, "nodes": [{"id": 1}, {"id": 2}]}}
    assert actual_cost(aggregate, answer, model=free) == 10
    assert actual_cost(aggregate, answer, model=model) == 12


def test_a_mutation_root_field_present_as_null_costs_its_base(analyse: Analyser, model: CostModel) -> None:
    query = "mutation { insert_users_one(object: {}) { id } b: insert_users_one(object: {}) { id } }"
    analysis = analyse(query, None, max_tokens=TOKENS)
    assert actual_cost(analysis, {"insert_users_one": None}, model=model) == 10
    assert actual_cost(analysis, {"insert_users_one": None, "b": {"id": 1}}, model=model) == 10 + 11


# query, the double's answer's rows: objects in lists, plus root fields holding one object
ROWS: list[tuple[str, int]] = [
    ("{ users(limit: 2) { id orders { id } } }", 2 + 2 * 3),
    ("{ products_aggregate(limit: 4) { aggregate { count } nodes { id } } }", 1 + 4),
    ("{ products_aggregate { aggregate { count } } }", 1),
    ('{ users_by_pk(id: "00000000-0000-4000-8000-000000000001") { id orders(limit: 2) { id } } }', 1 + 2),
    ("{ orders(limit: 2) { user { id } items(limit: 1) { product { id } } } }", 2 + 2),  # user, product: no list
    ("mutation { insert_users(objects: [{}, {}]) { affected_rows returning { id } } }", 1 + 2),
    ("{ a: users(limit: 2) { id } b: users(limit: 3) { id } __typename }", 5),
]


@pytest.mark.parametrize(("query", "rows"), ROWS)
def test_rows_of_the_doubles_responses(
    analyse: Analyser, model: CostModel, executor: Executor, query: str, rows: int
) -> None:
    analysis = analyse(query, None, max_tokens=TOKENS)
    response = executor.run(GraphQLRequest(query))
    assert "errors" not in response
    assert cost_and_rows(analysis, response["data"], model=model) == (
        actual_cost(analysis, response["data"], model=model),
        rows,
    )


def test_rows_count_at_every_price_and_only_for_the_operations_fields(analyse: Analyser, schema: SchemaInfo) -> None:
    """Objects are rows even where they cost nothing; JSON in a scalar column and unknown keys are not."""
    analysis = analyse("{ users { id settings orders { id } } me: users_by_pk(id: 1) { id } }", None, max_tokens=TOKENS)
    data = {
        "users": [{"id": 1, "settings": [{"a": 1}, {"b": 2}], "orders": [{"id": 2}, None, {"id": 3}]}, {"id": 4}],
        "me": {"id": 1},
        "unexpected": [{"id": 5}],
    }
    free = CostModel(schema, None, object_cost=0, scalar_cost=0)
    assert cost_and_rows(analysis, data, model=free) == (0, 2 + 2 + 1)
    assert cost_and_rows(analysis, {"users": {"orders": {"id": 1}}}, model=free) == (0, 1)  # a root object
    assert cost_and_rows(analysis, None, model=free) == (0, 0)

"""slim_answer(): Hasura's answer cut to the cost's tree gives the walk the same figures as the whole answer.

Differential: ``cost_and_rows`` on the slim answer against ``cost_and_rows`` on ``json.loads`` of the same
bytes, on the double's answers to real queries and on generated answers of every shape. Where the slim read
declines (None), ``finish_response`` reads the whole answer instead, so only "same figures or None" is allowed.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.graphql.actual_cost import cost_and_rows
from edge.graphql.analysis import Analyser, make_analyser
from edge.graphql.answer_shape import slim_answer
from edge.graphql.cost import CostModel, ResponseField
from edge.graphql.schema_info import SchemaInfo
from tests.edge.graphql.test_actual_cost import CASES, ROWS, TOKENS
from tests.hasura_double.double import _build_schema
from tests.hasura_double.execution import Executor, GraphQLRequest
from tests.hasura_double.schema import DEMO_SDL

QUERIES = sorted({query for query, *_ in CASES} | {query for query, _ in ROWS})


@pytest.fixture(scope="module")
def executor() -> Executor:
    return Executor(_build_schema(DEMO_SDL))


@pytest.fixture(scope="module")
def models(schema: SchemaInfo) -> list[CostModel]:
    """Default prices, priced scalars (kept as presence only), and nothing priced (rows alone)."""
    return [
        CostModel(schema, None),
        CostModel(schema, None, scalar_cost=1),
        CostModel(schema, None, object_cost=0, scalar_cost=0, aggregate_cost=0, mutation_base_cost=0),
        CostModel(None, None, scalar_cost=2),
    ]


def same_figures(analyse: Analyser, model: CostModel, query: str, body: bytes) -> dict[str, Any] | None:
    analysis = analyse(query, None, max_tokens=TOKENS)
    slim = slim_answer(body, model.tree(analysis))
    if slim is not None:
        whole = json.loads(body)  # stdlib: reads integers of any size, as Hasura may send them
        assert cost_and_rows(analysis, slim.get("data"), model=model) == cost_and_rows(
            analysis, whole.get("data"), model=model
        )
        assert ("errors" in slim, "extensions" in slim) == ("errors" in whole, "extensions" in whole)
    return slim


@pytest.mark.parametrize("query", QUERIES)
def test_the_doubles_answers_read_slim_give_the_same_cost_and_rows(
    analyse: Analyser, models: list[CostModel], executor: Executor, query: str
) -> None:
    body = orjson.dumps(executor.run(GraphQLRequest(query)))
    for model in models:
        assert same_figures(analyse, model, query, body) is not None


def test_values_nobody_counts_are_not_kept(analyse: Analyser, models: list[CostModel]) -> None:
    body = b'{"data":{"users":[{"id":1,"name":"a","orders":[{"id":2,"total":3}]},{"id":4,"orders":null}]}}'
    slim = same_figures(analyse, models[0], "{ users { id name orders { id total } } }", body)
    assert slim == {"data": {"users": [{"orders": [{}]}, {"orders": None}]}}


@pytest.mark.parametrize(
    "body",
    [
        b'{"data":{"users":[1]}}',  # a scalar row
        b'{"data":{"users":[[{"id":1}]]}}',  # a list inside a list
        b'{"data":{"users":"x"}}',
        b'{"data":{"users":[{"orders":7}]}}',
        b'{"data":[]}',
        b"[]",
        b"not json",
        b'{"data":{"users":[]}} trailing',
    ],
)
def test_a_shape_the_types_do_not_match_is_declined(analyse: Analyser, models: list[CostModel], body: bytes) -> None:
    assert same_figures(analyse, models[0], "{ users { id orders { id } } }", body) is None


def test_a_tree_with_one_response_key_twice_is_declined() -> None:
    twice = (ResponseField("a", 1, 0, (), is_object=False), ResponseField("a", 0, 1, (), is_object=True))
    assert slim_answer(b'{"data":{"a":1}}', twice) is None


def test_the_answers_own_members_are_kept_for_the_caller(analyse: Analyser, models: list[CostModel]) -> None:
    """``errors`` and ``extensions`` say whether ``extensions.cost`` can be appended to Hasura's bytes."""
    query = "{ users { id } }"
    slim = same_figures(analyse, models[0], query, b'{"errors":[{"message":"x"}]}')
    assert slim is not None and set(slim) == {"errors"}
    slim = same_figures(analyse, models[0], query, b'{"data":null,"extensions":{"x":1},"other":2}')
    assert slim is not None and set(slim) == {"data", "extensions"}


KEYS = st.sampled_from(["users", "orders", "items", "product", "id", "name", "total", "other"])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=30,
)
GENERATED_QUERIES = [
    "{ users { id name orders { id total items { product { id name } } } } }",
    "{ users_aggregate { aggregate { count } nodes { id orders { id } } } }",
    "mutation { insert_users(objects: []) { affected_rows returning { id orders { id } } } }",
]


@pytest.fixture(scope="module")
def shared_analyse() -> Analyser:
    return make_analyser(maxsize=64)


@settings(max_examples=300, deadline=None)
@given(data=st.dictionaries(KEYS | st.sampled_from(["users_aggregate", "insert_users"]), JSON, max_size=4))
def test_generated_answers_give_the_same_figures_or_are_declined(
    shared_analyse: Analyser, models: list[CostModel], data: dict[str, Any]
) -> None:
    body = json.dumps({"data": data}).encode()
    for query in GENERATED_QUERIES:
        for model in models:
            same_figures(shared_analyse, model, query, body)

"""Abusive documents (deep nesting, alias and field floods, fragment cycles, directive and token floods):
every one is a quick 400 with a stable code, never a 500 or a hang.

Each case runs the edge's own decision (analyse, estimate, check) the way the pipeline does, and asserts
the code and status, and that the work it took stays proportional to the document (counted in function
calls, see WORK_PER_CHARACTER): time is not asserted, so a loaded machine cannot make the suite flaky.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

import pytest
from graphql import get_introspection_query

from edge.errors import BadRequest
from edge.graphql.analysis import MAX_NESTING, Analyser
from edge.graphql.cost import CostModel
from edge.graphql.policy import OperationRejected, check, check_batch, first_rejection
from edge.plans import GraphQLLimits

DEFAULTS = GraphQLLimits()
# "Never a hang" as work, not time: one decision may make at most WORK_PER_CHARACTER function calls
# (Python's and built-in ones, counted by a profile hook, so the count is the same on a loaded machine)
# per character of the document, plus a constant. The costliest case here makes about half of that
# (a chain of 20 fragments: 48 by this count); work that grows faster than the document (fragment
# spreads or aliases multiplying, re-walking nested selections) goes far past it. Timings: bench/analysis.py.
WORK_PER_CHARACTER = 100


@dataclass
class Calls:
    total: int = 0


@contextlib.contextmanager
def counting_calls() -> Iterator[Calls]:
    """The function calls made in this thread inside the block."""
    calls = Calls()

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" or event == "c_call":
            calls.total += 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield calls
    finally:
        sys.setprofile(previous)


def decide(
    analyse: Analyser,
    query: str,
    limits: GraphQLLimits = DEFAULTS,
    *,
    model: CostModel | None = None,
    variables: Mapping[str, Any] | None = None,
    role: str | None = None,
) -> str:
    """The code the edge answers with ("ok" when the operation may be forwarded)."""
    with counting_calls() as calls:
        outcome = _decide(analyse, query, limits, model=model, variables=variables, role=role)
    budget = WORK_PER_CHARACTER * (len(query) + 1000)
    assert calls.total <= budget, f"{calls.total} calls for a {len(query)}-character document (budget {budget})"
    return outcome


def _decide(
    analyse: Analyser,
    query: str,
    limits: GraphQLLimits,
    *,
    model: CostModel | None,
    variables: Mapping[str, Any] | None,
    role: str | None,
) -> str:
    try:
        analysis = analyse(query, None, max_tokens=limits.max_tokens)
        cost = model.estimate(analysis, variables=variables, role=role) if model is not None else None
        rejection = first_rejection(check(analysis, cost, limits))
        if rejection is not None:
            raise rejection
        outcome = "ok"
    except BadRequest as error:
        assert error.status == 400
        assert len(error.message) < 200  # a sentence, never the document
        assert query[:40] not in error.message
        outcome = error.code
    return outcome


def cyclic(depth: int) -> str:
    """users -> orders -> user -> orders ... with its deepest field at ``depth`` (Hasura semantics)."""
    path = ["users"] + ["orders" if level % 2 else "user" for level in range(1, depth)]
    return "{ " + " { ".join(path) + " { id" + " }" * (len(path) + 1)


# --- 1.1 Query depth -------------------------------------------------------------------------------------


def test_depth_n_over_a_cyclic_relationship_is_allowed_and_n_plus_1_refused(analyse: Analyser) -> None:
    assert analyse(cyclic(10), None, max_tokens=DEFAULTS.max_tokens).depth == 10
    assert decide(analyse, cyclic(DEFAULTS.max_depth)) == "ok"
    assert decide(analyse, cyclic(DEFAULTS.max_depth + 1)) == "depth-limit-exceeded"
    assert decide(analyse, cyclic(6), GraphQLLimits(max_depth=5)) == "depth-limit-exceeded"


def test_depth_counts_through_fragments_and_inline_fragments(analyse: Analyser) -> None:
    # Depth 1 as written in the operation; 20 once the fragments are expanded.
    fragments = " ".join(
        f"fragment L{level} on {'users' if level % 2 else 'orders'} {{ {'orders' if level % 2 else 'user'}"
        f" {{ ... on t {{ {'...L' + str(level + 1) if level < 19 else 'id'} }} }} }}"
        for level in range(1, 20)
    )
    query = "query { users { ...L1 } } " + fragments
    assert analyse(query, None, max_tokens=DEFAULTS.max_tokens).depth == 20
    assert decide(analyse, query) == "depth-limit-exceeded"


def test_circular_introspection_is_refused_with_or_without_introspection(analyse: Analyser) -> None:
    query = "{ __schema { types { " + "fields { type { " * 8 + "name" + " } }" * 8 + " } } }"
    assert decide(analyse, query) == "introspection-disabled"
    assert decide(analyse, query, GraphQLLimits(introspection=True)) == "depth-limit-exceeded"


def test_the_standard_introspection_query_passes_when_introspection_is_on(analyse: Analyser) -> None:
    query = get_introspection_query(descriptions=True)
    assert decide(analyse, query) == "introspection-disabled"
    assert decide(analyse, query, GraphQLLimits(introspection=True)) == "ok"


# --- 1.2 Amount ------------------------------------------------------------------------------------------


def test_101_aliases_are_refused(analyse: Analyser) -> None:
    query = "query { " + " ".join(f"alias{i}: __typename" for i in range(101)) + " }"
    assert decide(analyse, query, GraphQLLimits(max_aliases=100, max_root_fields=200)) == "alias-limit-exceeded"
    assert decide(analyse, query, GraphQLLimits(max_aliases=101, max_root_fields=200)) == "ok"


def test_500_copies_of_a_field_collapse_in_cost(analyse: Analyser, model: CostModel) -> None:
    once = analyse("{ users(limit: 10) { id orders(limit: 2) { id } } }", None, max_tokens=DEFAULTS.max_tokens)
    copies = analyse(
        "{ users(limit: 10) { " + "id orders(limit: 2) { id } " * 500 + "} }", None, max_tokens=DEFAULTS.max_tokens
    )
    assert copies.field_count == 1501
    assert model.estimate(copies) == model.estimate(once) == 30


def test_500_copies_of_a_root_field_exceed_the_root_field_limit(analyse: Analyser) -> None:
    assert decide(analyse, "{ " + "__typename " * 500 + "}") == "root-field-limit-exceeded"


def test_root_field_limit(analyse: Analyser) -> None:
    tables = ["users", "products", "orders", "payments", "documents"]
    query = "{ " + " ".join(f"t{i}: {tables[i % 5]}(limit: 1) {{ id }}" for i in range(21)) + " }"
    limits = GraphQLLimits(max_aliases=100)
    assert decide(analyse, query, limits) == "root-field-limit-exceeded"
    assert decide(analyse, query, GraphQLLimits(max_aliases=100, max_root_fields=21)) == "ok"


def test_a_huge_limit_is_priced_high_and_refused(analyse: Analyser, model: CostModel) -> None:
    limits = GraphQLLimits(max_cost=10_000)
    assert decide(analyse, "{ products(limit: 99999999) { id } }", limits, model=model) == "cost-limit-exceeded"
    # Hasura caps rows at the role's permission limit (products: anonymous 50), so that role is priced at 50.
    assert decide(analyse, "{ products(limit: 99999999) { id } }", limits, model=model, role="anonymous") == "ok"
    # Through a variable too.
    query = "query($n: Int!) { products(limit: $n) { id } }"
    assert decide(analyse, query, limits, model=model, variables={"n": 99_999_999}) == "cost-limit-exceeded"
    assert decide(analyse, query, limits, model=model, variables={"n": 20}) == "ok"


def test_a_missing_limit_is_priced_at_the_permission_limit_or_the_default(analyse: Analyser, model: CostModel) -> None:
    limits = GraphQLLimits(max_cost=2_000)
    query = "{ products { id inventory { id warehouse { id } } } }"
    # No role limit: 100 x (1 + 100 x 2) = 20,100 > 2,000; anonymous: 50 x (1 + 50 x 2) = 5,050 > 2,000.
    assert decide(analyse, query, limits, model=model) == "cost-limit-exceeded"
    assert decide(analyse, query, limits, model=model, role="anonymous") == "cost-limit-exceeded"
    assert decide(analyse, "{ products { id } }", limits, model=model, role="anonymous") == "ok"


def test_cost_over_budget_is_refused_and_under_budget_allowed(analyse: Analyser, model: CostModel) -> None:
    query = "{ users(limit: 10) { id orders(limit: 10) { id } } }"  # 10 x (1 + 10) = 110
    assert decide(analyse, query, GraphQLLimits(max_cost=109), model=model) == "cost-limit-exceeded"
    assert decide(analyse, query, GraphQLLimits(max_cost=110), model=model) == "ok"


# --- 1.3 Batching ----------------------------------------------------------------------------------------


def test_a_batch_of_ten_operations_is_refused() -> None:
    [violation] = check_batch(10, DEFAULTS)
    assert (violation.limit, violation.code, violation.warn_only) == ("max_batch_size", "batch-size-exceeded", False)
    assert OperationRejected(violation).code == "batch-size-exceeded"
    assert check_batch(5, DEFAULTS) == []


def test_alias_batched_mutations_cost_once_each(analyse: Analyser, model: CostModel) -> None:
    call = 'processPayment(orderId: "o", amount: "1", currency: "EUR", idempotencyKey: "k") { paymentId }'
    one = analyse(f"mutation {{ {call} }}", None, max_tokens=DEFAULTS.max_tokens)
    ten = analyse("mutation { " + " ".join(f"a{i}: {call}" for i in range(10)) + " }", None, max_tokens=15_000)
    assert model.estimate(one) == 11  # mutation base 10 + the result object
    assert model.estimate(ten) == 10 * model.estimate(one)
    assert ten.root_fields == 10
    assert ten.root_field_names == ("processPayment",)


# --- 1.4 Introspection -----------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["{ __schema { queryType { name } } }", '{ __type(name: "users") { name } }'])
def test_introspection_is_refused_unless_the_plan_allows_it(analyse: Analyser, query: str) -> None:
    assert decide(analyse, query) == "introspection-disabled"
    assert decide(analyse, query, GraphQLLimits(introspection=True)) == "ok"


def test_typename_is_not_introspection(analyse: Analyser) -> None:
    assert decide(analyse, "query { __typename users { __typename } }") == "ok"


# --- 1.5 Fragment cycles, recursion, token floods ---------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "query { users { ...A } } fragment A on users { ...B } fragment B on users { ...A }",
        "query { users { ...A } } fragment A on users { id ...A }",
        "query { users { id } } fragment A on users { ...B } fragment B on users { ...A }",  # unused, still invalid
        "query { users { ...A } } fragment A on users { orders { ...B } } fragment B on orders { user { ...A } }",
    ],
)
def test_fragment_cycles_are_refused_quickly(analyse: Analyser, query: str) -> None:
    assert decide(analyse, query) == "validation-failed"


@pytest.mark.parametrize("levels", [5_000, 201, MAX_NESTING + 1])
def test_deep_nesting_is_refused_before_parsing(analyse: Analyser, levels: int) -> None:
    assert decide(analyse, "{" + "a{" * levels + "b" + "}" * levels + "}") == "depth-limit-exceeded"


def test_deep_nesting_within_the_hard_cap_is_a_depth_violation(analyse: Analyser) -> None:
    assert decide(analyse, "{" + "a{" * 100 + "b" + "}" * 100 + "}") == "depth-limit-exceeded"


def test_deeply_nested_values_are_refused(analyse: Analyser) -> None:
    assert decide(analyse, "{ a(x: " + "[" * 5_000 + "]" * 5_000 + ") }") == "depth-limit-exceeded"
    assert decide(analyse, "{ a(x: " + "{y: " * 5_000 + "1" + "}" * 5_000 + ") }") == "depth-limit-exceeded"


@pytest.mark.parametrize(
    "query",
    [
        "{ " + "a " * 15_001 + "}",
        "#\n" * 15_001 + "{ a }",  # comments count as tokens
        "{ a(x: [" + "1 " * 15_001 + "]) }",
    ],
)
def test_more_than_15000_tokens_are_refused(analyse: Analyser, query: str) -> None:
    assert decide(analyse, query) == "token-limit-exceeded"


def test_a_2000_fragment_chain_is_bounded(analyse: Analyser) -> None:
    chain = " ".join(f"fragment F{i} on users {{ ...F{i + 1} }}" for i in range(1_999))
    query = "query { users { ...F0 } } " + chain + " fragment F1999 on users { id }"
    assert decide(analyse, query) == "token-limit-exceeded"  # ~16,000 tokens
    assert decide(analyse, query, GraphQLLimits(max_tokens=50_000)) == "ok"


def test_a_2000_fragment_chain_that_nests_is_a_depth_violation(analyse: Analyser) -> None:
    chain = " ".join(f"fragment F{i} on users {{ orders {{ ...F{i + 1} }} }}" for i in range(1_999))
    query = "query { users { ...F0 } } " + chain + " fragment F1999 on users { id }"
    limits = GraphQLLimits(max_tokens=50_000)
    assert analyse(query, None, max_tokens=50_000).depth == 2_000
    assert decide(analyse, query, limits) == "depth-limit-exceeded"


@pytest.mark.parametrize("fields", ["id", ""])
def test_exponential_fragment_expansion_is_cut(analyse: Analyser, fields: str) -> None:
    # 20 fragments, each spreading the previous one twice: 2**19 copies of F0 from a few hundred tokens.
    fragments = " ".join(f"fragment F{i} on users {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 20))
    query = f"query {{ users {{ ...F19 }} }} fragment F0 on users {{ {fields} }} " + fragments
    assert decide(analyse, query) == "operation-too-complex"


# --- 1.6 Directive overloading ---------------------------------------------------------------------------


@pytest.mark.parametrize("count", [10, 1_000])
def test_duplicate_directives_are_refused(analyse: Analyser, count: int) -> None:
    assert decide(analyse, "query cop { __typename " + "@aa" * count + " }") == "directive-limit-exceeded"


def test_more_directives_than_the_limit_are_refused(analyse: Analyser) -> None:
    query = "query { " + " ".join(f"f{i}: __typename @include(if: true)" for i in range(11)) + " }"
    assert decide(analyse, query, GraphQLLimits(max_directives=10)) == "directive-limit-exceeded"
    assert decide(analyse, query, GraphQLLimits(max_directives=11)) == "ok"

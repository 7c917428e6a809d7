"""check(), check_batch(), OperationRejected and strip_suggestions()."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from graphql import build_schema, parse, validate

from edge.graphql.analysis import Analyser
from edge.graphql.policy import OperationRejected, Violation, check, check_batch, first_rejection, strip_suggestions
from edge.plans import GraphQLLimits
from tests.hasura_double.schema import DEMO_SDL

TOKENS = 15_000
OVER_EVERYTHING = (
    "query { "
    + " ".join(f"a{i}: users @include(if: true) {{ orders {{ user {{ id }} }} }}" for i in range(4))
    + " __schema { queryType { name } } }"
)


def test_every_violation_is_reported_with_its_limit_and_code(analyse: Analyser) -> None:
    limits = GraphQLLimits(max_depth=1, max_aliases=3, max_root_fields=4, max_directives=3, max_cost=10)
    violations = check(analyse(OVER_EVERYTHING, None, max_tokens=TOKENS), 11, limits)
    assert [(v.limit, v.code) for v in violations] == [
        ("introspection", "introspection-disabled"),
        ("max_depth", "depth-limit-exceeded"),
        ("max_aliases", "alias-limit-exceeded"),
        ("max_root_fields", "root-field-limit-exceeded"),
        ("max_directives", "directive-limit-exceeded"),
        ("max_cost", "cost-limit-exceeded"),
    ]
    assert [v.message for v in violations] == [
        "Introspection is not allowed for your plan",
        "Query depth 3 exceeds the limit of 1",
        "The operation has 4 aliases; the limit is 3",
        "The operation has 5 root fields; the limit is 4",
        "The document has 4 directives; the limit is 3",
        "Estimated query cost 11 exceeds the limit of 10",
    ]
    assert not any(v.warn_only for v in violations)


def test_within_limits_there_is_no_violation(analyse: Analyser) -> None:
    assert check(analyse(OVER_EVERYTHING, None, max_tokens=TOKENS), 11, GraphQLLimits(introspection=True)) == []
    # No cost (no model) and no max_cost: cost is not checked.
    limits = GraphQLLimits(max_cost=1)
    assert check(analyse("{ users { id } }", None, max_tokens=TOKENS), None, limits) == []


def test_warn_only_limits_are_reported_but_do_not_reject(analyse: Analyser) -> None:
    limits = GraphQLLimits(max_depth=1, max_cost=10, warn_only=frozenset({"max_depth", "max_cost"}))
    violations = check(analyse("{ users { orders { id } } }", None, max_tokens=TOKENS), 100, limits)
    assert [(v.code, v.warn_only) for v in violations] == [
        ("depth-limit-exceeded", True),
        ("cost-limit-exceeded", True),
    ]
    assert first_rejection(violations) is None
    strict = check(analyse("{ users { orders { id } } }", None, max_tokens=TOKENS), 100, GraphQLLimits(max_depth=1))
    rejection = first_rejection(strict)
    assert rejection is not None
    assert rejection.code == "depth-limit-exceeded"


def test_batch_limit() -> None:
    assert check_batch(5, GraphQLLimits()) == []
    [violation] = check_batch(6, GraphQLLimits())
    assert violation == Violation("max_batch_size", "batch-size-exceeded", "The batch has 6 operations; the limit is 5")
    [relaxed] = check_batch(6, GraphQLLimits(warn_only=frozenset({"max_batch_size"})))
    assert relaxed.warn_only


def test_operation_rejected_is_a_400_with_the_violation_code() -> None:
    violation = Violation("max_cost", "cost-limit-exceeded", "Estimated query cost 11 exceeds the limit of 10")
    error = OperationRejected(violation)
    assert (error.status, error.code, error.violation) == (400, "cost-limit-exceeded", violation)
    assert orjson.loads(error.body()) == {
        "errors": [
            {
                "message": "Estimated query cost 11 exceeds the limit of 10",
                "extensions": {"code": "cost-limit-exceeded"},
            }
        ]
    }
    assert OperationRejected.code == "operation-rejected"  # the class default; instances carry their own


# --- strip_suggestions -----------------------------------------------------------------------------------

SUGGESTIONS = [
    # Hasura style
    (
        "field 'usrs' not found in type: 'query_root'. Did you mean 'users'?",
        "field 'usrs' not found in type: 'query_root'.",
    ),
    # graphql-js
    (
        'Cannot query field "usrs" on type "Query". Did you mean "users"?',
        'Cannot query field "usrs" on type "Query".',
    ),
    (
        'Cannot query field "usr" on type "Query". Did you mean "user", "users", or "users_by_pk"?',
        'Cannot query field "usr" on type "Query".',
    ),
    (
        'Cannot query field "name" on type "Node". Did you mean to use an inline fragment on "User"?',
        'Cannot query field "name" on type "Node".',
    ),
    (
        'Unknown argument "limt" on field "Query.users". Did you mean "limit"?',
        'Unknown argument "limt" on field "Query.users".',
    ),
    ("field 'x' not found in type: 'query_root'", "field 'x' not found in type: 'query_root'"),
    ("did you mean 'users'? The rest stays.", "The rest stays."),
]


@pytest.mark.parametrize(("message", "expected"), SUGGESTIONS)
def test_strip_suggestions(message: str, expected: str) -> None:
    [error] = strip_suggestions([{"message": message, "extensions": {"code": "validation-failed"}}])
    assert error["message"] == expected
    assert "mean" not in error["message"].lower()
    assert error["extensions"] == {"code": "validation-failed"}


def test_strip_suggestions_leaves_other_entries_alone() -> None:
    original: list[Any] = [{"message": "fine"}, {"message": 3}, "text", None, {"extensions": {}}]
    assert strip_suggestions(original) == original
    untouched = {"message": "Did you mean 'x'?"}
    strip_suggestions([untouched])
    assert untouched == {"message": "Did you mean 'x'?"}  # copies, never mutated in place


def test_strip_suggestions_on_graphql_core_messages() -> None:
    schema = build_schema(DEMO_SDL)
    errors = validate(schema, parse("{ usrs { id } users(limt: 1) { nme } }"))
    messages = [error.message for error in errors]
    assert sum("Did you mean" in message for message in messages) >= 2
    cleaned = strip_suggestions([{"message": message} for message in messages])
    assert all("Did you mean" not in error["message"] for error in cleaned)

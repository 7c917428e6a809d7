"""A plan's GraphQL limits applied to an analysed operation: a list of violations, and the 400 to raise.

``check(analysis, cost, limits)`` returns every :class:`Violation` (empty when the operation is within
its plan); each says whether it is ``warn_only`` (the limit's name is in ``limits.warn_only``: log and
count it, forward the operation). The pipeline raises ``OperationRejected(violation)`` for the first
violation that is not warn-only. ``check_batch(size, limits)`` does the same for a batched request.

Codes (all HTTP 400, none reaches Hasura)::

    limit            code                         when
    max_depth        depth-limit-exceeded         depth (Hasura's semantics) over max_depth; or an
                                                  introspection subtree deeper than MAX_INTROSPECTION_DEPTH
    max_aliases      alias-limit-exceeded         more aliased fields than max_aliases
    max_root_fields  root-field-limit-exceeded    more root fields than max_root_fields
    max_directives   directive-limit-exceeded     more directives in the document than max_directives, or
                                                  a directive repeated at one location (``@skip @skip``)
    max_cost         cost-limit-exceeded          estimated cost over max_cost (when set)
    introspection    introspection-disabled       __schema/__type while the plan has introspection off
    max_batch_size   batch-size-exceeded          more operations in one batched request than max_batch_size

Messages give the measured value and the limit, never the document.

``strip_suggestions(errors)`` removes "Did you mean ..." hints from upstream errors, for plans without
introspection (a suggestion leaks field names the client may not see in the schema).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from edge.errors import BadRequest
from edge.graphql.analysis import OperationAnalysis
from edge.plans import GraphQLLimits

__all__ = [
    "MAX_INTROSPECTION_DEPTH",
    "OperationRejected",
    "Violation",
    "check",
    "check_batch",
    "first_rejection",
    "strip_suggestions",
]

MAX_INTROSPECTION_DEPTH = 15
"""The standard introspection query (graphql-js/graphql-core ``get_introspection_query``) is 14 deep;
a circular introspection query (``__schema{types{fields{type{fields{type...}}}}}``) goes deeper."""


@dataclass(frozen=True, slots=True)
class Violation:
    limit: str
    """The limit's name in :class:`GraphQLLimits` (``max_depth``, ``introspection``...)."""
    code: str
    message: str
    warn_only: bool = False


class OperationRejected(BadRequest):
    """An operation (or batch) over one of its plan's limits; ``code`` is the violation's code."""

    code = "operation-rejected"
    default_message = "The operation exceeds the limits of your plan"
    hasura_code: str | None = None  # Hasura CE enforces no such limits: the violation's code is kept

    def __init__(self, violation: Violation) -> None:
        super().__init__(violation.message)
        self.violation = violation
        self.code = violation.code


def check(analysis: OperationAnalysis, cost: int | None, limits: GraphQLLimits) -> list[Violation]:
    """Every limit the operation is over, in a fixed order (introspection, depth, amounts, cost)."""
    found: list[tuple[str, str, str]] = []
    if analysis.introspection and not limits.introspection:
        found.append(("introspection", "introspection-disabled", "Introspection is not allowed for your plan"))
    if analysis.depth > limits.max_depth:
        found.append(
            (
                "max_depth",
                "depth-limit-exceeded",
                f"Query depth {analysis.depth} exceeds the limit of {limits.max_depth}",
            )
        )
    if analysis.introspection_depth > MAX_INTROSPECTION_DEPTH:
        found.append(
            (
                "max_depth",
                "depth-limit-exceeded",
                f"Introspection depth {analysis.introspection_depth} exceeds the limit of {MAX_INTROSPECTION_DEPTH}",
            )
        )
    if analysis.aliases > limits.max_aliases:
        found.append(
            (
                "max_aliases",
                "alias-limit-exceeded",
                f"The operation has {analysis.aliases} aliases; the limit is {limits.max_aliases}",
            )
        )
    if analysis.root_fields > limits.max_root_fields:
        found.append(
            (
                "max_root_fields",
                "root-field-limit-exceeded",
                f"The operation has {analysis.root_fields} root fields; the limit is {limits.max_root_fields}",
            )
        )
    if analysis.directives > limits.max_directives:
        found.append(
            (
                "max_directives",
                "directive-limit-exceeded",
                f"The document has {analysis.directives} directives; the limit is {limits.max_directives}",
            )
        )
    if analysis.duplicate_directives:
        found.append(
            (
                "max_directives",
                "directive-limit-exceeded",
                f"The document repeats a directive at one location {analysis.duplicate_directives} time(s)",
            )
        )
    if cost is not None and limits.max_cost is not None and cost > limits.max_cost:
        found.append(
            (
                "max_cost",
                "cost-limit-exceeded",
                f"Estimated query cost {cost} exceeds the limit of {limits.max_cost}",
            )
        )
    return [Violation(limit, code, message, limit in limits.warn_only) for limit, code, message in found]


def check_batch(size: int, limits: GraphQLLimits) -> list[Violation]:
    """A batched request (a JSON array) with more operations than ``max_batch_size``."""
    if size <= limits.max_batch_size:
        return []
    return [
        Violation(
            "max_batch_size",
            "batch-size-exceeded",
            f"The batch has {size} operations; the limit is {limits.max_batch_size}",
            "max_batch_size" in limits.warn_only,
        )
    ]


def first_rejection(violations: list[Violation]) -> OperationRejected | None:
    """The error to raise for the first violation that is not warn-only, or None."""
    for violation in violations:
        if not violation.warn_only:
            return OperationRejected(violation)
    return None


# --- Field suggestions -----------------------------------------------------------------------------------

# graphql-js/graphql-core: ' Did you mean "users"?', ' Did you mean "a", "b", or "c"?', ' Did you mean to use
# an inline fragment on "X"?'; Hasura/others: " Did you mean 'users'?". Everything from "Did you mean" to the
# end of the sentence goes.
_SUGGESTION = re.compile(r"\s*Did you mean\b[^?]*\?", re.IGNORECASE)


def strip_suggestions(errors: list[Any]) -> list[Any]:
    """Copies of GraphQL ``errors`` with "Did you mean ..." removed from each ``message``.

    Anything that is not an object with a string ``message`` is passed through unchanged.
    """
    cleaned: list[Any] = []
    for error in errors:
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            message = _SUGGESTION.sub("", error["message"]).strip()
            if message != error["message"]:
                error = {**error, "message": message}
        cleaned.append(error)
    return cleaned

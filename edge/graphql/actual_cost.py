"""The cost of what Hasura actually returned: the estimate's rules with real list lengths.

``cost_and_rows(analysis, data, model=model)`` walks the response ``data`` alongside the model's priced
fields (:meth:`CostModel.tree`) and returns, from one walk, the actual cost and the rows returned (billed by
the usage meter); ``actual_cost`` is its first half, ``tree_cost_and_rows`` the walk for a caller that holds
the tree already. For the cost, every object returned costs ``object_cost`` (rows of a list, an object
relationship, a ``_by_pk`` row), every scalar present ``scalar_cost``, every ``_aggregate`` field present its
fixed ``aggregate_cost`` plus its ``nodes`` rows, every mutation root field present ``mutation_base_cost``.
With permission limits honoured by Hasura, the actual cost of a response is at most the estimate of its
request.

Tolerant by construction: ``null`` values, missing keys (an error nulled them, or partial data),
scalars where objects were expected and any other unexpected shape count nothing and never raise.
Iterative and linear in the response: one dict lookup per object and field in the tree (scalars that
add nothing, at ``scalar_cost=0``, are not in it), one stack entry per object value or list of rows.
"""

from __future__ import annotations

from typing import Any, Final

from edge.graphql.analysis import OperationAnalysis
from edge.graphql.cost import MAX_COST, CostModel, ResponseField

__all__ = ["actual_cost", "cost_and_rows", "tree_cost_and_rows"]

_ABSENT: Final[Any] = object()
"""The value of a key the response does not have (``null`` is a value: the field is present)."""


def actual_cost(analysis: OperationAnalysis, data: Any, *, model: CostModel) -> int:
    """The cost of the response ``data`` (the ``data`` member of Hasura's answer) for this operation."""
    return cost_and_rows(analysis, data, model=model)[0]


def cost_and_rows(analysis: OperationAnalysis, data: Any, *, model: CostModel) -> tuple[int, int]:
    """The actual cost of ``data`` and the rows in it, in one walk.

    Rows are the objects Hasura returned for the operation's fields: every object in a list field, plus
    each root field holding one object (``users_by_pk``, an aggregate). An object nested without a list
    (``post.author``), a scalar, and JSON inside a scalar column (a ``jsonb`` list of objects) are not rows.
    """
    return tree_cost_and_rows(model.tree(analysis), data)


def tree_cost_and_rows(tree: tuple[ResponseField, ...], data: Any) -> tuple[int, int]:
    """:func:`cost_and_rows` for the operation whose :meth:`CostModel.tree` is ``tree``."""
    if not isinstance(data, dict):
        return 0, 0
    total = rows = 0
    # (fields, objects): the fields to look up in each object of a list of rows (or in one object)
    stack: list[tuple[tuple[ResponseField, ...], list[Any]]] = []
    fields = tree
    objects: list[Any] = [data]
    root = True  # the first entry: ``data`` itself, whose object fields are rows on their own
    while True:
        for row in objects:
            if not isinstance(row, dict):
                continue
            for field in fields:
                value = row.get(field.key, _ABSENT)
                if value is _ABSENT:
                    continue
                total += field.base
                if isinstance(value, dict):
                    total += field.per_row
                    if root and field.is_object:
                        rows += 1
                    if field.children:
                        stack.append((field.children, [value]))
                elif isinstance(value, list):
                    for item in value:
                        if isinstance(item, dict):
                            total += field.per_row
                            if field.is_object:
                                rows += 1
                    if field.children and value:
                        stack.append((field.children, value))
        if not stack:
            return min(total, MAX_COST), rows
        fields, objects = stack.pop()
        root = False

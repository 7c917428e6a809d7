"""The cost of what Hasura actually returned: the estimate's rules with real list lengths.

``actual_cost(analysis, data, model=model)`` walks the response ``data`` alongside the model's priced
fields (:meth:`CostModel.tree`): every object returned costs ``object_cost`` (rows of a list, an
object relationship, a ``_by_pk`` row), every scalar present ``scalar_cost``, every
``_aggregate`` field present its fixed ``aggregate_cost`` plus its ``nodes`` rows, every mutation root
field present ``mutation_base_cost``. With permission limits honoured by Hasura, the actual cost of a
response is at most the estimate of its request.

Tolerant by construction: ``null`` values, missing keys (an error nulled them, or partial data),
scalars where objects were expected and any other unexpected shape count nothing and never raise.
Iterative and linear in the response: one dict lookup per object and priced field (fields that can add
nothing, such as scalars at ``scalar_cost=0``, are not looked up), one stack entry per object value or
list of rows.
"""

from __future__ import annotations

from typing import Any, Final

from edge.graphql.analysis import OperationAnalysis
from edge.graphql.cost import MAX_COST, CostModel, ResponseField

__all__ = ["actual_cost"]

_ABSENT: Final[Any] = object()
"""The value of a key the response does not have (``null`` is a value: the field is present)."""


def actual_cost(analysis: OperationAnalysis, data: Any, *, model: CostModel) -> int:
    """The cost of the response ``data`` (the ``data`` member of Hasura's answer) for this operation."""
    if not isinstance(data, dict):
        return 0
    total = 0
    # (fields, objects): the fields to look up in each object of a list of rows (or in one object)
    stack: list[tuple[tuple[ResponseField, ...], list[Any]]] = [(model.tree(analysis), [data])]
    while stack:
        fields, objects = stack.pop()
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
                    if field.children:
                        stack.append((field.children, [value]))
                elif isinstance(value, list):
                    for item in value:
                        if isinstance(item, dict):
                            total += field.per_row
                    if field.children and value:
                        stack.append((field.children, value))
    return min(total, MAX_COST)

"""The cost of what Hasura actually returned: the estimate's rules with real list lengths.

``actual_cost(analysis, data, model=model)`` walks the response ``data`` alongside the model's priced
fields (:meth:`CostModel.tree`): every object returned costs ``object_cost`` (rows of a list, an
object relationship, a ``_by_pk`` row), every scalar present ``scalar_cost``, every
``_aggregate`` field present its fixed ``aggregate_cost`` plus its ``nodes`` rows, every mutation root
field present ``mutation_base_cost``. With permission limits honoured by Hasura, the actual cost of a
response is at most the estimate of its request.

Tolerant by construction: ``null`` values, missing keys (an error nulled them, or partial data),
scalars where objects were expected and any other unexpected shape count nothing and never raise.
Iterative, and each value of ``data`` is visited at most once, so the walk is linear in the response.
"""

from __future__ import annotations

from typing import Any

from edge.graphql.analysis import OperationAnalysis
from edge.graphql.cost import MAX_COST, CostModel, CostNode

__all__ = ["actual_cost"]


def actual_cost(analysis: OperationAnalysis, data: Any, *, model: CostModel) -> int:
    """The cost of the response ``data`` (the ``data`` member of Hasura's answer) for this operation."""
    if not isinstance(data, dict):
        return 0
    total = 0
    stack: list[tuple[tuple[CostNode, ...], dict[Any, Any]]] = [(model.tree(analysis), data)]
    while stack:
        nodes, row = stack.pop()
        for node in nodes:
            if node.key not in row:
                continue
            total += node.base
            value = row[node.key]
            if isinstance(value, dict):
                total += node.per_row
                if node.children:
                    stack.append((node.children, value))
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, dict):
                        total += node.per_row
                        if node.children:
                            stack.append((node.children, item))
    return min(total, MAX_COST)

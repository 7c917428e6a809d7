"""Deterministic rows for any Hasura-shaped schema (a graphql-core ``field_resolver``).

The brief's data contract, not Hasura's (Hasura returns real rows): list fields return exactly ``limit`` rows
(capped at :data:`MAX_ROWS`) or :data:`DEFAULT_ROWS`; ``_stream`` uses ``batch_size``; ``<t>_aggregate``
counts the same rows; ``_by_pk`` returns one object whose key columns echo the arguments; mutations echo their
input (``object``, ``objects``, ``_set``, ``pk_columns``, and scalar arguments such as the action's). Every
other scalar is derived from the field name and the row index (``offset`` shifts the index), e.g. ``name``
-> ``"name-1"``, uuids -> ``"00000000-0000-4000-8000-<hash><index>"``, ``numeric`` -> ``"10.00"``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLList,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    get_named_type,
    get_nullable_type,
)

__all__ = ["DEFAULT_ROWS", "MAX_ROWS", "Row", "resolve_field", "scalar_value"]

DEFAULT_ROWS = 3
MAX_ROWS = 100
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
ECHOED_OBJECT_ARGS = ("object", "_set", "pk_columns")
NOT_ECHOED = frozenset(
    {
        "limit",
        "offset",
        "batch_size",
        "where",
        "order_by",
        "distinct_on",
        "on_conflict",
        "cursor",
        "columns",
        "distinct",
        "_inc",
        "objects",
    }
)


@dataclass(frozen=True)
class Row:
    """The parent value handed to child resolvers: which row this is, how many rows its list had, and the
    values that must be echoed instead of synthesised."""

    index: int = 0
    count: int = DEFAULT_ROWS
    values: dict[str, Any] = field(default_factory=dict)


def _row_count(args: dict[str, Any]) -> int:
    wanted = args.get("limit")
    if wanted is None:
        wanted = args.get("batch_size")
    if wanted is None:
        return DEFAULT_ROWS
    return max(0, min(int(wanted), MAX_ROWS))


def _uuid(field_name: str, index: int) -> str:
    digest = hashlib.sha1(field_name.encode()).hexdigest()[:4]
    return f"00000000-0000-4000-8000-{digest}{index + 1:08d}"


def scalar_value(type_name: str, field_name: str, index: int) -> Any:
    """The synthesised value of scalar ``type_name`` for ``field_name`` in row ``index`` (0-based)."""
    n = index + 1
    if type_name == "uuid":
        return _uuid(field_name, index)
    if type_name == "Int":
        return n
    if type_name == "Float":
        return n + 0.5
    if type_name == "Boolean":
        return index % 2 == 0
    if type_name == "numeric":
        return f"{10 * n}.00"
    if type_name == "timestamptz":
        return (EPOCH + timedelta(hours=index)).isoformat()
    if type_name == "jsonb":
        return {"field": field_name, "index": n}
    return f"{field_name}-{n}"


def _echoed_values(args: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in args.items():
        if name in ECHOED_OBJECT_ARGS and isinstance(value, dict):
            values.update(value)
        elif name not in NOT_ECHOED and not isinstance(value, (dict, list)):
            values[name] = value
    return values


def _resolve_object(parent: Row, info: GraphQLResolveInfo[Any], type_: GraphQLObjectType, args: dict[str, Any]) -> Row:
    name = info.field_name
    type_name = type_.name
    if type_name.endswith("_aggregate") and "nodes" in type_.fields:
        return Row(index=0, count=_row_count(args))
    if type_name.endswith("_mutation_response"):
        objects = args.get("objects")
        if isinstance(objects, list):
            return Row(index=0, count=len(objects), values={"__objects": objects})
        return Row(index=0, count=1, values=_echoed_values(args))
    if info.parent_type.name.endswith(("_aggregate", "_aggregate_fields")):
        # aggregate / max / min / avg / sum: max describes the last row, the others the first.
        return Row(index=max(parent.count - 1, 0) if name == "max" else 0, count=parent.count)
    return Row(index=parent.index, count=1, values=_echoed_values(args))


def _resolve_list(parent: Row, info: GraphQLResolveInfo[Any], item_type: Any, args: dict[str, Any]) -> list[Any]:
    if info.field_name == "returning":
        objects = parent.values.get("__objects")
        if isinstance(objects, list):
            return [Row(index=i, count=len(objects), values=dict(obj)) for i, obj in enumerate(objects)]
        return [Row(index=0, count=1, values={k: v for k, v in parent.values.items() if k != "__objects"})]
    if info.field_name == "nodes":
        count, offset = parent.count, 0
    else:
        count, offset = _row_count(args), int(args.get("offset") or 0)
    if isinstance(get_named_type(item_type), GraphQLObjectType):
        return [Row(index=offset + i, count=count) for i in range(count)]
    return [_scalar(get_named_type(item_type), info.field_name, offset + i) for i in range(count)]


def _scalar(type_: Any, field_name: str, index: int) -> Any:
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    assert isinstance(type_, GraphQLScalarType)
    return scalar_value(type_.name, field_name, index)


def resolve_field(source: Any, info: GraphQLResolveInfo[Any], **args: Any) -> Any:
    """graphql-core ``field_resolver`` producing the deterministic data described in the module docstring."""
    parent = source if isinstance(source, Row) else Row()
    name = info.field_name
    if name in parent.values:
        return parent.values[name]
    type_ = get_nullable_type(info.return_type)
    if isinstance(type_, GraphQLList):
        return _resolve_list(parent, info, type_.of_type, args)
    if isinstance(type_, GraphQLObjectType):
        return _resolve_object(parent, info, type_, args)
    if name == "count" and info.parent_type.name.endswith("_aggregate_fields"):
        return parent.count
    if name == "affected_rows":
        return parent.count
    return _scalar(type_, name, parent.index)

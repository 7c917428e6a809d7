"""What the cost model needs to know about Hasura's schema, precomputed once per schema.

For every ``(type, field)`` of every object or interface type: is the field a list, what named type
it returns, and which of Hasura's shapes it is:

- ``by_pk``: ``<table>_by_pk`` (and the ``update_<table>_by_pk``/``delete_<table>_by_pk`` mutations):
  one row at most;
- ``aggregate``: ``<table>_aggregate`` (root or relationship) returning ``<table>_aggregate``: a fixed
  price, plus its ``nodes`` rows;
- ``list``: a list of objects (a table, an array relationship, ``returning``, ``_stream``);
- ``object``: one object (an object relationship, ``insert_<table>_one``, an action's result...);
- ``scalar``: a scalar or enum (or a list of them).

Build it from Hasura's introspection result (``SchemaInfo.from_introspection``) or from SDL in tests
(``SchemaInfo.from_sdl``). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from graphql import (
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLObjectType,
    GraphQLSchema,
    build_client_schema,
    build_schema,
    get_named_type,
    get_nullable_type,
    is_leaf_type,
)

__all__ = ["FieldInfo", "FieldKind", "SchemaInfo"]

FieldKind = Literal["scalar", "object", "list", "by_pk", "aggregate"]


@dataclass(frozen=True, slots=True)
class FieldInfo:
    kind: FieldKind
    type_name: str
    """The named type the field returns (``users`` for ``users: [users!]!``)."""
    is_list: bool


def _field_info(field_name: str, field_type: Any) -> FieldInfo:
    named = get_named_type(field_type)
    is_list = isinstance(get_nullable_type(field_type), GraphQLList)
    kind: FieldKind
    if is_leaf_type(named):
        kind = "scalar"
    elif field_name.endswith("_aggregate") and named.name.endswith("_aggregate") and not is_list:
        kind = "aggregate"
    elif field_name.endswith("_by_pk") and not is_list:
        kind = "by_pk"
    elif is_list:
        kind = "list"
    else:
        kind = "object"
    return FieldInfo(kind=kind, type_name=named.name, is_list=is_list)


class SchemaInfo:
    """Field shapes by ``(type name, field name)`` and the three root type names."""

    __slots__ = ("fields", "roots", "schema")

    def __init__(self, schema: GraphQLSchema) -> None:
        self.schema = schema
        """The schema itself (REST variable checks and the OpenAPI document read its input types)."""
        self.roots: dict[str, str | None] = {
            "query": schema.query_type.name if schema.query_type else None,
            "mutation": schema.mutation_type.name if schema.mutation_type else None,
            "subscription": schema.subscription_type.name if schema.subscription_type else None,
        }
        self.fields: dict[tuple[str, str], FieldInfo] = {}
        for type_name, named in schema.type_map.items():
            if type_name.startswith("__") or not isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
                continue
            for field_name, field in named.fields.items():
                self.fields[(type_name, field_name)] = _field_info(field_name, field.type)

    @classmethod
    def from_introspection(cls, result: Mapping[str, Any]) -> SchemaInfo:
        """From an introspection result: ``{"__schema": ...}`` or the whole response ``{"data": {...}}``."""
        data = result.get("data", result)
        return cls(build_client_schema(data))

    @classmethod
    def from_sdl(cls, sdl: str) -> SchemaInfo:
        return cls(build_schema(sdl))

    def root_type(self, operation_type: str) -> str | None:
        return self.roots.get(operation_type)

    def field(self, type_name: str, field_name: str) -> FieldInfo | None:
        return self.fields.get((type_name, field_name))

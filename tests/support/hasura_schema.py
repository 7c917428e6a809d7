"""The admin GraphQL schema Hasura would generate for hasura/metadata over a migrated database, as SDL.

Enough of Hasura's schema generation (``Hasura.GraphQL.Schema.*``) to validate saved operations the way Hasura
validates query collections and REST endpoints against the admin schema when it builds its schema cache
(``getInconsistentQueryCollections`` in server/src-lib/Hasura/RQL/DDL/Schema/Cache.hs): every tracked table
with its columns (Postgres types named as Hasura names them: ``text`` is ``String``, ``int4`` is ``Int``,
``bool`` is ``Boolean``, other types keep their Postgres name, e.g. ``uuid``, ``numeric``, ``bpchar``,
``timestamptz``, ``jsonb``), its metadata relationships, the root fields ``<t>``, ``<t>_by_pk``,
``<t>_aggregate``, ``insert_<t>[_one]``, ``update_<t>[_by_pk]``, ``delete_<t>[_by_pk]`` with their
arguments (``where``, ``order_by``, ``limit``, ``offset``, ``distinct_on``, ``pk_columns``, ``_set``, ``_inc``,
``object(s)`` with nested relationship inserts, ``on_conflict``), and the actions of ``actions.graphql``.
Aggregates are reduced to ``count``; comparison operators are the common ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .hasura_metadata import Catalog, TableRef, iter_tables, load_actions_sdl, resolve_relationships

__all__ = ["admin_sdl", "graphql_scalar"]

SCALARS = {"text": "String", "varchar": "String", "citext": "String", "int4": "Int", "int2": "Int", "bool": "Boolean"}
BUILTIN = {"String", "Int", "Float", "Boolean", "ID"}
COMPARISONS = ("_eq", "_neq", "_gt", "_gte", "_lt", "_lte")
TEXT_COMPARISONS = ("_like", "_nlike", "_ilike", "_nilike", "_similar", "_nsimilar", "_regex", "_iregex")
NUMERIC = {"Int", "bigint", "numeric", "float8", "Float"}


def graphql_scalar(udt: str) -> str:
    return SCALARS.get(udt, udt)


@dataclass(frozen=True)
class _Column:
    name: str
    type: str
    nullable: bool


def _columns(conn: Any, table: TableRef) -> list[_Column]:
    rows = conn.execute(
        "SELECT column_name, udt_name, is_nullable = 'YES' FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (table.schema, table.name),
    ).fetchall()
    return [_Column(name, graphql_scalar(udt), nullable) for name, udt, nullable in rows]


def _constraints(conn: Any, table: TableRef) -> tuple[list[str], list[str]]:
    """(primary key columns, names of the primary key and unique constraints)."""
    pk = [
        row[0]
        for row in conn.execute(
            "SELECT a.attname FROM pg_index i"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY a.attnum",
            (f'"{table.schema}"."{table.name}"',),
        ).fetchall()
    ]
    constraints = [
        row[0]
        for row in conn.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype IN ('p', 'u') ORDER BY 1",
            (f'"{table.schema}"."{table.name}"',),
        ).fetchall()
    ]
    return pk, constraints


def _block(keyword: str, name: str, lines: list[str]) -> str:
    return f"{keyword} {name} {{\n" + "".join(f"  {line}\n" for line in lines) + "}\n"


def _comparison(scalar: str) -> str:
    lines = [f"{op}: {scalar}" for op in COMPARISONS]
    lines += [f"_in: [{scalar}!]", f"_nin: [{scalar}!]", "_is_null: Boolean"]
    if scalar in ("String", "bpchar"):
        lines += [f"{op}: {scalar}" for op in TEXT_COMPARISONS]
    if scalar == "jsonb":
        lines += ["_contains: jsonb", "_contained_in: jsonb", "_has_key: String", "_has_keys_any: [String!]"]
    return _block("input", f"{scalar}_comparison_exp", lines)


def admin_sdl(metadata: Mapping[str, Any], catalog: Catalog, conn: Any, actions_sdl: str | None = None) -> str:
    """The SDL of the admin role's schema (see the module docstring for what is covered)."""
    relationships = resolve_relationships(metadata, catalog)
    tables = [table for table, _ in iter_tables(metadata)]
    names = {table: table.name if table.schema == "public" else f"{table.schema}_{table.name}" for table in tables}
    parts: list[str] = ["schema {\n  query: query_root\n  mutation: mutation_root\n}\n"]
    scalars: set[str] = set()
    query_root: list[str] = []
    mutation_root: list[str] = []
    list_args = (
        "(distinct_on: [{t}_select_column!], limit: Int, offset: Int, order_by: [{t}_order_by!], where: {t}_bool_exp)"
    )
    for table in tables:
        t = names[table]
        columns = _columns(conn, table)
        pk, constraints = _constraints(conn, table)
        scalars |= {c.type for c in columns}
        rels = relationships.get(table, {})
        args = list_args.format(t=t)
        fields = [f"{c.name}: {c.type}{'' if c.nullable else '!'}" for c in columns]
        bool_exp = [f"_and: [{t}_bool_exp!]", f"_not: {t}_bool_exp", f"_or: [{t}_bool_exp!]"]
        bool_exp += [f"{c.name}: {c.type}_comparison_exp" for c in columns]
        order = [f"{c.name}: order_by" for c in columns]
        insert = [f"{c.name}: {c.type}" for c in columns]
        for rel in rels.values():
            target = names[rel.target]
            bool_exp.append(f"{rel.name}: {target}_bool_exp")
            if rel.kind == "object":
                fields.append(f"{rel.name}: {target}")
                order.append(f"{rel.name}: {target}_order_by")
                insert.append(f"{rel.name}: {target}_obj_rel_insert_input")
            else:
                target_args = list_args.format(t=target)
                fields.append(f"{rel.name}{target_args}: [{target}!]!")
                fields.append(f"{rel.name}_aggregate{target_args}: {target}_aggregate!")
                order.append(f"{rel.name}_aggregate: {target}_aggregate_order_by")
                insert.append(f"{rel.name}: {target}_arr_rel_insert_input")
        numeric = [c for c in columns if c.type in NUMERIC]
        parts += [
            _block("type", t, fields),
            _block("type", f"{t}_aggregate", [f"aggregate: {t}_aggregate_fields", f"nodes: [{t}!]!"]),
            _block("type", f"{t}_aggregate_fields", [f"count(columns: [{t}_select_column!], distinct: Boolean): Int!"]),
            _block("input", f"{t}_aggregate_order_by", ["count: order_by"]),
            _block("enum", f"{t}_select_column", [c.name for c in columns]),
            _block("input", f"{t}_bool_exp", bool_exp),
            _block("input", f"{t}_order_by", order),
            _block("input", f"{t}_insert_input", insert),
            _block("input", f"{t}_set_input", [f"{c.name}: {c.type}" for c in columns]),
            _block("input", f"{t}_obj_rel_insert_input", [f"data: {t}_insert_input!", f"on_conflict: {t}_on_conflict"]),
            _block(
                "input", f"{t}_arr_rel_insert_input", [f"data: [{t}_insert_input!]!", f"on_conflict: {t}_on_conflict"]
            ),
            _block("enum", f"{t}_constraint", constraints or [f"{t}_pkey"]),
            _block("enum", f"{t}_update_column", [c.name for c in columns]),
            _block(
                "input",
                f"{t}_on_conflict",
                [f"constraint: {t}_constraint!", f"update_columns: [{t}_update_column!]! = []", f"where: {t}_bool_exp"],
            ),
            _block("type", f"{t}_mutation_response", ["affected_rows: Int!", f"returning: [{t}!]!"]),
        ]
        inc = ""
        if numeric:
            parts.append(_block("input", f"{t}_inc_input", [f"{c.name}: {c.type}" for c in numeric]))
            inc = f", _inc: {t}_inc_input"
        query_root += [f"{t}{args}: [{t}!]!", f"{t}_aggregate{args}: {t}_aggregate!"]
        mutation_root += [
            f"insert_{t}(objects: [{t}_insert_input!]!, on_conflict: {t}_on_conflict): {t}_mutation_response",
            f"insert_{t}_one(object: {t}_insert_input!, on_conflict: {t}_on_conflict): {t}",
            f"update_{t}(_set: {t}_set_input{inc}, where: {t}_bool_exp!): {t}_mutation_response",
            f"delete_{t}(where: {t}_bool_exp!): {t}_mutation_response",
        ]
        if pk:
            by_type = {c.name: c.type for c in columns}
            pk_args = ", ".join(f"{name}: {by_type[name]}!" for name in pk)
            parts.append(_block("input", f"{t}_pk_columns_input", [f"{name}: {by_type[name]}!" for name in pk]))
            query_root.append(f"{t}_by_pk({pk_args}): {t}")
            mutation_root += [
                f"update_{t}_by_pk(_set: {t}_set_input{inc}, pk_columns: {t}_pk_columns_input!): {t}",
                f"delete_{t}_by_pk({pk_args}): {t}",
            ]
    actions = load_actions_sdl() if actions_sdl is None else actions_sdl
    actions = re.sub(r"\btype Mutation\b", "extend type mutation_root", actions)
    actions = re.sub(r"\btype Query\b", "extend type query_root", actions)
    scalars |= set(re.findall(r":\s*\[?(\w+)", actions)) - set(
        re.findall(r"(?:type|input|enum|scalar)\s+(\w+)", actions)
    )
    scalars -= BUILTIN
    parts += [f"scalar {name}\n" for name in sorted(scalars)]
    parts += [_comparison(name) for name in sorted(scalars | {"String", "Int", "Boolean"})]
    parts.append(
        _block(
            "enum",
            "order_by",
            ["asc", "asc_nulls_first", "asc_nulls_last", "desc", "desc_nulls_first", "desc_nulls_last"],
        )
    )
    parts += [_block("type", "query_root", query_root), _block("type", "mutation_root", mutation_root), actions]
    return "\n".join(parts)

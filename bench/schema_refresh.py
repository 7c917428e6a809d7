"""What a refresh of Hasura's schema costs a serving edge: its time and the event loop's longest stall.

Every ``EDGE_SCHEMA_REFRESH_SECONDS`` (300 by default) and on ``POST /admin/schema/refresh`` the edge
introspects Hasura and, from the answer, builds the schema the cost model reads (``SchemaSource.refresh``),
on the event loop that serves requests. This builds a schema of Hasura's shape for ``--tables`` tables (per
table: the table's type with ``--columns`` text columns and an array relationship, its ``_aggregate``,
``_aggregate_fields``, ``_max_fields``, ``_bool_exp``, ``_order_by``, ``_insert_input``, ``_set_input``,
``_select_column`` and ``_mutation_response``; on the query root the list, ``_aggregate`` and ``_by_pk``
fields, on the mutation root insert, update and delete), answers its introspection from memory (no
network: the figures are the edge's own work), and runs ``SchemaSource.refresh`` with the cost model's
``on_change`` twice: once with a schema the edge did not have (the first, or a migration's) and once
more with the same answer, as the periodic refresh finds it almost every time.

    .venv/bin/python bench/schema_refresh.py [--tables 50 200 500] [--columns 12]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
from graphql import build_schema, get_introspection_query, graphql_sync

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loop_stall import longest_stall

from edge.graphql.cost import CostModel
from edge.graphql.schema_info import SchemaInfo
from edge.graphql.schema_source import SchemaSource
from edge.upstream.base import UpstreamResponse

COMPARISONS = """
enum order_by { asc asc_nulls_first asc_nulls_last desc desc_nulls_first desc_nulls_last }
input String_comparison_exp { _eq: String _gt: String _gte: String _ilike: String _in: [String!] _is_null: Boolean
  _like: String _lt: String _lte: String _neq: String _nilike: String _nin: [String!] _nlike: String }
input Int_comparison_exp { _eq: Int _gt: Int _gte: Int _in: [Int!] _is_null: Boolean _lt: Int _lte: Int _neq: Int
  _nin: [Int!] }
"""


def table_types(name: str, columns: int) -> str:
    """The types Hasura generates for one table with an ``id`` key, ``columns`` text columns and a relationship."""
    names = [f"c{n}" for n in range(columns)]
    text = " ".join(f"{column}: String" for column in names)
    compared = " ".join(f"{column}: String_comparison_exp" for column in names)
    ordered = " ".join(f"{column}: order_by" for column in names)
    rows = f"(limit: Int, offset: Int, order_by: [{name}_order_by!], where: {name}_bool_exp)"
    return f"""
type {name} {{ id: Int! {text} children{rows}: [{name}!]! }}
type {name}_aggregate {{ aggregate: {name}_aggregate_fields nodes: [{name}!]! }}
type {name}_aggregate_fields {{
  count(columns: [{name}_select_column!], distinct: Boolean): Int! max: {name}_max_fields min: {name}_max_fields
}}
type {name}_max_fields {{ id: Int {text} }}
input {name}_bool_exp {{
  _and: [{name}_bool_exp!] _not: {name}_bool_exp _or: [{name}_bool_exp!] id: Int_comparison_exp {compared}
}}
input {name}_order_by {{ id: order_by {ordered} }}
input {name}_insert_input {{ id: Int {text} }}
input {name}_set_input {{ id: Int {text} }}
enum {name}_select_column {{ id {" ".join(names)} }}
type {name}_mutation_response {{ affected_rows: Int! returning: [{name}!]! }}
"""


def hasura_like_schema(tables: int, columns: int) -> str:
    names = [f"table_{n}" for n in range(tables)]
    rows = "(limit: Int, offset: Int, order_by: [{0}_order_by!], where: {0}_bool_exp)"
    queries = "".join(
        f"{name}{rows.format(name)}: [{name}!]! {name}_aggregate(where: {name}_bool_exp): {name}_aggregate! "
        f"{name}_by_pk(id: Int!): {name}\n"
        for name in names
    )
    mutations = "".join(
        f"insert_{name}(objects: [{name}_insert_input!]!): {name}_mutation_response "
        f"update_{name}(_set: {name}_set_input, where: {name}_bool_exp!): {name}_mutation_response "
        f"delete_{name}(where: {name}_bool_exp!): {name}_mutation_response\n"
        for name in names
    )
    return (
        COMPARISONS
        + "".join(table_types(name, columns) for name in names)
        + f"type query_root {{\n{queries}}}\ntype mutation_root {{\n{mutations}}}\n"
        + "schema { query: query_root mutation: mutation_root }"
    )


class IntrospectionAnswer:
    """An upstream whose every POST gets the same introspection answer, without I/O."""

    def __init__(self, body: bytes) -> None:
        self.response = UpstreamResponse(200, [(b"content-type", b"application/json")], body)

    async def post(
        self,
        body: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        *,
        timeout: float | None = None,
        idempotent: bool = False,
    ) -> UpstreamResponse:
        return self.response


async def refresh_twice(body: bytes) -> list[tuple[float, float]]:
    """Seconds and longest stall of a refresh to a new schema, then of one to the same schema."""
    models: list[CostModel] = []

    def on_change(schema: SchemaInfo) -> None:
        models.append(CostModel(schema, None, default_list_size=100))

    source = SchemaSource(
        IntrospectionAnswer(body),  # type: ignore[arg-type]  # post is all a refresh calls
        admin_secret="bench",
        refresh_seconds=0,
        on_change=on_change,
    )
    figures = []
    for _ in range(2):
        done = asyncio.Event()
        probe = asyncio.create_task(longest_stall(done))
        await asyncio.sleep(0)  # the probe is waiting before the refresh starts
        started = time.perf_counter()
        try:
            if not await source.refresh():
                raise RuntimeError("the refresh failed")
        finally:
            done.set()
        figures.append((time.perf_counter() - started, await probe))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, nargs="+", default=[50, 200, 500])
    parser.add_argument("--columns", type=int, default=12)
    args = parser.parse_args()
    print("tables | types | answer MB | new schema ms | its longest stall ms | same schema ms | its longest stall ms")
    for tables in args.tables:
        schema = build_schema(hasura_like_schema(tables, args.columns))
        result = graphql_sync(schema, get_introspection_query(descriptions=False))
        body = orjson.dumps({"data": result.data})
        (new, new_stall), (same, same_stall) = asyncio.run(refresh_twice(body))
        print(
            f"{tables:,} | {len(schema.type_map):,} | {len(body) / 1e6:.1f} | {new * 1000:.0f} | "
            f"{new_stall * 1000:.0f} | {same * 1000:.0f} | {same_stall * 1000:.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``DEMO_SDL``: the schema Hasura would generate for the demo e-commerce + collaborative-documents database.

The SDL is rendered from a compact table description so that every table gets exactly the shapes Hasura
generates (roots ``query_root``/``mutation_root``/``subscription_root``; ``<t>``, ``<t>_by_pk``,
``<t>_aggregate`` and ``<t>_stream`` root fields; list arguments ``distinct_on/limit/offset/order_by/where``;
object and array relationships with their ``_aggregate``; ``insert_/update_/delete_`` mutations; and one
action, ``processPayment``). Comparison and ordering input types are kept small but valid.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEMO_SDL", "TABLES", "Column", "Table", "render_sdl"]

ORDERABLE = ("String", "Int", "uuid", "numeric", "timestamptz")
SUMMABLE = ("Int", "numeric")
COMPARISONS: dict[str, tuple[str, ...]] = {
    "Boolean": ("_eq", "_neq", "_is_null"),
    "Int": ("_eq", "_neq", "_gt", "_gte", "_lt", "_lte", "_in", "_nin", "_is_null"),
    "String": ("_eq", "_neq", "_gt", "_lt", "_in", "_nin", "_like", "_ilike", "_is_null"),
    "uuid": ("_eq", "_neq", "_in", "_nin", "_is_null"),
    "numeric": ("_eq", "_neq", "_gt", "_gte", "_lt", "_lte", "_in", "_is_null"),
    "timestamptz": ("_eq", "_neq", "_gt", "_gte", "_lt", "_lte", "_is_null"),
    "jsonb": ("_eq", "_contains", "_has_key", "_is_null"),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    object_rels: tuple[tuple[str, str], ...] = ()
    array_rels: tuple[tuple[str, str], ...] = ()
    mutations: bool = False
    pk: tuple[str, ...] = ("id",)

    def column(self, name: str) -> Column:
        return next(col for col in self.columns if col.name == name)


def _c(spec: str) -> tuple[Column, ...]:
    """``"id:uuid name:String note:String?"`` -> columns (``?`` marks a nullable column)."""
    cols = []
    for item in spec.split():
        name, type_ = item.split(":")
        cols.append(Column(name, type_.rstrip("?"), nullable=type_.endswith("?")))
    return tuple(cols)


TABLES: tuple[Table, ...] = (
    Table(
        "users",
        _c("id:uuid email:String name:String role:String created_at:timestamptz updated_at:timestamptz?"),
        array_rels=(("orders", "orders"), ("documents", "documents")),
        mutations=True,
    ),
    Table(
        "products",
        _c(
            "id:uuid sku:String name:String description:String? price:numeric currency:String active:Boolean "
            "attributes:jsonb? created_at:timestamptz"
        ),
        array_rels=(("inventory", "inventory"), ("order_items", "order_items")),
        mutations=True,
    ),
    Table(
        "warehouses",
        _c("id:uuid code:String name:String city:String created_at:timestamptz"),
        array_rels=(("inventory", "inventory"),),
    ),
    Table(
        "inventory",
        _c(
            "id:uuid product_id:uuid warehouse_id:uuid quantity:Int reserved:Int low_stock_threshold:Int "
            "updated_at:timestamptz"
        ),
        object_rels=(("product", "products"), ("warehouse", "warehouses")),
        mutations=True,
    ),
    Table(
        "orders",
        _c(
            "id:uuid user_id:uuid status:String total:numeric currency:String created_at:timestamptz "
            "updated_at:timestamptz?"
        ),
        object_rels=(("user", "users"),),
        array_rels=(("items", "order_items"), ("payments", "payments")),
        mutations=True,
    ),
    Table(
        "order_items",
        _c("id:uuid order_id:uuid product_id:uuid quantity:Int unit_price:numeric"),
        object_rels=(("order", "orders"), ("product", "products")),
        mutations=True,
    ),
    Table(
        "payments",
        _c(
            "id:uuid order_id:uuid amount:numeric currency:String status:String "
            "provider_ref:String? idempotency_key:String created_at:timestamptz"
        ),
        object_rels=(("order", "orders"),),
    ),
    Table(
        "documents",
        _c(
            "id:uuid owner_id:uuid title:String body:String content:String version:Int metadata:jsonb? "
            "created_at:timestamptz updated_at:timestamptz?"
        ),
        object_rels=(("owner", "users"),),
        array_rels=(("collaborators", "document_collaborators"), ("history", "document_history")),
        mutations=True,
    ),
    Table(
        "document_collaborators",
        _c("id:uuid document_id:uuid user_id:uuid permission:String added_at:timestamptz"),
        object_rels=(("document", "documents"), ("user", "users")),
        mutations=True,
    ),
    Table(
        "document_history",
        _c("id:Int document_id:uuid version:Int editor_id:uuid change:jsonb created_at:timestamptz"),
        object_rels=(("document", "documents"), ("editor", "users")),
    ),
)

# Every Hasura v2 schema declares @cached (``cachedDirective`` in Hasura's parser directives: "whether this
# query should be cached (Hasura Cloud only)"); CE accepts it and caches nothing.
CACHED_DIRECTIVE = (
    '"""whether this query should be cached (Hasura Cloud only)"""\n'
    'directive @cached("""measured in seconds""" ttl: Int! = 60,'
    ' """refresh the cache entry""" refresh: Boolean! = false) on QUERY\n'
)

ACTION_SDL = """
"the result of the processPayment action"
type PaymentResult {
  paymentId: uuid!
  orderId: uuid!
  status: String!
  amount: numeric!
  currency: String!
  createdAt: timestamptz!
}
"""


def _desc(text: str) -> str:
    """A single-line SDL description string."""
    return '"' + text.replace('"', '\\"') + '"'


def _list_args(table: str) -> str:
    return (
        f"(distinct_on: [{table}_select_column!], limit: Int, offset: Int, "
        f"order_by: [{table}_order_by!], where: {table}_bool_exp)"
    )


def _type_ref(col: Column) -> str:
    return col.type if col.nullable else f"{col.type}!"


def _block(keyword: str, name: str, lines: list[str]) -> str:
    body = "\n".join(f"  {line}" for line in lines)
    return f"{keyword} {name} {{\n{body}\n}}\n"


def _table_types(t: Table) -> list[str]:
    n = t.name
    out: list[str] = []
    fields = [f"{col.name}: {_type_ref(col)}" for col in t.columns]
    for rel, target in t.object_rels:
        fields.append(f"{_desc('An object relationship')}\n  {rel}: {target}!")
    for rel, target in t.array_rels:
        fields.append(f"{_desc('An array relationship')}\n  {rel}{_list_args(target)}: [{target}!]!")
        fields.append(
            f"{_desc('An aggregate relationship')}\n  {rel}_aggregate{_list_args(target)}: {target}_aggregate!"
        )
    out.append(_desc(f'columns and relationships of "{n}"') + "\n" + _block("type", n, fields))
    out.append(_block("type", f"{n}_aggregate", [f"aggregate: {n}_aggregate_fields", f"nodes: [{n}!]!"]))
    agg = [
        f"count(columns: [{n}_select_column!], distinct: Boolean): Int!",
        f"max: {n}_max_fields",
        f"min: {n}_min_fields",
    ]
    orderable = [c for c in t.columns if c.type in ORDERABLE]
    summable = [c for c in t.columns if c.type in SUMMABLE]
    if summable:
        agg += [f"avg: {n}_avg_fields", f"sum: {n}_sum_fields"]
        out.append(_block("type", f"{n}_avg_fields", [f"{c.name}: Float" for c in summable]))
        out.append(_block("type", f"{n}_sum_fields", [f"{c.name}: {c.type}" for c in summable]))
    out.append(_block("type", f"{n}_aggregate_fields", agg))
    for kind in ("max", "min"):
        out.append(_block("type", f"{n}_{kind}_fields", [f"{c.name}: {c.type}" for c in orderable]))
    out.append(_block("enum", f"{n}_select_column", [c.name for c in t.columns]))
    bool_exp = [f"_and: [{n}_bool_exp!]", f"_not: {n}_bool_exp", f"_or: [{n}_bool_exp!]"]
    bool_exp += [f"{c.name}: {c.type}_comparison_exp" for c in t.columns]
    bool_exp += [f"{rel}: {target}_bool_exp" for rel, target in (*t.object_rels, *t.array_rels)]
    out.append(_block("input", f"{n}_bool_exp", bool_exp))
    order = [f"{c.name}: order_by" for c in t.columns]
    order += [f"{rel}: {target}_order_by" for rel, target in t.object_rels]
    order += [f"{rel}_aggregate: {target}_aggregate_order_by" for rel, target in t.array_rels]
    out.append(_block("input", f"{n}_order_by", order))
    out.append(_block("input", f"{n}_aggregate_order_by", ["count: order_by"]))
    out.append(
        _block(
            "input",
            f"{n}_stream_cursor_input",
            [f"initial_value: {n}_stream_cursor_value_input!", "ordering: cursor_ordering"],
        )
    )
    out.append(_block("input", f"{n}_stream_cursor_value_input", [f"{c.name}: {c.type}" for c in t.columns]))
    if t.mutations:
        pk_cols = [t.column(pk) for pk in t.pk]
        out.append(_block("input", f"{n}_insert_input", [f"{c.name}: {c.type}" for c in t.columns]))
        out.append(_block("input", f"{n}_set_input", [f"{c.name}: {c.type}" for c in t.columns]))
        out.append(_block("input", f"{n}_pk_columns_input", [f"{c.name}: {c.type}!" for c in pk_cols]))
        out.append(_block("enum", f"{n}_constraint", [f"{n}_pkey"]))
        out.append(_block("enum", f"{n}_update_column", [c.name for c in t.columns]))
        out.append(
            _block(
                "input",
                f"{n}_on_conflict",
                [f"constraint: {n}_constraint!", f"update_columns: [{n}_update_column!]! = []", f"where: {n}_bool_exp"],
            )
        )
        out.append(
            _block(
                "type",
                f"{n}_mutation_response",
                [
                    f"{_desc('number of rows affected by the mutation')}\n  affected_rows: Int!",
                    f"{_desc('data from the rows affected by the mutation')}\n  returning: [{n}!]!",
                ],
            )
        )
    return out


def _pk_args(t: Table) -> str:
    return ", ".join(f"{c.name}: {c.type}!" for c in (t.column(pk) for pk in t.pk))


def _root_reads(t: Table, *, stream: bool) -> list[str]:
    n = t.name
    fields = [
        _desc(f'fetch data from the table: "{n}"') + f"\n  {n}{_list_args(n)}: [{n}!]!",
        _desc(f'fetch aggregated fields from the table: "{n}"') + f"\n  {n}_aggregate{_list_args(n)}: {n}_aggregate!",
        _desc(f'fetch data from the table: "{n}" using primary key columns') + f"\n  {n}_by_pk({_pk_args(t)}): {n}",
    ]
    if stream:
        fields.append(
            _desc(f'fetch data from the table in a streaming manner: "{n}"') + f"\n  {n}_stream("
            f"batch_size: Int!, cursor: [{n}_stream_cursor_input]!, where: {n}_bool_exp): [{n}!]!"
        )
    return fields


def _root_mutations(t: Table) -> list[str]:
    n = t.name
    return [
        f"insert_{n}(objects: [{n}_insert_input!]!, on_conflict: {n}_on_conflict): {n}_mutation_response",
        f"insert_{n}_one(object: {n}_insert_input!, on_conflict: {n}_on_conflict): {n}",
        f"update_{n}(_set: {n}_set_input, where: {n}_bool_exp!): {n}_mutation_response",
        f"update_{n}_by_pk(_set: {n}_set_input, pk_columns: {n}_pk_columns_input!): {n}",
        f"delete_{n}(where: {n}_bool_exp!): {n}_mutation_response",
        f"delete_{n}_by_pk({_pk_args(t)}): {n}",
    ]


def _scalars_and_inputs() -> list[str]:
    out = [f"scalar {name}\n" for name in ("jsonb", "numeric", "timestamptz", "uuid")]
    for scalar, ops in COMPARISONS.items():
        lines = []
        for op in ops:
            if op in ("_in", "_nin"):
                lines.append(f"{op}: [{scalar}!]")
            elif op == "_is_null":
                lines.append(f"{op}: Boolean")
            elif op == "_has_key":
                lines.append(f"{op}: String")
            else:
                lines.append(f"{op}: {scalar}")
        out.append(_block("input", f"{scalar}_comparison_exp", lines))
    out.append(
        _block(
            "enum",
            "order_by",
            ["asc", "asc_nulls_first", "asc_nulls_last", "desc", "desc_nulls_first", "desc_nulls_last"],
        )
    )
    out.append(_block("enum", "cursor_ordering", ["ASC", "DESC"]))
    return out


def render_sdl(tables: tuple[Table, ...] = TABLES) -> str:
    """Render the Hasura-shaped SDL for ``tables`` (plus the ``processPayment`` action)."""
    parts = ["schema {\n  query: query_root\n  mutation: mutation_root\n  subscription: subscription_root\n}\n"]
    parts += _scalars_and_inputs()
    for table in tables:
        parts += _table_types(table)
    parts.append(ACTION_SDL.lstrip("\n"))
    parts.append(CACHED_DIRECTIVE)
    parts.append(_block("type", "query_root", [f for t in tables for f in _root_reads(t, stream=False)]))
    mutations = [f for t in tables if t.mutations for f in _root_mutations(t)]
    mutations.append(
        _desc("charge an order through the payment provider (action)") + "\n  processPayment("
        "orderId: uuid!, amount: numeric!, currency: String!, idempotencyKey: String!): PaymentResult"
    )
    parts.append(_block("type", "mutation_root", mutations))
    parts.append(_block("type", "subscription_root", [f for t in tables for f in _root_reads(t, stream=True)]))
    return "\n".join(parts)


DEMO_SDL: str = render_sdl()

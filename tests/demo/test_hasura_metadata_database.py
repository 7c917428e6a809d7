"""hasura/metadata against the migrated database: everything it names exists, relationships follow real foreign
keys, and the permission filters (compiled to SQL the way Hasura applies them) let each demo user see and change
exactly the rows they should."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from edge.db.cli import main as db_main
from tests.support.hasura_metadata import (
    Catalog,
    Relationship,
    TableRef,
    bool_exp_sql,
    iter_tables,
    load_actions_sdl,
    load_metadata,
    resolve_relationships,
    undeclared_type_names,
)

pytestmark = pytest.mark.postgres

ALICE = "11111111-1111-4111-8111-111111111111"
BOB = "22222222-2222-4222-8222-222222222222"
CAROL = "33333333-3333-4333-8333-333333333333"
DAVE = "44444444-4444-4444-8444-444444444444"
SHARED_DOC = "dddddddd-0000-4000-8000-000000000001"
BOBS_DOC = "dddddddd-0000-4000-8000-000000000002"
ALICES_ORDER = "cccccccc-0000-4000-8000-000000000001"
BOBS_ORDER = "cccccccc-0000-4000-8000-000000000002"

LOGICAL = {"_and", "_or", "_not", "_exists"}
OPERATORS = {
    "_eq", "_neq", "_gt", "_lt", "_gte", "_lte", "_in", "_nin", "_is_null", "_like", "_nlike", "_ilike", "_nilike",
    "_similar", "_nsimilar", "_regex", "_nregex", "_iregex", "_niregex", "_ceq", "_cne", "_cgt", "_clt", "_cgte",
    "_clte", "_contains", "_contained_in", "_has_key", "_has_keys_any", "_has_keys_all",
}  # fmt: skip


@pytest.fixture(scope="module")
def metadata() -> dict[str, Any]:
    return load_metadata()


@pytest.fixture(scope="module")
def catalog(seeded_database_url: str) -> Catalog:
    # As in the compose demo, the edge's own migrations share the database with the demo's.
    assert db_main(["upgrade"], database_url=seeded_database_url, out=io.StringIO()) == 0
    with psycopg.connect(seeded_database_url) as conn:
        return Catalog.load(conn, schemas=("public", "edge"))


@pytest.fixture(scope="module")
def relationships(metadata: dict[str, Any], catalog: Catalog) -> dict[TableRef, dict[str, Relationship]]:
    return resolve_relationships(metadata, catalog)


def test_tracked_tables_are_exactly_the_public_tables(metadata: dict[str, Any], catalog: Catalog) -> None:
    tracked = {table for table, _ in iter_tables(metadata)}
    public = {table for table in catalog.columns if table.schema == "public"}
    assert tracked == public
    assert TableRef("edge", "api_keys") in catalog.columns  # the edge's, in the same database: not tracked
    assert TableRef("edge", "api_keys") not in tracked


def test_relationships_follow_foreign_keys(
    relationships: dict[TableRef, dict[str, Relationship]], catalog: Catalog
) -> None:
    expected = {
        ("orders", "user"): ("object", "users"),
        ("orders", "items"): ("array", "order_items"),
        ("orders", "payments"): ("array", "payments"),
        ("order_items", "product"): ("object", "products"),
        ("order_items", "order"): ("object", "orders"),
        ("products", "inventory"): ("array", "inventory"),
        ("inventory", "product"): ("object", "products"),
        ("inventory", "warehouse"): ("object", "warehouses"),
        ("users", "orders"): ("array", "orders"),
        ("documents", "collaborators"): ("array", "document_collaborators"),
        ("documents", "history"): ("array", "document_history"),
        ("documents", "owner"): ("object", "users"),
        ("payments", "order"): ("object", "orders"),
    }
    for (table, name), (kind, target) in expected.items():
        rel = relationships[TableRef("public", table)][name]
        assert (rel.kind, rel.target) == (kind, TableRef("public", target)), f"{table}.{name}"
    for table_rels in relationships.values():
        for rel in table_rels.values():
            assert rel.target in catalog.columns and rel.target.schema == "public"
            for source_column, target_column in rel.column_mapping.items():
                assert source_column in catalog.columns[rel.source]
                assert target_column in catalog.columns[rel.target]


def _check_bool_exp(
    exp: Any,
    table: TableRef,
    catalog: Catalog,
    relationships: dict[TableRef, dict[str, Relationship]],
    where: str,
) -> list[str]:
    """Problems in a boolean expression: unknown columns, relationships, operators (walks relationships)."""
    if not isinstance(exp, dict):
        return [f"{where}: expected an object, got {exp!r}"]
    problems: list[str] = []
    for key, value in exp.items():
        here = f"{where}.{key}"
        if key in ("_and", "_or"):
            for index, item in enumerate(value):
                problems += _check_bool_exp(item, table, catalog, relationships, f"{here}[{index}]")
        elif key == "_not":
            problems += _check_bool_exp(value, table, catalog, relationships, here)
        elif key == "_exists":
            target = TableRef.from_metadata(value["_table"])
            if target not in catalog.columns:
                problems.append(f"{here}: no table {target}")
            else:
                problems += _check_bool_exp(value["_where"], target, catalog, relationships, here)
        elif key in relationships.get(table, {}):
            problems += _check_bool_exp(value, relationships[table][key].target, catalog, relationships, here)
        elif key in catalog.columns[table]:
            if not isinstance(value, dict) or not value:
                problems.append(f"{here}: expected operators, got {value!r}")
                continue
            problems += [f"{here}: unknown operator {op}" for op in value if op not in OPERATORS]
            problems += [
                f"{here}.{op}: no column {operand!r}"
                for op, operand in value.items()
                if op.startswith("_c") and op in OPERATORS and operand not in catalog.columns[table]
            ]
        else:
            problems.append(f"{here}: {table} has no column or relationship {key!r}")
    return problems


def test_every_name_in_the_metadata_exists(
    metadata: dict[str, Any], catalog: Catalog, relationships: dict[TableRef, dict[str, Relationship]]
) -> None:
    problems: list[str] = []
    for table, entry in iter_tables(metadata):
        columns = catalog.columns[table]
        for kind in ("insert", "select", "update", "delete"):
            for permission in entry.get(f"{kind}_permissions", []):
                where = f"{table} {kind}[{permission['role']}]"
                body = permission["permission"]
                listed = body.get("columns", [])
                if listed != "*":
                    problems += [f"{where}: no column {c}" for c in listed if c not in columns]
                problems += [f"{where}.set: no column {c}" for c in body.get("set") or {} if c not in columns]
                for key in ("filter", "check"):
                    if body.get(key) is not None:
                        problems += _check_bool_exp(body[key], table, catalog, relationships, f"{where}.{key}")
        for trigger in entry.get("event_triggers", []):
            for op, spec in trigger["definition"].items():
                if op == "enable_manual":
                    continue
                for key in ("columns", "payload"):
                    if isinstance(spec.get(key), list):
                        problems += [f"{trigger['name']}.{op}: no column {c}" for c in spec[key] if c not in columns]
    assert problems == []


def test_action_scalars_are_postgres_types_of_tracked_columns(metadata: dict[str, Any], catalog: Catalog) -> None:
    tracked = {table for table, _ in iter_tables(metadata)}
    column_types = {udt for table in tracked for udt in catalog.columns[table].values()}
    assert undeclared_type_names(load_actions_sdl()) <= column_types


# --- Permission semantics on the seeded data --------------------------------------------------------------------


@pytest.fixture(scope="module")
def conn(seeded_database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(seeded_database_url, autocommit=True) as connection:
        yield connection


def _permission(metadata: dict[str, Any], table: str, kind: str, role: str) -> dict[str, Any] | None:
    entry = dict(iter_tables(metadata))[TableRef("public", table)]
    return next((p["permission"] for p in entry.get(f"{kind}_permissions", []) if p["role"] == role), None)


def _rows(
    conn: psycopg.Connection,
    metadata: dict[str, Any],
    relationships: dict[TableRef, dict[str, Relationship]],
    *,
    table: str,
    kind: str,
    key: str,
    role: str,
    user: str | None,
    column: str = "id",
) -> set[str]:
    """The ``column`` values of the rows that ``role`` (as ``user``) may select / update / delete."""
    permission = _permission(metadata, table, kind, role)
    if permission is None:
        return set()
    session = {"x-hasura-role": role} | ({"x-hasura-user-id": user} if user else {})
    condition = bool_exp_sql(permission[key], TableRef("public", table), "t", relationships, session)
    query = sql.SQL("SELECT {}::text FROM public.{} AS t WHERE {}").format(
        sql.Identifier(column), sql.Identifier(table), condition
    )
    return {row[0] for row in conn.execute(query).fetchall()}


def test_documents_are_visible_to_owners_and_collaborators_only(
    conn: psycopg.Connection, metadata: dict[str, Any], relationships: dict[TableRef, dict[str, Relationship]]
) -> None:
    def visible(table: str, user: str, column: str = "id") -> set[str]:
        return _rows(
            conn,
            metadata,
            relationships,
            table=table,
            kind="select",
            key="filter",
            role="user",
            user=user,
            column=column,
        )

    assert visible("documents", ALICE) == {SHARED_DOC}
    assert visible("documents", BOB) == {SHARED_DOC, BOBS_DOC}
    assert visible("documents", CAROL) == {SHARED_DOC}
    assert visible("documents", DAVE) == set()
    assert visible("document_history", CAROL, "document_id") == {SHARED_DOC}
    assert visible("document_history", DAVE, "document_id") == set()
    assert visible("document_collaborators", BOB, "document_id") == {SHARED_DOC, BOBS_DOC}
    assert visible("document_collaborators", DAVE, "document_id") == set()
    assert (
        _rows(
            conn, metadata, relationships, table="documents", kind="select", key="filter", role="anonymous", user=None
        )
        == set()
    )


def test_documents_are_editable_by_owners_and_editors_only(
    conn: psycopg.Connection, metadata: dict[str, Any], relationships: dict[TableRef, dict[str, Relationship]]
) -> None:
    def editable(user: str) -> set[str]:
        return _rows(
            conn, metadata, relationships, table="documents", kind="update", key="filter", role="user", user=user
        )

    assert editable(ALICE) == {SHARED_DOC}
    assert editable(BOB) == {SHARED_DOC, BOBS_DOC}
    assert editable(CAROL) == set()  # viewer
    assert editable(DAVE) == set()
    update = _permission(metadata, "documents", "update", "user")
    assert update is not None and set(update["columns"]) == {"title", "content"}


def test_orders_payments_and_items_are_visible_to_their_owner_only(
    conn: psycopg.Connection, metadata: dict[str, Any], relationships: dict[TableRef, dict[str, Relationship]]
) -> None:
    def visible(table: str, user: str, column: str = "id") -> set[str]:
        return _rows(
            conn,
            metadata,
            relationships,
            table=table,
            kind="select",
            key="filter",
            role="user",
            user=user,
            column=column,
        )

    assert visible("orders", ALICE) == {ALICES_ORDER}
    assert visible("orders", BOB) == {BOBS_ORDER}
    assert visible("orders", DAVE) == set()
    assert visible("order_items", ALICE, "order_id") == {ALICES_ORDER}
    assert visible("payments", BOB, "order_id") == {BOBS_ORDER}
    assert visible("payments", ALICE) == set()
    assert visible("users", CAROL) == {CAROL}


def test_order_item_insert_check_goes_through_the_order_owner(
    conn: psycopg.Connection, metadata: dict[str, Any], relationships: dict[TableRef, dict[str, Relationship]]
) -> None:
    """The insert check is evaluated on the new row: only items of the caller's own open orders pass."""
    check = _permission(metadata, "order_items", "insert", "user")
    assert check is not None

    def passes(user: str, order_id: str) -> bool:
        session = {"x-hasura-role": "user", "x-hasura-user-id": user}
        condition = bool_exp_sql(check["check"], TableRef("public", "order_items"), "t", relationships, session)
        query = sql.SQL("SELECT {} FROM (SELECT %s::uuid AS order_id) AS t").format(condition)
        row = conn.execute(query, (order_id,)).fetchone()
        return bool(row and row[0])

    assert passes(ALICE, ALICES_ORDER)
    assert not passes(BOB, ALICES_ORDER)
    assert not passes(BOB, BOBS_ORDER)  # already paid


def test_catalog_is_public(
    conn: psycopg.Connection, metadata: dict[str, Any], relationships: dict[TableRef, dict[str, Relationship]]
) -> None:
    for role in ("anonymous", "user"):
        products = _rows(
            conn, metadata, relationships, table="products", kind="select", key="filter", role=role, user=None
        )
        assert len(products) == conn.execute("SELECT count(*) FROM products").fetchone()[0]

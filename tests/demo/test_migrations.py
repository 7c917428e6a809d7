"""The Hasura CLI migrations: layout, up/down symmetry on a real PostgreSQL, and the constraints they promise."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest
from psycopg import errors

from tests.support.migrations import (
    MIGRATIONS_DIR,
    REPO_ROOT,
    apply_down,
    apply_up,
    discover,
    schema_snapshot,
)
from tests.support.postgres import fresh_database

pytestmark = pytest.mark.postgres

ALICE = "11111111-1111-4111-8111-111111111111"


def test_layout_follows_the_hasura_cli() -> None:
    migrations = discover()
    assert len(migrations) >= 5
    assert [m.version for m in migrations] == sorted({m.version for m in migrations})
    for migration in migrations:
        # <ms-timestamp>_<name>: a 13-digit Unix time in milliseconds, as `hasura migrate create` writes it.
        assert re.fullmatch(r"\d{13}", str(migration.version)), migration.path.name
        assert migration.up_sql.strip(), f"{migration.path}/up.sql is empty"
        assert migration.down_sql.strip(), f"{migration.path}/down.sql is empty"
    assert MIGRATIONS_DIR.parent.name == "migrations"
    assert MIGRATIONS_DIR.name == "default"  # must match the source name in databases.yaml


def test_no_create_all_outside_migrations() -> None:
    """The schema comes from migrations only: no ORM metadata create-all call anywhere in the code."""
    call = re.compile(r"\.create" + r"_all\(")
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for folder in ("edge", "actions", "tests", "bench")
        if (REPO_ROOT / folder).is_dir()
        for path in (REPO_ROOT / folder).rglob("*.py")
        if call.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


@pytest.fixture
def empty_database(postgres_server_url: str) -> Iterator[str]:
    with fresh_database(postgres_server_url, prefix="migrations_updown") as url:
        yield url


def test_up_down_up_restores_exactly_the_same_schema(empty_database: str) -> None:
    before = schema_snapshot(empty_database)
    apply_up(empty_database)
    after_up = schema_snapshot(empty_database)
    assert after_up != before
    apply_down(empty_database)
    assert schema_snapshot(empty_database) == before
    apply_up(empty_database)
    assert schema_snapshot(empty_database) == after_up


def test_each_down_undoes_exactly_its_own_up(empty_database: str) -> None:
    for migration in discover():
        before = schema_snapshot(empty_database)
        apply_up(empty_database, [migration])
        assert schema_snapshot(empty_database) != before, f"{migration.name} changed nothing"
        apply_down(empty_database, [migration])
        assert schema_snapshot(empty_database) == before, f"{migration.name}: down.sql left objects behind"
        apply_up(empty_database, [migration])


EXPECTED_COLUMNS = {
    "public.users": {"id", "email", "display_name", "created_at"},
    "public.products": {"id", "sku", "name", "description", "price", "currency", "created_at"},
    "public.warehouses": {"id", "code", "name"},
    "public.inventory": {"product_id", "warehouse_id", "quantity", "low_stock_threshold", "updated_at"},
    "public.orders": {"id", "user_id", "status", "total", "currency", "created_at", "updated_at"},
    "public.order_items": {"order_id", "product_id", "quantity", "unit_price"},
    "public.payments": {
        "id", "order_id", "user_id", "amount", "currency", "status", "provider", "provider_reference",
        "idempotency_key", "created_at",
    },
    "public.payment_idempotency": {
        "user_id", "idempotency_key", "request_fingerprint", "state", "response_status", "response_body",
        "created_at",
    },
    "public.documents": {"id", "owner_id", "title", "content", "version", "created_at", "updated_at"},
    "public.document_collaborators": {"document_id", "user_id", "role"},
    "public.document_history": {
        "id", "document_id", "version", "author_id", "diff", "event_id", "content_after", "created_at",
    },
    "public.low_stock_alerts": {
        "id", "product_id", "warehouse_id", "quantity", "threshold", "event_id", "created_at",
    },
    "public.order_confirmations": {"id", "order_id", "user_id", "event_id", "created_at"},
}  # fmt: skip


def test_the_edge_schema_is_left_to_the_edge(migrated_database_url: str) -> None:
    """The edge creates its own tables (`python -m edge db upgrade`, edge/db/migrations/): the demo's
    migrations create nothing in its schema."""
    with psycopg.connect(migrated_database_url) as conn:
        schemas = {row[0] for row in conn.execute("SELECT nspname FROM pg_namespace").fetchall()}
    assert "edge" not in schemas


def _columns(conn: psycopg.Connection, qualified: str) -> dict[str, tuple[str, str, str | None]]:
    schema, table = qualified.split(".")
    rows = conn.execute(
        "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s",
        (schema, table),
    ).fetchall()
    return {name: (data_type, nullable, default) for name, data_type, nullable, default in rows}


def test_tables_and_columns(migrated_database_url: str) -> None:
    with psycopg.connect(migrated_database_url) as conn:
        for table, expected in EXPECTED_COLUMNS.items():
            columns = _columns(conn, table)
            assert expected <= set(columns), f"{table} lacks {expected - set(columns)}"
        users = _columns(conn, "public.users")
        assert users["id"][0] == "uuid"
        assert users["id"][2] == "gen_random_uuid()"
        for table, column in [("public.products", "price"), ("public.orders", "total"), ("public.payments", "amount")]:
            precision = conn.execute(
                "SELECT numeric_precision, numeric_scale FROM information_schema.columns"
                " WHERE table_schema || '.' || table_name = %s AND column_name = %s",
                (table, column),
            ).fetchone()
            assert precision == (12, 2), f"{table}.{column}"
        assert _columns(conn, "public.documents")["version"][1:] == ("NO", "1")


def _unique_keys(conn: psycopg.Connection, qualified: str) -> set[tuple[str, ...]]:
    rows = conn.execute(
        """
        SELECT array_agg(a.attname ORDER BY k.ord)
        FROM pg_index i
        CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = %s::regclass AND i.indisunique AND i.indpred IS NULL
        GROUP BY i.indexrelid
        """,
        (qualified,),
    ).fetchall()
    return {tuple(row[0]) for row in rows}


def _indexed_leading_columns(conn: psycopg.Connection, qualified: str) -> set[str]:
    rows = conn.execute(
        """
        SELECT a.attname FROM pg_index i
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = %s::regclass
        """,
        (qualified,),
    ).fetchall()
    return {row[0] for row in rows}


def test_keys_and_indexes(migrated_database_url: str) -> None:
    with psycopg.connect(migrated_database_url) as conn:
        assert ("email",) in _unique_keys(conn, "public.users")
        assert ("sku",) in _unique_keys(conn, "public.products")
        assert {tuple(sorted(k)) for k in _unique_keys(conn, "public.inventory")} >= {("product_id", "warehouse_id")}
        assert ("user_id", "idempotency_key") in _unique_keys(conn, "public.payment_idempotency")
        assert ("document_id", "user_id") in _unique_keys(conn, "public.document_collaborators")
        assert ("event_id",) in _unique_keys(conn, "public.document_history")
        assert ("document_id", "version") in _unique_keys(conn, "public.document_history")
        assert ("event_id",) in _unique_keys(conn, "public.low_stock_alerts")
        assert ("event_id",) in _unique_keys(conn, "public.order_confirmations")
        assert "name" in _indexed_leading_columns(conn, "public.products")
        assert "product_id" in _indexed_leading_columns(conn, "public.inventory")
        # Every foreign key column is the leading column of some index (Hasura relationships filter on them).
        missing = conn.execute(
            """
            SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
            WHERE c.contype = 'f' AND NOT EXISTS (
                SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1])
            """
        ).fetchall()
        assert missing == []


# --- Constraints, exercised with real rows ------------------------------------------------------------------


@pytest.fixture
def conn(migrated_database_url: str) -> Iterator[psycopg.Connection]:
    """A connection whose work is rolled back after the test."""
    with psycopg.connect(migrated_database_url) as connection:
        yield connection
        connection.rollback()


def _user(conn: psycopg.Connection, user_id: str = ALICE) -> str:
    conn.execute(
        "INSERT INTO users (id, email, display_name) VALUES (%s, %s, 'U') ON CONFLICT DO NOTHING",
        (user_id, f"{user_id}@example.com"),
    )
    return user_id


def _product(conn: psycopg.Connection, price: str = "10.00", currency: str = "USD") -> uuid.UUID:
    row = conn.execute(
        "INSERT INTO products (sku, name, price, currency) VALUES (%s, 'P', %s, %s) RETURNING id",
        (f"SKU-{uuid.uuid4().hex[:8]}", price, currency),
    ).fetchone()
    assert row is not None
    return row[0]


def _order(conn: psycopg.Connection, currency: str = "USD") -> uuid.UUID:
    row = conn.execute(
        "INSERT INTO orders (user_id, currency) VALUES (%s, %s) RETURNING id", (_user(conn), currency)
    ).fetchone()
    assert row is not None
    return row[0]


def _violates(conn: psycopg.Connection, error: type[Exception], statement: str, params: tuple[object, ...]) -> None:
    with pytest.raises(error), conn.transaction():
        conn.execute(statement.encode(), params)


@pytest.mark.parametrize(
    ("statement", "params"),
    [
        ("INSERT INTO products (sku, name, price) VALUES ('NEG', 'n', -1)", ()),
        ("INSERT INTO products (sku, name, price, currency) VALUES ('LOW', 'n', 1, 'usd')", ()),
        ("INSERT INTO orders (user_id, status) VALUES (%s, 'shipped')", (ALICE,)),
        ("INSERT INTO orders (user_id, currency) VALUES (%s, 'US1')", (ALICE,)),
        ("INSERT INTO orders (user_id, total) VALUES (%s, -5)", (ALICE,)),
    ],
)
def test_check_constraints_on_catalog_and_orders(
    conn: psycopg.Connection, statement: str, params: tuple[object, ...]
) -> None:
    _user(conn)
    _violates(conn, errors.CheckViolation, statement, params)


def test_inventory_quantity_cannot_go_negative(conn: psycopg.Connection) -> None:
    warehouse = conn.execute("INSERT INTO warehouses (code, name) VALUES ('W1', 'w') RETURNING id").fetchone()
    assert warehouse is not None
    product = _product(conn)
    conn.execute(
        "INSERT INTO inventory (product_id, warehouse_id, quantity) VALUES (%s, %s, 1)", (product, warehouse[0])
    )
    _violates(
        conn, errors.CheckViolation, "UPDATE inventory SET quantity = quantity - 2 WHERE product_id = %s", (product,)
    )
    _violates(
        conn,
        errors.UniqueViolation,
        "INSERT INTO inventory (product_id, warehouse_id, quantity) VALUES (%s, %s, 3)",
        (product, warehouse[0]),
    )


def test_payment_constraints(conn: psycopg.Connection) -> None:
    order = _order(conn)
    insert = (
        "INSERT INTO payments (order_id, user_id, amount, currency, status, provider, idempotency_key)"
        " VALUES (%s, %s, %s, %s, %s, 'fake', %s)"
    )
    _violates(conn, errors.CheckViolation, insert, (order, ALICE, "0", "USD", "approved", "k0"))
    _violates(conn, errors.CheckViolation, insert, (order, ALICE, "1", "usd", "approved", "k0"))
    _violates(conn, errors.CheckViolation, insert, (order, ALICE, "1", "USD", "pending", "k0"))
    conn.execute(insert.encode(), (order, ALICE, "1.50", "USD", "declined", "k1"))
    conn.execute(insert.encode(), (order, ALICE, "1.50", "USD", "approved", "k2"))
    # One charge per (user, idempotency key); never two approved payments for one order.
    _violates(conn, errors.UniqueViolation, insert, (order, ALICE, "1.50", "USD", "declined", "k1"))
    _violates(conn, errors.UniqueViolation, insert, (order, ALICE, "1.50", "USD", "approved", "k3"))


def test_payment_idempotency_constraints(conn: psycopg.Connection) -> None:
    _user(conn)
    insert = (
        "INSERT INTO payment_idempotency (user_id, idempotency_key, request_fingerprint, state,"
        " response_status, response_body) VALUES (%s, %s, 'fp', %s, %s, %s)"
    )
    row = conn.execute(
        "INSERT INTO payment_idempotency (user_id, idempotency_key, request_fingerprint)"
        " VALUES (%s, 'key-1', 'fp') ON CONFLICT DO NOTHING RETURNING state",
        (ALICE,),
    ).fetchone()
    assert row == ("in_progress",)
    claimed_again = conn.execute(
        "INSERT INTO payment_idempotency (user_id, idempotency_key, request_fingerprint)"
        " VALUES (%s, 'key-1', 'fp') ON CONFLICT DO NOTHING RETURNING state",
        (ALICE,),
    ).fetchone()
    assert claimed_again is None
    _violates(conn, errors.CheckViolation, insert, (ALICE, "key-2", "done", None, None))
    _violates(conn, errors.CheckViolation, insert, (ALICE, "key-3", "completed", None, None))
    _violates(conn, errors.CheckViolation, insert, (ALICE, "x" * 256, "in_progress", None, None))
    conn.execute(
        "UPDATE payment_idempotency SET state = 'completed', response_status = 200,"
        " response_body = '{\"status\": \"approved\"}' WHERE user_id = %s AND idempotency_key = 'key-1'",
        (ALICE,),
    )


def test_order_items_take_catalog_prices_and_orders_keep_their_total(conn: psycopg.Connection) -> None:
    order = _order(conn)
    keyboard, cable = _product(conn, "89.00"), _product(conn, "9.99")
    conn.execute("INSERT INTO order_items (order_id, product_id, quantity) VALUES (%s, %s, 1)", (order, keyboard))
    conn.execute("INSERT INTO order_items (order_id, product_id, quantity) VALUES (%s, %s, 3)", (order, cable))
    assert conn.execute("SELECT total FROM orders WHERE id = %s", (order,)).fetchone() == (Decimal("118.97"),)
    conn.execute("UPDATE order_items SET quantity = 2 WHERE order_id = %s AND product_id = %s", (order, keyboard))
    assert conn.execute("SELECT total FROM orders WHERE id = %s", (order,)).fetchone() == (Decimal("207.97"),)
    conn.execute("DELETE FROM order_items WHERE order_id = %s", (order,))
    assert conn.execute("SELECT total FROM orders WHERE id = %s", (order,)).fetchone() == (Decimal("0.00"),)
    _violates(
        conn,
        errors.CheckViolation,
        "INSERT INTO order_items (order_id, product_id, quantity) VALUES (%s, %s, 0)",
        (order, cable),
    )
    euro = _product(conn, "5.00", "EUR")
    _violates(
        conn,
        errors.CheckViolation,
        "INSERT INTO order_items (order_id, product_id, quantity) VALUES (%s, %s, 1)",
        (order, euro),
    )


def test_document_version_bumps_only_on_title_or_content_change(conn: psycopg.Connection) -> None:
    _user(conn)
    row = conn.execute(
        "INSERT INTO documents (owner_id, title, content) VALUES (%s, 't', 'a') RETURNING id, version", (ALICE,)
    ).fetchone()
    assert row is not None
    document, version = row
    assert version == 1
    conn.execute("UPDATE documents SET content = 'b' WHERE id = %s", (document,))
    conn.execute("UPDATE documents SET title = 't2', content = 'c' WHERE id = %s", (document,))
    conn.execute("UPDATE documents SET content = 'c', version = 42 WHERE id = %s", (document,))
    assert conn.execute("SELECT version FROM documents WHERE id = %s", (document,)).fetchone() == (3,)


def test_document_collaborators_and_history_constraints(conn: psycopg.Connection) -> None:
    _user(conn)
    row = conn.execute("INSERT INTO documents (owner_id, title) VALUES (%s, 't') RETURNING id", (ALICE,)).fetchone()
    assert row is not None
    document = row[0]
    _violates(
        conn,
        errors.CheckViolation,
        "INSERT INTO document_collaborators (document_id, user_id, role) VALUES (%s, %s, 'admin')",
        (document, ALICE),
    )
    conn.execute(
        "INSERT INTO document_collaborators (document_id, user_id, role) VALUES (%s, %s, 'owner')", (document, ALICE)
    )
    history = (
        "INSERT INTO document_history (document_id, version, author_id, diff, content_after, event_id)"
        " VALUES (%s, %s, %s, '', '', %s)"
    )
    conn.execute(history.encode(), (document, 2, ALICE, "evt-1"))
    _violates(conn, errors.UniqueViolation, history, (document, 3, ALICE, "evt-1"))
    _violates(conn, errors.UniqueViolation, history, (document, 2, ALICE, "evt-2"))
    _violates(conn, errors.NotNullViolation, history, (document, 4, ALICE, None))


def test_event_tables_deduplicate_on_event_id(conn: psycopg.Connection) -> None:
    order = _order(conn)
    confirmation = (
        "INSERT INTO order_confirmations (order_id, user_id, total, currency, event_id) VALUES (%s, %s, 0, 'USD', %s)"
    )
    conn.execute(confirmation.encode(), (order, ALICE, "evt-order-1"))
    _violates(conn, errors.UniqueViolation, confirmation, (order, ALICE, "evt-order-1"))
    warehouse = conn.execute("INSERT INTO warehouses (code, name) VALUES ('W2', 'w') RETURNING id").fetchone()
    assert warehouse is not None
    alert = (
        "INSERT INTO low_stock_alerts (product_id, warehouse_id, quantity, threshold, event_id)"
        " VALUES (%s, %s, 1, 5, %s)"
    )
    product = _product(conn)
    conn.execute(alert.encode(), (product, warehouse[0], "evt-stock-1"))
    _violates(conn, errors.UniqueViolation, alert, (product, warehouse[0], "evt-stock-1"))

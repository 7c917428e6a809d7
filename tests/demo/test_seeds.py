"""The demo seeds load on the migrated schema, are idempotent, and contain what the demos rely on."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from tests.support.migrations import SEEDS_DIR, apply_seeds, seed_files

pytestmark = pytest.mark.postgres

USERS = {
    "alice": "11111111-1111-4111-8111-111111111111",
    "bob": "22222222-2222-4222-8222-222222222222",
    "carol": "33333333-3333-4333-8333-333333333333",
    "dave": "44444444-4444-4444-8444-444444444444",
}
TABLES = [
    "users",
    "products",
    "warehouses",
    "inventory",
    "orders",
    "order_items",
    "payments",
    "documents",
    "document_collaborators",
    "document_history",
]


def _counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {table: conn.execute(f"SELECT count(*) FROM public.{table}").fetchone()[0] for table in TABLES}


def test_seed_files_are_in_the_cli_layout() -> None:
    files = seed_files()
    assert files, f"no seeds in {SEEDS_DIR}"
    assert all(path.parent == SEEDS_DIR and path.suffix == ".sql" for path in files)
    for path in files:
        assert "ON CONFLICT DO NOTHING" in path.read_text(encoding="utf-8"), f"{path.name} is not idempotent"


def test_seeds_load_twice_without_change(seeded_database_url: str) -> None:
    first = _counts(seeded_database_url)
    apply_seeds(seeded_database_url)
    assert _counts(seeded_database_url) == first
    assert first["users"] == 4
    assert first["products"] >= 8
    assert first["warehouses"] == 2


def test_users_have_fixed_ids(seeded_database_url: str) -> None:
    with psycopg.connect(seeded_database_url) as conn:
        rows = conn.execute("SELECT lower(display_name), id::text FROM users").fetchall()
    assert dict(rows) == USERS


def test_orders(seeded_database_url: str) -> None:
    with psycopg.connect(seeded_database_url) as conn:
        statuses = conn.execute("SELECT user_id::text, status FROM orders").fetchall()
        mismatched = conn.execute(
            "SELECT o.id FROM orders o WHERE o.total <>"
            " COALESCE((SELECT sum(i.quantity * i.unit_price) FROM order_items i WHERE i.order_id = o.id), 0)"
        ).fetchall()
        approved = conn.execute(
            "SELECT p.user_id = o.user_id AND p.amount = o.total AND o.status = 'paid'"
            " FROM payments p JOIN orders o ON o.id = p.order_id WHERE p.status = 'approved'"
        ).fetchall()
    assert (USERS["alice"], "awaiting_payment") in statuses
    assert any(user == USERS["bob"] for user, _ in statuses)
    assert mismatched == []
    assert approved
    assert all(ok for (ok,) in approved)


def test_inventory_has_rows_at_or_near_their_threshold(seeded_database_url: str) -> None:
    with psycopg.connect(seeded_database_url) as conn:
        (low,) = conn.execute("SELECT count(*) FROM inventory WHERE quantity <= low_stock_threshold + 2").fetchone()
        (uncovered,) = conn.execute(
            "SELECT count(*) FROM warehouses w WHERE NOT EXISTS (SELECT 1 FROM inventory i WHERE i.warehouse_id = w.id)"
        ).fetchone()
    assert low >= 2
    assert uncovered == 0


def test_shared_document_roles(seeded_database_url: str) -> None:
    with psycopg.connect(seeded_database_url) as conn:
        shared = conn.execute(
            "SELECT d.id FROM documents d JOIN document_collaborators c ON c.document_id = d.id"
            " GROUP BY d.id HAVING count(*) >= 3"
        ).fetchone()
        assert shared is not None
        roles = dict(
            conn.execute(
                "SELECT user_id::text, role FROM document_collaborators WHERE document_id = %s", shared
            ).fetchall()
        )
        owner = conn.execute("SELECT owner_id::text FROM documents WHERE id = %s", shared).fetchone()
        history = conn.execute(
            "SELECT version, content_after = (SELECT content FROM documents WHERE id = %s)"
            " FROM document_history WHERE document_id = %s",
            (shared[0], shared[0]),
        ).fetchall()
    assert roles == {USERS["alice"]: "owner", USERS["bob"]: "editor", USERS["carol"]: "viewer"}
    assert owner == (USERS["alice"],)
    assert history == [(1, True)]


def test_prices_are_positive_and_in_iso_currency(seeded_database_url: str) -> None:
    with psycopg.connect(seeded_database_url) as conn:
        rows = conn.execute("SELECT price, currency FROM products").fetchall()
    assert all(price > Decimal("0") and currency == "USD" for price, currency in rows)

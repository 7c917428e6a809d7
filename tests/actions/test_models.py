"""actions/models.py mirrors the migrations: same tables, columns, types, nullability, primary keys.

The edge's own tables (schema ``edge``) come from the edge's migrations (``edge/db/``), not these."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.dialects import postgresql

from actions.models import Base
from tests.support.migrations import apply_up
from tests.support.postgres import fresh_database

pytestmark = pytest.mark.postgres

# information_schema data_type -> how SQLAlchemy's PostgreSQL dialect compiles our column type.
TYPE_NAMES = {
    "uuid": "UUID",
    "text": "TEXT",
    "integer": "INTEGER",
    "numeric": "NUMERIC(12, 2)",
    "character": "CHAR(3)",
    "jsonb": "JSONB",
    "timestamp with time zone": "TIMESTAMP WITH TIME ZONE",
}


def test_every_model_matches_its_migrated_table(postgres_server_url: str) -> None:
    with fresh_database(postgres_server_url, prefix="actions_models") as url:
        apply_up(url)
        with psycopg.connect(url) as conn:
            columns = conn.execute(
                "SELECT table_schema, table_name, column_name, data_type, is_nullable"
                " FROM information_schema.columns WHERE table_schema = 'public'"
            ).fetchall()
            primary_keys = conn.execute(
                "SELECT n.nspname, c.relname, a.attname FROM pg_index i"
                " JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
                " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)"
                " WHERE i.indisprimary AND n.nspname = 'public'"
            ).fetchall()

    database: dict[tuple[str, str], dict[str, tuple[str, bool]]] = {}
    for schema, table, column, data_type, nullable in columns:
        database.setdefault((schema, table), {})[column] = (TYPE_NAMES[data_type], nullable == "YES")
    keys: dict[tuple[str, str], set[str]] = {}
    for schema, table, column in primary_keys:
        keys.setdefault((schema, table), set()).add(column)

    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    models = {(table.schema or "public", table.name): table for table in Base.metadata.tables.values()}
    assert set(models) == set(database)
    for name, table in models.items():
        mirrored = {
            column.name: (column.type.compile(dialect=dialect), bool(column.nullable)) for column in table.columns
        }
        assert mirrored == database[name], name
        assert {column.name for column in table.primary_key.columns} == keys[name], name

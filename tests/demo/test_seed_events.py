"""The seeds fire no event trigger on first boot.

Hasura's event triggers are Postgres triggers: for each operation of each trigger in the metadata it creates
``hdb_catalog."notify_hasura_<name>_<OP>"()`` and ``CREATE TRIGGER ... AFTER <OP> ON <table> FOR EACH ROW``,
plus ``ENABLE ALWAYS`` only when ``trigger_on_replication`` is true (``mkTrigger`` in
server/src-lib/Hasura/Backends/Postgres/DDL/EventTrigger.hs; false is the Postgres default). The function
calls ``hdb_catalog.insert_event_log`` (server/src-rsr/init_pg_source.sql), which writes the event Hasura
later delivers. So rows inserted with SQL fire them like rows inserted through GraphQL. These tests install
that Postgres side for the triggers in hasura/metadata, as the cli-migrations image has it when it applies
the seeds (metadata and migrations first), and look at what the seeds leave in ``hdb_catalog.event_log``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.support.hasura_metadata import iter_tables, load_metadata
from tests.support.migrations import SEEDS_DIR, apply_seeds, migrated_database, run_script, seed_files

pytestmark = pytest.mark.postgres

ORDER_IDS = {"cccccccc-0000-4000-8000-000000000001", "cccccccc-0000-4000-8000-000000000002"}

# From server/src-rsr/init_pg_source.sql: the event log and the function every trigger calls.
HASURA_SOURCE_CATALOG = """
CREATE SCHEMA hdb_catalog;
CREATE TABLE hdb_catalog.event_log (
  id TEXT DEFAULT gen_random_uuid() PRIMARY KEY,
  schema_name TEXT NOT NULL,
  table_name TEXT NOT NULL,
  trigger_name TEXT NOT NULL,
  payload JSONB NOT NULL,
  delivered BOOLEAN NOT NULL DEFAULT FALSE,
  error BOOLEAN NOT NULL DEFAULT FALSE,
  tries INTEGER NOT NULL DEFAULT 0,
  created_at TIMESTAMP DEFAULT NOW(),
  locked TIMESTAMPTZ,
  next_retry_at TIMESTAMP,
  archived BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE FUNCTION hdb_catalog.insert_event_log(
  schema_name text, table_name text, trigger_name text, op text, row_data json
) RETURNS text AS $$
  DECLARE
    id text;
    payload json;
  BEGIN
    id := gen_random_uuid();
    payload := json_build_object(
      'op', op,
      'data', row_data,
      'session_variables', current_setting('hasura.user', 't'),
      'trace_context', current_setting('hasura.tracecontext', 't')
    );
    INSERT INTO hdb_catalog.event_log (id, schema_name, table_name, trigger_name, payload)
    VALUES (id, schema_name, table_name, trigger_name, payload);
    RETURN id;
  END;
$$ LANGUAGE plpgsql;
"""

# From server/src-rsr/trigger.sql.shakespeare, with the row payloads written out (columns: '*').
TRIGGER_FUNCTION = """
CREATE FUNCTION hdb_catalog.{function}() RETURNS trigger LANGUAGE plpgsql AS $$
  DECLARE
    _old record;
    _new record;
    _data json;
  BEGIN
    IF TG_OP = 'UPDATE' THEN
      _old := row({old_listened});
      _new := row({new_listened});
    ELSE
      _old := row((select 1));
      _new := row((select 1));
    END IF;
    _data := json_build_object(
      'old', CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE row_to_json(OLD) END,
      'new', CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE row_to_json(NEW) END
    );
    IF (TG_OP <> 'UPDATE') OR (_old <> _new) THEN
      PERFORM hdb_catalog.insert_event_log(
        CAST(TG_TABLE_SCHEMA AS text), CAST(TG_TABLE_NAME AS text), CAST({name} AS text), TG_OP, _data
      );
    END IF;
    RETURN NULL;
  END;
$$;
"""


def _columns(conn: psycopg.Connection[Any], schema: str, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
        " ORDER BY ordinal_position",
        (schema, table),
    ).fetchall()
    return [name for (name,) in rows]


def install_hasura_event_triggers(url: str) -> list[str]:
    """Create what Hasura creates in the source database for every event trigger in hasura/metadata.
    Returns the trigger names."""
    names = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(HASURA_SOURCE_CATALOG.encode())
        for table, entry in iter_tables(load_metadata()):
            for trigger in entry.get("event_triggers") or []:
                names.append(trigger["name"])
                for op in ("insert", "update", "delete"):
                    spec = trigger["definition"].get(op)
                    if spec is None:
                        continue
                    listened = spec.get("columns", "*")
                    if listened == "*":
                        listened = _columns(conn, table.schema, table.name)
                    function = sql.Identifier(f"notify_hasura_{trigger['name']}_{op.upper()}")
                    conn.execute(
                        sql.SQL(TRIGGER_FUNCTION).format(
                            function=function,
                            name=sql.Literal(trigger["name"]),
                            old_listened=sql.SQL(", ").join(sql.Identifier("old", c) for c in listened),
                            new_listened=sql.SQL(", ").join(sql.Identifier("new", c) for c in listened),
                        )
                    )
                    conn.execute(
                        sql.SQL(
                            "CREATE TRIGGER {} AFTER {} ON {} FOR EACH ROW EXECUTE PROCEDURE hdb_catalog.{}()"
                        ).format(function, sql.SQL(op.upper()), sql.Identifier(table.schema, table.name), function)
                    )
                    if trigger.get("trigger_on_replication", False):
                        conn.execute(
                            sql.SQL("ALTER TABLE {} ENABLE ALWAYS TRIGGER {}").format(
                                sql.Identifier(table.schema, table.name), function
                            )
                        )
    return names


def events(url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT trigger_name, payload->>'op', payload->'data'->'new'->>'id' FROM hdb_catalog.event_log"
            " ORDER BY trigger_name, payload->'data'->'new'->>'id'"
        ).fetchall()
    return [tuple(row) for row in rows]


@pytest.fixture
def booting_database_url(postgres_server_url: str) -> Iterator[str]:
    """Migrated, with Hasura's event triggers installed, not seeded: the database the seeds meet on first boot."""
    with migrated_database(postgres_server_url, prefix="seed_events") as url:
        assert set(install_hasura_event_triggers(url)) == {"order_created", "documents_history", "inventory_low_stock"}
        yield url


def test_seeding_fires_no_event_trigger(booting_database_url: str) -> None:
    apply_seeds(booting_database_url)

    assert events(booting_database_url) == []
    with psycopg.connect(booting_database_url) as conn:
        orders = conn.execute("SELECT o.id::text, u.id IS NOT NULL FROM orders o LEFT JOIN users u ON u.id = o.user_id")
        assert dict(orders.fetchall()) == dict.fromkeys(ORDER_IDS, True)  # the foreign key holds


def test_the_installed_triggers_fire_for_sql_inserts_after_seeding(booting_database_url: str) -> None:
    apply_seeds(booting_database_url)
    order_id = str(uuid.uuid4())
    with psycopg.connect(booting_database_url) as conn:
        conn.execute(
            "INSERT INTO orders (id, user_id, status, total, currency)"
            " VALUES (%s, '33333333-3333-4333-8333-333333333333', 'pending', 0, 'USD')",
            (order_id,),
        )
    assert events(booting_database_url) == [("order_created", "INSERT", order_id)]


def test_the_seed_leaves_the_session_firing_triggers_again(booting_database_url: str) -> None:
    apply_seeds(booting_database_url, [path for path in seed_files() if path.name < "1795290003000"])
    (orders_seed,) = [path for path in seed_files() if path.name.startswith("1795290003000")]
    with psycopg.connect(booting_database_url, autocommit=True) as conn, conn.transaction():
        conn.execute(orders_seed.read_text(encoding="utf-8").encode())
        role = conn.execute("SHOW session_replication_role").fetchone()
    assert role == ("origin",)


def test_seeding_twice_fires_nothing_either(booting_database_url: str) -> None:
    apply_seeds(booting_database_url)
    apply_seeds(booting_database_url)
    assert events(booting_database_url) == []


def test_a_role_that_may_not_use_replica_mode_seeds_with_order_events(booting_database_url: str) -> None:
    """The documented fallback: without superuser the seed still applies, and Hasura gets one order_created
    event per demo order (the handler confirms them like any order)."""
    role = f"seeder_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(booting_database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOSUPERUSER").format(sql.Identifier(role)))
    try:
        with psycopg.connect(booting_database_url, autocommit=True) as conn:
            for schema in ("public", "hdb_catalog"):
                conn.execute(
                    sql.SQL("GRANT USAGE ON SCHEMA {0} TO {1}; GRANT ALL ON ALL TABLES IN SCHEMA {0} TO {1}").format(
                        sql.Identifier(schema), sql.Identifier(role)
                    )
                )
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            for path in seed_files():
                run_script(conn, path.read_text(encoding="utf-8"))
        assert events(booting_database_url) == [("order_created", "INSERT", order_id) for order_id in sorted(ORDER_IDS)]
    finally:
        with psycopg.connect(booting_database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {0}; DROP ROLE {0}").format(sql.Identifier(role)))


def test_no_event_trigger_fires_on_replication() -> None:
    """The seed relies on Hasura's default: trigger_on_replication false leaves replica sessions alone."""
    triggers = [t for _, entry in iter_tables(load_metadata()) for t in entry.get("event_triggers") or []]
    assert triggers
    assert [t["name"] for t in triggers if t.get("trigger_on_replication", False)] == []
    assert SEEDS_DIR.is_dir()

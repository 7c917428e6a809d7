"""The edge's migrations on a real PostgreSQL: an empty database, a second run, two processes at once, a
failing or edited migration, a database a newer edge upgraded, and the table the demo used to create."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors

from edge.db.cli import EXIT_DATABASE
from edge.db.cli import main as db_main
from edge.db.schema import (
    MIGRATION_LOCK_ID,
    UPGRADE_COMMAND,
    Migration,
    MigrationFailed,
    SchemaConflict,
    SchemaNotCurrent,
    SchemaState,
    UpgradeLockTimeout,
    load_migrations,
    read_state,
    require_current,
    upgrade,
)
from tests.support.build import python_environment
from tests.support.migrations import schema_snapshot
from tests.support.postgres import fresh_database

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[3]
MIGRATIONS_DIR = ROOT / "edge" / "db" / "migrations"


@pytest.fixture
def empty_database(postgres_server_url: str) -> Iterator[str]:
    with fresh_database(postgres_server_url, prefix="edge_db") as url:
        yield url


def run_upgrade(url: str, migrations: Sequence[Migration] | None = None) -> tuple[SchemaState, list[Migration]]:
    async def go() -> tuple[SchemaState, list[Migration]]:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            return await upgrade(conn, migrations, lock_timeout=60)

    return asyncio.run(go())


def state_of(url: str, migrations: Sequence[Migration] | None = None) -> SchemaState:
    async def go() -> SchemaState:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            return await read_state(conn, migrations)

    return asyncio.run(go())


def history(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT version, name, checksum, applied_at FROM edge.schema_migrations").fetchall()


def edge_tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'edge'").fetchall()
    return {row[0] for row in rows}


# --- the migration files ----------------------------------------------------------------------------------


def test_the_migrations_are_the_files_numbered_from_one_without_gaps() -> None:
    migrations = load_migrations()
    files = sorted(path.name for path in MIGRATIONS_DIR.iterdir() if path.suffix == ".sql")
    assert [f"{migration.label}.sql" for migration in migrations] == files
    assert [migration.version for migration in migrations] == list(range(1, len(files) + 1))
    assert all(migration.sql.strip() for migration in migrations)
    assert {path.name for path in MIGRATIONS_DIR.iterdir()} == set(files), "only migration files live there"


def test_the_edge_creates_its_tables_only_in_its_own_schema() -> None:
    for migration in load_migrations():
        for line in migration.sql.splitlines():
            words = line.upper().split()
            if words[:2] == ["CREATE", "TABLE"]:
                assert " edge." in line, f"{migration.label}: {line}"


# --- upgrade ----------------------------------------------------------------------------------------------


def test_an_empty_database_gets_every_migration_each_recorded_once(empty_database: str) -> None:
    before = state_of(empty_database)
    assert before.version == 0 and before.pending == load_migrations() and not before.current
    state, applied = run_upgrade(empty_database)
    assert applied == list(load_migrations())
    assert state.current and state.version == state.target == len(load_migrations())
    assert edge_tables(empty_database) == {"api_keys", "schema_migrations"}
    rows = history(empty_database)
    assert [(row[0], row[1], row[2]) for row in rows] == [(m.version, m.name, m.checksum) for m in load_migrations()]


def test_a_second_upgrade_changes_nothing(empty_database: str) -> None:
    run_upgrade(empty_database)
    snapshot, rows = schema_snapshot(empty_database), history(empty_database)
    state, applied = run_upgrade(empty_database)
    assert applied == [] and state.current
    assert schema_snapshot(empty_database) == snapshot
    assert history(empty_database) == rows


def test_upgrade_leaves_other_schemas_alone(empty_database: str) -> None:
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.bystander (id int)")
    before = schema_snapshot(empty_database)
    run_upgrade(empty_database)
    after = schema_snapshot(empty_database)
    for name in ("relations", "columns", "constraints", "indexes"):
        assert [row for row in after[name] if row[0] != "edge"] == [row for row in before[name] if row[0] != "edge"]


def _lock_waiters(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND (classid::bigint << 32) + objid::bigint = %s",
        (MIGRATION_LOCK_ID,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_two_processes_upgrading_at_once_apply_each_migration_once(empty_database: str) -> None:
    """Both processes are started while the test holds the migration lock, so both are inside `upgrade` and
    waiting when it is released: without the lock they would both create the tables and one would fail."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "EDGE_DATABASE_URL": empty_database, **python_environment()}
    command = [sys.executable, "-m", "edge", "db", "upgrade"]
    with psycopg.connect(empty_database, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
        processes = [
            subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        try:
            give_up = time.monotonic() + 120  # a guard against a hang, not a performance bound
            while _lock_waiters(holder) < 2:
                exited = [process for process in processes if process.poll() is not None]
                assert not exited, [process.communicate() for process in exited]
                assert time.monotonic() < give_up, "the processes never waited for the migration lock"
                time.sleep(0.05)
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
        outputs = [process.communicate(timeout=120) for process in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    labels = [f"applied {migration.label}" for migration in load_migrations()]
    applied_by = [[line for line in out.splitlines() if line.startswith("applied ")] for out, _ in outputs]
    assert sorted(applied_by, key=len) == [[], labels], outputs  # one applied everything, the other nothing
    assert "nothing to apply" in "".join(out for out, _ in outputs)
    assert [row[0] for row in history(empty_database)] == [migration.version for migration in load_migrations()]
    assert state_of(empty_database).current


def test_upgrade_gives_up_when_another_holds_the_lock_too_long(empty_database: str) -> None:
    with psycopg.connect(empty_database, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
        out, err = io.StringIO(), io.StringIO()
        code = db_main(["upgrade", "--lock-timeout", "0.2"], database_url=empty_database, out=out, err=err)
    assert code == EXIT_DATABASE
    assert "migration lock" in err.getvalue() and UPGRADE_COMMAND in err.getvalue()
    assert edge_tables(empty_database) == set()  # nothing was done without the lock


def test_without_a_wait_of_its_own_upgrade_keeps_to_the_sessions_lock_timeout(empty_database: str) -> None:
    async def go() -> None:
        async with await psycopg.AsyncConnection.connect(
            empty_database, autocommit=True, options="-c lock_timeout=200ms"
        ) as conn:
            await upgrade(conn)

    with psycopg.connect(empty_database, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
        with pytest.raises(UpgradeLockTimeout, match="the lock timeout"):
            asyncio.run(go())


# --- failures, edits and newer edges -------------------------------------------------------------------------

FIRST = Migration(1, "first", "CREATE TABLE edge.first_table (id int PRIMARY KEY);")
SECOND = Migration(2, "second", "CREATE TABLE edge.second_table (id int);\nALTER TABLE edge.second_table ADD nope;")


def test_a_failing_migration_is_rolled_back_whole_and_named(empty_database: str) -> None:
    with pytest.raises(MigrationFailed, match="0002_second") as failure:
        run_upgrade(empty_database, [FIRST, SECOND])
    assert isinstance(failure.value.__cause__, errors.SyntaxError)
    assert edge_tables(empty_database) == {"schema_migrations", "first_table"}  # no second_table: rolled back
    state = state_of(empty_database, [FIRST, SECOND])
    assert state.version == 1 and state.pending == (SECOND,)
    fixed = Migration(2, "second", "CREATE TABLE edge.second_table (id int);")
    state, applied = run_upgrade(empty_database, [FIRST, fixed])
    assert applied == [fixed] and state.current


def test_an_applied_migration_that_was_edited_is_refused(empty_database: str) -> None:
    run_upgrade(empty_database, [FIRST])
    edited = Migration(1, "first", FIRST.sql + "\n-- edited after release")
    third = Migration(2, "third", "CREATE TABLE edge.third_table (id int);")
    with pytest.raises(SchemaConflict, match="0001_first"):
        run_upgrade(empty_database, [edited, third])
    assert "third_table" not in edge_tables(empty_database)  # nothing applied after the conflict was found
    assert state_of(empty_database, [edited, third]).changed == (edited,)


def test_a_database_a_newer_edge_upgraded_is_current_for_an_older_edge(empty_database: str) -> None:
    newer = Migration(2, "newer", "ALTER TABLE edge.first_table ADD note text;")
    run_upgrade(empty_database, [FIRST, newer])
    state, applied = run_upgrade(empty_database, [FIRST])
    assert applied == [] and state.current
    assert [row.version for row in state.unknown] == [2]
    assert "newer edge" in state.summary()


def test_require_current_names_the_upgrade_command(empty_database: str) -> None:
    async def check() -> SchemaState:
        async with await psycopg.AsyncConnection.connect(empty_database, autocommit=True) as conn:
            return await require_current(conn)

    with pytest.raises(SchemaNotCurrent, match=UPGRADE_COMMAND):
        asyncio.run(check())
    run_upgrade(empty_database)
    assert asyncio.run(check()).current


def test_upgrade_needs_an_autocommit_connection(empty_database: str) -> None:
    async def go() -> None:
        async with await psycopg.AsyncConnection.connect(empty_database) as conn:
            await upgrade(conn)

    with pytest.raises(ValueError, match="autocommit"):
        asyncio.run(go())


def test_upgrade_adopts_the_api_keys_table_the_demo_migration_used_to_create(empty_database: str) -> None:
    """Databases set up before the edge had its own migrations have edge.api_keys (from the demo's Hasura
    migration 1795290000400_edge_schema, whose definition 0001_api_keys repeats) and no history: upgrading
    records the migration and keeps the keys."""
    api_keys = next(migration for migration in load_migrations() if migration.name == "api_keys")
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA edge")
        conn.execute(api_keys.sql.replace("IF NOT EXISTS ", "").encode())
        conn.execute(
            "INSERT INTO edge.api_keys (key_prefix, key_hash, owner, plan) VALUES ('kept_key', 'ab', 'o', 'p')"
        )
    state, applied = run_upgrade(empty_database)
    assert api_keys in applied and state.current
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT key_prefix FROM edge.api_keys").fetchall() == [("kept_key",)]


# --- what 0001_api_keys promises -----------------------------------------------------------------------------


@pytest.fixture
def conn(empty_database: str) -> Iterator[psycopg.Connection[Any]]:
    run_upgrade(empty_database)
    with psycopg.connect(empty_database) as connection:
        yield connection
        connection.rollback()


def _violates(
    conn: psycopg.Connection[Any], error: type[Exception], statement: str, params: tuple[object, ...]
) -> None:
    with pytest.raises(error), conn.transaction():
        conn.execute(statement.encode(), params)


def test_api_keys_columns_and_defaults(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns"
        " WHERE table_schema = 'edge' AND table_name = 'api_keys'"
    ).fetchall()
    columns = {name: (data_type, nullable, default) for name, data_type, nullable, default in rows}
    assert set(columns) == {
        "id", "key_prefix", "key_hash", "owner", "plan", "role", "session_variables", "created_at",
        "expires_at", "revoked_at", "last_rotated_at",
    }  # fmt: skip
    assert columns["id"] == ("uuid", "NO", "gen_random_uuid()")
    assert columns["role"] == ("text", "NO", "'user'::text")
    assert columns["session_variables"] == ("jsonb", "NO", "'{}'::jsonb")
    assert columns["expires_at"][1] == columns["revoked_at"][1] == columns["last_rotated_at"][1] == "YES"


def test_api_keys_constraints(conn: psycopg.Connection[Any]) -> None:
    insert = (
        "INSERT INTO edge.api_keys (key_prefix, key_hash, owner, plan, role, session_variables)"
        " VALUES (%s, %s, 'o', 'free', %s, %s)"
    )
    conn.execute(insert.encode(), ("demo_key1", "ab" * 32, "user", '{"x-hasura-user-id": "1"}'))
    row = conn.execute("SELECT session_variables, expires_at, revoked_at FROM edge.api_keys").fetchone()
    assert row == ({"x-hasura-user-id": "1"}, None, None)
    _violates(conn, errors.UniqueViolation, insert, ("demo_key1", "cd" * 32, "user", "{}"))
    _violates(conn, errors.CheckViolation, insert, ("demo_key2", "cd" * 32, "admin", "{}"))
    _violates(conn, errors.CheckViolation, insert, ("demo_key2", "cd" * 32, "Admin", "{}"))
    _violates(conn, errors.CheckViolation, insert, ("demo_key3", "cd" * 32, "user", "[]"))
    _violates(conn, errors.CheckViolation, insert, ("bad prefix!", "cd" * 32, "user", "{}"))
    _violates(conn, errors.CheckViolation, insert, ("demo_key5", "", "user", "{}"))
    _violates(conn, errors.NotNullViolation, insert.replace("'free'", "NULL"), ("demo_key4", "cd" * 32, "user", "{}"))

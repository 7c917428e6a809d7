"""Apply the Hasura CLI migrations and seeds to a database, the way ``hasura migrate apply`` orders them.

Layout (Hasura CLI, config v3): ``migrations/<source>/<ms-timestamp>_<name>/{up,down}.sql`` and
``seeds/<source>/*.sql``. Migrations run in version order, each in its own transaction; ``down`` runs them in
reverse. Nothing is recorded in the database (Hasura keeps its own migration state in its catalog), so call
``apply_up`` on a fresh database, e.g. one from ``tests.support.postgres.fresh_database``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from tests.support.postgres import fresh_database

REPO_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = REPO_ROOT / "migrations" / "default"
SEEDS_DIR = REPO_ROOT / "seeds" / "default"

_MIGRATION_DIR_NAME = re.compile(r"^(?P<version>\d+)_(?P<name>[A-Za-z0-9_]+)$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def up_sql(self) -> str:
        return (self.path / "up.sql").read_text(encoding="utf-8")

    @property
    def down_sql(self) -> str:
        return (self.path / "down.sql").read_text(encoding="utf-8")


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """All migrations under ``directory``, sorted by version. Unexpected entries raise ValueError."""
    migrations = []
    for entry in directory.iterdir():
        match = _MIGRATION_DIR_NAME.match(entry.name)
        if not entry.is_dir() or match is None:
            raise ValueError(f"not a Hasura migration directory: {entry}")
        if not (entry / "up.sql").is_file():
            raise ValueError(f"migration without up.sql: {entry}")
        migrations.append(Migration(int(match["version"]), match["name"], entry))
    migrations.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in migrations]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions in {directory}")
    return migrations


def run_script(conn: psycopg.Connection[Any], script: str) -> None:
    """Run a multi-statement SQL script in one transaction (no parameters, so no placeholder parsing)."""
    with conn.transaction():
        conn.execute(script.encode("utf-8"))


def apply_up(url: str, migrations: Sequence[Migration] | None = None) -> list[Migration]:
    """Apply ``up.sql`` of ``migrations`` (default: all) in version order. Returns what was applied."""
    selected = sorted(migrations if migrations is not None else discover(), key=lambda m: m.version)
    with psycopg.connect(url, autocommit=True) as conn:
        for migration in selected:
            run_script(conn, migration.up_sql)
    return selected


def apply_down(url: str, migrations: Sequence[Migration] | None = None) -> list[Migration]:
    """Apply ``down.sql`` of ``migrations`` (default: all) in reverse version order. Returns what was run."""
    selected = sorted(migrations if migrations is not None else discover(), key=lambda m: -m.version)
    with psycopg.connect(url, autocommit=True) as conn:
        for migration in selected:
            run_script(conn, migration.down_sql)
    return selected


def seed_files(directory: Path = SEEDS_DIR) -> list[Path]:
    """Seed files in the order ``hasura seed apply`` uses (file name order)."""
    return sorted(path for path in directory.iterdir() if path.suffix == ".sql")


def apply_seeds(url: str, files: Iterable[Path] | None = None) -> None:
    """Run each seed file in its own transaction."""
    with psycopg.connect(url, autocommit=True) as conn:
        for path in files if files is not None else seed_files():
            run_script(conn, path.read_text(encoding="utf-8"))


@contextlib.contextmanager
def migrated_database(base_url: str, prefix: str = "test", *, seeds: bool = False) -> Iterator[str]:
    """A fresh database on ``base_url``'s server with all migrations (and optionally the seeds) applied.

    Dropped on exit. Typical use, module-scoped: ``with migrated_database(postgres_server_url) as url: yield url``.
    """
    with fresh_database(base_url, prefix) as url:
        apply_up(url)
        if seeds:
            apply_seeds(url)
        yield url


# Catalog objects in user schemas, as comparable rows: used to prove that down.sql undoes up.sql exactly.
_SNAPSHOT_QUERIES = {
    "schemas": """
        SELECT nspname FROM pg_namespace
        WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'""",
    "relations": """
        SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'""",
    "columns": """
        SELECT table_schema, table_name, column_name, data_type, is_nullable, column_default
        FROM information_schema.columns
        WHERE table_schema NOT LIKE 'pg\\_%' AND table_schema <> 'information_schema'""",
    "constraints": """
        SELECT n.nspname, c.conname, pg_get_constraintdef(c.oid)
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'""",
    "indexes": """
        SELECT schemaname, indexname, indexdef FROM pg_indexes
        WHERE schemaname NOT LIKE 'pg\\_%' AND schemaname <> 'information_schema'""",
    "functions": """
        SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'""",
    "triggers": """
        SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE NOT t.tgisinternal""",
    "types": """
        SELECT n.nspname, t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'""",
    "extensions": "SELECT extname FROM pg_extension",
}


def schema_snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """A sorted, comparable description of every user-visible schema object in the database."""
    with psycopg.connect(url) as conn:
        return {name: sorted(conn.execute(query).fetchall(), key=repr) for name, query in _SNAPSHOT_QUERIES.items()}

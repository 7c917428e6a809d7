"""The edge's Postgres schema: its migrations, what a database has applied, and the upgrade.

Migrations are the files ``edge/db/migrations/NNNN_name.sql`` (versions 1, 2, 3... without gaps),
applied in version order, each in its own transaction together with its row in
``edge.schema_migrations`` (version, name, SHA-256 of the file, time), so a migration is applied
entirely or not at all. ``upgrade`` holds a session advisory lock (``MIGRATION_LOCK_ID``) from
reading that table to the last migration, so replicas that upgrade at the same time apply each
migration once: the others wait, then find nothing to do.

Released migration files are never edited (``upgrade`` refuses a database whose applied migration
differs from this edge's file) and only add to the schema, so an edge one release behind keeps
working on a database a newer edge has upgraded (versions it does not know are reported, not refused).

Usage::

    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        state, applied = await upgrade(conn)
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

import psycopg
import psycopg.errors
from psycopg.rows import tuple_row

__all__ = [
    "MIGRATION_LOCK_ID",
    "SCHEMA",
    "UPGRADE_COMMAND",
    "AppliedMigration",
    "Migration",
    "MigrationFailed",
    "SchemaConflict",
    "SchemaError",
    "SchemaNotCurrent",
    "SchemaState",
    "UpgradeLockTimeout",
    "load_migrations",
    "read_state",
    "require_current",
    "upgrade",
]

SCHEMA = "edge"
UPGRADE_COMMAND = "python -m edge db upgrade"
# pg_advisory_lock's key for upgrades: the bytes "edge-db\0" as a bigint. Another application sharing
# the database must not take this advisory lock for its own purposes.
MIGRATION_LOCK_ID = 0x6564_6765_2D64_6200

_FILE_NAME = re.compile(r"(?P<version>[0-9]{4})_(?P<name>[a-z0-9_]+)\.sql")
_HISTORY = f"{SCHEMA}.schema_migrations"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str
    applied_at: datetime

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


@dataclass(frozen=True)
class SchemaState:
    """This edge's migrations beside what the database has applied."""

    known: tuple[Migration, ...]
    applied: tuple[AppliedMigration, ...]

    @property
    def version(self) -> int:
        """The database's version: its highest applied migration, 0 when none is."""
        return max((row.version for row in self.applied), default=0)

    @property
    def target(self) -> int:
        """The version this edge needs: its highest migration."""
        return max((migration.version for migration in self.known), default=0)

    @property
    def pending(self) -> tuple[Migration, ...]:
        done = {row.version for row in self.applied}
        return tuple(migration for migration in self.known if migration.version not in done)

    @property
    def changed(self) -> tuple[Migration, ...]:
        """Applied migrations whose recorded checksum differs from this edge's file."""
        recorded = {row.version: row.checksum for row in self.applied}
        return tuple(m for m in self.known if m.version in recorded and recorded[m.version] != m.checksum)

    @property
    def unknown(self) -> tuple[AppliedMigration, ...]:
        """Applied migrations this edge does not have (a newer edge applied them)."""
        known = {migration.version for migration in self.known}
        return tuple(row for row in self.applied if row.version not in known)

    @property
    def current(self) -> bool:
        return not self.pending and not self.changed

    def summary(self) -> str:
        """One line: the version and what, if anything, is wrong with it."""
        line = f"database schema at version {self.version}; this edge needs {self.target}"
        if self.changed:
            labels = ", ".join(migration.label for migration in self.changed)
            return f"{line}: applied migrations differ from this edge's files ({labels})"
        if self.pending:
            labels = ", ".join(migration.label for migration in self.pending)
            return f"{line}: pending {labels}; run `{UPGRADE_COMMAND}`"
        if self.unknown:
            return f"{line}: up to date (a newer edge has applied up to {self.version})"
        return f"{line}: up to date"


class SchemaError(Exception):
    """The database's edge schema cannot be used or upgraded; the message says why and what to do."""


class SchemaNotCurrent(SchemaError):
    """Migrations are pending: the message names the upgrade command."""

    def __init__(self, state: SchemaState) -> None:
        self.state = state
        super().__init__(state.summary())


class SchemaConflict(SchemaError):
    """An applied migration differs from this edge's file of the same version."""

    def __init__(self, state: SchemaState) -> None:
        self.state = state
        super().__init__(
            f"{state.summary()}; released migrations must not be edited: restore the file, or run the "
            "edge release that applied it"
        )


class MigrationFailed(SchemaError):
    """A migration failed; its transaction was rolled back, the ones before it stay applied."""

    def __init__(self, migration: Migration, error: psycopg.Error) -> None:
        self.migration = migration
        super().__init__(f"migration {migration.label} failed and was rolled back ({type(error).__name__}: {error})")


class UpgradeLockTimeout(SchemaError):
    """Another upgrade held the migration lock longer than the wait allowed."""


@functools.cache
def load_migrations() -> tuple[Migration, ...]:
    """This edge's migrations in version order. Raises ValueError for a misnamed file or a gap."""
    migrations = []
    for entry in resources.files("edge.db").joinpath("migrations").iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.fullmatch(entry.name)
        if match is None:
            raise ValueError(f"migration file {entry.name!r} is not named NNNN_name.sql")
        migrations.append(Migration(int(match["version"]), match["name"], entry.read_text(encoding="utf-8")))
    migrations.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must be 1, 2, 3... without gaps or repeats: {versions}")
    return tuple(migrations)


async def read_state(conn: psycopg.AsyncConnection[Any], migrations: Sequence[Migration] | None = None) -> SchemaState:
    """What the database has applied (nothing when the history table does not exist) beside ``migrations``
    (default: this edge's). Takes no lock."""
    cursor = conn.cursor(row_factory=tuple_row)  # whatever row factory the connection has
    await cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (_HISTORY,))
    row = await cursor.fetchone()
    applied: list[AppliedMigration] = []
    if row is not None and row[0]:
        await cursor.execute(f"SELECT version, name, checksum, applied_at FROM {_HISTORY} ORDER BY version")
        applied = [AppliedMigration(*record) for record in await cursor.fetchall()]
    known = load_migrations() if migrations is None else tuple(sorted(migrations, key=lambda m: m.version))
    return SchemaState(known=known, applied=tuple(applied))


async def require_current(
    conn: psycopg.AsyncConnection[Any], migrations: Sequence[Migration] | None = None
) -> SchemaState:
    """The state, or ``SchemaNotCurrent`` / ``SchemaConflict`` when the edge cannot rely on the schema."""
    state = await read_state(conn, migrations)
    if state.changed:
        raise SchemaConflict(state)
    if state.pending:
        raise SchemaNotCurrent(state)
    return state


async def upgrade(
    conn: psycopg.AsyncConnection[Any],
    migrations: Sequence[Migration] | None = None,
    *,
    lock_timeout: float | None = None,
) -> tuple[SchemaState, list[Migration]]:
    """Apply the pending ``migrations`` (default: this edge's); return the new state and what this call applied.

    ``conn`` must be in autocommit mode (each migration gets its own transaction). ``lock_timeout``
    (seconds; None waits for ever) bounds the wait for another upgrade: ``UpgradeLockTimeout`` after it.
    Raises ``SchemaConflict`` (nothing applied) when an applied migration differs from its file, and
    ``MigrationFailed`` when one fails (those before it stay applied).
    """
    if not conn.autocommit:
        raise ValueError("upgrade needs a connection in autocommit mode")
    await _lock(conn, lock_timeout)
    try:
        await _create_history(conn)
        state = await read_state(conn, migrations)
        if state.changed:
            raise SchemaConflict(state)
        applied: list[Migration] = []
        for migration in state.pending:
            try:
                async with conn.transaction():
                    # bytes: the script is sent as it is, never read as a parameter template
                    await conn.execute(migration.sql.encode("utf-8"))
                    await conn.execute(
                        f"INSERT INTO {_HISTORY} (version, name, checksum) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
            except psycopg.Error as exc:
                if conn.broken:
                    raise
                raise MigrationFailed(migration, exc) from exc
            applied.append(migration)
        return await read_state(conn, migrations), applied
    finally:
        await _unlock(conn)


async def _lock(conn: psycopg.AsyncConnection[Any], timeout: float | None) -> None:
    # lock_timeout bounds any lock wait, advisory locks included; it is set for this statement only, so the
    # migrations themselves run with the connection's own setting.
    if timeout is not None:
        await conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{max(1, round(timeout * 1000))}ms",))
    try:
        await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
    except psycopg.errors.LockNotAvailable:  # timeout, or the role's own lock_timeout when timeout is None
        waited = "the lock timeout" if timeout is None else f"{timeout:g} s"
        raise UpgradeLockTimeout(
            f"another `{UPGRADE_COMMAND}` held the migration lock for over {waited}; "
            f"it may still be running (pg_locks: advisory lock {MIGRATION_LOCK_ID})"
        ) from None
    finally:
        if timeout is not None and not conn.broken:
            await conn.execute("RESET lock_timeout")


async def _unlock(conn: psycopg.AsyncConnection[Any]) -> None:
    if conn.broken or conn.closed:
        return  # the server ended the session, and with it the lock
    await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))


async def _create_history(conn: psycopg.AsyncConnection[Any]) -> None:
    # Under the advisory lock, so "check, then create" cannot race another replica. The schema is created
    # only when missing: a database where an administrator made it needs no CREATE privilege on the database.
    cursor = conn.cursor(row_factory=tuple_row)
    await cursor.execute("SELECT to_regnamespace(%s) IS NOT NULL", (SCHEMA,))
    row = await cursor.fetchone()
    async with conn.transaction():
        if row is None or not row[0]:
            await conn.execute(f"CREATE SCHEMA {SCHEMA}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {_HISTORY} ("
            "version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )

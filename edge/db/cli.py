"""``python -m edge db ...``: create and upgrade the edge's tables in Postgres.

::

    db upgrade [--lock-timeout SECONDS]   apply the pending migrations (safe to run from every replica at once)
    db current                             the database's version and every migration, applied or pending
    db check                               exit 0 when the database has every migration this edge needs

The database is ``EDGE_DATABASE_URL``, read from the environment or the ``EDGE_CONFIG`` file as the edge
reads it; nothing else of the edge's configuration is needed, so a one-shot job can run it with the
database URL alone. ``argv`` is what follows ``db`` (a leading ``db`` is accepted too).

Exit codes: 0 done (``check``: up to date); 1 (``check``) migrations are pending; 2 usage error or no
database URL; 3 the database could not be reached, a migration failed, or the lock wait ran out;
4 an applied migration differs from this edge's file.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import psycopg
from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from edge.cli_parser import CommandParser, parse_command
from edge.db.schema import MigrationFailed, SchemaConflict, SchemaState, UpgradeLockTimeout, read_state, upgrade

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_LOCK_TIMEOUT",
    "EXIT_CONFLICT",
    "EXIT_DATABASE",
    "EXIT_OK",
    "EXIT_PENDING",
    "EXIT_USAGE",
    "DatabaseSettings",
    "main",
]

EXIT_OK = 0
EXIT_PENDING = 1
EXIT_USAGE = 2
EXIT_DATABASE = 3
EXIT_CONFLICT = 4

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_LOCK_TIMEOUT = 300.0


class _ConfigFileSource(PydanticBaseSettingsSource):
    """The ``EDGE_CONFIG`` file, read as the edge reads it (``edge.settings.read_config_file``)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = os.environ.get("EDGE_CONFIG")
        self._data: dict[str, Any] = {}
        if path:
            # Imported here: edge.settings imports most of the edge (seconds on a small machine), which the
            # one-shot `db upgrade` with EDGE_DATABASE_URL alone does without.
            from edge.settings import read_config_file

            self._data = read_config_file(path)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {name: value for name, value in self._data.items() if name in self.settings_cls.model_fields}


class DatabaseSettings(BaseSettings):
    """``EDGE_DATABASE_URL`` from the same places, in the same precedence, as ``edge.settings.EdgeSettings``;
    the edge's other settings are not read (they are the edge's to check)."""

    model_config = SettingsConfigDict(
        env_prefix="EDGE_", extra="ignore", env_ignore_empty=True, hide_input_in_errors=True
    )

    database_url: SecretStr | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _ConfigFileSource(settings_cls))


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}: use a positive number, e.g. 300")
    return value


def _build_parser(out: TextIO) -> CommandParser:
    parser = CommandParser(
        prog="python -m edge db", description="Create and upgrade the edge's tables (EDGE_DATABASE_URL).", out=out
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=CommandParser)
    upgrade_command = commands.add_parser("upgrade", help="apply the pending migrations", out=out)
    upgrade_command.add_argument(
        "--lock-timeout",
        type=_seconds,
        default=DEFAULT_LOCK_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for another upgrade to finish (default: {DEFAULT_LOCK_TIMEOUT:g})",
    )
    commands.add_parser("current", help="show the database's version and every migration", out=out)
    commands.add_parser("check", help="exit 0 when no migration is pending, 1 otherwise", out=out)
    return parser


def _when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _print_migrations(out: TextIO, state: SchemaState) -> None:
    applied = {row.version: row for row in state.applied}
    changed = {migration.version for migration in state.changed}
    for migration in state.known:
        row = applied.get(migration.version)
        if row is None:
            status = "pending"
        elif migration.version in changed:
            status = f"applied {_when(row.applied_at)}, DIFFERS from this edge's file"
        else:
            status = f"applied {_when(row.applied_at)}"
        out.write(f"  {migration.label}  {status}\n")
    for row in state.unknown:
        out.write(f"  {row.label}  applied {_when(row.applied_at)} by a newer edge\n")


async def _run(args: argparse.Namespace, database_url: str, out: TextIO, connect_timeout: float) -> int:
    async with await psycopg.AsyncConnection.connect(
        database_url, autocommit=True, connect_timeout=max(1, math.ceil(connect_timeout))
    ) as conn:
        if args.command == "upgrade":
            state, applied = await upgrade(conn, lock_timeout=args.lock_timeout)
            for migration in applied:
                out.write(f"applied {migration.label}\n")
            if not applied:
                out.write("nothing to apply\n")
            out.write(f"{state.summary()}\n")
            return EXIT_OK
        state = await read_state(conn)
    out.write(f"{state.summary()}\n")
    if args.command == "current":
        _print_migrations(out, state)
    if state.changed:
        return EXIT_CONFLICT
    if state.pending and args.command == "check":
        return EXIT_PENDING
    return EXIT_OK


def _database_url(err: TextIO) -> str | None:
    try:
        url = DatabaseSettings().database_url
    except ValidationError as exc:  # hide_input_in_errors: the message never repeats the value
        err.write(f"error: EDGE_DATABASE_URL is not a valid setting: {exc}\n")
        return None
    except ValueError as exc:  # edge.settings.ConfigFileError: names the file and the problem, never its contents
        err.write(f"error: {exc}\n")
        return None
    if url is None:
        err.write("error: EDGE_DATABASE_URL is not set (environment or the EDGE_CONFIG file)\n")
        return None
    return url.get_secret_value()


def main(
    argv: list[str],
    *,
    database_url: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> int:
    """Run one ``db`` command; return the exit code (see the module docstring). ``database_url`` None reads
    ``EDGE_DATABASE_URL``; ``out`` and ``err`` default to the streams ``sys`` has at the call.
    Example: ``main(["upgrade"], database_url=url)``."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    args = parse_command(_build_parser(out), argv, command="db", err=err, usage_exit=EXIT_USAGE)
    if isinstance(args, int):
        return args
    url = database_url if database_url is not None else _database_url(err)
    if url is None:
        return EXIT_USAGE
    try:
        return asyncio.run(_run(args, url, out, connect_timeout))
    except SchemaConflict as exc:
        err.write(f"error: {exc}\n")
        return EXIT_CONFLICT
    except (UpgradeLockTimeout, MigrationFailed) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_DATABASE
    except psycopg.Error as exc:  # connection failures included; libpq names the host and port, never the password
        err.write(f"error: the database is unavailable ({type(exc).__name__}: {exc})\n")
        return EXIT_DATABASE

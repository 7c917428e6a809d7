"""``python -m edge keys ...``: create, list, revoke and rotate API keys.

::

    keys create --owner O --plan P [--role R] [--var x-hasura-org-id=42 ...] [--expires-in 30d]
    keys list [--all]
    keys revoke KEY_ID
    keys rotate KEY_ID [--grace 24h]

``argv`` is what follows ``keys`` (a leading ``keys`` is accepted too). A new key is printed once,
with its key id; only its hash is stored, so it can never be shown again. ``list`` prints key ids
and metadata, never secrets or hashes. Durations are ``<n>s|m|h|d|w``.

Exit codes: 0 done; 1 no such key; 2 usage or validation error (the message says what is wrong);
3 the database could not be reached, or its edge tables are missing or out of date (the message names
``python -m edge db upgrade``).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import sys
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TextIO

import psycopg
import psycopg.errors

from edge.cli_parser import CommandParser, parse_command
from edge.db.schema import SchemaError, require_current
from edge.keys.errors import ApiKeyNotFound, ApiKeyValidationError
from edge.keys.model import ApiKey
from edge.keys.repository import DEFAULT_ROTATION_GRACE, ApiKeyRepository, open_repository

if TYPE_CHECKING:
    pass

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "EXIT_DATABASE",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_USAGE",
    "main",
    "parse_duration",
]

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_DATABASE = 3

_DURATION = re.compile(r"([0-9]{1,9})([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DEFAULT_CONNECT_TIMEOUT = 10.0


def parse_duration(text: str) -> timedelta:
    """``"30d"`` -> 30 days; ``s``, ``m``, ``h``, ``d`` and ``w`` units; zero is allowed (a grace of ``0s``)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: use a number and a unit, e.g. 30d, 24h, 90m")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def _variable(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"invalid --var {text!r}: use NAME=VALUE, e.g. x-hasura-org-id=42")
    return name, value


def _build_parser(out: TextIO) -> CommandParser:
    parser = CommandParser(prog="python -m edge keys", description="Manage the edge's API keys.", out=out)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=CommandParser)
    create = commands.add_parser("create", help="create a key and print it once", out=out)
    create.add_argument("--owner", required=True, help="who the key is for (free text, e.g. a customer id)")
    create.add_argument("--plan", required=True, help="one of the configured plan names")
    create.add_argument("--role", help="Hasura role for the key's requests (default: the table default, 'user')")
    create.add_argument(
        "--var",
        action="append",
        type=_variable,
        default=[],
        metavar="NAME=VALUE",
        help="session variable sent to Hasura (x-hasura-*, lower case); repeat for several",
    )
    create.add_argument("--expires-in", type=parse_duration, metavar="DURATION", help="e.g. 30d; default: never")
    listing = commands.add_parser("list", help="list keys (never secrets)", out=out)
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    revoke = commands.add_parser("revoke", help="revoke a key now", out=out)
    revoke.add_argument("key_id", metavar="KEY_ID")
    rotate = commands.add_parser("rotate", help="issue a successor key; the old one expires after the grace", out=out)
    rotate.add_argument("key_id", metavar="KEY_ID")
    rotate.add_argument(
        "--grace",
        type=parse_duration,
        default=DEFAULT_ROTATION_GRACE,
        metavar="DURATION",
        help="how long the old key keeps working (default: 24h)",
    )
    return parser


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _print_new_key(out: TextIO, key: ApiKey, plaintext: str, headline: str) -> None:
    out.write(f"{headline}\n")
    out.write(f"key_id:  {key.key_id}\n")
    out.write(f"owner:   {key.owner}\nplan:    {key.plan}\nrole:    {key.role or '-'}\n")
    out.write(f"expires: {_when(key.expires_at)}\n")
    out.write(f"api key: {plaintext}\n")
    out.write("Store this key now: it cannot be shown again (only its hash is kept). Send it as 'X-API-Key'.\n")


def _print_list(out: TextIO, keys: Sequence[ApiKey], now: datetime) -> None:
    header = ("KEY_ID", "OWNER", "PLAN", "ROLE", "STATUS", "CREATED", "EXPIRES", "ROTATED", "SESSION_VARIABLES")
    rows = [header]
    for key in keys:
        variables = ",".join(f"{name}={value}" for name, value in sorted(key.session_variables.items())) or "-"
        rows.append(
            (
                key.key_id,
                key.owner,
                key.plan,
                key.role or "-",
                key.status(now),
                _when(key.created_at),
                _when(key.expires_at),
                _when(key.last_rotated_at),
                variables,
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header) - 1)]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + f"  {row[-1]}\n")
    out.write(f"{len(keys)} key(s)\n")


async def _run(args: argparse.Namespace, repository: ApiKeyRepository, out: TextIO) -> int:
    now = datetime.now(UTC)
    if args.command == "create":
        variables: dict[str, str] = {}
        for name, value in args.var:
            if name in variables:
                raise ApiKeyValidationError(f"session variable {name!r} is given twice")
            variables[name] = value
        key, plaintext = await repository.create(
            owner=args.owner,
            plan=args.plan,
            role=args.role,
            session_variables=variables,
            expires_at=None if args.expires_in is None else now + args.expires_in,
        )
        _print_new_key(out, key, plaintext, "Created API key.")
    elif args.command == "list":
        _print_list(out, await repository.list(include_revoked=args.all), now)
    elif args.command == "revoke":
        key = await repository.revoke(args.key_id)
        out.write(
            f"Revoked {key.key_id} (at {_when(key.revoked_at)}). Edges stop accepting it within their cache TTL.\n"
        )
    else:
        key, plaintext = await repository.rotate(args.key_id, grace=args.grace)
        _print_new_key(out, key, plaintext, f"Rotated {args.key_id}: it keeps working until {_when(now + args.grace)}.")
    return EXIT_OK


async def _main(
    args: argparse.Namespace, database_url: str, known_plans: Collection[str], out: TextIO, connect_timeout: float
) -> int:
    # The tables come from `python -m edge db upgrade`: say so, rather than fail on a missing relation.
    async with await psycopg.AsyncConnection.connect(
        database_url, autocommit=True, connect_timeout=max(1, math.ceil(connect_timeout))
    ) as conn:
        await require_current(conn)
    async with open_repository(
        database_url, known_plans=known_plans, wait=True, min_size=1, max_size=1, timeout=connect_timeout
    ) as repository:
        return await _run(args, repository, out)


def main(
    argv: list[str],
    *,
    database_url: str,
    known_plans: Collection[str],
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> int:
    """Run one ``keys`` command; return the exit code (see the module docstring). Output goes to ``out``,
    problems to ``err``; an unreachable database is reported after ``connect_timeout`` seconds.

    Example: ``main(["create", "--owner", "acme", "--plan", "free"], database_url=url, known_plans={"free"})``.
    """
    args = parse_command(_build_parser(out), argv, command="keys", err=err, usage_exit=EXIT_USAGE)
    if isinstance(args, int):
        return args
    try:
        return asyncio.run(_main(args, database_url, known_plans, out, connect_timeout))
    except ApiKeyValidationError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    except ApiKeyNotFound as exc:
        err.write(f"error: {exc}\n")
        return EXIT_NOT_FOUND
    except SchemaError as exc:
        err.write(f"error: the edge's tables are not ready: {exc}\n")
        return EXIT_DATABASE
    except psycopg.errors.IntegrityError as exc:  # a CHECK the validation missed: still the caller's input
        constraint = exc.diag.constraint_name or "a constraint"
        err.write(f"error: the database refused the key ({constraint})\n")
        return EXIT_USAGE
    except (psycopg.Error, OSError) as exc:  # PoolTimeout (unreachable database) is a psycopg.OperationalError
        err.write(f"error: the key database is unavailable ({type(exc).__name__}: {exc})\n")
        return EXIT_DATABASE

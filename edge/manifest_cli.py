"""``python -m edge manifest ...``: build and check the persisted-operations manifest (Apollo's format).

::

    manifest build --from-graphql DIR_OR_FILE [DIR_OR_FILE ...] [-o manifest.json]
    manifest build --from-query-collections hasura/metadata/query_collections.yaml [-o manifest.json]
    manifest check manifest.json

``build`` writes the manifest to ``-o`` (or to standard output) and reports the number of operations on
standard error; directories are searched for ``.graphql``/``.gql`` files. ``check`` verifies a manifest:
its shape, that every id is the SHA-256 of its body, unique ids, and bodies holding one operation of the
stated type. ``argv`` is what follows ``manifest`` (a leading ``manifest`` is accepted too).

Exit codes: 0 done; 2 usage error, unreadable or invalid input, or a manifest that fails the check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from edge.cli_parser import CommandParser, parse_command
from edge.graphql.manifest import Manifest, ManifestError, build_from_graphql_files, build_from_query_collections

if TYPE_CHECKING:
    pass

__all__ = ["EXIT_INVALID", "EXIT_OK", "main"]

EXIT_OK = 0
EXIT_INVALID = 2


def _build_parser(out: TextIO) -> CommandParser:
    parser = CommandParser(
        prog="python -m edge manifest", description="Build and check the persisted-operations manifest.", out=out
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=CommandParser)
    build = commands.add_parser(
        "build", help="build a manifest from .graphql files or Hasura query collections", out=out
    )
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--from-graphql", nargs="+", type=Path, metavar="DIR_OR_FILE", help=".graphql/.gql files or directories"
    )
    source.add_argument(
        "--from-query-collections", type=Path, metavar="FILE", help="Hasura's metadata query_collections.yaml"
    )
    build.add_argument("-o", "--output", type=Path, metavar="FILE", help="where to write (default: standard output)")
    check = commands.add_parser("check", help="verify a manifest (ids match bodies)", out=out)
    check.add_argument("file", type=Path, metavar="FILE")
    return parser


def _build(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.from_graphql is not None:
        manifest = build_from_graphql_files(args.from_graphql)
    else:
        manifest = build_from_query_collections(args.from_query_collections)
    if not manifest.entries:
        err.write("error: no operations found\n")
        return EXIT_INVALID
    text = manifest.to_json()
    if args.output is None:
        out.write(text)
        err.write(f"{len(manifest)} operation(s)\n")
    else:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            err.write(f"error: {args.output}: cannot be written ({exc.strerror or exc})\n")
            return EXIT_INVALID
        err.write(f"wrote {len(manifest)} operation(s) to {args.output}\n")
    return EXIT_OK


def _check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    manifest = Manifest.from_file(args.file, verify=False)
    problems = manifest.problems()
    for problem in problems:
        err.write(f"{args.file}: {problem}\n")
    if problems:
        err.write(f"{args.file}: {len(problems)} problem(s)\n")
        return EXIT_INVALID
    out.write(f"{args.file}: ok, {len(manifest)} operation(s)\n")
    return EXIT_OK


def main(argv: list[str], *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run one ``manifest`` command; return the exit code (see the module docstring).

    Example: ``main(["build", "--from-graphql", "src/graphql", "-o", "manifest.json"])``.
    """
    args = parse_command(_build_parser(out), argv, command="manifest", err=err, usage_exit=EXIT_INVALID)
    if isinstance(args, int):
        return args
    try:
        return _build(args, out, err) if args.command == "build" else _check(args, out, err)
    except ManifestError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_INVALID

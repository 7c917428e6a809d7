"""``python -m edge``: serve the edge; ``keys ...``: manage API keys; ``check-config``: validate the
configuration; ``db ...``: the edge's tables; ``manifest ...``: persisted operations; ``usage report``:
usage per API key and per user (``edge.usage_cli``).

Serving, ``keys``, ``usage`` and ``check-config`` read the same settings (``EDGE_*`` variables and the ``EDGE_CONFIG``
file), so they run wherever the edge runs (``docker compose exec edge python -m edge keys list``). An
invalid configuration is exit 2 with one line per problem (``edge.configuration``). ``--help`` and
``--version`` need no configuration, for every command.
"""

from __future__ import annotations

import logging
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from edge.build_info import PACKAGE, compiled_modules, stale_compiled_modules
from edge.logs import configure_logging

if TYPE_CHECKING:
    from edge.settings import EdgeSettings

USAGE = """usage: python -m edge                 serve /graphql (configuration: docs/configuration.md)
       python -m edge check-config    validate the configuration without serving, then exit 0 or 2
       python -m edge keys ...        create|list|revoke|rotate API keys (python -m edge keys --help)
       python -m edge db ...          upgrade|current|check the edge's tables (python -m edge db --help)
       python -m edge manifest ...    build|check a persisted-operations manifest (python -m edge manifest --help)
       python -m edge usage report    usage per API key and per user for a period (python -m edge usage --help)
       python -m edge --version       the version; --help and --version need no configuration
"""
HELP_FLAGS = ("-h", "--help")


def _before_separator(argv: list[str]) -> list[str]:
    return argv[: argv.index("--")] if "--" in argv else argv


def _version() -> str:
    try:
        number = version("hasura-edge")
    except PackageNotFoundError:  # run from a checkout that was not installed
        number = "unknown"
    compiled = len(compiled_modules())
    build = f"request path compiled ({compiled} modules)" if compiled else "interpreted"
    return f"hasura-edge {number} ({build})\n"


def configured_settings() -> EdgeSettings | None:
    """The settings; or None after writing the problems (one line each) and warnings to standard error."""
    from edge.configuration import load_settings, write_problems  # not imported for --help and --version

    loaded = load_settings()
    write_problems(sys.stderr, loaded.problems, loaded.warnings)
    return loaded.settings


def _keys(argv: list[str]) -> int:
    from edge.keys.cli import main as keys_main

    if any(flag in _before_separator(argv) for flag in HELP_FLAGS):
        # The keys command parses its arguments before it uses the database, and a help flag ends the
        # parsing (or a usage error does first): no configuration is read, no database is opened.
        return keys_main(argv, database_url="", known_plans=())
    settings = configured_settings()
    if settings is None:
        return 2
    if settings.database_url is None:
        sys.stderr.write("hasura-edge: EDGE_DATABASE_URL is required to manage API keys\n")
        return 2
    return keys_main(argv, database_url=settings.database_url.get_secret_value(), known_plans=settings.plans.keys())


def main(argv: list[str]) -> int:
    if argv[:1] and argv[0] in HELP_FLAGS:
        sys.stdout.write(USAGE)
        return 0
    if "--version" in _before_separator(argv):
        sys.stdout.write(_version())
        return 0
    if argv and argv[0] == "manifest":
        from edge.manifest_cli import main as manifest_main  # needs no settings

        return manifest_main(argv[1:])
    if argv and argv[0] == "db":
        from edge.db.cli import main as db_main  # needs EDGE_DATABASE_URL only

        return db_main(argv[1:])
    if argv and argv[0] == "usage":
        from edge.usage_cli import main as usage_main  # reads the settings after its arguments

        return usage_main(argv[1:])
    if argv and argv[0] == "check-config":
        from edge.check_config import main as check_config_main

        return check_config_main(argv[1:])
    if argv and argv[0] == "keys":
        return _keys(argv[1:])
    if argv:
        sys.stderr.write(USAGE)
        return 2
    settings = configured_settings()
    if settings is None:
        return 2
    configure_logging(settings.log_level, settings.log_format)
    stale = stale_compiled_modules()
    if stale:  # a log line: in JSON mode everything the serving edge writes is one
        logging.getLogger("edge").warning(
            "edge_compiled_modules_stale",
            extra={
                "modules": [str(path.relative_to(PACKAGE.parent)) for path in stale],
                "hint": "these sources changed after they were compiled; the old compiled code runs until "
                "`make compile`",
            },
        )
    from edge.launch import run

    return run(settings)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

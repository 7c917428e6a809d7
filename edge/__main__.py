"""``python -m edge``: serve the edge; ``keys ...``: manage API keys; ``manifest ...``: persisted operations.

Both read the same settings (``EDGE_*`` variables and the ``EDGE_CONFIG`` file), so the keys
command runs wherever the edge runs (``docker compose exec edge python -m edge keys list``).
"""

from __future__ import annotations

import sys

from pydantic import ValidationError

from edge.build_info import PACKAGE, stale_compiled_modules
from edge.logs import configure_logging
from edge.settings import EdgeSettings

USAGE = """usage: python -m edge                 serve /graphql (configuration: docs/configuration.md)
       python -m edge keys ...        create|list|revoke|rotate API keys (python -m edge keys --help)
       python -m edge db ...          upgrade|current|check the edge's tables (python -m edge db --help)
       python -m edge manifest ...    build|check a persisted-operations manifest (python -m edge manifest --help)
"""


def load_settings() -> EdgeSettings | None:
    try:
        return EdgeSettings()  # required fields come from the environment
    except (ValidationError, ValueError) as exc:
        # pydantic's message names the field and the problem; inputs are hidden (hide_input_in_errors).
        sys.stderr.write(f"hasura-edge: invalid configuration:\n{exc}\n")
        return None


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    if argv and argv[0] == "manifest":
        from edge.manifest_cli import main as manifest_main  # needs no settings

        return manifest_main(argv[1:])
    if argv and argv[0] == "db":
        from edge.db.cli import main as db_main  # needs EDGE_DATABASE_URL only

        return db_main(argv[1:])
    if argv and argv[0] != "keys":
        sys.stderr.write(USAGE)
        return 2
    settings = load_settings()
    if settings is None:
        return 2
    if argv:
        from edge.keys.cli import main as keys_main

        if settings.database_url is None:
            sys.stderr.write("hasura-edge: EDGE_DATABASE_URL is required to manage API keys\n")
            return 2
        return keys_main(
            argv[1:], database_url=settings.database_url.get_secret_value(), known_plans=settings.plans.keys()
        )
    configure_logging(settings.log_level, settings.log_format)
    stale = stale_compiled_modules()
    if stale:
        names = ", ".join(str(path.relative_to(PACKAGE.parent)) for path in stale)
        sys.stderr.write(f"hasura-edge: warning: these sources changed after they were compiled ({names}); ")
        sys.stderr.write("the old compiled code runs until `make compile`\n")
    from edge.serve import run

    return run(settings)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

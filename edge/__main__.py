"""``python -m edge``: read settings, configure logging, serve."""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from edge.logs import configure_logging
from edge.server import uvicorn_config
from edge.settings import EdgeSettings


def main() -> int:
    try:
        settings = EdgeSettings()  # required fields come from the environment
    except (ValidationError, ValueError) as exc:
        # pydantic's message names the field and the problem; secrets are SecretStr and not shown.
        sys.stderr.write(f"hasura-edge: invalid configuration:\n{exc}\n")
        return 2
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.Server(uvicorn_config(settings)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

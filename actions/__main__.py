"""``python -m actions``: read ActionsSettings from ACTIONS_* variables and serve under uvicorn."""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from actions.app import create_app
from actions.settings import ActionsSettings


def load_settings() -> ActionsSettings:
    """Settings from the environment. On error, report the fields and exit 2 without echoing the
    offending values (pydantic's default message would print a rejected webhook secret)."""
    try:
        return ActionsSettings()  # required fields come from the ACTIONS_* environment
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            field = ".".join(str(part) for part in error["loc"]) or "settings"
            sys.stderr.write(f"invalid configuration: ACTIONS_{field.upper()}: {error['msg']}\n")
        raise SystemExit(2) from None


def main() -> None:
    settings = load_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        proxy_headers=False,
        server_header=False,
        log_level="info",
    )


if __name__ == "__main__":
    main()

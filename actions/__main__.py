"""``python -m actions``: read ActionsSettings from ACTIONS_* variables and serve under uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from actions.app import create_app
from actions.settings import ActionsSettings


def main() -> None:
    settings = ActionsSettings()  # required fields come from the ACTIONS_* environment
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

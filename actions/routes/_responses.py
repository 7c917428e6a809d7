"""OpenAPI ``responses=`` entries, so the schema lists the real status codes and their error codes."""

from __future__ import annotations

from typing import Any

from actions.hasura import HasuraError

__all__ = ["error"]


def error(description: str) -> dict[str, Any]:
    return {"model": HasuraError, "description": description}

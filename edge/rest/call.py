"""``RestCall``: what the REST stages know of one call, carried on ``RequestContext.rest_call``.

Its own module so that the request context can name it without importing the REST handler.
"""

from __future__ import annotations

from typing import Any

from edge.rest.endpoints import Endpoint

__all__ = ["RestCall"]


class RestCall:
    """One REST call as its stages see it (``ctx.rest_call``): the path, then what the stages resolve."""

    __slots__ = ("body", "endpoint", "forwarded", "raw_path", "target")

    def __init__(self, raw_path: bytes) -> None:
        self.raw_path = raw_path
        self.body: dict[str, Any] | None = None
        """The body's JSON object (receive); None for an empty body."""
        self.endpoint: Endpoint | None = None
        """The endpoint called (resolve_endpoint)."""
        self.target = ""
        """Hasura's ``/api/rest/...`` target, query string included (resolve_endpoint)."""
        self.forwarded: bytes | None = None
        """The body Hasura gets: the body keys that decided the variables (resolve_endpoint)."""

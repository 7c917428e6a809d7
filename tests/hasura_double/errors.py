"""Hasura error values and their two wire encodings.

GraphQL endpoints answer ``{"errors":[{"message","extensions":{"path","code"}}]}`` (``encodeGQLErr`` in
server/src-lib/Hasura/Base/Error.hs, ``encodeGQErr`` in server/src-lib/Hasura/GraphQL/Transport/HTTP/Protocol.hs)
(``path`` before ``code``); other endpoints (``/v1/metadata``, ``/v2/query``, 404s) answer
``{"error","path","code"}``. ``/v1/graphql`` rewrites every error status to 200 (``allMod200`` in
server/src-lib/Hasura/Server/App.hs), the other endpoints
keep the real status carried here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["HasuraError", "api_error_body", "graphql_error_body", "graphql_error_object"]


@dataclass(frozen=True)
class HasuraError(Exception):
    """A Hasura ``QErr``: message, JSON path, code and the HTTP status Hasura assigns internally."""

    message: str
    code: str
    path: str = "$"
    status: int = 400

    def __str__(self) -> str:
        return f"{self.code}: {self.message} (at {self.path})"


def graphql_error_object(error: HasuraError) -> dict[str, Any]:
    """``encodeGQLErr``: one element of ``errors``; key order message, extensions{path, code}."""
    return {"message": error.message, "extensions": {"path": error.path, "code": error.code}}


def graphql_error_body(error: HasuraError) -> dict[str, Any]:
    """The whole GraphQL error response for a single request (``encodeGQErr``)."""
    return {"errors": [graphql_error_object(error)]}


def api_error_body(error: HasuraError) -> dict[str, Any]:
    """Error shape of the non-GraphQL APIs and of 404s: ``{"error","path","code"}`` (``ToJSON QErr``)."""
    return {"error": error.message, "path": error.path, "code": error.code}

"""Hasura's RESTified endpoints through the edge: ``/api/rest/<url>`` and its OpenAPI document.

- ``endpoints.py``: read ``rest_endpoints.yaml`` and ``query_collections.yaml``; match a path as Hasura does.
- ``variables.py``: a call's variables from the path, query string and body (Hasura's rules); checked
  against the operation's types.
- ``handler.py``: the call through a variant of the ``/graphql`` pipeline's declaration, to Hasura's endpoint.
- ``openapi.py``: the OpenAPI 3.1 document of the endpoints, at ``/api/openapi.json``.

``build_rest_app(...)`` assembles them when ``EDGE_HASURA_METADATA_DIR`` is set.
"""

from __future__ import annotations

from pathlib import Path

from edge.asgi import Receive, Scope, Send
from edge.cache import ResponseCache
from edge.graphql.schema_source import SchemaSource
from edge.graphql_http import GraphQLHTTPHandler
from edge.pipeline.authenticate import Authenticate
from edge.pipeline.receive_request import ReceiveRequest
from edge.rest.endpoints import Endpoint, RestEndpoints
from edge.rest.handler import REST_PREFIX, RestHandler, rest_stages
from edge.rest.openapi import OPENAPI_PATH, OpenAPIDocument
from edge.upstream.base import Upstream

__all__ = [
    "OPENAPI_PATH",
    "REST_PREFIX",
    "Endpoint",
    "RestApp",
    "RestEndpoints",
    "RestHandler",
    "build_rest_app",
    "rest_stages",
]


class RestApp:
    """ASGI app for ``/api/rest/...`` and ``/api/openapi.json`` (``serves(path)`` says which paths)."""

    def __init__(self, handler: RestHandler, openapi: OpenAPIDocument) -> None:
        self.handler = handler
        self.openapi = openapi

    @staticmethod
    def serves(path: str) -> bool:
        return path.startswith(REST_PREFIX) or path == OPENAPI_PATH

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == OPENAPI_PATH:
            await self.openapi(scope, receive, send)
        else:
            await self.handler(scope, receive, send)


def build_rest_app(
    metadata_dir: Path,
    graphql: GraphQLHTTPHandler,
    *,
    upstream: Upstream,
    schema_source: SchemaSource,
    authenticate: Authenticate,
    receive: ReceiveRequest,
    response_cache: ResponseCache | None,
) -> RestApp:
    """Raises ``MetadataError`` when the metadata's REST files cannot be read. ``authenticate`` and
    ``receive`` are the ``/graphql`` handler's stages (REST runs a variant of its declaration)."""
    endpoints = RestEndpoints.from_metadata_dir(metadata_dir)
    stages = rest_stages(
        graphql,
        endpoints,
        upstream=upstream,
        receive=receive,
        response_cache=response_cache,
        schema_source=schema_source,
    )
    handler = RestHandler(graphql, stages, endpoints, authenticate=authenticate, schema_source=schema_source)
    return RestApp(handler, OpenAPIDocument(handler))

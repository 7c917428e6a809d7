"""Assemble the edge: the raw ``/graphql`` handler in front, FastAPI for everything else.

``create_app(settings, ...)`` takes its I/O (upstream client, JWT verifier) as arguments so
tests can pass real ones pointed at the Hasura double; production passes nothing and gets the
defaults built from settings.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from edge.asgi import Receive, Scope, Send
from edge.auth.jwt_verifier import JWTVerifier
from edge.errors import graphql_error_body
from edge.graphql_http import GraphQLHTTPHandler
from edge.pipeline.authenticate import Authenticate
from edge.pipeline.cors import CorsPolicy
from edge.pipeline.inject_session import InjectSession
from edge.pipeline.proxy import Proxy
from edge.pipeline.receive_request import ReceiveRequest
from edge.routes.health import ReadinessCheck, hasura_check, health_router, redis_check
from edge.settings import EdgeSettings
from edge.upstream import make_upstream
from edge.upstream.base import Upstream

__all__ = ["EdgeApp", "create_app"]

GRAPHQL_PATH = "/graphql"


class EdgeApp:
    """The ASGI entry point: ``/graphql`` over HTTP goes straight to the pipeline."""

    def __init__(self, graphql: GraphQLHTTPHandler, framework: FastAPI) -> None:
        self.graphql = graphql
        self.framework = framework

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == GRAPHQL_PATH:
            await self.graphql(scope, receive, send)
        elif scope["type"] == "websocket":
            # Subscriptions through the edge are not served yet: refuse the upgrade (HTTP 403).
            await send({"type": "websocket.close", "code": 1008})
        else:
            await self.framework(scope, receive, send)


def create_app(
    settings: EdgeSettings,
    *,
    upstream: Upstream | None = None,
    verifier: JWTVerifier | None = None,
    redis_client: object | None = None,
) -> EdgeApp:
    upstream = upstream or make_upstream(
        settings.hasura_base_url,
        kind=settings.upstream_client,
        connect_timeout=settings.upstream_connect_timeout_seconds,
        read_timeout=settings.upstream_read_timeout_seconds,
        max_connections=settings.upstream_max_connections,
    )
    configs = settings.jwt_configs
    jwks_client: httpx.AsyncClient | None = None
    if verifier is None and configs:
        if any(config.jwk_url for config in configs):
            # JWKS fetches are rare and off the hot path: plain httpx, no redirects (SSRF).
            jwks_client = httpx.AsyncClient(timeout=5.0, follow_redirects=False)
        verifier = JWTVerifier(configs, http_client=jwks_client)
    if redis_client is None and settings.redis_url is not None:
        import redis.asyncio as redis_asyncio

        redis_client = redis_asyncio.from_url(settings.redis_url.get_secret_value())

    handler = GraphQLHTTPHandler(
        receive_request=ReceiveRequest(max_body_bytes=settings.max_body_bytes, allow_get=settings.allow_get),
        authenticate=Authenticate(verifier=verifier, configs=configs, unauthorized_role=settings.unauthorized_role),
        inject_session=InjectSession(
            admin_secret=settings.hasura_admin_secret.get_secret_value(),
            extra_dropped=_token_header_names(settings),
        ),
        proxy=Proxy(upstream),
        cors=CorsPolicy(settings.allowed_origins, allow_get=settings.allow_get),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if verifier is not None:
            await verifier.start()
        try:
            yield
        finally:
            if verifier is not None:
                await verifier.aclose()
            if jwks_client is not None:
                await jwks_client.aclose()
            await upstream.aclose()
            if redis_client is not None:
                await redis_client.aclose()  # type: ignore[attr-defined]

    framework = FastAPI(
        title="hasura-edge",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    checks: dict[str, ReadinessCheck] = {"hasura": hasura_check(upstream)}
    if redis_client is not None:
        checks["redis"] = redis_check(redis_client)
    framework.include_router(health_router(checks))

    @framework.exception_handler(StarletteHTTPException)
    async def _graphql_shaped(_: Request, exc: StarletteHTTPException) -> Response:
        # Everything that is not /graphql or a health route is absent: Hasura's /v1/metadata,
        # /v2/query, /console... are never reachable through the edge.
        code = (
            "not-found" if exc.status_code == 404 else "method-not-allowed" if exc.status_code == 405 else "bad-request"
        )
        message = "resource does not exist" if exc.status_code == 404 else str(exc.detail)
        return Response(
            graphql_error_body(message, code),
            status_code=exc.status_code,
            media_type="application/json",
            headers=exc.headers,
        )

    return EdgeApp(handler, framework)


def _token_header_names(settings: EdgeSettings) -> list[bytes]:
    """Custom token headers from the JWT config: consumed by the edge, never forwarded."""
    return [
        config.header.name.lower().encode("latin-1")
        for config in settings.jwt_configs
        if config.header.kind == "CustomHeader" and config.header.name
    ]

"""The composition root: ``create_app`` builds the edge from its settings and returns the ASGI app.

Read it first. It calls one builder per concern (``edge.components``: Redis, upstream, observability,
identity, plans and limits, analysis, response cache), declares the ``/graphql`` request path from
their stages (``edge.pipeline.order``), and puts the GraphQL handler in front (``edge.graphql_paths``),
FastAPI behind it for everything else. ``create_app(settings, ...)`` takes its I/O (upstream client,
JWT verifier, Redis client, the limiter and key store) as optional arguments so tests can pass real
ones pointed at their own servers; production passes nothing and gets the defaults built from
settings. Everything that needs a running event loop (pools, background refreshers) starts in the
lifespan, in the builders' order, and closes in the reverse order.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from edge.asgi import ASGIApp, Receive, Scope, Send
from edge.auth.jwt_verifier import JWTVerifier
from edge.components import (
    Analysis,
    Identification,
    Observability,
    PlansAndLimits,
    RedisClients,
    ResponseCaching,
    build_analysis,
    build_identity,
    build_observability,
    build_plans_and_limits,
    build_redis,
    build_response_cache,
    build_upstream,
    token_header_names,
)
from edge.context import RequestContext
from edge.error_statuses import ErrorStatuses
from edge.errors import graphql_error_body
from edge.graphiql import GraphiQL
from edge.graphql.schema_source import SchemaSource
from edge.graphql_http import GraphQLHTTPHandler
from edge.graphql_paths import GRAPHQL_PATHS
from edge.http.cors import CorsPolicy
from edge.http.response_headers import security_headers
from edge.keys.store import ApiKeyStore
from edge.limits.base import CostBudgets, Limiter
from edge.observability.metrics_peers import MetricsPeers
from edge.pipeline.analyse_operation import CostModelHolder
from edge.pipeline.cached_proxy import CachedProxy
from edge.pipeline.inject_session import InjectSession
from edge.pipeline.order import Stages
from edge.pipeline.proxy import Proxy
from edge.pipeline.respond import Respond
from edge.pipeline.traced_proxy import TracedProxy
from edge.rest import RestApp, build_rest_app
from edge.routes.admin import admin_router, usage_router
from edge.routes.graphiql import graphiql_router
from edge.routes.health import ReadinessCheck, hasura_check, health_router, redis_check
from edge.settings import EdgeSettings
from edge.upstream.balancer import BalancedUpstream
from edge.upstream.base import Upstream
from edge.ws import GraphQLWebSocketHandler, make_websocket_handler, refuse_without_websocket_route

__all__ = ["EdgeApp", "create_app"]


class EdgeApp:
    """The ASGI entry point: HTTP on ``/graphql`` and ``/v1/graphql`` goes straight to the pipeline."""

    def __init__(
        self,
        graphql: GraphQLHTTPHandler,
        framework: FastAPI,
        *,
        schema_source: SchemaSource,
        costs: CostModelHolder,
        websocket: GraphQLWebSocketHandler | None = None,
        metrics: ASGIApp | None = None,
        websocket_drain_seconds: float = 10.0,
        rest: RestApp | None = None,
    ) -> None:
        self.graphql = graphql
        self.rest = rest  # /api/rest/... and /api/openapi.json (edge/rest), with EDGE_HASURA_METADATA_DIR
        # One handler per path, sharing every stage: they differ only in the path their spans report.
        self.graphql_routes: dict[str, GraphQLHTTPHandler] = {
            path: graphql if path == graphql.path else graphql.on_path(path) for path in GRAPHQL_PATHS
        }
        # The edge's own server answers these paths with the handler directly, without ASGI
        # (edge.http_server); under any other ASGI server the same handlers run through __call__.
        self.direct_routes: dict[bytes, GraphQLHTTPHandler] = {
            path.encode(): handler for path, handler in self.graphql_routes.items()
        }
        self.metrics = metrics
        self.websocket = websocket
        self.framework = framework
        self.schema_source = schema_source
        self.costs = costs
        self.websocket_drain_seconds = websocket_drain_seconds

    async def drain_websockets(self) -> None:
        """Graceful shutdown of subscriptions: queries and mutations in flight get their results,
        then every socket closes with 1001 (the server calls this before closing what is left)."""
        if self.websocket is not None:
            await self.websocket.services.registry.drain(self.websocket_drain_seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        graphql = self.graphql_routes.get(scope["path"]) if scope["type"] == "http" else None
        if graphql is not None:
            await graphql(scope, receive, send)
        elif self.rest is not None and scope["type"] == "http" and self.rest.serves(scope["path"]):
            await self.rest(scope, receive, send)
        elif self.metrics is not None and scope["type"] == "http" and scope["path"] == "/metrics":
            await self.metrics(scope, receive, send)  # on the main port only with EDGE_METRICS_TOKEN
        elif scope["type"] == "websocket":
            if self.websocket is None:  # no subscriptions configured: no path has a WebSocket route (404)
                await refuse_without_websocket_route(scope, send, self.graphql.security_headers)
            else:
                await self.websocket(scope, receive, send)
        else:
            await self.framework(scope, receive, send)


def create_app(
    settings: EdgeSettings,
    *,
    upstream: Upstream | None = None,
    verifier: JWTVerifier | None = None,
    redis_client: Any | None = None,
    limiter: Limiter | None = None,
    budgets: CostBudgets | None = None,
    api_keys: ApiKeyStore | None = None,
    metrics_socket: socket.socket | None = None,
    metrics_peers: MetricsPeers | None = None,
) -> EdgeApp:
    """``metrics_socket``: bound to ``EDGE_METRICS_HOST:EDGE_METRICS_PORT`` already (``python -m edge`` binds it
    before start-up, so that a busy port is a configuration error); None: the lifespan binds it.
    ``metrics_peers``: this process is one of several workers (``EDGE_WORKERS``); ``/metrics`` sums them all."""
    owned = contextlib.AsyncExitStack()  # what the edge opened, closed in reverse order at shutdown
    redis = build_redis(settings, owned, redis_client)
    balanced = build_upstream(settings, upstream)
    observability = build_observability(settings, owned, redis, metrics_peers)
    identity = build_identity(settings, owned, verifier=verifier, api_keys=api_keys)
    limits = build_plans_and_limits(settings, redis, limiter=limiter, budgets=budgets)
    analysis = build_analysis(settings, balanced, redis, observability.metrics, limits.budgets)
    caching = build_response_cache(settings, redis)
    graphiql = GraphiQL(tls=settings.tls_cert_file is not None) if settings.graphiql else None
    graphql = _graphql_handler(settings, identity, limits, analysis, balanced, caching, observability, graphiql)
    websocket = make_websocket_handler(
        settings,
        authenticate=identity.authenticate,
        identify_plan=limits.identify_plan,
        costs=analysis.costs,
        limiter=limits.limiter,
        budgets=limits.budgets,
        redis_client=redis.shared,
        meter=observability.meter,
        observer=observability.observer,
    )
    _watch(observability, balanced, identity, limits, caching, websocket)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with owned:
            await balanced.start()
            owned.push_async_callback(balanced.drain, settings.upstream_drain_seconds)
            owned.push_async_callback(limits.budgets.drain)  # refunds not waited for: answered before Redis closes
            await identity.start(owned)
            await analysis.start(owned)
            await observability.start(owned, metrics_socket)
            yield

    framework = _framework(
        settings, lifespan, balanced, redis, identity, analysis, caching, observability, websocket, graphiql
    )
    serve_metrics = settings.metrics_port is None and settings.metrics_token is not None  # on the main port
    return EdgeApp(
        graphql,
        framework,
        schema_source=analysis.schema_source,
        costs=analysis.costs,
        websocket=websocket,
        metrics=observability.metrics_app if serve_metrics else None,
        websocket_drain_seconds=settings.upstream_drain_seconds,
        rest=_rest(settings, graphql, balanced, identity, analysis, caching),
    )


def _graphql_handler(
    settings: EdgeSettings,
    identity: Identification,
    limits: PlansAndLimits,
    analysis: Analysis,
    upstream: BalancedUpstream,
    caching: ResponseCaching | None,
    observability: Observability,
    graphiql: GraphiQL | None,
) -> GraphQLHTTPHandler:
    """``/graphql``: the stages the builders made, declared in the order they run."""
    tls = settings.tls_cert_file is not None
    cors = CorsPolicy(
        settings.allowed_origins, allow_get=settings.allow_get, token_headers=token_header_names(settings)
    )
    proxy: Callable[[RequestContext], Awaitable[None]] = Proxy(upstream)
    if observability.tracing.enabled:
        proxy = TracedProxy(proxy)
    stages = Stages(
        receive=analysis.receive,
        authenticate=identity.authenticate,
        identify_plan=limits.identify_plan,
        analyse=analysis.analyse,
        limit=limits.limit,
        inject_session=InjectSession(
            admin_secret=settings.hasura_admin_secret.get_secret_value(), extra_dropped=token_header_names(settings)
        ),
        proxy=CachedProxy(caching.cache, proxy) if caching is not None else proxy,
        finish=analysis.finish,
        respond=Respond(cors=cors, security_headers=security_headers(tls=tls)),
    )
    return GraphQLHTTPHandler(
        stages,
        cors=cors,
        observer=observability.observer,
        tracing=observability.tracing,
        tls=tls,
        error_statuses=ErrorStatuses(settings.error_statuses),
        graphiql=graphiql,
    )


def _rest(
    settings: EdgeSettings,
    graphql: GraphQLHTTPHandler,
    upstream: BalancedUpstream,
    identity: Identification,
    analysis: Analysis,
    caching: ResponseCaching | None,
) -> RestApp | None:
    """``/api/rest/...`` and ``/api/openapi.json`` with ``EDGE_HASURA_METADATA_DIR``: a variant of ``/graphql``."""
    if not settings.hasura_metadata_dir:
        return None
    return build_rest_app(
        settings.hasura_metadata_dir,
        graphql,
        upstream=upstream,
        schema_source=analysis.schema_source,
        authenticate=identity.authenticate,
        receive=analysis.receive,
        response_cache=caching.cache if caching is not None else None,
    )


def _watch(
    observability: Observability,
    upstream: BalancedUpstream,
    identity: Identification,
    limits: PlansAndLimits,
    caching: ResponseCaching | None,
    websocket: GraphQLWebSocketHandler,
) -> None:
    """What ``/metrics`` reads from the other parts at each scrape."""
    metrics = observability.metrics
    metrics.watch_upstream(upstream.target_states)
    observability.watch_store("limiter", limits.limiter)
    observability.watch_store("budgets", limits.budgets)
    if caching is not None:
        observability.watch_store("response_cache", caching.store)
        cache = caching.cache
        metrics.watch_cache(lambda: cache)  # hits and misses of the @cached response cache
    verifier = identity.verifier
    if verifier is not None:
        metrics.watch_jwks_fetches(lambda: verifier.jwks_fetches)
    registry = websocket.services.registry
    metrics.websocket_connections.set_function(lambda: len(registry))
    metrics.subscriptions.set_function(registry.subscriptions)


def _framework(
    settings: EdgeSettings,
    lifespan: Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]],
    upstream: BalancedUpstream,
    redis: RedisClients,
    identity: Identification,
    analysis: Analysis,
    caching: ResponseCaching | None,
    observability: Observability,
    websocket: GraphQLWebSocketHandler,
    graphiql: GraphiQL | None = None,
) -> FastAPI:
    """FastAPI for what is not a GraphQL path: health, GraphiQL's assets, the admin routes, GraphQL-shaped 404s."""
    framework = FastAPI(title="hasura-edge", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    checks: dict[str, ReadinessCheck] = {"hasura": hasura_check(upstream)}
    if redis.shared is not None:
        checks["redis"] = redis_check(redis.shared)
    framework.include_router(health_router(checks))
    if graphiql is not None:
        framework.include_router(graphiql_router(graphiql))
    if settings.admin_secret is not None:
        framework.include_router(
            admin_router(
                settings.admin_secret.get_secret_value(),
                schema_source=analysis.schema_source,
                cache_store=caching.store if caching is not None else None,
                key_repository=identity.key_repository,
                key_store=identity.api_keys,
                on_key_revoked=websocket.services.registry.recheck_key,
            )
        )
    if settings.usage_admin_secret is not None:
        framework.include_router(
            usage_router(settings.usage_admin_secret.get_secret_value(), meter=observability.meter)
        )

    # The headers every /graphql answer carries: an error here is JSON that a browser must not render either.
    protection = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in security_headers(tls=settings.tls_cert_file is not None)
    }

    @framework.exception_handler(StarletteHTTPException)
    async def _graphql_shaped(_: Request, exc: StarletteHTTPException) -> Response:
        # Everything that is not a GraphQL path or an edge route is absent: Hasura's /v1/metadata,
        # /v2/query, /console, /v1beta1/relay... are never reachable through the edge.
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "bad-request")
        message = "resource does not exist" if exc.status_code == 404 else str(exc.detail)
        return Response(
            graphql_error_body(message, code),
            status_code=exc.status_code,
            media_type="application/json",
            headers={**protection, **(exc.headers or {})},
        )

    return framework

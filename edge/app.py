"""Assemble the edge: the GraphQL handler in front (``edge.graphql_paths``), FastAPI for everything else.

``create_app(settings, ...)`` takes its I/O (upstream client, JWT verifier, Redis client, the
limiter and key store) as optional arguments so tests can pass real ones pointed at their own
servers; production passes nothing and gets the defaults built from settings. Everything that
needs a running event loop (pools, background refreshers) starts in the lifespan.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from edge.asgi import ASGIApp, Receive, Scope, Send
from edge.auth.authorizer import Authorizer
from edge.auth.jwt_verifier import JWTVerifier
from edge.components import build_observability, build_persisted_queries, build_response_cache, build_upstream
from edge.context import RequestContext
from edge.error_statuses import ErrorStatuses
from edge.errors import graphql_error_body
from edge.graphiql import GraphiQL
from edge.graphql.analysis import analyse
from edge.graphql.cost import CostModel
from edge.graphql.permissions import PermissionLimits
from edge.graphql.schema_info import SchemaInfo
from edge.graphql.schema_source import SchemaSource
from edge.graphql_http import GraphQLHTTPHandler
from edge.graphql_paths import GRAPHQL_PATHS
from edge.http.client_address import ClientAddressResolver
from edge.http.cors import CorsPolicy
from edge.http.response_headers import security_headers
from edge.keys.repository import ApiKeyRepository, create_pool
from edge.keys.store import ApiKeyStore
from edge.limits import make_cost_budgets, make_limiter
from edge.limits.base import CostBudgets, Limiter
from edge.observability import RedisUsageMeter, metrics_asgi_app
from edge.observability.metrics_peers import MetricsPeers
from edge.observability.metrics_server import MetricsServer
from edge.observability.tracing import Tracing
from edge.pipeline.analyse_operation import AnalyseOperation, CostModelHolder
from edge.pipeline.authenticate import Authenticate
from edge.pipeline.cached_proxy import CachedProxy
from edge.pipeline.finish_response import FinishResponse
from edge.pipeline.identify_plan import IdentifyPlan
from edge.pipeline.inject_session import InjectSession
from edge.pipeline.limit import Limit
from edge.pipeline.order import Stages
from edge.pipeline.proxy import Proxy
from edge.pipeline.receive_request import ReceiveRequest
from edge.pipeline.respond import Respond
from edge.pipeline.traced_proxy import TracedProxy
from edge.redis_topology import open_shared_redis
from edge.rest import RestApp, build_rest_app
from edge.routes.admin import admin_router, usage_router
from edge.routes.graphiql import graphiql_router
from edge.routes.health import ReadinessCheck, hasura_check, health_router, redis_check
from edge.settings import EdgeSettings
from edge.upstream.base import Upstream
from edge.ws import GraphQLWebSocketHandler, make_websocket_handler

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
            if self.websocket is None:  # no subscriptions configured: refuse the upgrade (HTTP 403)
                await send({"type": "websocket.close", "code": 1008})
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
    balanced = build_upstream(settings, upstream)
    upstream = balanced
    configs = settings.jwt_configs
    owned: contextlib.AsyncExitStack = contextlib.AsyncExitStack()
    http_client: httpx.AsyncClient | None = None
    if (verifier is None and any(config.jwk_url for config in configs)) or settings.authorizer_url is not None:
        # JWKS fetches and authorizer calls: plain httpx, never following redirects (SSRF).
        http_client = httpx.AsyncClient(timeout=5.0, follow_redirects=False, trust_env=False)
        owned.push_async_callback(http_client.aclose)
    if verifier is None and configs:
        verifier = JWTVerifier(configs, http_client=http_client)
    limits_client = redis_client
    if redis_client is None and settings.redis_url is not None:
        shared_redis = open_shared_redis(settings.redis_url.get_secret_value())
        redis_client = shared_redis.client
        limits_client = shared_redis.limits_client  # the lean RESP client on redis:// and rediss://
        owned.push_async_callback(shared_redis.aclose)
    limiter = limiter or make_limiter(limits_client, failure_mode=settings.limiter_failure_mode)
    budgets = budgets or make_cost_budgets(limits_client, failure_mode=settings.limiter_failure_mode)
    key_pool = None
    repository: ApiKeyRepository | None = None
    if api_keys is None and settings.database_url is not None:
        key_pool = create_pool(settings.database_url.get_secret_value())
        repository = ApiKeyRepository(key_pool, known_plans=settings.plans.keys())
        api_keys = ApiKeyStore(
            repository, ttl=settings.api_key_cache_seconds, negative_ttl=settings.api_key_negative_cache_seconds
        )
    authorizer = None
    if settings.authorizer_url is not None and http_client is not None:
        authorizer = Authorizer(
            str(settings.authorizer_url),
            client=http_client,
            mode=settings.authorizer_mode,
            send_request_body=settings.authorizer_send_request_body,
            cache_ttl=settings.authorizer_cache_seconds,
            timeout=settings.authorizer_timeout_seconds,
        )

    permissions = (
        PermissionLimits.from_metadata_dir(settings.hasura_metadata_dir) if settings.hasura_metadata_dir else None
    )

    def cost_model(schema: SchemaInfo | None) -> CostModel:
        return CostModel(schema, permissions, default_list_size=settings.default_list_size)

    costs = CostModelHolder(cost_model(None))
    schema_source = SchemaSource(
        upstream,
        admin_secret=settings.hasura_admin_secret.get_secret_value(),
        refresh_seconds=settings.schema_refresh_seconds,
        on_change=lambda schema: setattr(costs, "model", cost_model(schema)),
    )

    persisted = build_persisted_queries(settings, redis_client)
    introspection_roles = frozenset(settings.introspection_roles)
    cache = build_response_cache(settings, redis_client)
    metrics, meter, observer = build_observability(settings, redis_client)
    metrics.watch_upstream(balanced.target_states)
    metrics.watch_store_errors("limiter", lambda: getattr(limiter, "store_errors", 0))
    metrics.watch_store_errors("budgets", lambda: getattr(budgets, "store_errors", 0))
    if cache is not None:
        metrics.watch_store_errors("response_cache", lambda: getattr(cache[1], "store_errors", 0))
        metrics.watch_cache(lambda: cache[0])  # hits and misses of the @cached response cache
    if verifier is not None:
        jwt_verifier = verifier
        metrics.watch_jwks_fetches(lambda: jwt_verifier.jwks_fetches)
    metrics_app = metrics_asgi_app(
        metrics,
        token=settings.metrics_token.get_secret_value() if settings.metrics_token else None,
        peers=metrics_peers,
    )

    endpoint = settings.otel_exporter_otlp_endpoint
    tracing = Tracing(
        str(endpoint) if endpoint is not None else None,
        service_name=settings.otel_service_name,
        sample_ratio=settings.otel_sample_ratio,
    )
    graphiql = GraphiQL(tls=settings.tls_cert_file is not None) if settings.graphiql else None
    receive_request = ReceiveRequest(
        max_body_bytes=settings.max_body_bytes,
        allow_get=settings.allow_get,
        persisted=persisted,
        token_headers=_token_header_names(settings),
    )
    authenticate = Authenticate(
        verifier=verifier,
        configs=configs,
        unauthorized_role=settings.unauthorized_role,
        api_keys=api_keys,
        authorizer=authorizer,
    )
    identify_plan = IdentifyPlan(
        plans=settings.plans,
        jwt_plan=settings.jwt_plan,
        anonymous_plan=settings.anonymous_plan,
        addresses=ClientAddressResolver(settings.trusted_proxies),
    )
    cors = CorsPolicy(
        settings.allowed_origins, allow_get=settings.allow_get, token_headers=_token_header_names(settings)
    )
    tls = settings.tls_cert_file is not None
    proxy: Callable[[RequestContext], Awaitable[None]] = Proxy(upstream)
    if tracing.enabled:
        proxy = TracedProxy(proxy)
    stages = Stages(
        receive=receive_request,
        authenticate=authenticate,
        identify_plan=identify_plan,
        analyse=AnalyseOperation(
            analyser=analyse,
            costs=costs,
            persisted=persisted,
            introspection_roles=introspection_roles,
            on_warn_only=metrics.limit_warn_only,
        ),
        limit=Limit(limiter=limiter, budgets=budgets),
        inject_session=InjectSession(
            admin_secret=settings.hasura_admin_secret.get_secret_value(),
            extra_dropped=_token_header_names(settings),
        ),
        proxy=CachedProxy(cache[0], proxy) if cache is not None else proxy,
        finish=FinishResponse(budgets=budgets, costs=costs, introspection_roles=introspection_roles),
        respond=Respond(cors=cors, security_headers=security_headers(tls=tls)),
    )
    handler = GraphQLHTTPHandler(
        stages,
        cors=cors,
        observer=observer,
        tracing=tracing,
        tls=tls,
        error_statuses=ErrorStatuses(settings.error_statuses),
        graphiql=graphiql,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with owned:
            owned.push_async_callback(tracing.aclose)  # first in, last out: flushes the drained requests' spans
            await balanced.start()
            owned.push_async_callback(balanced.drain, settings.upstream_drain_seconds)
            if key_pool is not None:
                await key_pool.open(wait=False)  # the edge starts without its database: keys get 503
                owned.push_async_callback(key_pool.close)
            if verifier is not None:
                await verifier.start()
                owned.push_async_callback(verifier.aclose)
            await schema_source.start()
            owned.push_async_callback(schema_source.aclose)
            if isinstance(meter, RedisUsageMeter):
                meter.start()
                owned.push_async_callback(meter.aclose)  # the final flush runs before Redis closes
            if metrics_peers is not None:
                await metrics_peers.start(lambda: metrics.render()[0])
                owned.push_async_callback(metrics_peers.aclose)
            if settings.metrics_port is not None:
                metrics_server = MetricsServer(
                    metrics_app, host=settings.metrics_host, port=settings.metrics_port, sock=metrics_socket
                )
                await metrics_server.start()
                owned.push_async_callback(metrics_server.aclose)
            yield

    websocket = make_websocket_handler(
        settings,
        authenticate=authenticate,
        identify_plan=identify_plan,
        costs=costs,
        limiter=limiter,
        budgets=budgets,
        redis_client=redis_client,
        meter=meter,
        observer=observer,
    )
    registry = websocket.services.registry
    metrics.websocket_connections.set_function(lambda: len(registry))
    metrics.subscriptions.set_function(registry.subscriptions)

    framework = FastAPI(title="hasura-edge", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    checks: dict[str, ReadinessCheck] = {"hasura": hasura_check(upstream)}
    if redis_client is not None:
        checks["redis"] = redis_check(redis_client)
    framework.include_router(health_router(checks))
    if graphiql is not None:
        framework.include_router(graphiql_router(graphiql))
    if settings.admin_secret is not None:
        framework.include_router(
            admin_router(
                settings.admin_secret.get_secret_value(),
                schema_source=schema_source,
                cache_store=cache[1] if cache is not None else None,
                key_repository=repository,
                key_store=api_keys,
                on_key_revoked=websocket.services.registry.recheck_key if websocket is not None else None,
            )
        )
    if settings.usage_admin_secret is not None:
        framework.include_router(usage_router(settings.usage_admin_secret.get_secret_value(), meter=meter))

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
            headers=exc.headers,
        )

    serve_metrics = metrics_app if settings.metrics_port is None and settings.metrics_token is not None else None
    rest = (
        build_rest_app(
            settings.hasura_metadata_dir,
            handler,
            upstream=upstream,
            schema_source=schema_source,
            authenticate=authenticate,
            receive=receive_request,
            response_cache=cache[0] if cache is not None else None,
        )
        if settings.hasura_metadata_dir
        else None
    )
    return EdgeApp(
        handler,
        framework,
        schema_source=schema_source,
        costs=costs,
        websocket=websocket,
        metrics=serve_metrics,
        websocket_drain_seconds=settings.upstream_drain_seconds,
        rest=rest,
    )


def _token_header_names(settings: EdgeSettings) -> list[bytes]:
    """Custom token headers from the JWT config: consumed by the edge, never forwarded."""
    return [
        config.header.name.lower().encode("latin-1")
        for config in settings.jwt_configs
        if config.header.kind == "CustomHeader" and config.header.name
    ]

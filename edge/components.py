"""Build the edge's long-lived parts from the typed settings: one builder per concern.

The rule: each ``build_*`` function takes the settings, what an earlier builder made, and what a test
injects instead (a real client pointed at its own server), and returns one small record of the parts
of its concern, each built once and cheap to call per request. What needs a running event loop
(pools, background refreshers) starts in the record's ``start(owned)``, which the lifespan calls in
this order and which registers the part's close on ``owned``: closed in the reverse order.
``edge.app.create_app`` calls them in this order and assembles the request path from what they return:

1. ``build_redis``: the shared Redis client (and the limits' lean client), when ``EDGE_REDIS_URL`` is set
2. ``build_upstream``: Hasura behind circuit breakers, balanced over ``EDGE_HASURA_URLS``
3. ``build_observability``: metrics, usage meter, request observer, tracing, the ``/metrics`` app
4. ``build_identity``: JWT verifier, API keys, authorizer, and the authenticate stage
5. ``build_plans_and_limits``: the identify-plan and limit stages, with the limiter and cost budgets
6. ``build_analysis``: persisted queries, the cost model kept current by the schema source, and the
   receive, analyse and finish stages
7. ``build_response_cache``: the ``@cached`` response cache and its store
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
from typing import Any, Protocol, runtime_checkable

import httpx

from edge.asgi import ASGIApp
from edge.auth.authorizer import Authorizer
from edge.auth.jwt_verifier import JWTVerifier
from edge.cache import ResponseCache, make_response_cache_store
from edge.cache.store import ResponseCacheStore
from edge.graphql.analysis import analyse
from edge.graphql.cost import CostModel
from edge.graphql.manifest import Manifest
from edge.graphql.permissions import PermissionLimits
from edge.graphql.persisted import MemoryPersistedQueryStore, PersistedQueries, RedisPersistedQueryStore
from edge.graphql.schema_info import SchemaInfo
from edge.graphql.schema_source import SchemaSource
from edge.http.client_address import ClientAddressResolver
from edge.keys.repository import ApiKeyRepository, create_pool
from edge.keys.store import ApiKeyStore
from edge.limits import make_cost_budgets, make_limiter
from edge.limits.base import CostBudgets, Limiter
from edge.observability import (
    AccessLog,
    EdgeMetrics,
    MemoryUsageMeter,
    RedisUsageMeter,
    RequestObserver,
    metrics_asgi_app,
)
from edge.observability.metering import UsageMeter
from edge.observability.metrics_peers import MetricsPeers
from edge.observability.metrics_server import MetricsServer
from edge.observability.tracing import Tracing
from edge.pipeline.analyse_operation import AnalyseOperation, CostModelHolder
from edge.pipeline.authenticate import Authenticate
from edge.pipeline.finish_response import FinishResponse
from edge.pipeline.identify_plan import IdentifyPlan
from edge.pipeline.limit import Limit
from edge.pipeline.receive_request import ReceiveRequest
from edge.redis_topology import open_shared_redis
from edge.settings import EdgeSettings
from edge.upstream import make_upstream
from edge.upstream.balancer import BalancedUpstream, Target, parse_targets
from edge.upstream.base import Upstream
from edge.upstream.breaker import CircuitBreaker

__all__ = [
    "Analysis",
    "Identification",
    "Observability",
    "PlansAndLimits",
    "RedisClients",
    "ResponseCaching",
    "build_analysis",
    "build_identity",
    "build_observability",
    "build_persisted_queries",
    "build_plans_and_limits",
    "build_redis",
    "build_response_cache",
    "build_upstream",
    "token_header_names",
]

Owned = contextlib.AsyncExitStack


def token_header_names(settings: EdgeSettings) -> list[bytes]:
    """Custom token headers from the JWT config: consumed by the edge, never forwarded."""
    return [
        config.header.name.lower().encode("latin-1")
        for config in settings.jwt_configs
        if config.header.kind == "CustomHeader" and config.header.name
    ]


# --- 1. Redis ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RedisClients:
    """``shared``: the client every shared store gets (persisted queries, cache, usage, WebSocket
    registry, readiness); ``limits``: what the limiter and cost budgets run their scripts on. Both
    None without ``EDGE_REDIS_URL``: every store is in memory."""

    shared: Any | None
    limits: Any | None


def build_redis(settings: EdgeSettings, owned: Owned, injected: Any | None) -> RedisClients:
    """``injected`` (tests): a client to use for both, left open."""
    if injected is not None or settings.redis_url is None:
        return RedisClients(shared=injected, limits=injected)
    shared_redis = open_shared_redis(settings.redis_url.get_secret_value())
    owned.push_async_callback(shared_redis.aclose)
    # The lean RESP client on redis:// and rediss:// (edge.redis_topology).
    return RedisClients(shared=shared_redis.client, limits=shared_redis.limits_client)


# --- 2. Upstream -------------------------------------------------------------------------------------


def build_upstream(settings: EdgeSettings, injected: Upstream | None) -> BalancedUpstream:
    """Every Hasura URL behind a circuit breaker (and health checks and weighted round robin when
    there are several). ``injected`` (tests) replaces the single client."""
    targets = parse_targets(settings.hasura_urls) if settings.hasura_urls else [Target(settings.hasura_base_url)]

    def make_client(url: str) -> Upstream:
        if injected is not None:
            return injected
        return make_upstream(
            url,
            kind=settings.upstream_client,
            connect_timeout=settings.upstream_connect_timeout_seconds,
            read_timeout=settings.upstream_read_timeout_seconds,
            max_connections=settings.upstream_max_connections,
            idle_timeout=settings.upstream_idle_timeout_seconds,
        )

    return BalancedUpstream(
        targets if injected is None else targets[:1],
        make_client=make_client,
        breaker_factory=lambda: CircuitBreaker(
            settings.upstream_breaker_failure_threshold,
            settings.upstream_breaker_reset_seconds,
            settings.upstream_breaker_half_open_max_calls,
        ),
        health_interval=settings.upstream_health_interval_seconds,
        health_timeout=settings.upstream_health_timeout_seconds,
    )


# --- 3. Observability --------------------------------------------------------------------------------


@runtime_checkable
class CountsStoreErrors(Protocol):
    """A store that counts its own failures (the Redis limiter, budgets and response cache)."""

    @property
    def store_errors(self) -> int: ...


@dataclasses.dataclass(frozen=True)
class Observability:
    metrics: EdgeMetrics
    meter: UsageMeter
    observer: RequestObserver
    tracing: Tracing
    metrics_app: ASGIApp
    """``/metrics`` (with ``EDGE_METRICS_TOKEN``), served on its own port or the main one."""
    settings: EdgeSettings
    peers: MetricsPeers | None

    def watch_store(self, name: str, store: object) -> None:
        """Export ``store``'s error count as ``edge_store_errors_total{store=name}`` (0 for a store in memory)."""
        if isinstance(store, CountsStoreErrors):
            counted = store
            self.metrics.watch_store_errors(name, lambda: counted.store_errors)
        else:
            self.metrics.watch_store_errors(name, lambda: 0)

    async def start(self, owned: Owned, metrics_socket: socket.socket | None) -> None:
        meter = self.meter
        if isinstance(meter, RedisUsageMeter):
            meter.start()
            owned.push_async_callback(meter.aclose)  # the final flush runs before Redis closes
        if self.peers is not None:
            metrics = self.metrics
            await self.peers.start(lambda: metrics.render()[0])
            owned.push_async_callback(self.peers.aclose)
        settings = self.settings
        if settings.metrics_port is not None:
            server = MetricsServer(
                self.metrics_app, host=settings.metrics_host, port=settings.metrics_port, sock=metrics_socket
            )
            await server.start()
            owned.push_async_callback(server.aclose)


def build_observability(
    settings: EdgeSettings, owned: Owned, redis: RedisClients, peers: MetricsPeers | None
) -> Observability:
    """``peers``: this process is one of several workers (``EDGE_WORKERS``); ``/metrics`` sums them all."""
    metrics = EdgeMetrics(plans=settings.plans.keys(), roles=settings.metrics_roles)
    meter: UsageMeter
    if redis.shared is not None:
        # The flush's script runs where the limiter's do (the LeanRedis on one server); the report reads redis-py.
        meter = RedisUsageMeter(
            redis.shared,
            scripts=redis.limits,
            flush_interval=settings.usage_flush_seconds,
            period=settings.usage_period,
            metrics=metrics,
        )
    else:
        meter = MemoryUsageMeter(period=settings.usage_period, metrics=metrics)
    observer = RequestObserver(
        metrics=metrics,
        meter=meter,
        access_log=AccessLog(sample_rate=settings.access_log_sample_rate, include_user_id=settings.access_log_user_id),
    )
    endpoint = settings.otel_exporter_otlp_endpoint
    tracing = Tracing(
        str(endpoint) if endpoint is not None else None,
        service_name=settings.otel_service_name,
        sample_ratio=settings.otel_sample_ratio,
    )
    owned.push_async_callback(tracing.aclose)  # first in, last out: flushes the drained requests' spans
    metrics_app = metrics_asgi_app(
        metrics, token=settings.metrics_token.get_secret_value() if settings.metrics_token else None, peers=peers
    )
    return Observability(metrics, meter, observer, tracing, metrics_app, settings, peers)


# --- 4. Identity -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Identification:
    authenticate: Authenticate
    verifier: JWTVerifier | None
    api_keys: ApiKeyStore | None
    key_repository: ApiKeyRepository | None
    """Set when the edge reads its API keys from ``EDGE_DATABASE_URL`` (the admin routes manage them)."""
    key_pool: Any | None

    async def start(self, owned: Owned) -> None:
        if self.key_pool is not None:
            await self.key_pool.open(wait=False)  # the edge starts without its database: keys get 503
            owned.push_async_callback(self.key_pool.close)
        if self.verifier is not None:
            await self.verifier.start()
            owned.push_async_callback(self.verifier.aclose)


def build_identity(
    settings: EdgeSettings,
    owned: Owned,
    *,
    verifier: JWTVerifier | None = None,
    api_keys: ApiKeyStore | None = None,
) -> Identification:
    """``verifier``, ``api_keys`` (tests): used instead of those built from settings."""
    configs = settings.jwt_configs
    http_client: httpx.AsyncClient | None = None
    if (verifier is None and any(config.jwk_url for config in configs)) or settings.authorizer_url is not None:
        # JWKS fetches and authorizer calls: plain httpx, never following redirects (SSRF).
        http_client = httpx.AsyncClient(timeout=5.0, follow_redirects=False, trust_env=False)
        owned.push_async_callback(http_client.aclose)
    if verifier is None and configs:
        verifier = JWTVerifier(configs, http_client=http_client)
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
    authenticate = Authenticate(
        verifier=verifier,
        configs=configs,
        unauthorized_role=settings.unauthorized_role,
        api_keys=api_keys,
        authorizer=authorizer,
    )
    return Identification(authenticate, verifier, api_keys, repository, key_pool)


# --- 5. Plans and limits -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PlansAndLimits:
    identify_plan: IdentifyPlan
    limit: Limit
    limiter: Limiter
    budgets: CostBudgets


def build_plans_and_limits(
    settings: EdgeSettings, redis: RedisClients, *, limiter: Limiter | None = None, budgets: CostBudgets | None = None
) -> PlansAndLimits:
    """``limiter``, ``budgets`` (tests): used instead of those on ``redis.limits`` (or in memory)."""
    limiter = limiter or make_limiter(redis.limits, failure_mode=settings.limiter_failure_mode)
    budgets = budgets or make_cost_budgets(redis.limits, failure_mode=settings.limiter_failure_mode)
    identify_plan = IdentifyPlan(
        plans=settings.plans,
        jwt_plan=settings.jwt_plan,
        anonymous_plan=settings.anonymous_plan,
        addresses=ClientAddressResolver(settings.trusted_proxies),
    )
    return PlansAndLimits(identify_plan, Limit(limiter=limiter, budgets=budgets), limiter, budgets)


# --- 6. Analysis -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Analysis:
    receive: ReceiveRequest
    """The receive stage: its JSON is what the analysis reads (and persisted queries fill it in)."""
    persisted: PersistedQueries | None
    costs: CostModelHolder
    """The cost model of Hasura's current schema (replaced by ``schema_source`` when it changes)."""
    schema_source: SchemaSource
    analyse: AnalyseOperation
    finish: FinishResponse

    async def start(self, owned: Owned) -> None:
        await self.schema_source.start()
        owned.push_async_callback(self.schema_source.aclose)


def build_persisted_queries(settings: EdgeSettings, redis_client: Any | None) -> PersistedQueries | None:
    manifest = Manifest.from_file(settings.persisted_manifest_file) if settings.persisted_manifest_file else None
    if not settings.persisted_queries and manifest is None:
        return None
    store = RedisPersistedQueryStore(redis_client) if redis_client is not None else MemoryPersistedQueryStore()
    return PersistedQueries(store, manifest=manifest)


def build_analysis(
    settings: EdgeSettings,
    upstream: Upstream,
    redis: RedisClients,
    metrics: EdgeMetrics,
    budgets: CostBudgets,
) -> Analysis:
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
        on_change=lambda schema: costs.replace(cost_model(schema)),
    )
    persisted = build_persisted_queries(settings, redis.shared)
    introspection_roles = frozenset(settings.introspection_roles)
    analyse_operation = AnalyseOperation(
        analyser=analyse,
        costs=costs,
        persisted=persisted,
        introspection_roles=introspection_roles,
        on_warn_only=metrics.limit_warn_only,
    )
    finish = FinishResponse(budgets=budgets, costs=costs, introspection_roles=introspection_roles)
    receive = ReceiveRequest(
        max_body_bytes=settings.max_body_bytes,
        allow_get=settings.allow_get,
        persisted=persisted,
        token_headers=token_header_names(settings),
    )
    return Analysis(receive, persisted, costs, schema_source, analyse_operation, finish)


# --- 7. Response cache -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ResponseCaching:
    cache: ResponseCache
    store: ResponseCacheStore


def build_response_cache(settings: EdgeSettings, redis: RedisClients) -> ResponseCaching | None:
    """None with ``EDGE_RESPONSE_CACHE=off``."""
    if settings.response_cache == "off":
        return None
    store = make_response_cache_store(
        redis.shared if settings.response_cache == "redis" else None,
        max_entries=settings.response_cache_max_entries,
        max_bytes=settings.response_cache_max_bytes,
    )
    cache = ResponseCache(
        store,
        rules=settings.cache_rules,
        wait_timeout=settings.upstream_read_timeout_seconds,
        max_entry_bytes=settings.response_cache_max_entry_bytes,
        vary_headers=[name.lower().encode("latin-1") for name in settings.response_cache_vary_headers],
        private=settings.response_cache_private,
    )
    return ResponseCaching(cache, store)

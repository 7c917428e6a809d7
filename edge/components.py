"""Build the edge's long-lived parts from settings: one small factory per concern.

``edge.app.create_app`` calls these; each returns objects that are cheap to call per request
(everything is prepared here, once) and registers what must be closed on shutdown.
"""

from __future__ import annotations

from typing import Any

from edge.cache import ResponseCache, make_response_cache_store
from edge.cache.store import ResponseCacheStore
from edge.graphql.manifest import Manifest
from edge.graphql.persisted import MemoryPersistedQueryStore, PersistedQueries, RedisPersistedQueryStore
from edge.observability import AccessLog, EdgeMetrics, MemoryUsageMeter, RedisUsageMeter, RequestObserver
from edge.observability.metering import UsageMeter
from edge.settings import EdgeSettings
from edge.upstream import make_upstream
from edge.upstream.balancer import BalancedUpstream, Target, parse_targets
from edge.upstream.base import Upstream
from edge.upstream.breaker import CircuitBreaker

__all__ = ["build_observability", "build_persisted_queries", "build_response_cache", "build_upstream"]


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


def build_persisted_queries(settings: EdgeSettings, redis_client: Any | None) -> PersistedQueries | None:
    manifest = Manifest.from_file(settings.persisted_manifest_file) if settings.persisted_manifest_file else None
    if not settings.persisted_queries and manifest is None:
        return None
    store = RedisPersistedQueryStore(redis_client) if redis_client is not None else MemoryPersistedQueryStore()
    return PersistedQueries(store, manifest=manifest)


def build_response_cache(
    settings: EdgeSettings, redis_client: Any | None
) -> tuple[ResponseCache, ResponseCacheStore] | None:
    if settings.response_cache == "off":
        return None
    store = make_response_cache_store(
        redis_client if settings.response_cache == "redis" else None,
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
    return cache, store


def build_observability(
    settings: EdgeSettings, redis_client: Any | None
) -> tuple[EdgeMetrics, UsageMeter, RequestObserver]:
    metrics = EdgeMetrics(plans=settings.plans.keys(), roles=settings.metrics_roles)
    meter: UsageMeter
    if redis_client is not None:
        meter = RedisUsageMeter(
            redis_client, flush_interval=settings.usage_flush_seconds, period=settings.usage_period, metrics=metrics
        )
    else:
        meter = MemoryUsageMeter(period=settings.usage_period, metrics=metrics)
    observer = RequestObserver(
        metrics=metrics,
        meter=meter,
        access_log=AccessLog(sample_rate=settings.access_log_sample_rate, include_user_id=settings.access_log_user_id),
    )
    return metrics, meter, observer

"""Build the WebSocket handler from settings and the stages the HTTP pipeline already made."""

from __future__ import annotations

from typing import Any

from edge.graphql.analysis import analyse
from edge.graphql.policy import check, first_rejection
from edge.http.response_headers import security_headers
from edge.limits.base import CostBudgets, Limiter
from edge.observability.metering import UsageMeter
from edge.observability.recorder import RequestObserver
from edge.pipeline.analyse_operation import CostModelHolder
from edge.pipeline.authenticate import Authenticate
from edge.pipeline.identify_plan import IdentifyPlan
from edge.plans import Plan, RateLimit
from edge.settings import EdgeSettings
from edge.ws.counters import make_counter
from edge.ws.handler import GraphQLWebSocketHandler
from edge.ws.services import Registry, Services, WebSocketConfig
from edge.ws.upstream import UpstreamConnector, websocket_url

__all__ = ["make_websocket_handler"]


def make_websocket_handler(
    settings: EdgeSettings,
    *,
    authenticate: Authenticate,
    identify_plan: IdentifyPlan,
    costs: CostModelHolder,
    limiter: Limiter,
    budgets: CostBudgets,
    redis_client: Any | None,
    meter: UsageMeter | None = None,
    observer: RequestObserver | None = None,
) -> GraphQLWebSocketHandler:
    connection_plan = None
    if settings.ws_connections_per_second is not None:
        connection_plan = Plan(
            rate=RateLimit(requests_per_second=settings.ws_connections_per_second, burst=settings.ws_connection_burst)
        )
    services = Services(
        authenticate=authenticate,
        identify_plan=identify_plan,
        analyser=analyse,
        costs=costs,
        check=check,
        first_rejection=first_rejection,
        limiter=limiter,
        budgets=budgets,
        counter=make_counter(redis_client),
        connector=UpstreamConnector(
            websocket_url(settings.hasura_base_url),
            connect_timeout=settings.upstream_connect_timeout_seconds,
        ),
        admin_secret=settings.hasura_admin_secret.get_secret_value(),
        meter=meter,
        observer=observer,
        on_warn_only=observer.metrics.limit_warn_only if observer is not None and observer.metrics else None,
        connection_plan=connection_plan,
        registry=Registry(),
        introspection_roles=frozenset(settings.introspection_roles),
    )
    config = WebSocketConfig(
        init_timeout=settings.ws_init_timeout_seconds,
        keepalive=settings.ws_keepalive_seconds,
        messages_per_second=settings.ws_max_messages_per_second,
        message_burst=settings.ws_message_burst,
        send_queue_messages=settings.ws_send_queue_messages,
        expiry_grace=settings.ws_expiry_grace_seconds,
        recheck_seconds=settings.ws_recheck_seconds or settings.api_key_cache_seconds,
        upstream_reconnect_attempts=settings.ws_upstream_reconnect_attempts,
    )
    return GraphQLWebSocketHandler(
        services,
        config,
        allowed_origins=settings.allowed_origins,
        addresses=identify_plan.addresses,
        same_origin=settings.graphiql,  # the page the edge serves subscribes from the edge's own origin
        security_headers=security_headers(tls=settings.tls_cert_file is not None),
    )

"""Observability and metering: Prometheus metrics, the JSON access log, usage per key and per user."""

from edge.observability.access_log import AccessLog, operation_hash
from edge.observability.metering import (
    MemoryUsageMeter,
    RedisUsageMeter,
    UsageMeter,
    UsageRow,
    UsageUnavailable,
    usage_report,
)
from edge.observability.metrics import EdgeMetrics
from edge.observability.metrics_app import metrics_asgi_app
from edge.observability.recorder import RequestObserver

__all__ = [
    "AccessLog",
    "EdgeMetrics",
    "MemoryUsageMeter",
    "RedisUsageMeter",
    "RequestObserver",
    "UsageMeter",
    "UsageRow",
    "UsageUnavailable",
    "metrics_asgi_app",
    "operation_hash",
    "usage_report",
]

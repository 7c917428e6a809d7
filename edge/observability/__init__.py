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
from edge.observability.metrics import EdgeMetrics, metrics_asgi_app

__all__ = [
    "AccessLog",
    "EdgeMetrics",
    "MemoryUsageMeter",
    "RedisUsageMeter",
    "UsageMeter",
    "UsageRow",
    "UsageUnavailable",
    "metrics_asgi_app",
    "operation_hash",
    "usage_report",
]

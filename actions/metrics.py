"""Prometheus metrics of the actions service: requests by route, method and status, and their latency.

:class:`RequestMetrics` is a pure ASGI stage, outermost, so every answer counts (a 401 from the secret check and a
413 from the body limit too), and it answers ``GET /metrics`` itself with the exposition of the app's own
registry (never the process-global one). Like the health routes, ``/metrics`` needs no secret: it holds counts
only, and the service is reachable on the private network only.

Families::

    actions_requests_total{route, method, status}     requests answered
    actions_request_duration_seconds{route}           from the request's arrival to the end of its response

Labels are bounded: ``route`` is one of the paths the app declares (``/actions/processPayment``,
``/events/order_created``, ``/readyz``...), else ``other``, so a scan of random paths adds no series; ``method`` is
one of the HTTP methods, else ``other``; ``status`` the status sent (``500`` when the app failed before
answering).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["METRICS_PATH", "ActionsMetrics", "RequestMetrics"]

METRICS_PATH = "/metrics"
OTHER = "other"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""5 ms (a health check) to 30 s (a payment provider that times out); ``+Inf`` catches the rest."""


class ActionsMetrics:
    """The service's registry and families; ``routes``: the paths that are label values of their own."""

    def __init__(self, routes: Iterable[str]) -> None:
        self.routes = frozenset(routes) | {METRICS_PATH}
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "actions_requests",
            "Requests answered by the actions service, by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "actions_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by route.",
            ["route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )

    def route(self, path: str) -> str:
        return path if path in self.routes else OTHER

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method if method in _METHODS else OTHER, str(status)).inc()
        self.duration.labels(route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetrics:
    """ASGI stage: counts and times every HTTP request, and serves ``GET /metrics``."""

    def __init__(self, app: ASGIApp, metrics: ActionsMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        route = self.metrics.route(scope["path"])
        method = scope["method"]
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if route == METRICS_PATH and method in ("GET", "HEAD"):
                await self._serve_metrics(method, send_status)
            else:
                await self.app(scope, receive, send_status)
        finally:
            self.metrics.observe(route, method, status, time.perf_counter() - started)

    async def _serve_metrics(self, method: str, send: Send) -> None:
        body = self.metrics.render()
        headers = [(b"content-type", CONTENT_TYPE_LATEST.encode("latin-1")), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body if method == "GET" else b""})

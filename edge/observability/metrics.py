"""Prometheus metrics for the edge, in a registry of their own, with bounded label values.

``EdgeMetrics`` owns a ``CollectorRegistry`` (never the process-global one), so tests and several apps in one
process never collide. The pipeline calls the ``observe_*`` methods on every request: each one looks the
already-labelled children up in a dict keyed by the label tuple (``labels(...)`` takes a lock and builds a key
each time, several µs) and then only increments or observes.

Cardinality: every label value comes from a bounded set, because each distinct value is a new time series
in Prometheus, for ever. ``plan`` is one of the configured plans, else ``"other"``. ``role`` is one of the
configured ``roles``, or one of the first ``max_dynamic_roles`` other roles seen, else ``"other"``: a role can
be chosen by the client (``x-hasura-role`` among a JWT's allowed roles, or any claim an authorizer returns),
and one series per role a caller invents would exhaust Prometheus. Configure ``roles`` to pin the set.
``operation_type`` is query/mutation/subscription or ``"none"`` (rejected before analysis; an empty
plan or role, before identification, is also ``"none"``); ``status`` is an
HTTP status (100-599, else ``"other"``); ``code``, ``result`` and ``store`` are strings the edge chooses, and
are still capped at ``max_codes`` distinct values each. Per-key and per-user usage is deliberately not a label
here (see ``edge.observability.metering``).

Counters other objects already keep (the analysis cache's ``cache_info()``, ``RedisLimiter.store_errors``) are
copied at scrape time through ``watch_cache``/``watch_store_errors``: nothing is added to the request path.

Served by :func:`metrics_asgi_app` (``GET /metrics``, optionally behind ``Authorization: Bearer <token>``),
either on its own port or mounted on the main app.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from edge.asgi import ASGIApp, Receive, Scope, Send, send_response

__all__ = ["LATENCY_BUCKETS", "OTHER", "EdgeMetrics", "metrics_asgi_app"]

OTHER = "other"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""0.5 ms (a cached rejection) to 10 s (a slow Hasura query); ``+Inf`` catches the rest."""

_MAX_CACHED = 4096
_OPERATION_TYPES = frozenset({"query", "mutation", "subscription"})


class _Bounded:
    """Maps raw label values to at most ``len(fixed) + limit + 1`` values (the ``+ 1`` is ``"other"``)."""

    __slots__ = ("_known", "_limit", "_admitted")

    def __init__(self, fixed: Iterable[str], limit: int) -> None:
        self._known: dict[str, str] = {value: value for value in fixed}
        self._limit = limit
        self._admitted = 0

    def __call__(self, value: str) -> str:
        label = self._known.get(value)
        if label is not None:
            return label
        if self._admitted < self._limit and value:
            self._admitted += 1
            self._known[value] = value
            return value
        return OTHER


_USAGE_MEASURES = ("requests", "cost_points", "rows", "subscription_seconds")


class _Watched:
    """A counter owned by another object, copied into a child by its increase since the last scrape."""

    __slots__ = ("_child", "_last", "_pick", "_read")

    def __init__(self, read: Callable[[], Any], pick: Callable[[Any], int], child: Counter) -> None:
        self._read, self._pick, self._child, self._last = read, pick, child, 0

    def sync(self) -> None:
        value = self._pick(self._read())
        # A source reset (``cache_clear()``) starts again from zero: count what it has seen since.
        increase = value - self._last if value >= self._last else value
        self._last = value
        if increase:
            self._child.inc(increase)


class EdgeMetrics:
    """Counters, histograms and gauges of one edge; ``render()`` gives the exposition text."""

    def __init__(
        self,
        *,
        plans: Iterable[str] = (),
        roles: Iterable[str] = (),
        max_dynamic_roles: int = 20,
        max_codes: int = 64,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "edge_requests", "GraphQL operations answered.", ["operation_type", "status", "plan", "role"], registry=r
        )
        self.request_duration = Histogram(
            "edge_request_duration_seconds",
            "Time from the request's arrival to the response, per operation type and plan.",
            ["operation_type", "plan"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_duration = Histogram(
            "edge_upstream_duration_seconds", "Time Hasura took to answer.", buckets=LATENCY_BUCKETS, registry=r
        )
        self.rejections = Counter(
            "edge_rejections", "Requests the edge answered itself, by error code.", ["code"], registry=r
        )
        self.cost_points = Counter(
            "edge_cost_points", "Cost points, estimated before and counted after Hasura.", ["kind", "plan"], registry=r
        )
        self.cache_requests = Counter("edge_cache_requests", "Analysis cache look-ups.", ["result"], registry=r)
        self.websocket_connections = Gauge("edge_websocket_connections", "Open WebSocket connections.", registry=r)
        self.subscriptions = Gauge("edge_subscriptions", "Active subscriptions.", registry=r)
        self.jwks_refreshes = Counter("edge_jwks_refreshes", "JWKS fetches, by result.", ["result"], registry=r)
        self.store_errors = Counter("edge_store_errors", "Errors talking to a store, by store.", ["store"], registry=r)
        self.usage = Counter(
            "edge_usage",
            "Metered usage summed over all subjects (per key/user: the admin usage endpoint).",
            ["measure", "subject_kind"],
            registry=r,
        )

        self._plan = _Bounded(plans, 0)
        self._role = _Bounded(roles, max_dynamic_roles)
        self._codes = _Bounded((), max_codes)
        self._jwks_results = _Bounded((), max_codes)
        self._store_names = _Bounded((), max_codes)
        self._request_children: dict[tuple[str, int, str, str], tuple[Counter, Histogram]] = {}
        self._upstream = self.upstream_duration  # no labels: the histogram is its own child
        self._rejections: dict[str, Counter] = {}
        self._costs: dict[str, tuple[Counter, Counter]] = {}
        self._cache = (self.cache_requests.labels("hit"), self.cache_requests.labels("miss"))
        self._jwks: dict[str, Counter] = {}
        self._stores: dict[str, Counter] = {}
        self._usage_totals: dict[str, list[float]] = {}
        self._usage_synced: dict[str, list[float]] = {}
        self._watched: list[_Watched] = []

    # --- the request path -------------------------------------------------------------------

    def observe_request(self, operation_type: str, status: int, plan: str, role: str, duration: float) -> None:
        """One operation answered (``duration`` in seconds). A batch of n operations calls this n times."""
        key = (operation_type, status, plan, role)
        children = self._request_children.get(key)
        if children is None:
            children = self._request_child(key)
        children[0].inc()
        children[1].observe(duration)

    def _request_child(self, key: tuple[str, int, str, str]) -> tuple[Counter, Histogram]:
        operation_type, status, plan, role = key
        op = operation_type if operation_type in _OPERATION_TYPES else "none"
        status_label = str(status) if 100 <= status <= 599 else OTHER
        plan_label = self._plan(plan) if plan else "none"
        role_label = self._role(role) if role else "none"
        children = (
            self.requests.labels(op, status_label, plan_label, role_label),
            self.request_duration.labels(op, plan_label),
        )
        # Keyed by raw values, so the cache itself is capped (random roles would otherwise grow it).
        if len(self._request_children) < _MAX_CACHED:
            self._request_children[key] = children
        return children

    def observe_upstream(self, duration: float) -> None:
        self._upstream.observe(duration)

    def rejected(self, code: str) -> None:
        child = self._rejections.get(code)
        if child is None:
            label = self._codes(code)
            child = self.rejections.labels(label)
            if len(self._rejections) < _MAX_CACHED:
                self._rejections[code] = child
        child.inc()

    def cost(self, estimated: int, actual: int | None, plan: str) -> None:
        """Cost points of one request: the estimate charged up front and, when counted, the actual cost."""
        children = self._costs.get(plan)
        if children is None:
            label = self._plan(plan) if plan else "none"
            children = (self.cost_points.labels("estimated", label), self.cost_points.labels("actual", label))
            if len(self._costs) < _MAX_CACHED:
                self._costs[plan] = children
        if estimated:
            children[0].inc(estimated)
        if actual:
            children[1].inc(actual)

    def cache(self, hit: bool) -> None:
        self._cache[0 if hit else 1].inc()

    # --- connections ------------------------------------------------------------------------

    def websocket_opened(self) -> None:
        self.websocket_connections.inc()

    def websocket_closed(self) -> None:
        self.websocket_connections.dec()

    def subscription_started(self) -> None:
        self.subscriptions.inc()

    def subscription_ended(self) -> None:
        self.subscriptions.dec()

    # --- background work --------------------------------------------------------------------

    def jwks_refresh(self, result: str) -> None:
        """``result``: ``"ok"``, ``"not_modified"`` or ``"error"`` (any string, capped at ``max_codes`` values)."""
        self._labelled(self.jwks_refreshes, self._jwks, self._jwks_results, result).inc()

    def store_error(self, store: str) -> None:
        """``store``: ``"limiter"``, ``"budgets"``, ``"api_keys"``, ``"usage"``..."""
        self._labelled(self.store_errors, self._stores, self._store_names, store).inc()

    def usage_recorded(
        self, subject_kind: str, requests: int, cost_points: int, rows: int, subscription_seconds: float
    ) -> None:
        # Called for every request: plain additions here, copied into the counters at scrape time
        # (prometheus_client takes a lock per increment).
        totals = self._usage_totals.get(subject_kind)
        if totals is None:
            kind = subject_kind if subject_kind in ("key", "user") else OTHER
            totals = self._usage_totals.setdefault(kind, [0.0, 0.0, 0.0, 0.0])
            if kind != OTHER:
                self._usage_totals[subject_kind] = totals
        totals[0] += requests
        totals[1] += cost_points
        totals[2] += rows
        totals[3] += subscription_seconds

    def _sync_usage(self) -> None:
        for kind in ("key", "user", OTHER):
            totals = self._usage_totals.get(kind)
            if totals is None:
                continue
            synced = self._usage_synced.setdefault(kind, [0.0, 0.0, 0.0, 0.0])
            for index, measure in enumerate(_USAGE_MEASURES):
                increase = totals[index] - synced[index]
                if increase > 0:
                    self.usage.labels(measure, kind).inc(increase)
                    synced[index] = totals[index]

    def _labelled(self, family: Counter, cache: dict[str, Counter], bound: _Bounded, value: str) -> Counter:
        child = cache.get(value)
        if child is None:
            child = family.labels(bound(value))
            if len(cache) < _MAX_CACHED:
                cache[value] = child
        return child

    # --- counters kept elsewhere, copied at scrape time (no per-request cost) -----------------

    def watch_cache(self, read: Callable[[], Any]) -> None:
        """Export a cache's own hit/miss counts (``read()`` returns an object with ``hits`` and ``misses``,
        e.g. ``functools``' ``cache_info``) as ``edge_cache_requests_total`` at each scrape."""
        self._watched.append(_Watched(read, lambda info: info.hits, self._cache[0]))
        self._watched.append(_Watched(read, lambda info: info.misses, self._cache[1]))

    def watch_store_errors(self, store: str, read: Callable[[], int]) -> None:
        """Export a store's own error count (``RedisLimiter.store_errors``) as ``edge_store_errors_total``."""
        child = self._labelled(self.store_errors, self._stores, self._store_names, store)
        self._watched.append(_Watched(read, lambda value: int(value), child))

    def watch_jwks_fetches(self, read: Callable[[], int]) -> None:
        """Export the JWT verifier's JWKS fetch count as ``edge_jwks_refreshes_total{result="fetched"}``."""
        child = self._labelled(self.jwks_refreshes, self._jwks, self._jwks_results, "fetched")
        self._watched.append(_Watched(read, lambda value: int(value), child))

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type."""
        for watched in self._watched:
            watched.sync()
        self._sync_usage()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def metrics_asgi_app(metrics: EdgeMetrics, *, token: str | None) -> ASGIApp:
    """A tiny ASGI app answering ``GET /metrics``; anything else is 404/405.

    With ``token``, the request must carry ``Authorization: Bearer <token>`` (compared in constant time),
    else 401. It answers the lifespan protocol, so it can run under its own uvicorn server.
    """
    expected = None if token is None else b"bearer " + token.encode("utf-8")
    text = (b"content-type", b"text/plain; charset=utf-8")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["path"] != "/metrics":
            await send_response(send, 404, [text], b"not found\n")
            return
        if scope["method"] != "GET":
            await send_response(send, 405, [text, (b"allow", b"GET")], b"method not allowed\n")
            return
        if expected is not None and not _authorized(scope["headers"], expected):
            await send_response(send, 401, [text, (b"www-authenticate", b"Bearer")], b"unauthorized\n")
            return
        body, content_type = metrics.render()
        await send_response(send, 200, [(b"content-type", content_type.encode("ascii"))], body)

    return app


def _authorized(headers: list[tuple[bytes, bytes]], expected: bytes) -> bool:
    for name, value in headers:
        if name == b"authorization":
            # The scheme is case-insensitive (RFC 9110 §11.1); the token is not.
            scheme, _, credentials = value.partition(b" ")
            return hmac.compare_digest(scheme.lower() + b" " + credentials, expected)
    return False

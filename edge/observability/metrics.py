"""Prometheus metrics for the edge, in a registry of their own, with bounded label values.

``EdgeMetrics`` owns a ``CollectorRegistry`` (never the process-global one), so tests and several apps in one
process never collide. The pipeline calls the request-path methods (``observe_request``, ``observe_upstream``,
``rejected``, ``cost``, ``cache``, ``usage_recorded``) on every request, and they only add to plain Python
numbers: a prometheus_client ``inc()``/``observe()`` takes a lock and, for a histogram, walks the buckets
(``docs/benchmarks.md``, "Metrics"). The numbers are turned into metric families at scrape time by a collector in the
registry, so ``generate_latest(registry)`` still writes the exposition, with the names, types, HELP texts,
labels, buckets and ``_created`` samples prometheus_client's own ``Counter``/``Histogram`` would give. Each
method first looks its numbers up in a dict keyed by the raw values, so label bounding runs once per new value.

Transport: ``edge_requests_total``, ``edge_request_duration_seconds`` and ``edge_rejections_total`` carry
``transport``, ``"http"`` or ``"websocket"``. HTTP requests call ``observe_request``/``rejected`` and WebSocket
operations ``observe_websocket_operation``/``websocket_rejected``: each method has its own cache of raw values,
whose cells carry the transport already, so the label costs an HTTP request nothing.

Cardinality: every label value comes from a bounded set, because each distinct value is a new time series
in Prometheus, for ever. ``plan`` is one of the configured plans, else ``"other"``. ``role`` is one of the
configured ``roles``, or one of the first ``max_dynamic_roles`` other roles seen, else ``"other"``: a role can
be chosen by the client (``x-hasura-role`` among a JWT's allowed roles, or any claim an authorizer returns),
and one series per role a caller invents would exhaust Prometheus. Configure ``roles`` to pin the set.
``operation_type`` is query/mutation/subscription or ``"none"`` (rejected before analysis; an empty
plan or role, before identification, is also ``"none"``); ``status`` is an
HTTP status (100-599, else ``"other"``; a WebSocket operation gives the status an HTTP request with the same
outcome gets, ``edge.ws.observation`` says which); ``code``, ``result`` and ``store`` are strings the edge chooses, and
are still capped at ``max_codes`` distinct values each, and so is ``limit`` (a GraphQL limit's name, from
``edge.graphql.policy``). ``target`` is a configured Hasura target's host:port. Per-key and per-user usage is
deliberately not a label here (see ``edge.observability.metering``).

Counters other objects already keep (the response cache's hits and misses, ``RedisLimiter.store_errors``) are
copied at scrape time through ``watch_cache``/``watch_store_errors``: nothing is added to the request path.

Served by :func:`edge.observability.metrics_app.metrics_asgi_app` (``GET /metrics``, optionally behind
``Authorization: Bearer <token>``), either on its own port or mounted on the main app.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric, Sample

__all__ = ["BREAKER_STATES", "HTTP", "LATENCY_BUCKETS", "OTHER", "WEBSOCKET", "EdgeMetrics", "UpstreamTarget"]

OTHER: Final = "other"
# Typed as a tuple of any length on purpose: mypyc keeps a fixed-length tuple of floats unboxed and
# would build a new Python tuple of 14 floats each time it is passed to bisect, once per request.
LATENCY_BUCKETS: Final[tuple[float, ...]] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""0.5 ms (a cached rejection) to 10 s (a slow Hasura query); ``+Inf`` catches the rest."""

_MAX_CACHED: Final = 4096
HTTP: Final = "http"
WEBSOCKET: Final = "websocket"
_OPERATION_TYPES: Final = frozenset({"query", "mutation", "subscription"})


def _bucket_labels() -> tuple[str, ...]:
    """The ``le`` label values of ``LATENCY_BUCKETS``, spelt as prometheus_client spells them ("0.005", "1.0",
    "+Inf"): read from the samples of a histogram of its own, so the spelling is always the library's."""
    probe = Histogram("edge_bucket_probe", "", buckets=LATENCY_BUCKETS, registry=CollectorRegistry())
    return tuple(
        sample.labels["le"]
        for family in probe.collect()
        for sample in family.samples
        if sample.name.endswith("_bucket")
    )


_LE: Final = _bucket_labels()
_SUM: Final = len(_LE)
"""Index of the sum in a histogram cell, after one count per bucket."""


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


_USAGE_MEASURES: tuple[str, ...] = ("requests", "cost_points", "rows", "subscription_seconds")

# --- request-path families: plain numbers, exported at scrape time ----------------------------
#
# A counter cell is ``[value, created]``; a histogram cell is one count per bucket of ``LATENCY_BUCKETS`` plus
# ``+Inf`` (not cumulative: ``cell[bisect_left(LATENCY_BUCKETS, value)] += 1``), then the sum. No locks: the
# request path and the scrapes (``metrics_asgi_app``, also when ``MetricsServer`` serves it on its own port)
# all run on the edge's one event-loop thread, so a scrape never runs between two additions. Were ``render()``
# ever called from another thread, it copies each dict and cell with ``list(...)`` (atomic under the GIL):
# at worst a histogram's sum would miss the observation its count already has.


def _use_created() -> bool:
    """Whether prometheus_client writes ``_created`` samples (``PROMETHEUS_DISABLE_CREATED_SERIES``,
    ``disable_created_metrics()``), asked at each scrape the way it answers: a counter of its own either has
    one or not. These families then carry them exactly when its Counter and Histogram do."""
    probe = Counter("edge_created_probe", "", registry=CollectorRegistry())
    return any(sample.name.endswith("_created") for family in probe.collect() for sample in family.samples)


def _histogram_cell() -> list[float]:
    return [0] * len(_LE) + [0.0]


def _add_histogram(
    family: HistogramMetricFamily,
    labelnames: Sequence[str],
    labels: Sequence[str],
    cell: Sequence[float],
    created: float | None,
) -> None:
    buckets = []
    total = 0.0
    for le, count in zip(_LE, cell, strict=False):  # the sum, last in the cell, is not a bucket
        total += count
        buckets.append((le, total))
    family.add_metric(labels, buckets, float(cell[_SUM]))
    if created is not None:
        family.samples.append(Sample(family.name + "_created", dict(zip(labelnames, labels, strict=True)), created))


class _Counter:
    """A counter family as ``[value, created]`` cells keyed by label values."""

    __slots__ = ("name", "documentation", "labelnames", "cells")

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self.cells: dict[tuple[str, ...], list[float]] = {}

    def cell(self, *labels: str) -> list[float]:
        cell = self.cells.get(labels)
        if cell is None:
            cell = self.cells[labels] = [0, time.time()]
        return cell

    def family(self, created: bool) -> CounterMetricFamily:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, cell in list(self.cells.items()):
            value, since = list(cell)
            family.add_metric(labels, float(value), created=since if created else None)
        return family


class _Histogram:
    """A histogram family as cells (see above) keyed by label values, each with its creation time."""

    __slots__ = ("name", "documentation", "labelnames", "cells", "created")

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self.cells: dict[tuple[str, ...], list[float]] = {}
        self.created: dict[tuple[str, ...], float] = {}

    def cell(self, *labels: str) -> list[float]:
        cell = self.cells.get(labels)
        if cell is None:
            self.created[labels] = time.time()
            cell = self.cells[labels] = _histogram_cell()
        return cell

    def family(self, created: bool) -> HistogramMetricFamily:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, cell in list(self.cells.items()):
            _add_histogram(family, self.labelnames, labels, list(cell), self.created[labels] if created else None)
        return family


class _Requests:
    """``edge_requests_total`` and ``edge_request_duration_seconds`` from one histogram cell per requests series.

    A request adds to one cell, keyed by ``(operation_type, status, plan, role, transport)``: its count is that
    series of the counter, and the cells sharing an ``(operation_type, plan, transport)`` add up to that series of
    the histogram at scrape time (so the two families always agree, and a request costs one cell, not two).
    """

    __slots__ = ("cells", "created", "duration_created")

    COUNTER = (
        "edge_requests",
        "GraphQL operations answered.",
        ("operation_type", "status", "plan", "role", "transport"),
    )
    HISTOGRAM = (
        "edge_request_duration_seconds",
        "Time from the request's arrival to the response (WebSocket: to the operation's end), "
        "per operation type, plan and transport.",
        ("operation_type", "plan", "transport"),
    )

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str, str, str, str], list[float]] = {}
        self.created: dict[tuple[str, str, str, str, str], float] = {}
        self.duration_created: dict[tuple[str, str, str], float] = {}

    def cell(self, operation_type: str, status: str, plan: str, role: str, transport: str) -> list[float]:
        labels = (operation_type, status, plan, role, transport)
        cell = self.cells.get(labels)
        if cell is None:
            now = time.time()
            self.created[labels] = now
            self.duration_created.setdefault((operation_type, plan, transport), now)
            cell = self.cells[labels] = _histogram_cell()
        return cell

    def counter_family(self, created: bool) -> CounterMetricFamily:
        name, documentation, labelnames = self.COUNTER
        family = CounterMetricFamily(name, documentation, labels=labelnames)
        for labels, cell in list(self.cells.items()):
            count = sum(list(cell)[:_SUM])
            family.add_metric(labels, float(count), created=self.created[labels] if created else None)
        return family

    def histogram_family(self, created: bool) -> HistogramMetricFamily:
        name, documentation, labelnames = self.HISTOGRAM
        merged: dict[tuple[str, str, str], list[float]] = {}  # in order of first appearance, as prometheus_client
        for (operation_type, _, plan, _, transport), cell in list(self.cells.items()):
            values = list(cell)
            total = merged.get((operation_type, plan, transport))
            if total is None:
                merged[(operation_type, plan, transport)] = values
            else:
                for index, value in enumerate(values):
                    total[index] += value
        family = HistogramMetricFamily(name, documentation, labels=labelnames)
        for labels, cell in merged.items():
            _add_histogram(family, labelnames, labels, cell, self.duration_created[labels] if created else None)
        return family


class _RequestPathCollector:
    """Exports the request-path families at scrape time, always in the same order."""

    def __init__(self, requests: _Requests, histograms: Sequence[_Histogram], counters: Sequence[_Counter]) -> None:
        self._requests, self._histograms, self._counters = requests, histograms, counters

    def collect(self) -> Iterator[Metric]:
        created = _use_created()
        yield self._requests.counter_family(created)
        yield self._requests.histogram_family(created)
        for histogram in self._histograms:
            yield histogram.family(created)
        for counter in self._counters:
            yield counter.family(created)

    def describe(self) -> Iterator[Metric]:
        """The families' names, for the registry's clash check (``register`` calls it)."""
        return self.collect()


BREAKER_STATES: Final = ("closed", "open", "half_open")
"""The values of ``edge_upstream_breaker_state``'s ``state`` label (``edge.upstream.breaker.BreakerState``)."""

UpstreamTarget = tuple[str, str, bool, int]
"""One Hasura target as ``watch_upstream`` reads it: label (host:port), breaker state, healthy, times opened."""


class _UpstreamCollector:
    """The Hasura targets' breakers and health, read at scrape time (nothing on the request path)."""

    def __init__(self, read: Callable[[], Sequence[UpstreamTarget]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "edge_upstream_breaker_state",
            "1 for the state the circuit breaker of each Hasura target is in, 0 for the other states.",
            labels=("target", "state"),
        )
        healthy = GaugeMetricFamily(
            "edge_upstream_healthy",
            "1 while the health checks count a Hasura target healthy (a single target is not checked: 1).",
            labels=("target",),
        )
        opened = CounterMetricFamily(
            "edge_upstream_breaker_opened",
            "Times the circuit breaker of each Hasura target opened.",
            labels=("target",),
        )
        seen: set[str] = set()
        for index, (label, current, is_healthy, times_opened) in enumerate(self._read()):
            if label in seen:  # two targets on one host:port: one series each all the same
                label = f"{label}#{index}"
            seen.add(label)
            for name in BREAKER_STATES:
                state.add_metric((label, name), 1.0 if current == name else 0.0)
            healthy.add_metric((label,), 1.0 if is_healthy else 0.0)
            opened.add_metric((label,), float(times_opened))
        yield state
        yield healthy
        yield opened

    def describe(self) -> Iterator[Metric]:
        return self.collect()


class _Watched:
    """A counter owned by another object, added to a series by its increase since the last scrape."""

    __slots__ = ("_add", "_last", "_pick", "_read")

    def __init__(self, read: Callable[[], Any], pick: Callable[[Any], int], add: Callable[[float], None]) -> None:
        self._read, self._pick, self._add, self._last = read, pick, add, 0

    def sync(self) -> None:
        value = self._pick(self._read())
        # A source reset (``cache_clear()``) starts again from zero: count what it has seen since.
        increase = value - self._last if value >= self._last else value
        self._last = value
        if increase:
            self._add(increase)


def _adder(cell: list[float]) -> Callable[[float], None]:
    def add(amount: float) -> None:
        cell[0] += amount

    return add


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
        # The request path's families (see ``_RequestPathCollector``): plain numbers, exported at scrape time.
        # (Once prometheus_client objects; read the values with ``registry.get_sample_value``.) One object holds
        # both the requests counter and the request-duration histogram.
        self.requests = self.request_duration = _Requests()
        self.upstream_duration = _Histogram("edge_upstream_duration_seconds", "Time Hasura took to answer.", ())
        self.rejections = _Counter(
            "edge_rejections", "Requests the edge answered itself, by error code.", ["code", "transport"]
        )
        self.cost_points = _Counter(
            "edge_cost_points", "Cost points, estimated before and counted after Hasura.", ["kind", "plan"]
        )
        self.cache_requests = _Counter(
            "edge_cache_requests", "Response cache look-ups (@cached operations), by result.", ["result"]
        )
        self.limit_warn_only_hits = _Counter(
            "edge_limit_warn_only",
            "Operations over a warn-only GraphQL limit of their plan: forwarded, and refused once the limit is "
            "enforced. By limit and plan.",
            ["limit", "plan"],
        )
        r.register(
            _RequestPathCollector(
                self.requests,
                [self.upstream_duration],
                [self.rejections, self.cost_points, self.cache_requests, self.limit_warn_only_hits],
            )
        )
        # Off the request path: prometheus_client's own metrics.
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
        self._limit_names = _Bounded((), max_codes)
        self._jwks_results = _Bounded((), max_codes)
        self._store_names = _Bounded((), max_codes)
        # The caches below are keyed by raw values and map straight to cells; each is capped (random roles or
        # codes would otherwise grow it), and a value past the cap takes the slow path, bounding included.
        self._request_children: dict[tuple[str, int, str, str], list[float]] = {}
        self._websocket_children: dict[tuple[str, int, str, str], list[float]] = {}
        self._upstream = self.upstream_duration.cell()  # no labels: one series from the start
        self._rejections: dict[str, list[float]] = {}
        self._websocket_rejections: dict[str, list[float]] = {}
        self._costs: dict[str, tuple[list[float], list[float]]] = {}
        self._warn_only: dict[tuple[str, str], list[float]] = {}
        # Indexed by the ``hit`` bool: (miss, hit). Both series exist from the start.
        hit = self.cache_requests.cell("hit")
        self._cache = (self.cache_requests.cell("miss"), hit)
        self._jwks: dict[str, Counter] = {}
        self._stores: dict[str, Counter] = {}
        self._usage_totals: dict[str, list[float]] = {}
        self._usage_synced: dict[str, list[float]] = {}
        self._watched: list[_Watched] = []

    # --- the request path: additions to plain numbers only (single-threaded asyncio: no locks) ---------

    def observe_request(self, operation_type: str, status: int, plan: str, role: str, duration: float) -> None:
        """One operation answered over HTTP (``duration`` in seconds). A batch of n operations calls this n times."""
        cell = self._request_children.get((operation_type, status, plan, role))
        if cell is None:
            cell = self._request_cell(operation_type, status, plan, role, HTTP, self._request_children)
        cell[bisect_left(LATENCY_BUCKETS, duration)] += 1
        cell[-1] += duration  # the sum, last

    def observe_websocket_operation(
        self, operation_type: str, status: int, plan: str, role: str, duration: float
    ) -> None:
        """One operation over a WebSocket ended: a query or mutation with its result, a subscription when it
        stops (``duration``: from ``subscribe``/``start`` to then), or a refusal."""
        cell = self._websocket_children.get((operation_type, status, plan, role))
        if cell is None:
            cell = self._request_cell(operation_type, status, plan, role, WEBSOCKET, self._websocket_children)
        cell[bisect_left(LATENCY_BUCKETS, duration)] += 1
        cell[-1] += duration

    def _request_cell(
        self,
        operation_type: str,
        status: int,
        plan: str,
        role: str,
        transport: str,
        children: dict[tuple[str, int, str, str], list[float]],
    ) -> list[float]:
        cell = self.requests.cell(
            operation_type if operation_type in _OPERATION_TYPES else "none",
            str(status) if 100 <= status <= 599 else OTHER,
            self._plan(plan) if plan else "none",
            self._role(role) if role else "none",
            transport,
        )
        if len(children) < _MAX_CACHED:
            children[(operation_type, status, plan, role)] = cell
        return cell

    def observe_upstream(self, duration: float) -> None:
        cell = self._upstream
        cell[bisect_left(LATENCY_BUCKETS, duration)] += 1
        cell[-1] += duration  # the sum, last

    def rejected(self, code: str) -> None:
        """An HTTP request answered with an edge error (``code``: its ``extensions.code``)."""
        cell = self._rejections.get(code)
        if cell is None:
            cell = self._rejection_cell(code, HTTP, self._rejections)
        cell[0] += 1

    def websocket_rejected(self, code: str) -> None:
        """A WebSocket operation ended by an edge error for its id (refused, or ended before its result)."""
        cell = self._websocket_rejections.get(code)
        if cell is None:
            cell = self._rejection_cell(code, WEBSOCKET, self._websocket_rejections)
        cell[0] += 1

    def _rejection_cell(self, code: str, transport: str, children: dict[str, list[float]]) -> list[float]:
        cell = self.rejections.cell(self._codes(code), transport)
        if len(children) < _MAX_CACHED:
            children[code] = cell
        return cell

    def cost(self, estimated: int, actual: int | None, plan: str) -> None:
        """Cost points of one request: the estimate charged up front and, when counted, the actual cost."""
        cells = self._costs.get(plan)
        if cells is None:
            label = self._plan(plan) if plan else "none"
            cells = (self.cost_points.cell("estimated", label), self.cost_points.cell("actual", label))
            if len(self._costs) < _MAX_CACHED:
                self._costs[plan] = cells
        if estimated:
            cells[0][0] += estimated
        if actual:
            cells[1][0] += actual

    def cache(self, hit: bool) -> None:
        self._cache[hit][0] += 1

    def limit_warn_only(self, limit: str, plan: str) -> None:
        """An operation over ``limit`` (a :class:`~edge.plans.GraphQLLimits` name: ``max_depth``, ``max_cost``...),
        which its plan lists in ``warn_only``: forwarded instead of refused. Called once per limit exceeded."""
        cell = self._warn_only.get((limit, plan))
        if cell is None:
            cell = self.limit_warn_only_hits.cell(self._limit_names(limit), self._plan(plan) if plan else "none")
            if len(self._warn_only) < _MAX_CACHED:
                self._warn_only[(limit, plan)] = cell
        cell[0] += 1

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
        miss, hit = self._cache
        self._watched.append(_Watched(read, lambda info: info.hits, _adder(hit)))
        self._watched.append(_Watched(read, lambda info: info.misses, _adder(miss)))

    def watch_store_errors(self, store: str, read: Callable[[], int]) -> None:
        """Export a store's own error count (``RedisLimiter.store_errors``) as ``edge_store_errors_total``."""
        child = self._labelled(self.store_errors, self._stores, self._store_names, store)
        self._watched.append(_Watched(read, lambda value: int(value), child.inc))

    def watch_jwks_fetches(self, read: Callable[[], int]) -> None:
        """Export the JWT verifier's JWKS fetch count as ``edge_jwks_refreshes_total{result="fetched"}``."""
        child = self._labelled(self.jwks_refreshes, self._jwks, self._jwks_results, "fetched")
        self._watched.append(_Watched(read, lambda value: int(value), child.inc))

    def watch_upstream(self, read: Callable[[], Sequence[UpstreamTarget]]) -> None:
        """Export the Hasura targets (``BalancedUpstream.target_states``) at each scrape: the breaker state of each
        (``edge_upstream_breaker_state``), its health (``edge_upstream_healthy``) and the times its breaker
        opened (``edge_upstream_breaker_opened_total``). Labels: the configured targets' host:port."""
        self.registry.register(_UpstreamCollector(read))

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type."""
        for watched in self._watched:
            watched.sync()
        self._sync_usage()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

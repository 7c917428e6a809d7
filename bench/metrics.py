"""Per-request cost of the edge's metrics, in process: EdgeMetrics against prometheus_client children.

One request's worth of metrics is ``observe_request(...)`` plus ``observe_upstream(...)``; a second line adds
``cost(...)`` and ``cache(...)``, the other calls an answered request makes. Each is timed for
``EdgeMetrics`` (plain-number accumulation, exported at scrape time) and for the same calls made through
prometheus_client ``Counter``/``Histogram`` children cached by label tuple (how ``EdgeMetrics`` did it
before: a lock per ``inc``/``observe`` and a bucket walk per ``observe``), in the same run. Durations cycle
through a fixed log-uniform spread of 0.3 ms to 300 ms, so observations land in different buckets.

Each figure is the best of ``--repeat`` runs of ``--calls`` requests (GC off), in µs per request, loop
included; the "floor" line is the same loop calling no-op functions.

    .venv/bin/python bench/metrics.py
    .venv/bin/python bench/metrics.py --calls 500000 --repeat 7
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.observability.metrics import LATENCY_BUCKETS, EdgeMetrics  # noqa: E402


class PrometheusChildren:
    """The previous request path: prometheus_client children looked up in a dict keyed by the label tuple."""

    def __init__(self) -> None:
        r = CollectorRegistry()
        self.requests = Counter("edge_requests", "", ["operation_type", "status", "plan", "role"], registry=r)
        self.request_duration = Histogram(
            "edge_request_duration_seconds", "", ["operation_type", "plan"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.upstream_duration = Histogram("edge_upstream_duration_seconds", "", buckets=LATENCY_BUCKETS, registry=r)
        self.cost_points = Counter("edge_cost_points", "", ["kind", "plan"], registry=r)
        cache_requests = Counter("edge_cache_requests", "", ["result"], registry=r)
        self._children: dict[tuple[str, int, str, str], tuple[Counter, Histogram]] = {}
        self._costs: dict[str, tuple[Counter, Counter]] = {}
        self._cache = (cache_requests.labels("hit"), cache_requests.labels("miss"))

    def observe_request(self, operation_type: str, status: int, plan: str, role: str, duration: float) -> None:
        key = (operation_type, status, plan, role)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(operation_type, str(status), plan, role),
                self.request_duration.labels(operation_type, plan),
            )
        children[0].inc()
        children[1].observe(duration)

    def observe_upstream(self, duration: float) -> None:
        self.upstream_duration.observe(duration)

    def cost(self, estimated: int, actual: int | None, plan: str) -> None:
        children = self._costs.get(plan)
        if children is None:
            children = self._costs[plan] = (
                self.cost_points.labels("estimated", plan),
                self.cost_points.labels("actual", plan),
            )
        if estimated:
            children[0].inc(estimated)
        if actual:
            children[1].inc(actual)

    def cache(self, hit: bool) -> None:
        self._cache[0 if hit else 1].inc()


class Floor:
    def observe_request(self, operation_type: str, status: int, plan: str, role: str, duration: float) -> None:
        pass

    def observe_upstream(self, duration: float) -> None:
        pass

    def cost(self, estimated: int, actual: int | None, plan: str) -> None:
        pass

    def cache(self, hit: bool) -> None:
        pass


Metrics = EdgeMetrics | PrometheusChildren | Floor


def request_path(metrics: Metrics, pairs: list[tuple[float, float]]) -> None:
    observe_request, observe_upstream = metrics.observe_request, metrics.observe_upstream
    for duration, upstream in pairs:
        observe_request("query", 200, "free", "user", duration)
        observe_upstream(upstream)


def answered_request(metrics: Metrics, pairs: list[tuple[float, float]]) -> None:
    observe_request, observe_upstream = metrics.observe_request, metrics.observe_upstream
    cost, cache = metrics.cost, metrics.cache
    for duration, upstream in pairs:
        observe_request("query", 200, "free", "user", duration)
        observe_upstream(upstream)
        cost(12, 9, "free")
        cache(True)


def measure(
    run: Callable[[Metrics, list[tuple[float, float]]], None], metrics: Metrics, calls: int, repeat: int
) -> float:
    """Best µs per request over ``repeat`` runs of ``calls`` requests."""
    rng = random.Random(7)
    spread = [(10 ** rng.uniform(-3.5, -0.5), 10 ** rng.uniform(-3.5, -0.5)) for _ in range(1024)]
    pairs = (spread * (calls // len(spread) + 1))[:calls]
    run(metrics, pairs[:1000])  # warm: the label tuples' first sight is not what is measured
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            started = time.perf_counter()
            run(metrics, pairs)
            elapsed = time.perf_counter() - started
        finally:
            gc.enable()
        best = min(best, elapsed / calls * 1e6)
    return best


def main(args: argparse.Namespace) -> None:
    print(f"Python {sys.version.split()[0]}, {args.calls:,} requests, best of {args.repeat}")
    for title, run in (
        ("observe_request + observe_upstream", request_path),
        ("observe_request + observe_upstream + cost + cache", answered_request),
    ):
        floor = measure(run, Floor(), args.calls, args.repeat)
        old = measure(run, PrometheusChildren(), args.calls, args.repeat)
        new = measure(run, EdgeMetrics(plans=["free"], roles=["user"]), args.calls, args.repeat)
        print(title)
        print(f"  {'no-op floor (loop and calls)':<40} {floor:7.3f} µs/request")
        print(f"  {'prometheus_client children (before)':<40} {old:7.3f} µs/request")
        print(f"  {'EdgeMetrics (plain numbers)':<40} {new:7.3f} µs/request   {old / new:5.1f}x less")
        print(f"  {'above the floor: before -> after':<40} {old - floor:7.3f} -> {new - floor:.3f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200_000, help="requests per run")
    parser.add_argument("--repeat", type=int, default=5)
    main(parser.parse_args())

"""EdgeMetrics: series after observe_* calls, bounded labels, its own registry, and the /metrics ASGI app."""

from __future__ import annotations

import random
import re
import string
import time
from typing import Any

import httpx
import pytest

from edge.observability.metrics import EdgeMetrics, metrics_asgi_app
from tests.support.servers import start_server


def text(metrics: EdgeMetrics) -> str:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=")
    return body.decode()


def test_render_contains_every_family_after_observe_calls() -> None:
    metrics = EdgeMetrics(plans=["free", "pro"], roles=["user"])
    metrics.observe_request("query", 200, "pro", "user", 0.003)
    metrics.observe_request("query", 200, "pro", "user", 0.004)
    metrics.observe_upstream(0.002)
    metrics.rejected("rate-limited")
    metrics.cost(10, 4, "pro")
    metrics.cache(True)
    metrics.cache(False)
    metrics.websocket_opened()
    metrics.subscription_started()
    metrics.jwks_refresh("ok")
    metrics.store_error("limiter")
    out = text(metrics)
    for line in [
        'edge_requests_total{operation_type="query",plan="pro",role="user",status="200"} 2.0',
        'edge_request_duration_seconds_count{operation_type="query",plan="pro"} 2.0',
        'edge_request_duration_seconds_bucket{le="0.005",operation_type="query",plan="pro"} 2.0',
        'edge_request_duration_seconds_bucket{le="0.0025",operation_type="query",plan="pro"} 0.0',
        "edge_upstream_duration_seconds_count 1.0",
        'edge_rejections_total{code="rate-limited"} 1.0',
        'edge_cost_points_total{kind="estimated",plan="pro"} 10.0',
        'edge_cost_points_total{kind="actual",plan="pro"} 4.0',
        'edge_cache_requests_total{result="hit"} 1.0',
        'edge_cache_requests_total{result="miss"} 1.0',
        "edge_websocket_connections 1.0",
        "edge_subscriptions 1.0",
        'edge_jwks_refreshes_total{result="ok"} 1.0',
        'edge_store_errors_total{store="limiter"} 1.0',
    ]:
        assert line in out, line
    metrics.websocket_closed()
    metrics.subscription_ended()
    assert "edge_websocket_connections 0.0" in text(metrics)


def test_buckets_span_half_a_millisecond_to_ten_seconds() -> None:
    metrics = EdgeMetrics()
    metrics.observe_upstream(0.0001)
    out = text(metrics)
    assert 'edge_upstream_duration_seconds_bucket{le="0.0005"} 1.0' in out
    assert 'edge_upstream_duration_seconds_bucket{le="10.0"} 1.0' in out


def test_a_thousand_random_roles_give_at_most_the_configured_ones_plus_dynamic_plus_other() -> None:
    metrics = EdgeMetrics(plans=["free"], roles=["user", "admin"], max_dynamic_roles=5)
    rng = random.Random(7)
    for _ in range(1000):
        role = "".join(rng.choices(string.ascii_lowercase, k=12))
        metrics.observe_request("query", 200, "free", role, 0.001)
    metrics.observe_request("query", 200, "free", "user", 0.001)
    roles = set(re.findall(r'edge_requests_total\{[^}]*role="([^"]*)"', text(metrics)))
    assert "user" in roles
    assert "other" in roles
    assert len(roles) <= 2 + 5 + 1
    assert len(metrics._request_children) <= 4096


def test_unknown_plans_and_operation_types_are_other_and_empty_values_are_none() -> None:
    metrics = EdgeMetrics(plans=["free"])
    metrics.observe_request("query", 200, "made-up", "user", 0.001)
    metrics.observe_request("bogus", 999, "", "", 0.001)
    metrics.cost(3, None, "made-up")
    out = text(metrics)
    assert 'edge_requests_total{operation_type="query",plan="other",role="user",status="200"} 1.0' in out
    assert 'edge_requests_total{operation_type="none",plan="none",role="none",status="other"} 1.0' in out
    assert 'edge_cost_points_total{kind="estimated",plan="other"} 3.0' in out


def test_two_instances_do_not_share_series() -> None:
    first, second = EdgeMetrics(), EdgeMetrics()
    first.rejected("bad-request")
    assert "bad-request" in text(first)
    assert "bad-request" not in text(second)


def test_usage_sums_per_subject_kind_only() -> None:
    metrics = EdgeMetrics()
    metrics.usage_recorded("key", 1, 5, 2, 0.0)
    metrics.usage_recorded("user", 1, 0, 0, 1.5)
    out = text(metrics)
    assert 'edge_usage_total{measure="cost_points",subject_kind="key"} 5.0' in out
    assert 'edge_usage_total{measure="subscription_seconds",subject_kind="user"} 1.5' in out


def test_observe_request_costs_a_few_microseconds() -> None:
    metrics = EdgeMetrics(plans=["free"], roles=["user"])
    metrics.observe_request("query", 200, "free", "user", 0.001)
    n = 20_000
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            metrics.observe_request("query", 200, "free", "user", 0.001)
        best = min(best, (time.perf_counter() - start) / n)
    assert best < 20e-6  # measured ~2 µs; generous for slow CI


async def call(
    app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]]
) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "method": method, "path": path, "headers": headers}, receive, send)
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/metrics", [(b"authorization", b"Bearer s3cret")], 200),
        ("GET", "/metrics", [(b"authorization", b"bearer s3cret")], 200),
        ("GET", "/metrics", [(b"authorization", b"Bearer wrong")], 401),
        ("GET", "/metrics", [], 401),
        ("POST", "/metrics", [(b"authorization", b"Bearer s3cret")], 405),
        ("GET", "/other", [], 404),
    ],
)
async def test_metrics_app_requires_its_token(
    method: str, path: str, headers: list[tuple[bytes, bytes]], status: int
) -> None:
    metrics = EdgeMetrics()
    metrics.rejected("rate-limited")
    got, response_headers, body = await call(metrics_asgi_app(metrics, token="s3cret"), method, path, headers)
    assert got == status
    if status == 200:
        assert b'edge_rejections_total{code="rate-limited"} 1.0' in body
        assert response_headers[b"content-type"].startswith(b"text/plain; version=")
    else:
        assert b"edge_" not in body
    if status == 401:
        assert response_headers[b"www-authenticate"] == b"Bearer"


def test_metrics_app_serves_over_a_real_socket_with_and_without_token() -> None:
    metrics = EdgeMetrics()
    metrics.observe_request("mutation", 200, "", "", 0.01)
    open_server = start_server(metrics_asgi_app(metrics, token=None))
    locked_server = start_server(metrics_asgi_app(metrics, token="t0ken"))
    try:
        with httpx.Client(timeout=5) as client:
            response = client.get(open_server.url + "/metrics")
            assert response.status_code == 200
            assert 'edge_requests_total{operation_type="mutation"' in response.text
            assert client.get(locked_server.url + "/metrics").status_code == 401
            ok = client.get(locked_server.url + "/metrics", headers={"authorization": "Bearer t0ken"})
            assert ok.status_code == 200
            assert "edge_requests_total" in ok.text
    finally:
        open_server.stop()
        locked_server.stop()


def test_codes_results_and_stores_are_capped_too() -> None:
    metrics = EdgeMetrics(max_codes=3)
    for i in range(10):
        metrics.rejected(f"code-{i}")
        metrics.store_error(f"store-{i}")
        metrics.jwks_refresh(f"result-{i}")
    out = text(metrics)
    assert len(re.findall(r"^edge_rejections_total\{", out, re.M)) == 4
    assert len(re.findall(r"^edge_store_errors_total\{", out, re.M)) == 4
    assert len(re.findall(r"^edge_jwks_refreshes_total\{", out, re.M)) == 4
    assert 'edge_rejections_total{code="other"} 7.0' in out


def test_watched_cache_and_store_counters_are_copied_at_scrape_time() -> None:
    from functools import lru_cache

    @lru_cache(maxsize=8)
    def cached(x: int) -> int:
        return x

    class Store:
        store_errors = 0

    store = Store()
    metrics = EdgeMetrics()
    metrics.watch_cache(cached.cache_info)
    metrics.watch_store_errors("limiter", lambda: store.store_errors)
    cached(1)
    cached(1)
    cached(2)
    store.store_errors = 3
    out = text(metrics)
    assert 'edge_cache_requests_total{result="hit"} 1.0' in out
    assert 'edge_cache_requests_total{result="miss"} 2.0' in out
    assert 'edge_store_errors_total{store="limiter"} 3.0' in out
    cached.cache_clear()
    cached(3)
    store.store_errors = 4
    out = text(metrics)
    assert 'edge_cache_requests_total{result="miss"} 3.0' in out
    assert 'edge_store_errors_total{store="limiter"} 4.0' in out

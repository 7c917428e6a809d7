"""EdgeMetrics: series after observe_* calls, bounded labels, its own registry, and the /metrics ASGI app."""

from __future__ import annotations

import random
import re
import string
import time
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, enable_created_metrics
from prometheus_client.parser import text_string_to_metric_families

from edge.observability.metrics import LATENCY_BUCKETS, EdgeMetrics
from edge.observability.metrics_app import metrics_asgi_app
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
        'edge_requests_total{operation_type="query",plan="pro",role="user",status="200",transport="http"} 2.0',
        'edge_request_duration_seconds_count{operation_type="query",plan="pro",transport="http"} 2.0',
        'edge_request_duration_seconds_bucket{le="0.005",operation_type="query",plan="pro",transport="http"} 2.0',
        'edge_request_duration_seconds_bucket{le="0.0025",operation_type="query",plan="pro",transport="http"} 0.0',
        "edge_upstream_duration_seconds_count 1.0",
        'edge_rejections_total{code="rate-limited",transport="http"} 1.0',
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
    assert (
        'edge_requests_total{operation_type="query",plan="other",role="user",status="200",transport="http"} 1.0' in out
    )
    assert (
        'edge_requests_total{operation_type="none",plan="none",role="none",status="other",transport="http"} 1.0' in out
    )
    assert 'edge_cost_points_total{kind="estimated",plan="other"} 3.0' in out


def test_websocket_operations_and_rejections_are_their_own_series_of_the_same_families() -> None:
    metrics = EdgeMetrics(plans=["pro"], roles=["user"])
    metrics.observe_request("query", 200, "pro", "user", 0.003)
    metrics.observe_websocket_operation("query", 200, "pro", "user", 0.004)
    metrics.observe_websocket_operation("subscription", 200, "pro", "user", 90.0)
    metrics.observe_websocket_operation("none", 400, "pro", "user", 0.0001)
    metrics.rejected("rate-limited")
    metrics.websocket_rejected("rate-limited")
    metrics.websocket_rejected("bad-request")
    get = metrics.registry.get_sample_value
    query = {"operation_type": "query", "status": "200", "plan": "pro", "role": "user"}
    assert get("edge_requests_total", {**query, "transport": "http"}) == 1
    assert get("edge_requests_total", {**query, "transport": "websocket"}) == 1
    subscription = {"operation_type": "subscription", "plan": "pro", "transport": "websocket"}
    assert get("edge_request_duration_seconds_count", subscription) == 1
    assert get("edge_request_duration_seconds_sum", subscription) == 90.0
    assert get("edge_request_duration_seconds_bucket", {**subscription, "le": "10.0"}) == 0
    refused = {"operation_type": "none", "status": "400", "plan": "pro", "role": "user", "transport": "websocket"}
    assert get("edge_requests_total", refused) == 1
    assert get("edge_rejections_total", {"code": "rate-limited", "transport": "http"}) == 1
    assert get("edge_rejections_total", {"code": "rate-limited", "transport": "websocket"}) == 1
    assert get("edge_rejections_total", {"code": "bad-request", "transport": "websocket"}) == 1
    assert get("edge_rejections_total", {"code": "bad-request", "transport": "http"}) is None
    # The HTTP caches hold HTTP cells only: a later HTTP request with the same raw values stays http.
    metrics.observe_request("query", 200, "pro", "user", 0.003)
    metrics.rejected("bad-request")
    assert get("edge_requests_total", {**query, "transport": "http"}) == 2
    assert get("edge_requests_total", {**query, "transport": "websocket"}) == 1
    assert get("edge_rejections_total", {"code": "bad-request", "transport": "http"}) == 1


def test_websocket_label_values_are_bounded_like_http_ones() -> None:
    metrics = EdgeMetrics(plans=["pro"], max_dynamic_roles=1, max_codes=1)
    for i in range(5000):
        metrics.observe_websocket_operation("query", 200, "made-up", f"role-{i}", 0.001)
        metrics.websocket_rejected(f"code-{i}")
    assert len(metrics._websocket_children) <= 4096
    assert len(metrics._websocket_rejections) <= 4096
    out = text(metrics)
    assert len(re.findall(r'^edge_requests_total\{[^}]*transport="websocket"', out, re.M)) == 2  # role-0, other
    assert 'edge_rejections_total{code="other",transport="websocket"} 4999.0' in out
    assert 'plan="other"' in out


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
        assert b'edge_rejections_total{code="rate-limited",transport="http"} 1.0' in body
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
    assert 'edge_rejections_total{code="other",transport="http"} 7.0' in out


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


# --- the request-path families are plain numbers exported at scrape time: same series as prometheus_client ---

# Captured from the exposition of the prometheus_client Counter/Histogram version, in its order.
FAMILIES = [
    ("edge_requests", "counter"),
    ("edge_requests_created", "gauge"),
    ("edge_request_duration_seconds", "histogram"),
    ("edge_request_duration_seconds_created", "gauge"),
    ("edge_upstream_duration_seconds", "histogram"),
    ("edge_upstream_duration_seconds_created", "gauge"),
    ("edge_rejections", "counter"),
    ("edge_rejections_created", "gauge"),
    ("edge_cost_points", "counter"),
    ("edge_cost_points_created", "gauge"),
    ("edge_cache_requests", "counter"),
    ("edge_cache_requests_created", "gauge"),
    ("edge_limit_warn_only", "counter"),  # no sample until a warn-only limit is exceeded: no _created either
    ("edge_websocket_connections", "gauge"),
    ("edge_subscriptions", "gauge"),
    ("edge_jwks_refreshes", "counter"),
    ("edge_jwks_refreshes_created", "gauge"),
    ("edge_store_errors", "counter"),
    ("edge_store_errors_created", "gauge"),
    ("edge_usage", "counter"),
    ("edge_usage_created", "gauge"),
]
# Durations that are binary fractions, so sums are exact whatever order they are added in.
DURATIONS = [2.0**-12, 2.0**-11, 2.0**-9, 2.0**-8, 2.0**-6, 0.375, 12.0]


def created_series_on() -> bool:
    """Whether prometheus_client writes ``_created`` samples (PROMETHEUS_DISABLE_CREATED_SERIES)."""
    registry = CollectorRegistry()
    Counter("probe", "", registry=registry)
    return registry.get_sample_value("probe_created") is not None


def series(registry: CollectorRegistry, names: set[str]) -> list[tuple[str, str, str, list[tuple[Any, ...]]]]:
    """Families of ``registry`` named in ``names``: name, type, help, samples (``_created`` values blanked)."""
    return [
        (
            family.name,
            family.type,
            family.documentation,
            [
                (s.name, sorted(s.labels.items()), None if s.name.endswith("_created") else s.value)
                for s in family.samples
            ],
        )
        for family in registry.collect()
        if family.name in names
    ]


def test_created_samples_follow_prometheus_clients_switch() -> None:
    metrics = EdgeMetrics(plans=["pro"], roles=["user"])
    metrics.observe_request("query", 200, "pro", "user", 0.01)
    created = (
        "edge_requests_created",
        "edge_request_duration_seconds_created",
        "edge_upstream_duration_seconds_created",  # one series from the start
    )
    was_on = created_series_on()
    try:
        enable_created_metrics()
        body = metrics.render()[0].decode()
        assert all(name in body for name in created)
        disable_created_metrics()
        body = metrics.render()[0].decode()
        assert not any(name in body for name in created)
        assert "edge_requests_total" in body
    finally:
        (enable_created_metrics if was_on else disable_created_metrics)()


def test_request_duration_buckets_sum_and_count_through_get_sample_value() -> None:
    metrics = EdgeMetrics(plans=["pro"], roles=["user", "admin"])
    for duration in [0.0004, 0.0005, 0.003, 0.005, 0.02, 11.0]:
        metrics.observe_request("query", 200, "pro", "user", duration)
    metrics.observe_request("query", 500, "pro", "admin", 0.004)  # another requests series, the same histogram
    metrics.observe_request("mutation", 200, "pro", "user", 0.004)
    get = metrics.registry.get_sample_value
    labels = {"operation_type": "query", "plan": "pro", "transport": "http"}
    expected = {"0.0005": 2, "0.001": 2, "0.0025": 2, "0.005": 5, "0.01": 5, "0.025": 6, "10.0": 6, "+Inf": 7}
    for le, count in expected.items():
        assert get("edge_request_duration_seconds_bucket", {**labels, "le": le}) == count, le
    assert get("edge_request_duration_seconds_count", labels) == 7
    assert get("edge_request_duration_seconds_sum", labels) == pytest.approx(11.0329)
    mutations = {"operation_type": "mutation", "plan": "pro", "transport": "http"}
    assert get("edge_request_duration_seconds_count", mutations) == 1
    assert get("edge_requests_total", {**labels, "status": "200", "role": "user"}) == 6
    assert get("edge_requests_total", {**labels, "status": "500", "role": "admin"}) == 1
    metrics.render()
    assert get("edge_requests_total", {**labels, "status": "200", "role": "user"}) == 6  # a scrape changes nothing


def test_upstream_duration_and_the_other_request_path_counters_through_get_sample_value() -> None:
    metrics = EdgeMetrics(plans=["pro"])
    for duration in [0.0001, 0.001, 0.001, 30.0]:
        metrics.observe_upstream(duration)
    metrics.rejected("rate-limited")
    metrics.rejected("rate-limited")
    metrics.cost(10, 4, "pro")
    metrics.cost(5, None, "pro")
    metrics.cost(0, 3, "pro")
    for hit in [True, True, False]:
        metrics.cache(hit)
    get = metrics.registry.get_sample_value
    assert get("edge_upstream_duration_seconds_bucket", {"le": "0.0005"}) == 1
    assert get("edge_upstream_duration_seconds_bucket", {"le": "0.001"}) == 3
    assert get("edge_upstream_duration_seconds_bucket", {"le": "10.0"}) == 3
    assert get("edge_upstream_duration_seconds_bucket", {"le": "+Inf"}) == 4
    assert get("edge_upstream_duration_seconds_count") == 4
    assert get("edge_upstream_duration_seconds_sum") == pytest.approx(30.0021)
    assert get("edge_rejections_total", {"code": "rate-limited", "transport": "http"}) == 2
    assert get("edge_cost_points_total", {"kind": "estimated", "plan": "pro"}) == 15
    assert get("edge_cost_points_total", {"kind": "actual", "plan": "pro"}) == 7
    assert get("edge_cache_requests_total", {"result": "hit"}) == 2
    assert get("edge_cache_requests_total", {"result": "miss"}) == 1


def test_the_role_after_max_dynamic_roles_new_ones_is_other_and_stays_so() -> None:
    metrics = EdgeMetrics(roles=["user"], max_dynamic_roles=2)
    for role in ["a", "b", "c", "user", "a", "c", "d"]:
        metrics.observe_request("query", 200, "", role, 0.001)
    get = metrics.registry.get_sample_value

    def count(role: str) -> float | None:
        labels = {"operation_type": "query", "status": "200", "plan": "none", "role": role, "transport": "http"}
        return get("edge_requests_total", labels)

    assert [count(role) for role in ["user", "a", "b", "other"]] == [1, 2, 1, 3]
    assert count("c") is None
    assert count("d") is None


def test_past_the_cache_of_raw_values_requests_are_still_counted_in_their_bounded_series() -> None:
    metrics = EdgeMetrics(max_dynamic_roles=0, max_codes=1)
    for i in range(5000):
        metrics.observe_request("query", 200, "", f"role-{i}", 0.001)
        metrics.rejected(f"code-{i}")
    assert len(metrics._request_children) <= 4096
    get = metrics.registry.get_sample_value
    labels = {"operation_type": "query", "status": "200", "plan": "none", "role": "other", "transport": "http"}
    assert get("edge_requests_total", labels) == 5000
    duration = {"operation_type": "query", "plan": "none", "transport": "http"}
    assert get("edge_request_duration_seconds_count", duration) == 5000
    assert get("edge_rejections_total", {"code": "code-0", "transport": "http"}) == 1
    assert get("edge_rejections_total", {"code": "other", "transport": "http"}) == 4999


def test_the_exposition_parses_with_the_same_families_and_types_as_before() -> None:
    metrics = EdgeMetrics(plans=["pro"], roles=["user"])
    metrics.observe_request("query", 200, "pro", "user", 0.003)
    metrics.observe_upstream(0.002)
    metrics.rejected("rate-limited")
    metrics.cost(10, 4, "pro")
    metrics.cache(True)
    metrics.jwks_refresh("ok")
    metrics.store_error("limiter")
    metrics.usage_recorded("key", 1, 5, 2, 0.0)
    parsed = list(text_string_to_metric_families(text(metrics)))
    expected = FAMILIES if created_series_on() else [f for f in FAMILIES if not f[0].endswith("_created")]
    assert [(family.name, family.type) for family in parsed] == expected
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for family in parsed for s in family.samples}
    assert (
        samples[
            "edge_request_duration_seconds_bucket",
            (("le", "0.005"), ("operation_type", "query"), ("plan", "pro"), ("transport", "http")),
        ]
        == 1
    )
    assert samples[("edge_upstream_duration_seconds_sum", ())] == 0.002


def test_the_request_path_series_are_those_prometheus_client_counters_and_histograms_give() -> None:
    metrics = EdgeMetrics(plans=["free", "pro"], roles=["user"], max_dynamic_roles=1)
    reference = CollectorRegistry()
    r = reference
    requests = Counter(
        "edge_requests",
        "GraphQL operations answered.",
        ["operation_type", "status", "plan", "role", "transport"],
        registry=r,
    )
    request_duration = Histogram(
        "edge_request_duration_seconds",
        "Time from the request's arrival to the response (WebSocket: to the operation's end), "
        "per operation type, plan and transport.",
        ["operation_type", "plan", "transport"],
        buckets=LATENCY_BUCKETS,
        registry=r,
    )
    upstream = Histogram(
        "edge_upstream_duration_seconds", "Time Hasura took to answer.", buckets=LATENCY_BUCKETS, registry=r
    )
    rejections = Counter(
        "edge_rejections", "Requests the edge answered itself, by error code.", ["code", "transport"], registry=r
    )
    cost_points = Counter(
        "edge_cost_points", "Cost points, estimated before and counted after Hasura.", ["kind", "plan"], registry=r
    )
    cache_requests = Counter(
        "edge_cache_requests", "Response cache look-ups (@cached operations), by result.", ["result"], registry=r
    )
    cache_requests.labels("hit")
    cache_requests.labels("miss")
    calls = [
        # (operation_type, status, plan, role) as given, then as labelled; the transport
        (("query", 200, "pro", "user"), ("query", "200", "pro", "user"), "http"),
        (("query", 500, "pro", "bob"), ("query", "500", "pro", "bob"), "http"),
        (("subscription", 200, "pro", "bob"), ("subscription", "200", "pro", "bob"), "websocket"),
        (("mutation", 200, "", ""), ("mutation", "200", "none", "none"), "http"),
        (("query", 200, "free", "carol"), ("query", "200", "free", "other"), "http"),
        (("query", 200, "pro", "user"), ("query", "200", "pro", "user"), "websocket"),
        (("bogus", 999, "zzz", "user"), ("none", "other", "other", "user"), "http"),
        (("none", 429, "free", "dave"), ("none", "429", "free", "other"), "websocket"),
    ]
    for round_ in range(3):
        for index, (given, labelled, transport) in enumerate(calls):
            duration = DURATIONS[(index + round_) % len(DURATIONS)]
            if transport == "http":
                metrics.observe_request(*given, duration)
            else:
                metrics.observe_websocket_operation(*given, duration)
            requests.labels(*labelled, transport).inc()
            request_duration.labels(labelled[0], labelled[2], transport).observe(duration)
            metrics.observe_upstream(duration * 2)
            upstream.observe(duration * 2)
        metrics.rejected("rate-limited")
        rejections.labels("rate-limited", "http").inc()
        metrics.websocket_rejected("subscription-limit-exceeded")
        rejections.labels("subscription-limit-exceeded", "websocket").inc()
        metrics.cost(10, 4, "pro")
        cost_points.labels("estimated", "pro").inc(10)
        cost_points.labels("actual", "pro").inc(4)
        metrics.cost(3, None, "")
        cost_points.labels("estimated", "none").inc(3)
        cost_points.labels("actual", "none")
        metrics.cache(round_ != 1)
        cache_requests.labels("hit" if round_ != 1 else "miss").inc()
    names = {
        "edge_requests",
        "edge_request_duration_seconds",
        "edge_upstream_duration_seconds",
        "edge_rejections",
        "edge_cost_points",
        "edge_cache_requests",
    }
    assert series(metrics.registry, names) == series(reference, names)
    created = [
        s
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name.endswith("_created") and family.name in names
    ]
    if created_series_on():
        assert created and all(abs(s.value - time.time()) < 60 for s in created)
    else:
        assert created == []


def test_warn_only_hits_are_counted_by_limit_and_configured_plan() -> None:
    metrics = EdgeMetrics(plans=["free", "pro"])
    metrics.limit_warn_only("max_depth", "free")
    metrics.limit_warn_only("max_depth", "free")
    metrics.limit_warn_only("max_cost", "pro")
    metrics.limit_warn_only("max_cost", "invented-plan")
    metrics.limit_warn_only("max_aliases", "")
    out = text(metrics)
    assert "# TYPE edge_limit_warn_only_total counter" in out
    assert 'edge_limit_warn_only_total{limit="max_depth",plan="free"} 2.0' in out
    assert 'edge_limit_warn_only_total{limit="max_cost",plan="pro"} 1.0' in out
    assert 'edge_limit_warn_only_total{limit="max_cost",plan="other"} 1.0' in out
    assert 'edge_limit_warn_only_total{limit="max_aliases",plan="none"} 1.0' in out
    assert len(re.findall(r"^edge_limit_warn_only_total\{", out, re.M)) == 4


def test_warn_only_label_values_are_bounded() -> None:
    metrics = EdgeMetrics(plans=["free"], max_codes=3)
    for i in range(50):
        metrics.limit_warn_only(f"limit-{i}", f"plan-{i}")
    out = text(metrics)
    assert len(re.findall(r"^edge_limit_warn_only_total\{", out, re.M)) == 4  # 3 limits + other, plan "other"
    assert 'edge_limit_warn_only_total{limit="other",plan="other"} 47.0' in out


def test_upstream_targets_are_read_at_scrape_time() -> None:
    targets = [("hasura-a:8080", "closed", True, 0), ("hasura-b:8080", "open", False, 2)]
    metrics = EdgeMetrics()
    metrics.watch_upstream(lambda: targets)
    out = text(metrics)
    for line in [
        'edge_upstream_breaker_state{state="closed",target="hasura-a:8080"} 1.0',
        'edge_upstream_breaker_state{state="open",target="hasura-a:8080"} 0.0',
        'edge_upstream_breaker_state{state="half_open",target="hasura-a:8080"} 0.0',
        'edge_upstream_breaker_state{state="open",target="hasura-b:8080"} 1.0',
        'edge_upstream_breaker_state{state="closed",target="hasura-b:8080"} 0.0',
        'edge_upstream_healthy{target="hasura-a:8080"} 1.0',
        'edge_upstream_healthy{target="hasura-b:8080"} 0.0',
        'edge_upstream_breaker_opened_total{target="hasura-a:8080"} 0.0',
        'edge_upstream_breaker_opened_total{target="hasura-b:8080"} 2.0',
    ]:
        assert line in out, line
    targets[1] = ("hasura-b:8080", "half_open", True, 2)
    out = text(metrics)
    assert 'edge_upstream_breaker_state{state="half_open",target="hasura-b:8080"} 1.0' in out
    assert 'edge_upstream_healthy{target="hasura-b:8080"} 1.0' in out


def test_two_upstream_targets_on_one_host_port_stay_two_series() -> None:
    metrics = EdgeMetrics()
    metrics.watch_upstream(lambda: [("h:8080", "closed", True, 0), ("h:8080", "open", True, 1)])
    families = {family.name: family for family in text_string_to_metric_families(text(metrics))}
    targets = {sample.labels["target"] for sample in families["edge_upstream_healthy"].samples}
    assert targets == {"h:8080", "h:8080#1"}

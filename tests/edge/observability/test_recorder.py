"""RequestObserver: one call records metrics, the access log and usage."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from edge.context import RequestContext
from edge.graphql.analysis import analyse
from edge.keys.model import ApiKey
from edge.observability import AccessLog, EdgeMetrics, MemoryUsageMeter, RequestObserver, UsageRow
from edge.observability.ws_operation import EndedOperation
from edge.session import Identity, Session
from edge.upstream.base import UpstreamResponse

QUERY = "query Users { users { id } }"
MUTATION = "mutation Touch { touch { id } }"


def context(payload: Any, *, answered: bool, with_key: bool = True) -> RequestContext:
    ctx = RequestContext(method="POST", headers=[], query_string=b"", client=None, request_id="req-9")
    ctx.payload = payload
    ctx.is_batch = isinstance(payload, list)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    key = ApiKey(uuid4(), "key_1", "acme", "pro", "user", {}, now, None, None, None) if with_key else None
    ctx.identity = Identity(Session("user", {"x-hasura-user-id": "u-1"}, "u-1"), "api_key", key)
    ctx.plan_name = "pro"
    operations = payload if isinstance(payload, list) else [payload]
    ctx.analyses = [analyse(op["query"], None, max_tokens=1000) for op in operations]
    ctx.estimated_cost = 9
    if answered:
        ctx.response = UpstreamResponse(200, [], b"{}")
    return ctx


@pytest.fixture
def parts(caplog: pytest.LogCaptureFixture) -> tuple[RequestObserver, EdgeMetrics, MemoryUsageMeter]:
    caplog.set_level(logging.INFO, logger="edge.access")
    metrics = EdgeMetrics(plans=["pro"], roles=["user"])
    meter = MemoryUsageMeter(clock=lambda: datetime(2026, 11, 21, tzinfo=UTC).timestamp())
    return RequestObserver(metrics=metrics, access_log=AccessLog(), meter=meter), metrics, meter


async def test_an_answered_batch_is_counted_logged_and_metered_per_operation(
    parts: tuple[RequestObserver, EdgeMetrics, MemoryUsageMeter], caplog: pytest.LogCaptureFixture
) -> None:
    observer, metrics, meter = parts
    ctx = context([{"query": QUERY}, {"query": MUTATION}], answered=True)
    observer.finished(
        ctx, status=200, started=time.perf_counter(), upstream_duration=0.002, actual_costs=[3, 1], rows=5
    )
    out = metrics.render()[0].decode()
    assert 'edge_requests_total{operation_type="query",plan="pro",role="user",status="200",transport="http"} 1.0' in out
    assert (
        'edge_requests_total{operation_type="mutation",plan="pro",role="user",status="200",transport="http"} 1.0' in out
    )
    assert "edge_upstream_duration_seconds_count 1.0" in out
    assert 'edge_cost_points_total{kind="estimated",plan="pro"} 9.0' in out
    assert 'edge_cost_points_total{kind="actual",plan="pro"} 4.0' in out
    assert len([r for r in caplog.records if r.name == "edge.access"]) == 2
    assert await meter.snapshot() == [
        UsageRow("key", "key_1", "2026-11", 2, 4, 5, 0.0),
        UsageRow("user", "u-1", "2026-11", 2, 4, 5, 0.0),
    ]


async def test_a_refused_request_is_counted_and_logged_but_not_billed(
    parts: tuple[RequestObserver, EdgeMetrics, MemoryUsageMeter], caplog: pytest.LogCaptureFixture
) -> None:
    observer, metrics, meter = parts
    ctx = context({"query": QUERY}, answered=False)
    observer.finished(ctx, status=429, started=time.perf_counter(), error_code="rate-limited")
    out = metrics.render()[0].decode()
    assert 'edge_requests_total{operation_type="query",plan="pro",role="user",status="429",transport="http"} 1.0' in out
    assert 'edge_rejections_total{code="rate-limited",transport="http"} 1.0' in out
    assert [r.__dict__["error_code"] for r in caplog.records if r.name == "edge.access"] == ["rate-limited"]
    assert await meter.snapshot() == []


async def test_a_request_refused_before_analysis_counts_as_operation_type_none() -> None:
    metrics = EdgeMetrics()
    ctx = RequestContext(method="POST", headers=[], query_string=b"", client=None, request_id="r")
    RequestObserver(metrics=metrics).finished(ctx, status=401, started=time.perf_counter(), error_code="x")
    assert 'edge_requests_total{operation_type="none",plan="none",role="none",status="401",transport="http"} 1.0' in (
        metrics.render()[0].decode()
    )


async def test_a_websocket_operation_is_counted_and_logged_with_its_transport_but_not_billed(
    parts: tuple[RequestObserver, EdgeMetrics, MemoryUsageMeter], caplog: pytest.LogCaptureFixture
) -> None:
    observer, metrics, meter = parts
    identity = context({"query": QUERY}, answered=True).identity
    common: dict[str, Any] = {"request_id": "conn-1", "query": QUERY, "identity": identity, "plan": "pro"}
    observer.websocket_operation(
        EndedOperation(
            operation_id="1",
            operation_type="query",
            operation_name="Users",
            status=200,
            outcome="completed",
            error_code=None,
            duration=0.002,
            cost_estimated=3,
            **common,
        )
    )
    observer.websocket_operation(
        EndedOperation(
            operation_id="2",
            operation_type="subscription",
            operation_name=None,
            status=429,
            outcome="refused",
            error_code="subscription-limit-exceeded",
            duration=0.0001,
            cost_estimated=1,
            **common,
        )
    )
    get = metrics.registry.get_sample_value
    labels = {"plan": "pro", "role": "user", "transport": "websocket"}
    assert get("edge_requests_total", {**labels, "operation_type": "query", "status": "200"}) == 1
    assert get("edge_requests_total", {**labels, "operation_type": "subscription", "status": "429"}) == 1
    assert get("edge_rejections_total", {"code": "subscription-limit-exceeded", "transport": "websocket"}) == 1
    logged = [r.__dict__ for r in caplog.records if r.name == "edge.access"]
    assert [(line["operation_id"], line["outcome"], line["transport"]) for line in logged] == [
        ("1", "completed", "websocket"),
        ("2", "refused", "websocket"),
    ]
    assert await meter.snapshot() == []  # WebSocket usage is subscription-seconds, metered by the bridge


async def test_everything_off_is_a_no_op() -> None:
    RequestObserver().finished(context({"query": QUERY}, answered=True), status=200, started=0.0)
    RequestObserver().websocket_operation(
        EndedOperation(
            request_id="c",
            operation_id="1",
            operation_type=None,
            operation_name=None,
            query=None,
            identity=None,
            plan="",
            status=400,
            outcome="refused",
            error_code="bad-request",
            duration=0.0,
            cost_estimated=None,
        )
    )

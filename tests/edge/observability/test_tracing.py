"""Tracing: SERVER and CLIENT spans, W3C traceparent in and out, the no-op when off, OTLP/HTTP export."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from edge.context import RequestContext
from edge.observability.tracing import Tracing, with_trace_headers
from edge.pipeline.inject_session import InjectSession
from edge.session import Identity, Session
from tests.edge.conftest import EdgeFactory
from tests.hasura_double import HasuraDouble
from tests.support.servers import start_server
from tests.support.tokens import mint

CLIENT_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN_ID = "b7ad6b7169203331"
CLIENT_TRACEPARENT = f"00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-01".encode()
QUERY = b'{"query": "query GetUsers { users { id } }", "variables": {"secret": "hunter2"}}'


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracing(exporter: InMemorySpanExporter) -> Iterator[Tracing]:
    tracing = Tracing(processor=SimpleSpanProcessor(exporter), service_name="edge-under-test")
    yield tracing
    tracing.shutdown()


def request_headers(*extra: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [
        (b"host", b"edge.example"),
        (b"authorization", b"Bearer eyJhbGciOiJIUzI1NiJ9.secret.token"),
        (b"content-type", b"application/json"),
        *extra,
    ]


def traced_request(
    tracing: Tracing, headers: list[tuple[bytes, bytes]], *, status: int = 200, error_code: str | None = None
) -> list[tuple[bytes, bytes]]:
    """One request through the tracing calls the handler makes; returns the trace headers sent to Hasura."""
    span = tracing.start_request(headers, request_id="req-1")
    span.set_operation("query", "GetUsers")
    with span.upstream_span() as trace_headers:
        sent = list(trace_headers)
    span.end(status, error_code)
    return sent


def parse_traceparent(headers: list[tuple[bytes, bytes]]) -> tuple[str, str, str]:
    values = [value for name, value in headers if name == b"traceparent"]
    assert len(values) == 1
    version, trace_id, span_id, flags = values[0].decode().split("-")
    assert version == "00"
    return trace_id, span_id, flags


def spans_by_kind(exporter: InMemorySpanExporter) -> dict[SpanKind, ReadableSpan]:
    spans = exporter.get_finished_spans()
    by_kind = {span.kind: span for span in spans}
    assert len(by_kind) == len(spans) == 2
    return by_kind


def test_a_request_without_traceparent_starts_a_trace_with_a_server_span_and_a_client_child(
    tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    traced_request(tracing, request_headers())
    spans = spans_by_kind(exporter)
    server, client = spans[SpanKind.SERVER], spans[SpanKind.CLIENT]
    assert server.name == "POST /graphql"
    assert server.parent is None
    assert client.name == "hasura /v1/graphql"
    assert server.context is not None and client.context is not None and client.parent is not None
    assert client.parent.span_id == server.context.span_id
    assert client.context.trace_id == server.context.trace_id
    assert dict(server.attributes or {}) == {
        "http.request.method": "POST",
        "url.path": "/graphql",
        "edge.request_id": "req-1",
        "graphql.operation.type": "query",
        "graphql.operation.name": "GetUsers",
        "http.response.status_code": 200,
    }
    assert server.status.status_code is StatusCode.UNSET
    assert server.resource.attributes["service.name"] == "edge-under-test"


def test_a_client_traceparent_is_the_server_span_parent_and_its_trace_id_is_kept(
    tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    traced_request(tracing, request_headers((b"traceparent", CLIENT_TRACEPARENT), (b"tracestate", b"vendor=abc")))
    server = spans_by_kind(exporter)[SpanKind.SERVER]
    assert server.parent is not None and server.parent.is_remote
    assert format(server.parent.span_id, "016x") == CLIENT_SPAN_ID
    assert server.context is not None
    assert format(server.context.trace_id, "032x") == CLIENT_TRACE_ID
    assert server.context.trace_state.get("vendor") == "abc"


def test_hasura_gets_a_traceparent_naming_the_client_span_in_the_same_trace(
    tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    sent = traced_request(
        tracing, request_headers((b"traceparent", CLIENT_TRACEPARENT), (b"tracestate", b"vendor=abc"))
    )
    trace_id, span_id, flags = parse_traceparent(sent)
    client = spans_by_kind(exporter)[SpanKind.CLIENT]
    assert client.context is not None
    assert trace_id == CLIENT_TRACE_ID == format(client.context.trace_id, "032x")
    assert span_id == format(client.context.span_id, "016x") != CLIENT_SPAN_ID
    assert int(flags, 16) & 1 == 1  # the client's sampled flag is kept
    assert (b"tracestate", b"vendor=abc") in sent


def test_upstream_headers_name_the_client_span_inside_upstream_span_and_the_server_span_outside(
    tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    span = tracing.start_request(request_headers(), request_id="req-1")
    outside = parse_traceparent(span.upstream_headers())
    with span.upstream_span() as trace_headers:
        assert span.upstream_headers() == trace_headers
    span.end(200)
    spans = spans_by_kind(exporter)
    assert spans[SpanKind.SERVER].context is not None and spans[SpanKind.CLIENT].context is not None
    assert outside[1] == format(spans[SpanKind.SERVER].context.span_id, "016x")
    assert parse_traceparent(trace_headers)[1] == format(spans[SpanKind.CLIENT].context.span_id, "016x")


@pytest.mark.parametrize(
    "traceparent",
    [
        b"not-a-traceparent",
        b"00-00000000000000000000000000000000-b7ad6b7169203331-01",  # all-zero trace id
        b"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # all-zero span id
        b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033-01",  # short span id
        b"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # forbidden version
        b"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",  # upper case
    ],
)
def test_a_malformed_traceparent_starts_a_fresh_trace(
    tracing: Tracing, exporter: InMemorySpanExporter, traceparent: bytes
) -> None:
    sent = traced_request(tracing, request_headers((b"traceparent", traceparent), (b"tracestate", b"vendor=abc")))
    server = spans_by_kind(exporter)[SpanKind.SERVER]
    assert server.parent is None
    assert server.context is not None
    trace_id, _, _ = parse_traceparent(sent)
    assert trace_id == format(server.context.trace_id, "032x") != CLIENT_TRACE_ID
    assert [name for name, _ in sent] == [b"traceparent"]  # the client's tracestate went with its trace


def test_spans_never_carry_the_document_variables_or_headers(tracing: Tracing, exporter: InMemorySpanExporter) -> None:
    headers = request_headers((b"x-hasura-role", b"admin"), (b"cookie", b"session=s3cr3t"))
    traced_request(tracing, headers, status=502, error_code="upstream-unavailable")
    allowed = {
        "http.request.method",
        "url.path",
        "edge.request_id",
        "graphql.operation.type",
        "graphql.operation.name",
        "http.response.status_code",
        "edge.error_code",
        "error.type",
    }
    for span in exporter.get_finished_spans():
        attributes = dict(span.attributes or {})
        assert set(attributes) <= allowed
        text = repr(attributes) + repr([event.attributes for event in span.events]) + span.name
        for secret in ("Bearer", "secret", "s3cr3t", "hunter2", "users { id }", "admin"):
            assert secret not in text


def test_a_long_operation_name_is_truncated(tracing: Tracing, exporter: InMemorySpanExporter) -> None:
    span = tracing.start_request([], request_id="req-1")
    span.set_operation("query", "Q" * 10_000)
    span.end(200)
    (server,) = exporter.get_finished_spans()
    assert server.attributes is not None and server.attributes["graphql.operation.name"] == "Q" * 128


def test_the_server_span_names_the_path_the_request_came_to(tracing: Tracing, exporter: InMemorySpanExporter) -> None:
    tracing.start_request([], request_id="req-1", method="POST", path="/v1/graphql").end(200)
    tracing.start_request([], request_id="req-2", method="BREW", path="/v1/graphql").end(405)
    post, other = exporter.get_finished_spans()
    assert post.name == "POST /v1/graphql"
    assert post.attributes is not None and post.attributes["url.path"] == "/v1/graphql"
    assert other.name == "_OTHER /v1/graphql"


def test_an_unknown_method_does_not_make_a_new_span_name(tracing: Tracing, exporter: InMemorySpanExporter) -> None:
    tracing.start_request([], request_id="req-1", method="GET").end(200)
    tracing.start_request([], request_id="req-2", method="BREW").end(405)
    get, other = exporter.get_finished_spans()
    assert get.name == "GET /graphql"
    assert other.name == "_OTHER /graphql"
    assert other.attributes is not None and other.attributes["http.request.method"] == "_OTHER"


@pytest.mark.parametrize(("status", "error"), [(500, True), (502, True), (504, True), (400, False), (429, False)])
def test_the_server_span_is_an_error_for_5xx_only_and_records_the_edge_code(
    tracing: Tracing, exporter: InMemorySpanExporter, status: int, error: bool
) -> None:
    traced_request(tracing, request_headers(), status=status, error_code="some-code")
    server = spans_by_kind(exporter)[SpanKind.SERVER]
    assert server.attributes is not None
    assert server.attributes["edge.error_code"] == "some-code"
    assert server.attributes["http.response.status_code"] == status
    assert (server.status.status_code is StatusCode.ERROR) is error
    assert ("error.type" in server.attributes) is error


def test_a_failed_upstream_call_marks_the_client_span_as_an_error(
    tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    span = tracing.start_request([], request_id="req-1")
    with pytest.raises(TimeoutError), span.upstream_span():
        raise TimeoutError("no answer")
    span.end(504, "timeout")
    spans = spans_by_kind(exporter)
    client = spans[SpanKind.CLIENT]
    assert client.status.status_code is StatusCode.ERROR
    assert client.attributes is not None and client.attributes["error.type"] == "TimeoutError"
    assert spans[SpanKind.SERVER].status.status_code is StatusCode.ERROR


def test_ending_twice_exports_one_span(tracing: Tracing, exporter: InMemorySpanExporter) -> None:
    span = tracing.start_request([], request_id="req-1")
    span.end(200)
    span.end(500, "late")
    (server,) = exporter.get_finished_spans()
    assert server.status.status_code is StatusCode.UNSET


def test_sampling_ratio_zero_records_nothing_but_still_propagates_an_unsampled_trace(
    exporter: InMemorySpanExporter,
) -> None:
    tracing = Tracing(processor=SimpleSpanProcessor(exporter), sample_ratio=0.0)
    _, _, flags = parse_traceparent(traced_request(tracing, request_headers()))
    assert int(flags, 16) & 1 == 0  # not sampled (the SDK may also set 02, "random trace id")
    assert exporter.get_finished_spans() == ()
    # ParentBased: a client's sampled trace is recorded whatever the ratio.
    traced_request(tracing, request_headers((b"traceparent", CLIENT_TRACEPARENT)))
    assert len(exporter.get_finished_spans()) == 2
    tracing.shutdown()


def test_a_sample_ratio_outside_0_1_is_refused() -> None:
    with pytest.raises(ValueError, match="sample_ratio"):
        Tracing("http://collector:4318/v1/traces", sample_ratio=1.5)


def test_tracing_instances_share_no_state_and_leave_the_global_provider_alone() -> None:
    first, second = InMemorySpanExporter(), InMemorySpanExporter()
    global_provider = trace.get_tracer_provider()
    one = Tracing(processor=SimpleSpanProcessor(first), service_name="one")
    two = Tracing(processor=SimpleSpanProcessor(second), service_name="two")
    traced_request(one, [])
    assert len(first.get_finished_spans()) == 2
    assert second.get_finished_spans() == ()
    assert one.provider is not two.provider
    assert trace.get_tracer_provider() is global_provider
    one.shutdown()
    two.shutdown()


async def hasura_headers(tracing: Tracing, client_headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """What Hasura receives: InjectSession's headers, then the trace headers of the CLIENT span (as wired)."""
    ctx = RequestContext(method="POST", headers=client_headers, query_string=b"", client=None, request_id="req-1")
    ctx.identity = Identity(Session("user", {"x-hasura-user-id": "u-1"}, "u-1"), "jwt")
    InjectSession(admin_secret="admin-secret")(ctx)
    span = tracing.start_request(client_headers, request_id=ctx.request_id)
    with span.upstream_span() as trace_headers:
        sent = with_trace_headers(ctx.upstream_headers, trace_headers)
    span.end(200)
    return sent


async def test_off_it_creates_no_provider_and_the_clients_traceparent_still_reaches_hasura_unchanged() -> None:
    tracing = Tracing(None)
    assert tracing.provider is None
    assert not tracing.enabled
    client_headers = request_headers((b"traceparent", CLIENT_TRACEPARENT), (b"tracestate", b"vendor=abc"))
    span = tracing.start_request(client_headers, request_id="req-1")
    assert not span.recording
    assert span.upstream_headers() == []
    sent = await hasura_headers(tracing, client_headers)
    assert (b"traceparent", CLIENT_TRACEPARENT) in sent
    assert (b"tracestate", b"vendor=abc") in sent
    assert tracing.shutdown() is True


async def test_on_hasura_gets_one_traceparent_the_client_span_not_the_clients() -> None:
    exporter = InMemorySpanExporter()
    tracing = Tracing(processor=SimpleSpanProcessor(exporter))
    sent = await hasura_headers(tracing, request_headers((b"traceparent", CLIENT_TRACEPARENT)))
    trace_id, span_id, _ = parse_traceparent(sent)
    assert trace_id == CLIENT_TRACE_ID
    client = spans_by_kind(exporter)[SpanKind.CLIENT]
    assert client.context is not None and span_id == format(client.context.span_id, "016x")
    assert (b"x-hasura-role", b"user") in sent  # everything else InjectSession made is kept
    tracing.shutdown()


def test_off_it_builds_nothing_per_request() -> None:
    # Structural, not timed: with tracing off every request gets the one shared no-op span, and
    # the upstream headers are passed through as the very same list (no copy, no SDK object).
    tracing = Tracing(None)
    headers = request_headers((b"traceparent", CLIENT_TRACEPARENT))
    upstream = [(b"x-hasura-role", b"user"), (b"traceparent", CLIENT_TRACEPARENT)]
    first = tracing.start_request(headers, request_id="req-1", method="POST")
    for _ in range(3):
        span = tracing.start_request(headers, request_id="req-2", method="POST")
        assert span is first and not span.recording
        span.set_operation("query", "GetUsers")
        with span.upstream_span() as trace_headers:
            assert trace_headers == []
            assert with_trace_headers(upstream, trace_headers) is upstream
        span.end(200, None)
    assert tracing.provider is None


def test_shutdown_flushes_the_queued_spans() -> None:
    exporter = InMemorySpanExporter()
    tracing = Tracing(processor=BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    traced_request(tracing, [])
    assert exporter.get_finished_spans() == ()  # still queued: the batch waits a minute
    assert tracing.shutdown(timeout=5) is True
    assert len(exporter.get_finished_spans()) == 2
    assert tracing.shutdown() is True  # idempotent


async def test_aclose_shuts_down_off_the_event_loop() -> None:
    exporter = InMemorySpanExporter()
    tracing = Tracing(processor=BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    traced_request(tracing, [])
    await tracing.aclose()
    assert len(exporter.get_finished_spans()) == 2


class Collector:
    """A tiny OTLP/HTTP receiver: records the body of every ``POST /v1/traces``."""

    def __init__(self) -> None:
        self.bodies: list[tuple[bytes, bytes]] = []
        self.received = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "POST" and scope["path"] == "/v1/traces":
            content_type = dict(scope["headers"]).get(b"content-type", b"")
            self.bodies.append((content_type, body))
            self.received.set()
            status = 200
        else:
            status = 404
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


def test_spans_reach_an_otlp_http_collector_after_shutdown(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    collector = Collector()
    server = start_server(collector)
    try:
        tracing = Tracing(f"{server.url}/v1/traces", service_name="edge-otlp-e2e", export_timeout=5)
        traced_request(tracing, request_headers((b"traceparent", CLIENT_TRACEPARENT)))
        assert tracing.shutdown(timeout=10) is True
        assert collector.received.wait(5)
    finally:
        server.stop()
    (content_type, body), *_ = collector.bodies
    assert content_type == b"application/x-protobuf"
    assert b"edge-otlp-e2e" in body
    assert b"POST /graphql" in body and b"hasura /v1/graphql" in body
    assert bytes.fromhex(CLIENT_TRACE_ID) in body
    assert b"Bearer" not in body


def test_each_graphql_path_of_a_running_edge_is_traced_as_itself(
    start_edge: EdgeFactory, hasura: HasuraDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    collector = Collector()
    server = start_server(collector)
    try:
        edge = start_edge(otel_exporter_otlp_endpoint=f"{server.url}/v1/traces")
        headers = {"Authorization": f"Bearer {mint()}"}
        for path in ("/v1/graphql", "/graphql"):
            response = httpx.post(f"{edge.url}{path}", json={"query": "{ products(limit: 1) { id } }"}, headers=headers)
            assert response.status_code == 200
        edge.stop()  # the lifespan's shutdown exports the queued spans
        assert collector.received.wait(5)
    finally:
        server.stop()
    body = b"".join(body for _, body in collector.bodies)
    assert b"POST /v1/graphql" in body and b"POST /graphql" in body

"""OpenTelemetry traces for GraphQL requests: a SERVER span per request, a CLIENT span around the call to Hasura.

``Tracing(endpoint, service_name=..., sample_ratio=...)`` is built once from settings. With no endpoint it
is off: ``start_request`` returns a shared no-op :class:`RequestSpan` (no SDK import, no provider, nothing
allocated per request) and the upstream headers stay as ``InjectSession`` made them (the client's
well-formed ``traceparent`` passed through). With an endpoint, it owns a ``TracerProvider`` of its own (never
the process-global one, so tests and several apps never share state) that exports through a
``BatchSpanProcessor`` + OTLP/HTTP exporter: ending a span only appends it to a bounded queue that a
background thread sends (a full queue drops spans, it never blocks a request).

Per request::

    span = tracing.start_request(scope["headers"], request_id=ctx.request_id, method=ctx.method)
    span.set_operation("query", "GetUsers")            # after analysis
    with span.upstream_span() as trace_headers:        # the CLIENT span "hasura /v1/graphql"
        headers = with_trace_headers(ctx.upstream_headers, trace_headers)
        ...                                            # POST to Hasura with ``headers``
    span.end(200, None)

The client's ``traceparent``/``tracestate`` (W3C Trace Context) is the SERVER span's parent; a malformed one
starts a new trace. Hasura receives a ``traceparent`` naming the CLIENT span, so its own spans continue the
trace. Sampling is ``ParentBased(TraceIdRatioBased(sample_ratio))``: a client's sampled flag is honoured.

Spans carry the method, the path, the edge's request id, the operation's type and name, the status and the
edge's error code: never the document, the variables or any header.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from edge.graphql_paths import GRAPHQL_PATHS

if TYPE_CHECKING:
    from types import TracebackType

    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

__all__ = ["RequestSpan", "Tracing", "with_trace_headers"]

Headers = list[tuple[bytes, bytes]]

_PROPAGATOR = TraceContextTextMapPropagator()
_NO_PARENT = Context()  # explicit, so a span never picks up whatever context happens to be current
_TRACE_HEADERS = frozenset({b"traceparent", b"tracestate"})
_MAX_TRACESTATE = 512  # as InjectSession: W3C asks to propagate at least 512 characters
_MAX_OPERATION_NAME = 128
# Span names must have a bounded set of values: any other method a client sends is "_OTHER" (semconv),
# and the paths are the GraphQL endpoint's own.
_SERVER_METHODS = ("POST", "GET")
_SERVER_SPAN_NAMES = {(method, path): f"{method} {path}" for method in _SERVER_METHODS for path in GRAPHQL_PATHS}
_CLIENT_SPAN_NAME = "hasura /v1/graphql"
_CLIENT_ATTRIBUTES = {"http.request.method": "POST", "url.path": "/v1/graphql"}


def with_trace_headers(headers: Sequence[tuple[bytes, bytes]], trace_headers: Headers) -> Sequence[tuple[bytes, bytes]]:
    """``headers`` with their ``traceparent``/``tracestate`` replaced by ``trace_headers``.

    No trace headers (tracing off) returns ``headers`` itself, unchanged.

    >>> with_trace_headers([(b"traceparent", b"00-a-b-01"), (b"x", b"1")], [(b"traceparent", b"00-c-d-01")])
    [(b'x', b'1'), (b'traceparent', b'00-c-d-01')]
    """
    if not trace_headers:
        return headers
    return [header for header in headers if header[0] not in _TRACE_HEADERS] + trace_headers


class _NoUpstreamSpan:
    """The no-op ``upstream_span()``: stateless, so one instance serves every request."""

    __slots__ = ()

    def __enter__(self) -> Headers:
        return []

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


_NO_UPSTREAM_SPAN = _NoUpstreamSpan()


class RequestSpan:
    """The spans of one ``/graphql`` request. This base class is the no-op used when tracing is off."""

    __slots__ = ()

    recording = False
    """True when the request is traced (tracing on, whatever the sampling decision)."""

    def set_operation(self, operation_type: str, operation_name: str | None) -> None:
        """Name the GraphQL operation (its type and name only, never the document)."""

    def upstream_headers(self) -> Headers:
        """``traceparent`` (and ``tracestate``) naming the CLIENT span when inside ``upstream_span()``,
        else the SERVER span. Empty when tracing is off."""
        return []

    def upstream_span(self) -> AbstractContextManager[Headers]:
        """The CLIENT span around the call to Hasura; yields the trace headers to send with it."""
        return _NO_UPSTREAM_SPAN

    def end(self, status: int, error_code: str | None = None) -> None:
        """End the SERVER span with the HTTP status sent; an error status for 5xx."""


_NOOP_SPAN = RequestSpan()


class _TracedRequest(RequestSpan):
    __slots__ = ("_tracer", "_server", "_client", "_ended")

    recording = True

    def __init__(self, tracer: trace.Tracer, server: trace.Span) -> None:
        self._tracer = tracer
        self._server = server
        self._client: trace.Span | None = None
        self._ended = False

    def set_operation(self, operation_type: str, operation_name: str | None) -> None:
        self._server.set_attribute("graphql.operation.type", operation_type)
        if operation_name:
            self._server.set_attribute("graphql.operation.name", operation_name[:_MAX_OPERATION_NAME])

    def upstream_headers(self) -> Headers:
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(self._client or self._server, _NO_PARENT))
        return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in carrier.items()]

    @contextmanager
    def upstream_span(self) -> Iterator[Headers]:
        client = self._tracer.start_span(
            _CLIENT_SPAN_NAME,
            context=trace.set_span_in_context(self._server, _NO_PARENT),
            kind=SpanKind.CLIENT,
            attributes=_CLIENT_ATTRIBUTES,
        )
        self._client = client
        try:
            yield self.upstream_headers()
        except BaseException as exc:  # the edge's 502/503/504, or a cancellation: the class name only
            client.set_attribute("error.type", type(exc).__name__)
            client.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            self._client = None
            client.end()

    def end(self, status: int, error_code: str | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        server = self._server
        server.set_attribute("http.response.status_code", status)
        if error_code is not None:
            server.set_attribute("edge.error_code", error_code)
        if status >= 500:  # a 4xx is the client's error, not the server's (semconv for SERVER spans)
            server.set_attribute("error.type", error_code or str(status))
            server.set_status(Status(StatusCode.ERROR, error_code))
        server.end()


class Tracing:
    """Tracing for the edge: off (a no-op) when ``endpoint`` is None, else OTLP/HTTP to ``endpoint``.

    ``endpoint`` is the full traces URL, e.g. ``http://otel-collector:4318/v1/traces``.
    ``sample_ratio`` (0..1) applies to traces that start here; a client's sampled flag is kept.
    ``processor`` (tests) replaces the batch processor and its OTLP exporter, and turns tracing on.

    >>> Tracing(None).start_request([], request_id="r1").recording
    False
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        service_name: str = "hasura-edge",
        sample_ratio: float = 1.0,
        export_timeout: float = 10.0,
        processor: SpanProcessor | None = None,
    ) -> None:
        if not 0.0 <= sample_ratio <= 1.0:
            raise ValueError(f"sample_ratio must be between 0 and 1, not {sample_ratio}")
        self.provider: TracerProvider | None = None
        self._tracer: trace.Tracer | None = None
        self._closed = False
        if endpoint is None and processor is None:
            return
        # Imported only when tracing is on: the SDK and the exporter cost ~90 ms of start-up.
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        if processor is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, timeout=export_timeout))
        provider = TracerProvider(
            sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
            resource=Resource.create({SERVICE_NAME: service_name}),
            shutdown_on_exit=False,  # shutdown() runs from the app's lifespan; no atexit hook per instance
        )
        provider.add_span_processor(processor)
        self.provider = provider
        self._tracer = provider.get_tracer("edge.observability.tracing")

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    def start_request(
        self, headers: list[tuple[bytes, bytes]], *, request_id: str, method: str = "POST", path: str = GRAPHQL_PATHS[0]
    ) -> RequestSpan:
        """Start the SERVER span of one request, child of the client's ``traceparent`` when well formed.

        ``path`` is the one of ``edge.graphql_paths`` the request came to."""
        tracer = self._tracer
        if tracer is None:
            return _NOOP_SPAN
        carrier: dict[str, str] = {}
        for name, value in headers:
            if name in _TRACE_HEADERS and (name == b"traceparent" or len(value) <= _MAX_TRACESTATE):
                carrier.setdefault(name.decode("ascii"), value.decode("latin-1"))  # the first value, as ctx.header
        parent = _PROPAGATOR.extract(carrier, context=_NO_PARENT) if carrier else _NO_PARENT
        known = method in _SERVER_METHODS
        server = tracer.start_span(
            _SERVER_SPAN_NAMES.get((method, path)) or f"{method if known else '_OTHER'} {path}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method if known else "_OTHER",
                "url.path": path,
                "edge.request_id": request_id,
            },
        )
        return _TracedRequest(tracer, server)

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Export the spans still queued and stop, waiting at most ``timeout`` seconds.

        Returns False when that was not enough (the rest is dropped with the process). Idempotent.
        """
        provider = self.provider
        if provider is None or self._closed:
            return True
        self._closed = True
        # The SDK's own shutdown waits up to 30 s for the export thread; bound it here.
        worker = threading.Thread(target=provider.shutdown, name="otel-shutdown", daemon=True)
        worker.start()
        worker.join(timeout)
        return not worker.is_alive()

    async def aclose(self, timeout: float = 5.0) -> None:
        """:meth:`shutdown` off the event loop (for the app's lifespan exit stack)."""
        await asyncio.to_thread(self.shutdown, timeout)

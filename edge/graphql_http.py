"""The handler for HTTP ``/graphql`` and ``/v1/graphql``: runs the pipeline and maps errors at one boundary.

It sits outside FastAPI on purpose: a FastAPI route costs about half the throughput on these
machines (``docs/architecture.md``), and this path does nothing that needs the framework.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

from edge.asgi import ClientDisconnected, Receive, Scope, Send, asgi_client, read_body, send_response
from edge.cache import ResponseCache
from edge.context import RequestContext
from edge.error_statuses import ErrorStatuses
from edge.errors import EdgeError, InternalError, PayloadTooLarge, RequestTimeout
from edge.graphiql import GraphiQL
from edge.graphql_paths import GRAPHQL_PATHS
from edge.observability import RequestObserver
from edge.observability.tracing import RequestSpan, Tracing, with_trace_headers
from edge.pipeline.analyse_operation import AnalyseOperation
from edge.pipeline.authenticate import Authenticate
from edge.pipeline.cors import CorsPolicy
from edge.pipeline.finish_response import FinishResponse
from edge.pipeline.identify_plan import IdentifyPlan
from edge.pipeline.inject_session import InjectSession
from edge.pipeline.limit import Limit
from edge.pipeline.proxy import Proxy
from edge.pipeline.receive_request import ReceiveRequest
from edge.pipeline.request_id import choose_request_id
from edge.pipeline.response_headers import MIN_COMPRESS_BYTES, compress_if_worthwhile, security_headers

__all__ = ["BodyReader", "GraphQLHTTPHandler", "Responder"]

BodyReader = Callable[[int], Awaitable[bytes]]
"""``read_body(limit)``: the whole request body; raises PayloadTooLarge past ``limit`` bytes, ClientDisconnected."""
Responder = Callable[[int, list[tuple[bytes, bytes]], bytes], Awaitable[None] | None]
"""``respond(status, headers, body)``: send one complete response (``content-length`` is added); it
returns an awaitable when sending may wait (ASGI's ``send``), None when it has written already."""

log = logging.getLogger("edge.graphql")

# Response headers the edge writes itself (the server adds Date; the request id is the edge's).
_REPLACED_UPSTREAM_HEADERS: Final = frozenset({b"x-request-id", b"date", b"server"})
# After these the connection may hold unread request bytes, so it is not reused.
_CLOSE_AFTER: Final = (PayloadTooLarge, RequestTimeout)


class GraphQLHTTPHandler:
    """POST/GET on one of ``edge.graphql_paths``: receive -> authenticate -> identify plan -> analyse ->
    limit -> inject session -> proxy -> finish response."""

    def __init__(
        self,
        *,
        receive_request: ReceiveRequest,
        authenticate: Authenticate,
        identify_plan: IdentifyPlan,
        analyse_operation: AnalyseOperation,
        limit: Limit,
        inject_session: InjectSession,
        proxy: Proxy,
        finish_response: FinishResponse,
        cors: CorsPolicy,
        response_cache: ResponseCache | None = None,
        observer: RequestObserver | None = None,
        tracing: Tracing | None = None,
        tls: bool = False,
        path: str = GRAPHQL_PATHS[0],
        error_statuses: ErrorStatuses | None = None,
        graphiql: GraphiQL | None = None,
    ) -> None:
        self.path = path
        """The path this handler answers on (what its spans report); :meth:`on_path` makes one for another."""
        self.tls = tls
        self.tracing = tracing or Tracing(None)
        # Read once: with tracing off (the default) a request makes no span calls at all.
        self.tracing_enabled = self.tracing.enabled
        self.security_headers = security_headers(tls=tls)
        self.response_cache = response_cache
        self.observer = observer or RequestObserver()
        self.receive_request = receive_request
        self.authenticate = authenticate
        self.identify_plan = identify_plan
        self.analyse_operation = analyse_operation
        self.limit = limit
        self.inject_session = inject_session
        self.proxy = proxy
        self.finish_response = finish_response
        self.cors = cors
        self.error_statuses = error_statuses or ErrorStatuses()
        self.graphiql = graphiql
        """``EDGE_GRAPHIQL``: the page a browser's GET gets instead (``edge.graphiql``); None (default): never."""
        # The declared order, for readers and for the test that pins it.
        self.stages = (
            receive_request,
            authenticate,
            identify_plan,
            analyse_operation,
            limit,
            inject_session,
            proxy,
            finish_response,
        )

    def on_path(self, path: str) -> GraphQLHTTPHandler:
        """The same handler answering on ``path``: the same stages, shared, so every path behaves alike."""
        return GraphQLHTTPHandler(
            receive_request=self.receive_request,
            authenticate=self.authenticate,
            identify_plan=self.identify_plan,
            analyse_operation=self.analyse_operation,
            limit=self.limit,
            inject_session=self.inject_session,
            proxy=self.proxy,
            finish_response=self.finish_response,
            cors=self.cors,
            response_cache=self.response_cache,
            observer=self.observer,
            tracing=self.tracing,
            tls=self.tls,
            path=path,
            error_statuses=self.error_statuses,
            graphiql=self.graphiql,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI adapter (any ASGI server; the edge's own server calls :meth:`handle` directly)."""
        await self.handle(
            scope["method"],
            [(bytes(name), bytes(value)) for name, value in scope["headers"]],
            bytes(scope.get("query_string", b"")),
            asgi_client(scope),
            functools.partial(read_body, receive),
            functools.partial(send_response, send),
        )

    async def handle(
        self,
        method: str,
        headers: list[tuple[bytes, bytes]],
        query_string: bytes,
        client: tuple[str, int] | None,
        read_body: BodyReader,
        respond: Responder,
        arrived_body: bytes | None = None,
    ) -> None:
        """Answer one request. ``read_body(limit)`` returns the whole body (413 beyond ``limit``),
        unless the server passes it as ``arrived_body`` because it had all arrived already;
        ``respond(status, headers, body)`` sends the response (it adds ``content-length``)."""
        started = time.perf_counter()
        ctx = RequestContext(method=method, headers=headers, query_string=query_string, client=client, request_id="")
        first_values = ctx.first_values
        ctx.request_id = choose_request_id(first_values.get(b"x-request-id"))
        ctx.origin = first_values.get(b"origin")
        upstream: float | None = None
        if method == "GET" and self.graphiql is not None and self.graphiql.wanted(headers):
            page_headers, page = self.graphiql.page_response(first_values.get(b"host"), ctx.request_id)
            sending = respond(200, page_headers, page)
            if sending is not None:
                await sending
            return
        if method == "OPTIONS":
            await self._preflight(ctx, respond)
            return
        span = (
            self.tracing.start_request(headers, request_id=ctx.request_id, method=method, path=self.path)
            if self.tracing_enabled
            else None
        )
        try:
            await self.receive_request(ctx, read_body, arrived_body)
            await self.authenticate(ctx)
            self.identify_plan(ctx)
            self.analyse_operation(ctx)
            if span is not None:
                _name_operation(span, ctx)
            await self.limit(ctx)
            self.inject_session(ctx)
            proxy = functools.partial(self._traced_proxy, span=span) if span is not None else self.proxy
            sent = time.perf_counter()
            try:
                if self.response_cache is not None:
                    await self.response_cache.proxy_through(ctx, proxy)  # lookup, proxy unless HIT, store
                else:
                    await proxy(ctx)
            finally:
                upstream = time.perf_counter() - sent
            await self.finish_response(ctx)
            response = ctx.response
            if response is None:  # a pipeline bug, not a client error
                raise RuntimeError("the proxy stage produced no response")
        except EdgeError as error:
            await self._send_error(ctx, respond, error)
            if span is not None:
                span.end(error.status, error.code)
            self.observer.finished(
                ctx, status=error.status, started=started, upstream_duration=upstream, error_code=error.code
            )
            return
        except ClientDisconnected:
            if span is not None:
                span.end(499, "client-disconnected")
            return
        except Exception:
            # A bug, never the client's fault: logged with its traceback (no request data in it), and
            # answered in the same GraphQL shape as every other error.
            log.exception("edge_internal_error", extra={"request_id": ctx.request_id})
            internal = InternalError()
            await self._send_error(ctx, respond, internal)
            if span is not None:
                span.end(internal.status, internal.code)
            return
        except BaseException:
            if span is not None:
                span.end(500, "internal")
            raise
        out = [header for header in response.headers if header[0] not in _REPLACED_UPSTREAM_HEADERS]
        out.append((b"x-request-id", ctx.request_id.encode("ascii")))
        if ctx.limit_headers:
            out += ctx.limit_headers
        if ctx.origin is not None:
            out += self.cors.response_headers(ctx.origin)
        out += self.security_headers
        body = response.body
        if len(body) >= MIN_COMPRESS_BYTES:
            body = compress_if_worthwhile(body, out, first_values.get(b"accept-encoding"))
        sending = respond(response.status, out, body)
        if sending is not None:
            await sending
        if span is not None:
            span.end(response.status)
        self.observer.finished(
            ctx,
            status=response.status,
            started=started,
            upstream_duration=upstream,
            estimated_costs=ctx.estimated_costs or None,
            actual_costs=ctx.actual_costs or None,
            rows=ctx.rows,
        )

    async def _traced_proxy(self, ctx: RequestContext, *, span: RequestSpan) -> None:
        """The proxy stage inside the CLIENT span, whose ``traceparent`` Hasura gets (a cache HIT makes none)."""
        with span.upstream_span() as trace_headers:
            ctx.upstream_headers = with_trace_headers(ctx.upstream_headers, trace_headers)
            await self.proxy(ctx)

    async def _send_error(self, ctx: RequestContext, respond: Responder, error: EdgeError) -> None:
        if error.status >= 500:
            log.warning("edge_error", extra={"request_id": ctx.request_id, "code": error.code})
        # The status and media type depend on the client's Accept: read only here, never on the hot path.
        status, headers, body = self.error_statuses.answer(error, ctx.headers)
        out = [(b"x-request-id", ctx.request_id.encode("ascii")), *headers]
        if isinstance(error, _CLOSE_AFTER):
            out.append((b"connection", b"close"))
        out.extend(self.cors.response_headers(ctx.origin))
        out.extend(self.security_headers)
        sending = respond(status, out, body)
        if sending is not None:
            await sending

    async def _preflight(self, ctx: RequestContext, respond: Responder) -> None:
        if ctx.header(b"access-control-request-method") is None:
            status, out = 204, [(b"allow", b"GET, POST, OPTIONS")]
        else:
            status, out = self.cors.preflight(ctx.origin)
        out.append((b"x-request-id", ctx.request_id.encode("ascii")))
        sending = respond(status, out, b"")
        if sending is not None:
            await sending


def _name_operation(span: RequestSpan, ctx: RequestContext) -> None:
    analyses = ctx.analyses
    if len(analyses) == 1:
        span.set_operation(analyses[0].operation_type, analyses[0].operation_name)
    elif analyses:
        span.set_operation("batch", None)

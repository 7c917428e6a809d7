"""The handler for HTTP ``/graphql`` and ``/v1/graphql``: runs the pipeline and maps errors at one boundary.

The stages and their order are declared once (``edge.pipeline.order.Stages``); the handler runs that
sequence, awaiting a stage only when it returns an awaitable. Around it: the GraphiQL page and CORS
preflights (answered before the stages), the request's span, and the observer (metrics, access log,
usage) once the answer or the refusal is sent.

It sits outside FastAPI on purpose: a FastAPI route costs about half the throughput on these
machines (``docs/architecture.md``), and this path does nothing that needs the framework.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Final

from edge.asgi import ClientDisconnected, Receive, Scope, Send, asgi_client, read_body, send_response
from edge.context import BodyReader, RequestContext, Responder
from edge.error_statuses import ErrorStatuses
from edge.errors import EdgeError, InternalError, PayloadTooLarge, RequestTimeout
from edge.graphiql import GraphiQL
from edge.graphql_paths import GRAPHQL_PATHS
from edge.http.cors import CorsPolicy
from edge.http.request_id import choose_request_id
from edge.http.response_headers import security_headers
from edge.observability import RequestObserver
from edge.observability.tracing import RequestSpan, Tracing
from edge.pipeline.order import Stage, Stages

__all__ = ["BodyReader", "GraphQLHTTPHandler", "Responder", "end_span"]

log = logging.getLogger("edge.graphql")

# After these the connection may hold unread request bytes, so it is not reused.
_CLOSE_AFTER: Final = (PayloadTooLarge, RequestTimeout)


class GraphQLHTTPHandler:
    """POST/GET on one of ``edge.graphql_paths``: runs ``stages`` (``edge.pipeline.order``) in their
    declared order, and answers an EdgeError from any of them at one boundary."""

    def __init__(
        self,
        stages: Stages,
        *,
        cors: CorsPolicy,
        observer: RequestObserver | None = None,
        tracing: Tracing | None = None,
        tls: bool = False,
        path: str = GRAPHQL_PATHS[0],
        error_statuses: ErrorStatuses | None = None,
        graphiql: GraphiQL | None = None,
    ) -> None:
        self.stages = stages
        """The declaration; :attr:`sequence` is what runs."""
        self.sequence: tuple[Stage, ...] = stages.sequence()
        self.path = path
        """The path this handler answers on (what its spans report); :meth:`on_path` makes one for another."""
        self.tls = tls
        self.tracing = tracing or Tracing(None)
        # Read once: with tracing off (the default) a request makes no span calls at all.
        self.tracing_enabled = self.tracing.enabled
        self.security_headers = security_headers(tls=tls)
        self.observer = observer or RequestObserver()
        self.cors = cors
        self.error_statuses = error_statuses or ErrorStatuses()
        self.graphiql = graphiql
        """``EDGE_GRAPHIQL``: the page a browser's GET gets instead (``edge.graphiql``); None (default): never."""

    def on_path(self, path: str) -> GraphQLHTTPHandler:
        """The same handler answering on ``path``: the same stages, shared, so every path behaves alike."""
        return GraphQLHTTPHandler(
            self.stages,
            cors=self.cors,
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
        ctx = RequestContext(
            method=method,
            headers=headers,
            query_string=query_string,
            client=client,
            request_id="",
            read_body=read_body,
            arrived_body=arrived_body,
            respond=respond,
        )
        first_values = ctx.first_values
        ctx.request_id = choose_request_id(first_values.get(b"x-request-id"))
        ctx.origin = first_values.get(b"origin")
        if method == "GET" and self.graphiql is not None and self.graphiql.wanted(headers):
            page_headers, page = self.graphiql.page_response(first_values.get(b"host"), ctx.request_id)
            sending = respond(200, page_headers, page)
            if sending is not None:
                await sending
            return
        if method == "OPTIONS":
            await self._preflight(ctx, respond)
            return
        if self.tracing_enabled:
            ctx.span = self.tracing.start_request(headers, request_id=ctx.request_id, method=method, path=self.path)
        try:
            for stage in self.sequence:
                pending = stage(ctx)
                if pending is not None:
                    await pending
        except EdgeError as error:
            await self._send_error(ctx, error)
            self.finished(ctx, started, error.status, error.code)
            return
        except ClientDisconnected:
            end_span(ctx, 499, "client-disconnected")
            return
        except Exception:
            # A bug, never the client's fault: logged with its traceback (no request data in it), and
            # answered in the same GraphQL shape as every other error.
            log.exception("edge_internal_error", extra={"request_id": ctx.request_id})
            internal = InternalError()
            await self._send_error(ctx, internal)
            end_span(ctx, internal.status, internal.code)
            return
        except BaseException:
            end_span(ctx, 500, "internal")
            raise
        self.finished(ctx, started, ctx.status, None)

    def finished(self, ctx: RequestContext, started: float, status: int, error_code: str | None) -> None:
        """The request's span ends and the observer records it (metrics, access log, usage)."""
        end_span(ctx, status, error_code)
        if error_code is not None:
            self.observer.finished(
                ctx, status=status, started=started, upstream_duration=ctx.upstream_duration, error_code=error_code
            )
            return
        self.observer.finished(
            ctx,
            status=status,
            started=started,
            upstream_duration=ctx.upstream_duration,
            estimated_costs=ctx.estimated_costs or None,
            actual_costs=ctx.actual_costs or None,
            rows=ctx.rows,
        )

    async def _send_error(self, ctx: RequestContext, error: EdgeError) -> None:
        if error.status >= 500:
            log.warning("edge_error", extra={"request_id": ctx.request_id, "code": error.code})
        # The status and media type depend on the client's Accept: read only here, never on the hot path.
        status, headers, body = self.error_statuses.answer(error, ctx.headers)
        out = [(b"x-request-id", ctx.request_id.encode("ascii")), *headers]
        if isinstance(error, _CLOSE_AFTER):
            out.append((b"connection", b"close"))
        out.extend(self.cors.response_headers(ctx.origin))
        out.extend(self.security_headers)
        respond = ctx.respond
        if respond is None:
            raise RuntimeError("no responder for this request")
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


def end_span(ctx: RequestContext, status: int, error_code: str | None) -> None:
    """End the request's span (when traced) with the status sent, naming the operation when it was analysed."""
    span = ctx.span
    if span is None:
        return
    _name_operation(span, ctx)
    span.end(status, error_code)


def _name_operation(span: RequestSpan, ctx: RequestContext) -> None:
    analyses = ctx.analyses
    if len(analyses) == 1:
        span.set_operation(analyses[0].operation_type, analyses[0].operation_name)
    elif analyses:
        span.set_operation("batch", None)

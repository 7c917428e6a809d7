"""Stage 7 with tracing on (``OTEL_EXPORTER_OTLP_ENDPOINT``): the proxy stage inside a CLIENT span.

Hasura gets the CLIENT span's ``traceparent``; a cache HIT never reaches this stage, so it makes no
CLIENT span. Built only when tracing is on: with it off a request makes no span calls at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from edge.context import RequestContext
from edge.observability.tracing import with_trace_headers

__all__ = ["TracedProxy"]


class TracedProxy:
    """Runs ``proxy`` inside the request's CLIENT span (``ctx.span``), or as it is without one."""

    def __init__(self, proxy: Callable[[RequestContext], Awaitable[None]]) -> None:
        self.proxy = proxy

    async def __call__(self, ctx: RequestContext) -> None:
        span = ctx.span
        if span is None:
            await self.proxy(ctx)
            return
        with span.upstream_span() as trace_headers:
            ctx.upstream_headers = with_trace_headers(ctx.upstream_headers, trace_headers)
            await self.proxy(ctx)

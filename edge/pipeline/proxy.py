"""Stage N: send the request to Hasura's ``/v1/graphql`` and keep its answer.

Upstream failures map to GraphQL-shaped edge errors here, in one place: could not connect or
a broken response -> 502, no answer in time -> 504, no free pooled connection in time or an
open circuit (every Hasura failing) -> 503 with ``Retry-After``.
Hasura's own answers (including its HTTP-200 GraphQL errors) are passed back unchanged.

Whether the request may be sent twice is decided here and travels with it (``idempotent``): only a
request the analysis shows to be made of queries alone. A mutation, a batch holding one, or a request
without a complete analysis is sent to Hasura at most once, whatever fails.
"""

from __future__ import annotations

import logging
import time

from edge.context import RequestContext
from edge.errors import ServiceUnavailable, UpstreamTimeout, UpstreamUnavailable
from edge.upstream.balancer import BalancedUpstream
from edge.upstream.base import Upstream, UpstreamError, UpstreamPoolTimeout
from edge.upstream.base import UpstreamTimeout as UpstreamClientTimeout
from edge.upstream.breaker import UpstreamCircuitOpen

__all__ = ["Proxy"]

log = logging.getLogger("edge.proxy")


class Proxy:
    """Fills ``ctx.response`` and ``ctx.upstream_duration``; rejects 502, 503 and 504."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.balanced = upstream if isinstance(upstream, BalancedUpstream) else None

    async def __call__(self, ctx: RequestContext) -> None:
        idempotent = _only_queries(ctx)
        sent = time.perf_counter()
        try:
            if self.balanced is not None:  # (a native call in the compiled build)
                ctx.response = await self.balanced.post(ctx.body, ctx.upstream_headers, idempotent=idempotent)
            else:
                ctx.response = await self.upstream.post(ctx.body, ctx.upstream_headers, idempotent=idempotent)
        except UpstreamCircuitOpen as circuit:  # also draining on shutdown
            # (its own name: mypyc types a name by its first ``except ... as``, so reusing ``exc``
            # below would reject the other exception types at run time in the compiled build)
            retry_after = circuit.retry_after
            log.warning("upstream_circuit_open", extra={"request_id": ctx.request_id, "retry_after": retry_after})
            raise ServiceUnavailable(
                "The GraphQL engine is unavailable", headers=(("Retry-After", str(retry_after)),)
            ) from None
        except UpstreamPoolTimeout:
            # Every pooled connection stayed busy: the edge is saturated, Hasura may be fine.
            log.warning("upstream_pool_exhausted", extra={"request_id": ctx.request_id})
            raise ServiceUnavailable(
                "Too many requests in flight to the GraphQL engine", headers=(("Retry-After", "1"),)
            ) from None
        except UpstreamClientTimeout:
            log.warning("upstream_timeout", extra={"request_id": ctx.request_id})
            raise UpstreamTimeout() from None
        except UpstreamError as exc:
            log.warning("upstream_unavailable", extra={"request_id": ctx.request_id, "reason": type(exc).__name__})
            raise UpstreamUnavailable() from None
        finally:
            ctx.upstream_duration = time.perf_counter() - sent


def _only_queries(ctx: RequestContext) -> bool:
    """Every operation of the request was analysed and is a query (then it may be sent again)."""
    analyses = ctx.analyses
    if not ctx.is_batch:
        return len(analyses) == 1 and analyses[0].operation_type == "query"
    return (
        bool(ctx.analyses)
        and len(ctx.analyses) == len(ctx.operations)
        and all(analysis.operation_type == "query" for analysis in ctx.analyses)
    )

"""Stage N: send the request to Hasura's ``/v1/graphql`` and keep its answer.

Upstream failures map to GraphQL-shaped edge errors here, in one place: could not connect or
a broken response -> 502, no answer in time -> 504, no free pooled connection in time -> 503.
Hasura's own answers (including its HTTP-200 GraphQL errors) are passed back unchanged.
"""

from __future__ import annotations

import logging

from edge.context import RequestContext
from edge.errors import ServiceUnavailable, UpstreamTimeout, UpstreamUnavailable
from edge.upstream.base import Upstream, UpstreamError, UpstreamPoolTimeout
from edge.upstream.base import UpstreamTimeout as UpstreamClientTimeout

__all__ = ["Proxy"]

log = logging.getLogger("edge.proxy")


class Proxy:
    """Fills ``ctx.response``; rejects 502 and 504."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    async def __call__(self, ctx: RequestContext) -> None:
        try:
            ctx.response = await self.upstream.post(ctx.body, ctx.upstream_headers)
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

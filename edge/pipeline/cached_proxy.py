"""Stage 7 with the response cache on (``EDGE_RESPONSE_CACHE``): a HIT answers without Hasura.

The cache itself (what is cacheable, the key, single flight, the store) is ``edge.cache``; this stage
asks it first and runs the proxy stage only for a MISS, whose answer the cache then stores
(:meth:`edge.cache.ResponseCache.proxy_through`). A request the cache does not consider (most of them)
goes straight to the proxy stage.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from edge.cache import ResponseCache
from edge.context import RequestContext

__all__ = ["CachedProxy"]


class CachedProxy:
    """Fills ``ctx.response`` from the cache or from ``proxy``; rejects as ``proxy`` does."""

    def __init__(
        self,
        cache: ResponseCache,
        proxy: Callable[[RequestContext], Awaitable[None]],
        *,
        methods: frozenset[str] | None = None,
    ) -> None:
        """``methods``: the request methods the cache serves (None: all); others go to ``proxy``."""
        self.cache = cache
        self.proxy = proxy
        self.methods = methods

    def __call__(self, ctx: RequestContext) -> Awaitable[None]:
        if self.methods is not None and ctx.method not in self.methods:
            return self.proxy(ctx)
        return self.cache.proxy_through(ctx, self.proxy)

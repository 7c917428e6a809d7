"""The client a test gives the Redis stores (limiter, budgets, usage meter), by the ``kind`` it runs with."""

from __future__ import annotations

from edge.limits.redis_store import DEFAULT_TIMEOUT, StoreClient, redis_client_from_url
from edge.limits.resp_client import LeanRedis


def store_client(url: str, kind: str, *, timeout: float = DEFAULT_TIMEOUT) -> StoreClient:
    """``kind`` ``"lean"``: the edge's ``LeanRedis`` (one server); else redis-py's (``redis_client_from_url``)."""
    if kind == "lean":
        return LeanRedis.from_url(url, timeout=timeout)
    return redis_client_from_url(url, timeout=timeout)

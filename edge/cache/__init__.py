"""Response caching for Hasura CE: the ``@cached`` directive of Hasura Cloud/EE, and rules by operation name.

- ``directive.py`` (pure): read ``@cached(ttl:, refresh:)`` and remove it from the forwarded document.
- ``rules.py``: :class:`CacheRule` from settings (``cache_rules``); ``match_rule``.
- ``key.py``: the key: normalised document, operation, variables, role and every session variable.
- ``store.py``: :class:`MemoryResponseCache` (one process) and :class:`RedisResponseCache` (every replica).
- ``response_cache.py``: :class:`ResponseCache`, the ``lookup``/``store`` hooks that the stage
  ``edge/pipeline/cached_proxy.py`` runs around the proxy.
- ``admin.py``: ``clear_key``/``clear_operation`` for the admin routes.

``make_response_cache_store(client)`` picks Redis when given a ``redis.asyncio`` client, else memory.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from edge.cache.admin import clear_key, clear_operation
from edge.cache.directive import CacheDirective, cache_directive, normalised_document
from edge.cache.key import cache_key
from edge.cache.response_cache import CACHE_KEY_HEADER, CacheDecision, ResponseCache
from edge.cache.rules import CacheRule, match_rule
from edge.cache.store import CachedResponse, MemoryResponseCache, RedisResponseCache, ResponseCacheStore

__all__ = [
    "CACHE_KEY_HEADER",
    "CacheDecision",
    "CacheDirective",
    "CacheRule",
    "CachedResponse",
    "MemoryResponseCache",
    "RedisResponseCache",
    "ResponseCache",
    "ResponseCacheStore",
    "cache_directive",
    "cache_key",
    "clear_key",
    "clear_operation",
    "make_response_cache_store",
    "match_rule",
    "normalised_document",
]


def make_response_cache_store(
    client: aioredis.Redis | None,
    *,
    max_entries: int = 10_000,
    max_bytes: int = 64 * 1024 * 1024,
    prefix: str = "edge:cache:",
) -> ResponseCacheStore:
    """Redis (shared by replicas) when ``client`` is given, else an in-process LRU."""
    if client is not None:
        return RedisResponseCache(client, prefix=prefix)
    return MemoryResponseCache(max_entries, max_bytes)

"""What the admin routes call to clear the response cache (Hasura EE: ``POST /pro/cache/clear?key=``).

Both return what was removed and never raise on a store failure (the Redis store reports nothing removed).
A key that is not 64 lower-case hex characters cannot exist, so it is refused without a round trip.
"""

from __future__ import annotations

import re

from edge.cache.store import ResponseCacheStore

__all__ = ["clear_key", "clear_operation"]

_KEY = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,255}")


async def clear_key(store: ResponseCacheStore, key: str) -> bool:
    """Remove one entry (the ``X-Hasura-Query-Cache-Key`` value); True when it existed."""
    if not _KEY.fullmatch(key):
        return False
    return await store.delete(key)


async def clear_operation(store: ResponseCacheStore, name: str) -> int:
    """Remove every entry of the named operation, for every identity and variables; how many."""
    if not _NAME.fullmatch(name):
        return 0
    return await store.delete_operation(name)

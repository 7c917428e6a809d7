"""Resolve a presented API key to an :class:`ApiKey`, with a cache in front of Postgres.

``resolve(presented)``:

1. parses the key (``InvalidApiKey`` for anything malformed; no database access);
2. finds the key id in the cache, or loads it with ONE query shared by every concurrent caller
   of the same key id (single flight);
3. compares the SHA-256 of the presented key with the stored hash in constant time
   (``InvalidApiKey`` on mismatch: a wrong secret learns nothing about the key's state);
4. refuses a revoked key (``RevokedApiKey``) or an expired one (``ExpiredApiKey``, judged against
   the wall clock at every call, so a key expires on time even while cached).

Cache semantics:

* positive entries (found keys, including revoked ones) live ``ttl`` seconds (30 s) after their load;
  a steady stream of requests with one key costs one query per ``ttl``;
* negative entries (unknown key ids) live ``negative_ttl`` seconds (5 s): a flood repeating random keys
  costs one query per distinct key id, and a key created meanwhile in another process works after at
  most ``negative_ttl``;
* both are LRU maps bounded by ``max_entries`` each, kept apart so that a flood of random key ids only
  evicts other negative entries, never the keys in use;
* ``invalidate(key_id)`` drops both entries (and detaches a load in flight), so a revocation made
  through this process takes effect at once. A revocation made elsewhere (the CLI is another process)
  takes effect within ``ttl`` seconds on every edge.

A failing or slow database (no connection within the pool timeout, or no answer within
``lookup_timeout``) is ``ApiKeyStoreUnavailable`` (503), never a 500; failures are not cached, so the
next request tries again. A database without the edge's tables is the same 503, logged as
``api_key_schema_missing`` with the command that creates them (``python -m edge db upgrade``).

One store per event loop (it is not thread-safe); the edge makes one at start-up and shares it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Final, Protocol, TypeVar

import psycopg
import psycopg.errors

from edge.db.schema import UPGRADE_COMMAND
from edge.keys.errors import ApiKeyStoreUnavailable, ExpiredApiKey, InvalidApiKey, RevokedApiKey
from edge.keys.key_format import parse_key
from edge.keys.model import ApiKey

__all__ = ["ApiKeyLookup", "ApiKeyStore"]

logger = logging.getLogger(__name__)


class ApiKeyLookup(Protocol):
    """What the store needs from the repository (``ApiKeyRepository`` implements it)."""

    async def get_by_key_id(self, key_id: str) -> tuple[ApiKey, str] | None: ...


@dataclass(frozen=True)
class _Found:
    key: ApiKey
    key_hash: str
    fresh_until: float


class _Unknown(Enum):
    UNKNOWN = "unknown"


_UNKNOWN: Final = _Unknown.UNKNOWN
_SCHEMA_MISSING = (
    psycopg.errors.UndefinedTable,
    psycopg.errors.UndefinedColumn,
    psycopg.errors.InvalidSchemaName,
)
_V = TypeVar("_V")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ApiKeyStore:
    """Cached, single-flight key resolution (see the module docstring for the exact semantics)."""

    def __init__(
        self,
        repository: ApiKeyLookup,
        *,
        ttl: float = 30.0,
        negative_ttl: float = 5.0,
        max_entries: int = 10_000,
        lookup_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if ttl < 0 or negative_ttl < 0 or max_entries < 1 or lookup_timeout <= 0:
            raise ValueError("ttl and negative_ttl must be >= 0, max_entries >= 1 and lookup_timeout > 0")
        self._repository = repository
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max_entries = max_entries
        self._lookup_timeout = lookup_timeout
        self._clock = clock
        self._wall_clock = wall_clock
        self._found: OrderedDict[str, _Found] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()  # key id -> fresh until
        self._inflight: dict[str, asyncio.Task[_Found | None]] = {}

    async def resolve(self, presented: str) -> ApiKey:
        """The key's record, or ``InvalidApiKey`` / ``RevokedApiKey`` / ``ExpiredApiKey`` /
        ``ApiKeyStoreUnavailable``. The presented key never appears in an error or a log."""
        parsed = parse_key(presented)
        entry = self._cached(parsed.key_id)
        if entry is _UNKNOWN:
            raise InvalidApiKey()
        if entry is None:
            entry = await self._load(parsed.key_id)
            if entry is None:
                raise InvalidApiKey()
        if not parsed.matches(entry.key_hash):
            raise InvalidApiKey()
        key = entry.key
        if key.revoked():
            raise RevokedApiKey()
        if key.expired(self._wall_clock()):
            raise ExpiredApiKey()
        return key

    def invalidate(self, key_id: str) -> None:
        """Forget ``key_id`` so that its next use reads the database (call it after revoking or rotating)."""
        self._found.pop(key_id, None)
        self._unknown.pop(key_id, None)
        # A load already running may have read the row before the change: its callers still get that
        # answer, but it no longer fills the cache.
        self._inflight.pop(key_id, None)

    def clear(self) -> None:
        self._found.clear()
        self._unknown.clear()
        self._inflight.clear()

    def __len__(self) -> int:
        return len(self._found) + len(self._unknown)

    def _cached(self, key_id: str) -> _Found | _Unknown | None:
        """The fresh positive entry, ``_UNKNOWN`` for a fresh negative one, None when the database must be asked."""
        now = self._clock()
        found = self._found.get(key_id)
        if found is not None:
            if now < found.fresh_until:
                self._found.move_to_end(key_id)
                return found
            del self._found[key_id]
        unknown_until = self._unknown.get(key_id)
        if unknown_until is not None:
            if now < unknown_until:
                self._unknown.move_to_end(key_id)
                return _UNKNOWN
            del self._unknown[key_id]
        return None

    async def _load(self, key_id: str) -> _Found | None:
        task = self._inflight.get(key_id)
        if task is None:
            task = asyncio.create_task(self._fetch(key_id), name=f"api-key-lookup-{key_id}")
            self._inflight[key_id] = task
            task.add_done_callback(lambda done: self._finished(key_id, done))
        try:
            # shield: a caller that gives up (timeout, client gone) does not cancel the load for the others.
            async with asyncio.timeout(self._lookup_timeout):
                return await asyncio.shield(task)
        except TimeoutError:
            logger.warning("api_key_lookup_timeout", extra={"key_id": key_id, "timeout": self._lookup_timeout})
            raise ApiKeyStoreUnavailable() from None

    def _finished(self, key_id: str, task: asyncio.Task[_Found | None]) -> None:
        if self._inflight.get(key_id) is task:
            del self._inflight[key_id]
        if not task.cancelled():
            task.exception()  # retrieved here, so a load nobody waits for any more is not reported as lost

    async def _fetch(self, key_id: str) -> _Found | None:
        try:
            result = await self._repository.get_by_key_id(key_id)
        except _SCHEMA_MISSING as exc:
            # The database answers but lacks the edge's tables (or a column a newer migration adds).
            logger.warning(
                "api_key_schema_missing", extra={"key_id": key_id, "error": type(exc).__name__, "fix": UPGRADE_COMMAND}
            )
            raise ApiKeyStoreUnavailable() from exc
        except (psycopg.Error, OSError) as exc:  # PoolTimeout is a psycopg.OperationalError
            logger.warning("api_key_store_unavailable", extra={"key_id": key_id, "error": type(exc).__name__})
            raise ApiKeyStoreUnavailable() from exc
        now = self._clock()
        current = self._inflight.get(key_id) is asyncio.current_task()
        if result is None:
            if current:
                self._remember(self._unknown, key_id, now + self._negative_ttl)
            return None
        key, key_hash = result
        found = _Found(key=key, key_hash=key_hash, fresh_until=now + self._ttl)
        if current:
            self._remember(self._found, key_id, found)
        return found

    def _remember(self, cache: OrderedDict[str, _V], key_id: str, value: _V) -> None:
        cache[key_id] = value
        cache.move_to_end(key_id)
        while len(cache) > self._max_entries:
            cache.popitem(last=False)

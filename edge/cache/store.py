"""Where cached responses live: one process (:class:`MemoryResponseCache`) or every replica (Redis).

Both keep, per operation name, an index of their keys, so ``delete_operation`` can clear every entry of
an operation (the admin endpoint). Anonymous operations are not indexed (clear them by key).

The Redis store follows ``edge.limits.redis_store``: each call is capped at ``timeout`` seconds, errors
never raise (a failed ``get`` is a miss, a failed ``set`` is dropped, a failed delete reports what it
deleted before the failure), each one increments ``store_errors``, and a warning is logged at most once
per ``log_interval`` seconds with the exception type and a redacted message. Layout::

    {prefix}r:<key>               the response: a JSON header line, a newline, then the body bytes (SET ... EX ttl)
    {prefix}op:<name>:<window>    set of the response keys of one operation stored in one window of
                                  MAX_TTL seconds (``int(now) // MAX_TTL``); expires MAX_TTL + 1 s after its
                                  last addition

An operation's index is split by window so that it stays bounded: one set refreshed by every new entry
would never expire while the operation is in use, and would keep every key it ever listed (an entry per
variables), long after the entries themselves expired. An entry lives at most MAX_TTL seconds, so every
live entry is in the current window's set or the previous one's; ``delete_operation`` also reads the next
window (a replica whose clock runs ahead) and ``{prefix}op:<name>``, the index of releases before windows.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import orjson
import redis.asyncio as aioredis

from edge.cache.directive import MAX_TTL
from edge.store_health import StoreHealth

__all__ = ["CachedResponse", "MemoryResponseCache", "RedisResponseCache", "ResponseCacheStore"]

logger = logging.getLogger(__name__)
_T = TypeVar("_T")
_ENTRY_OVERHEAD = 256
"""Bytes charged per memory entry on top of the body and headers (key, bookkeeping)."""
CLEAR_BATCH = 1000
"""Index members ``delete_operation`` reads (``SSCAN``'s count) and deletes per round trip."""


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """A stored answer: Hasura's status, body and content type, when it was stored and for how long."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    """Only ``content-type`` is kept: the rest described the original hop."""
    body: bytes
    stored_at: float
    """Wall-clock epoch seconds (shared by replicas through Redis)."""
    ttl: int
    operation_name: str | None = None

    def remaining(self, now: float) -> int:
        """Whole seconds left (rounded up), 0 once expired."""
        return max(0, math.ceil(self.stored_at + self.ttl - now))

    def size(self) -> int:
        return len(self.body) + sum(len(name) + len(value) for name, value in self.headers) + _ENTRY_OVERHEAD

    def encode(self) -> bytes:
        header = {
            "s": self.status,
            "h": [[name.decode("latin-1"), value.decode("latin-1")] for name, value in self.headers],
            "t": self.stored_at,
            "ttl": self.ttl,
            "op": self.operation_name,
        }
        return orjson.dumps(header) + b"\n" + self.body  # orjson never writes a raw newline

    @classmethod
    def decode(cls, raw: bytes) -> CachedResponse:
        """Raises ValueError (or KeyError/TypeError) on anything :meth:`encode` did not write."""
        head, separator, body = raw.partition(b"\n")
        if not separator:
            raise ValueError("no header line")
        header: Any = orjson.loads(head)
        headers = tuple((str(name).encode("latin-1"), str(value).encode("latin-1")) for name, value in header["h"])
        operation = header.get("op")
        return cls(
            status=int(header["s"]),
            headers=headers,
            body=body,
            stored_at=float(header["t"]),
            ttl=int(header["ttl"]),
            operation_name=operation if isinstance(operation, str) else None,
        )


class ResponseCacheStore(Protocol):
    async def get(self, key: str) -> CachedResponse | None:
        """The live entry, or None (absent, expired, or the store failed)."""
        ...

    async def set(self, key: str, response: CachedResponse, ttl: int) -> None:
        """Store for ``ttl`` seconds, indexed under ``response.operation_name``."""
        ...

    async def delete(self, key: str) -> bool:
        """True when an entry was removed."""
        ...

    async def delete_operation(self, operation_name: str) -> int:
        """Remove every entry of one operation; how many were removed."""
        ...


@dataclass(slots=True)
class _Entry:
    response: CachedResponse
    expires_at: float
    size: int


class MemoryResponseCache:
    """LRU + TTL in one process, bounded by ``max_entries`` and ``max_bytes``; ``clock`` is injectable.

    An entry larger than ``max_bytes`` is not stored. Expired entries go on access or eviction.
    """

    def __init__(
        self,
        max_entries: int = 10_000,
        max_bytes: int = 64 * 1024 * 1024,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("max_entries and max_bytes must be positive")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self.store_errors = 0
        """Always 0: memory never fails (the attribute mirrors the Redis store's)."""
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._by_operation: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> CachedResponse | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() >= entry.expires_at:
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return entry.response

    async def set(self, key: str, response: CachedResponse, ttl: int) -> None:
        self._remove(key)
        size = response.size() + len(key)
        if size > self.max_bytes or ttl <= 0:
            return
        self._entries[key] = _Entry(response, self._clock() + ttl, size)
        self.bytes += size
        if response.operation_name is not None:
            self._by_operation.setdefault(response.operation_name, set()).add(key)
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._remove(oldest)

    async def delete(self, key: str) -> bool:
        return self._remove(key)

    async def delete_operation(self, operation_name: str) -> int:
        keys = self._by_operation.pop(operation_name, set())
        return sum(1 for key in keys if self._remove(key))

    def _remove(self, key: str) -> bool:
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        self.bytes -= entry.size
        name = entry.response.operation_name
        if name is not None:
            keys = self._by_operation.get(name)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_operation[name]
        return True


class RedisResponseCache:
    """Entries shared by every replica; never raises (see the module docstring)."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "edge:cache:",
        timeout: float = 0.25,
        log_interval: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.timeout = timeout
        self.clock = clock
        self.health = StoreHealth("response_cache_store", logger, log_interval=log_interval)

    @property
    def store_errors(self) -> int:
        return self.health.errors

    def _key(self, key: str) -> str:
        return f"{self.prefix}r:{key}"

    def _index(self, operation_name: str, window: int) -> str:
        return f"{self.prefix}op:{operation_name}:{window}"

    async def get(self, key: str) -> CachedResponse | None:
        raw = await self._run(self.client.get(self._key(key)), None)
        if raw is None:
            return None
        try:
            return CachedResponse.decode(raw.encode("latin-1") if isinstance(raw, str) else raw)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            self.health.failed(exc)
            return None

    async def set(self, key: str, response: CachedResponse, ttl: int) -> None:
        if ttl <= 0:
            return
        full_key = self._key(key)
        pipe = self.client.pipeline(transaction=False)
        pipe.set(full_key, response.encode(), ex=ttl)
        if response.operation_name is not None:
            index = self._index(response.operation_name, int(self.clock()) // MAX_TTL)
            pipe.sadd(index, full_key)
            pipe.expire(index, MAX_TTL + 1)  # outlives every entry it lists
        await self._run(pipe.execute(), None)

    async def delete(self, key: str) -> bool:
        removed = await self._run(self.client.delete(self._key(key)), 0)
        return bool(removed)

    async def delete_operation(self, operation_name: str) -> int:
        """Every entry the operation's indexes list (the windows around now, and the index of releases before
        windows); the entries deleted, up to the first failure."""
        window = int(self.clock()) // MAX_TTL
        deleted = 0
        indexes = [self._index(operation_name, at) for at in (window - 1, window, window + 1)]
        for index in (*indexes, f"{self.prefix}op:{operation_name}"):
            cleared = await self._clear(index)
            if cleared is None:
                return deleted
            deleted += cleared
        return deleted

    async def _clear(self, index: str) -> int | None:
        """The keys ``index`` lists, deleted and removed from it ``CLEAR_BATCH`` at a time, so that no one command
        reads a whole index while every other client waits; None after a failure."""
        deleted, cursor = 0, 0
        while True:
            scanned = await self._run(self.client.sscan(index, cursor, count=CLEAR_BATCH), None)
            if scanned is None:
                return None
            cursor, members = scanned
            if members:
                pipe = self.client.pipeline(transaction=False)
                for member in members:
                    pipe.delete(member)
                # SREM, not DEL: keys added meanwhile stay indexed. SSCAN tolerates members removed as it goes.
                pipe.srem(index, *members)
                results = await self._run(pipe.execute(), None)
                if results is None:
                    return None
                deleted += sum(int(result) for result in results[:-1])
            if cursor == 0:
                return deleted

    async def _run(self, call: Any, default: _T) -> Any | _T:
        try:
            async with asyncio.timeout(self.timeout):
                result = await call
        except Exception as exc:  # the cache never raises to the request path
            self.health.failed(exc)
            return default
        self.health.succeeded()
        return result

"""Concurrent subscriptions per key or user, counted across replicas.

``acquire(key, member, limit)`` adds ``member`` (one subscription of one connection) to ``key``'s set
when fewer than ``limit`` live members are there; ``release`` removes it. A replica that dies cannot
leak slots: every member carries a lease that expires ``lease`` seconds after its last ``refresh``,
and a bridge refreshes its members every ``lease / 3`` seconds while they run.

- :class:`MemorySubscriptionCounter`: one process (a single replica, tests).
- :class:`RedisSubscriptionCounter`: a sorted set per key (score = lease end, Redis ``TIME``), one
  Lua script per call, so the check and the add are atomic across replicas. A Redis failure
  allows the subscription (fail open, logged; each call is capped at ``timeout``): the
  per-connection cap still holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from redis.exceptions import NoScriptError

__all__ = ["MemorySubscriptionCounter", "RedisSubscriptionCounter", "SubscriptionCounter", "make_counter"]

logger = logging.getLogger("edge.ws.counters")
DEFAULT_LEASE = 60.0


class SubscriptionCounter(Protocol):
    lease: float

    async def acquire(self, key: str, member: str, limit: int) -> bool: ...

    async def release(self, key: str, member: str) -> None: ...

    async def refresh(self, key: str, members: Iterable[str]) -> None: ...


class MemorySubscriptionCounter:
    def __init__(self, *, lease: float = DEFAULT_LEASE, clock: Callable[[], float] = time.monotonic) -> None:
        self.lease = lease
        self._clock = clock
        self._members: dict[str, dict[str, float]] = {}

    async def acquire(self, key: str, member: str, limit: int) -> bool:
        now = self._clock()
        members = self._members.setdefault(key, {})
        for stale in [name for name, until in members.items() if until <= now]:
            del members[stale]
        if member not in members and len(members) >= limit:
            return False
        members[member] = now + self.lease
        return True

    async def release(self, key: str, member: str) -> None:
        members = self._members.get(key)
        if members is not None:
            members.pop(member, None)
            if not members:
                del self._members[key]

    async def refresh(self, key: str, members: Iterable[str]) -> None:
        held = self._members.get(key)
        if held is None:
            return
        until = self._clock() + self.lease
        for member in members:
            if member in held:
                held[member] = until

    def count(self, key: str) -> int:
        return len(self._members.get(key, {}))


_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) + 1)
return 1
"""
_REFRESH = """
local t = redis.call('TIME')
local lease_end = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', lease_end, ARGV[i]) end
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1])) + 1)
return 1
"""


class RedisSubscriptionCounter:
    def __init__(
        self, client: Any, *, lease: float = DEFAULT_LEASE, prefix: str = "edge:ws:subs:", timeout: float = 0.5
    ) -> None:
        self.lease = lease
        self.timeout = timeout
        self._client = client
        self._prefix = prefix
        self._shas: dict[str, str] = {}

    async def _run(self, script: str, key: str, *args: Any) -> Any:
        sha = self._shas.get(script)
        if sha is None:
            sha = self._shas[script] = str(await self._client.script_load(script))
        try:
            return await self._client.evalsha(sha, 1, self._prefix + key, *args)
        except NoScriptError:
            self._shas.pop(script, None)
            return await self._run(script, key, *args)

    async def acquire(self, key: str, member: str, limit: int) -> bool:
        try:
            async with asyncio.timeout(self.timeout):
                return bool(await self._run(_ACQUIRE, key, member, limit, self.lease))
        except Exception as exc:  # any store failure: fail open, the per-connection cap still holds
            logger.warning("subscription_counter_unavailable", extra={"error": type(exc).__name__})
            return True

    async def release(self, key: str, member: str) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self._client.zrem(self._prefix + key, member)
        except Exception as exc:
            logger.warning("subscription_counter_unavailable", extra={"error": type(exc).__name__})

    async def refresh(self, key: str, members: Iterable[str]) -> None:
        names = list(members)
        if not names:
            return
        try:
            async with asyncio.timeout(self.timeout):
                await self._run(_REFRESH, key, self.lease, *names)
        except Exception as exc:
            logger.warning("subscription_counter_unavailable", extra={"error": type(exc).__name__})


def make_counter(redis_client: Any | None, *, lease: float = DEFAULT_LEASE) -> SubscriptionCounter:
    """Redis when a client is given (shared by every replica), else one process's memory."""
    if redis_client is not None:
        return RedisSubscriptionCounter(redis_client, lease=lease)
    return MemorySubscriptionCounter(lease=lease)

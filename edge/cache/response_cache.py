"""The response cache around the proxy stage: ``@cached`` and configured rules against Hasura CE.

The stage ``edge/pipeline/cached_proxy.py`` calls :meth:`ResponseCache.proxy_through`, which runs two
hooks around the proxy stage:

- :meth:`ResponseCache.lookup`, before proxying. Only one (non-batched) **query** operation from a known
  session is considered, and only when it carries ``@cached`` or its name matches a configured rule. With a
  directive, ``ctx.body`` is rewritten without it (CE would ignore it anyway; the edge owns it now). The key
  is :func:`edge.cache.key.cache_key` (document, operation, variables, role, every session variable).
  A stored entry is a HIT; otherwise a MISS, with **single flight**: per process, the first miss for a key
  leads (it proxies) and later misses for that key wait, at most ``wait_timeout`` seconds (the upstream
  read timeout), for its answer. A waiter that times out, or whose leader got an answer that cannot be
  cached (GraphQL errors, non-200, proxy failure), proxies by itself: errors are never shared.
  ``refresh: true`` skips the lookup (and the single flight) and stores the new answer.
- :meth:`ResponseCache.store`, after proxying, with Hasura's answer: a 200 JSON object without a top-level
  ``errors`` key (and no larger than ``max_entry_bytes``) is stored and handed to the waiters.

Response headers on cached and cacheable answers (as Hasura EE): ``Cache-Control: max-age=<seconds left>``
and ``X-Hasura-Query-Cache-Key: <key>``; plus ``X-Cache: HIT`` or ``MISS`` on every answer the cache
looked at. ``Cache-Control`` also says ``private`` unless ``private=False``: the answer belongs to one
session, and without it a shared cache (a CDN in front of a GET ``/graphql``) could serve it to others.
Mutations, subscriptions, batches and answers with errors are never stored nor served.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final, Literal, final

import orjson

from edge.cache.directive import cache_directive, normalised_document
from edge.cache.key import cache_key
from edge.cache.rules import CacheRule, match_rule
from edge.cache.store import CachedResponse, ResponseCacheStore
from edge.context import RequestContext
from edge.upstream.base import UpstreamResponse

__all__ = ["CACHE_KEY_HEADER", "CacheDecision", "ResponseCache"]

log = logging.getLogger("edge.cache")

CACHE_KEY_HEADER: Final = b"x-hasura-query-cache-key"
"""Hasura EE's name (``docs/docs/caching/caching-config.mdx``, "Response headers")."""
_CACHE_CONTROL: Final = b"cache-control"
_X_CACHE: Final = b"x-cache"
_CONTENT_TYPE: Final = b"content-type"
_REPLACED: Final = frozenset({_CACHE_CONTROL, _X_CACHE, CACHE_KEY_HEADER})


@final
class CacheDecision:
    """What :meth:`ResponseCache.lookup` found. ``response`` is set on a HIT (serve it, do not proxy).

    ``leader``: this request owns the key's single flight (:meth:`ResponseCache.store` releases its
    waiters). Immutable; a plain class, like :class:`~edge.upstream.base.UpstreamResponse`, because
    one is made for every cacheable request.
    """

    __slots__ = ("key", "leader", "operation_name", "refresh", "response", "status", "ttl")

    def __init__(
        self,
        status: Literal["bypass", "hit", "miss"],
        key: str = "",
        ttl: int = 0,
        operation_name: str | None = None,
        response: UpstreamResponse | None = None,
        leader: bool = False,
        refresh: bool = False,
    ) -> None:
        self.status: Final = status
        self.key: Final = key
        self.ttl: Final = ttl
        self.operation_name: Final = operation_name
        self.response: Final = response
        self.leader: Final = leader
        self.refresh: Final = refresh

    def __repr__(self) -> str:
        return (
            f"CacheDecision(status={self.status!r}, key={self.key!r}, ttl={self.ttl}, "
            f"operation_name={self.operation_name!r}, leader={self.leader}, refresh={self.refresh})"
        )


BYPASS = CacheDecision("bypass")


class ResponseCache:
    """Serves HITs before the proxy, stores cacheable answers after it; never rejects."""

    def __init__(
        self,
        store: ResponseCacheStore,
        *,
        rules: Sequence[CacheRule] = (),
        wait_timeout: float = 60.0,
        max_entry_bytes: int = 1024 * 1024,
        vary_headers: Iterable[bytes] = (b"cookie",),
        private: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cache_store = store
        self.private = private
        self.rules = tuple(rules)
        self.wait_timeout = wait_timeout
        self.max_entry_bytes = max_entry_bytes
        self.vary_headers = tuple(name.lower() for name in vary_headers)
        self.clock = clock
        self.hits = 0
        """Answers served from the store."""
        self.coalesced = 0
        """Answers served from another request's upstream call (single flight)."""
        self.misses = 0
        """Cacheable requests that went to Hasura (refreshes included)."""
        self.stores = 0
        """Answers stored."""
        self._inflight: dict[str, asyncio.Future[CachedResponse | None]] = {}

    @property
    def in_flight(self) -> int:
        """Keys with a leader waiting for Hasura right now (single flight)."""
        return len(self._inflight)

    # --- before the proxy --------------------------------------------------------------------------------

    async def lookup(self, ctx: RequestContext) -> CacheDecision:
        """HIT (``decision.response``), MISS (proxy, then call :meth:`store`) or BYPASS (not cacheable)."""
        planned = self._plan(ctx)
        if planned is None:
            return BYPASS
        decision = await self._lookup(planned)
        if decision.response is None:
            _forward(ctx, planned)
        return decision

    async def _lookup(self, planned: _Planned) -> CacheDecision:
        key, ttl, name, refresh, _ = planned
        if refresh:
            self.misses += 1
            return CacheDecision("miss", key, ttl, name, refresh=True)
        while True:
            flight = self._inflight.get(key)
            if flight is not None:
                return await self._wait(flight, key, ttl, name)
            entry = await self.cache_store.get(key)
            if entry is not None:
                remaining = entry.remaining(self.clock())
                if remaining > 0:
                    self.hits += 1
                    return CacheDecision("hit", key, ttl, name, response=self._answer(entry, key, remaining))
            if key in self._inflight:  # another miss started its flight while this one read the store
                continue
            self._inflight[key] = asyncio.get_running_loop().create_future()
            self.misses += 1
            return CacheDecision("miss", key, ttl, name, leader=True)

    def _plan(self, ctx: RequestContext) -> _Planned | None:
        """(key, ttl, operation name, refresh, query for Hasura) when this request is cacheable.

        The query for Hasura is the document without ``@cached`` (None for a rule-matched request): the
        body is rewritten with it only when the request does go to Hasura (:func:`_forward`), never on a HIT.
        """
        payload: Any = ctx.payload
        session = ctx.session
        if ctx.is_batch or not isinstance(payload, dict) or session is None or len(ctx.analyses) != 1:
            return None
        analysis = ctx.analyses[0]
        query = payload.get("query")
        if not self.rules and isinstance(query, str) and "cached" not in query:
            return None  # the common request: no rule to match and no @cached directive in the text
        operation_name = payload.get("operationName")
        if analysis.operation_type != "query" or not isinstance(query, str):
            return None
        if operation_name is not None and not isinstance(operation_name, str):
            return None
        variables = payload.get("variables")
        if variables is not None and not isinstance(variables, dict):
            return None
        directive = cache_directive(query, operation_name)
        refresh = False
        forwarded: str | None = None
        if directive is not None:
            forwarded = directive.forwarded_query
            ttl, refresh, document = directive.ttl, directive.refresh, directive.normalised
        else:
            rule_ttl = match_rule(self.rules, analysis.operation_name)
            if rule_ttl is None:
                return None
            try:
                document = normalised_document(query, operation_name)
            except ValueError:
                return None
            ttl = rule_ttl
        vary = {
            name.decode("latin-1"): b"\x00".join(ctx.header_values(name)).decode("latin-1")
            for name in self.vary_headers
        }
        try:
            key = cache_key(document, analysis.operation_name, variables, session.role, session.variables, vary=vary)
        except TypeError:
            return None
        return key, ttl, analysis.operation_name, refresh, forwarded

    async def _wait(
        self, flight: asyncio.Future[CachedResponse | None], key: str, ttl: int, name: str | None
    ) -> CacheDecision:
        try:
            async with asyncio.timeout(self.wait_timeout):
                entry = await asyncio.shield(flight)
        except TimeoutError:
            entry = None
        if entry is not None:
            remaining = entry.remaining(self.clock())
            if remaining > 0:
                self.coalesced += 1
                return CacheDecision("hit", key, ttl, name, response=self._answer(entry, key, remaining))
        self.misses += 1  # the leader was too slow or its answer cannot be shared: proxy alone
        return CacheDecision("miss", key, ttl, name)

    # --- after the proxy ---------------------------------------------------------------------------------

    async def store(self, ctx: RequestContext, decision: CacheDecision, response: UpstreamResponse | None) -> None:
        """Store a cacheable answer, release the waiters and add the cache headers to ``ctx.response``.

        ``response=None`` (the proxy failed) only releases the waiters.
        """
        if decision.status != "miss":
            return
        entry: CachedResponse | None = None
        try:
            if response is None:
                return
            entry = self._cacheable(response, decision)
            if entry is None:
                ctx.response = _with_headers(response, [(_X_CACHE, b"MISS")])
                return
            self._resolve(decision, entry)  # waiters are served before the store's round trip
            await self.cache_store.set(decision.key, entry, decision.ttl)
            self.stores += 1
            ctx.response = _with_headers(response, self._cache_headers(b"MISS", decision.key, decision.ttl))
        finally:
            self._resolve(decision, entry)

    def release(self, decision: CacheDecision) -> None:
        """Let the waiters go (they proxy by themselves): for a leader whose proxy call failed."""
        self._resolve(decision, None)

    async def proxy_through(self, ctx: RequestContext, proxy: Callable[[RequestContext], Awaitable[None]]) -> None:
        """``lookup``, then the proxy stage unless it is a HIT, then ``store``: the whole wiring in one call."""
        planned = self._plan(ctx)
        if planned is None:  # not cacheable (most requests): straight to the proxy, no cache coroutines
            await proxy(ctx)
            return
        decision = await self._lookup(planned)
        if decision.response is not None:
            ctx.response = decision.response
            return
        _forward(ctx, planned)
        try:
            await proxy(ctx)
        except BaseException:
            self.release(decision)
            raise
        await self.store(ctx, decision, ctx.response)

    def _cacheable(self, response: UpstreamResponse, decision: CacheDecision) -> CachedResponse | None:
        if response.status != 200 or len(response.body) > self.max_entry_bytes:
            return None
        content_type = next((value for name, value in response.headers if name == _CONTENT_TYPE), None)
        if content_type is None or b"json" not in content_type.lower():
            return None
        try:
            document: Any = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(document, dict) or "errors" in document or "data" not in document:
            return None
        return CachedResponse(
            status=200,
            headers=((_CONTENT_TYPE, content_type),),
            body=response.body,
            stored_at=self.clock(),
            ttl=decision.ttl,
            operation_name=decision.operation_name,
        )

    def _cache_headers(self, status: bytes, key: str, max_age: int) -> list[tuple[bytes, bytes]]:
        control = (b"private, max-age=%d" if self.private else b"max-age=%d") % max_age
        return [(_CACHE_CONTROL, control), (_X_CACHE, status), (CACHE_KEY_HEADER, key.encode("ascii"))]

    def _answer(self, entry: CachedResponse, key: str, remaining: int) -> UpstreamResponse:
        headers = [*entry.headers, *self._cache_headers(b"HIT", key, remaining)]
        return UpstreamResponse(entry.status, headers, entry.body)

    def _resolve(self, decision: CacheDecision, entry: CachedResponse | None) -> None:
        if not decision.leader:
            return
        flight = self._inflight.get(decision.key)
        if flight is None:
            return
        del self._inflight[decision.key]
        if not flight.done():
            flight.set_result(entry)


_Planned = tuple[str, int, str | None, bool, str | None]
"""What :meth:`ResponseCache._plan` decides: key, ttl, operation name, refresh, query for Hasura."""


def _forward(ctx: RequestContext, planned: _Planned) -> None:
    """The request goes to Hasura: without ``@cached``, which Hasura CE does not know."""
    forwarded = planned[4]
    if forwarded is not None:
        ctx.body = orjson.dumps({**ctx.payload, "query": forwarded})


def _with_headers(response: UpstreamResponse, added: list[tuple[bytes, bytes]]) -> UpstreamResponse:
    kept = [(name, value) for name, value in response.headers if name not in _REPLACED]
    return UpstreamResponse(response.status, kept + added, response.body)

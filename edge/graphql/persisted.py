"""Persisted operations: Apollo's automatic persisted queries (APQ) and the per-plan safelist.

**APQ** (the protocol of Apollo Client's ``PersistedQueryLink`` and Apollo Server): a client first sends
only the SHA-256 of its document, ``{"extensions": {"persistedQuery": {"version": 1, "sha256Hash":
"<64 lowercase hex>"}}}`` (POST, or GET with ``extensions`` as a JSON query parameter). If the edge knows
the hash, the document is filled in; if not, the edge answers ``PersistedQueryNotFound`` and the client
resends the request with ``query`` *and* the hash, which the edge verifies and stores.
:meth:`PersistedQueries.resolve` implements it::

    persisted = PersistedQueries(MemoryPersistedQueryStore(), manifest=Manifest.from_file(path))
    request = await persisted.resolve(request)  # the request to analyse and forward, with "query" set

What ``resolve`` answers, following Apollo Server 4 (``@apollo/server`` ``internalErrorClasses`` and
``requestPipeline``):

- hash in neither the manifest nor the store: 200, ``PERSISTED_QUERY_NOT_FOUND``, message
  ``PersistedQueryNotFound`` (:class:`PersistedQueryNotFound`);
- ``version`` other than the integer 1: 200, ``PERSISTED_QUERY_NOT_SUPPORTED``, message
  ``PersistedQueryNotSupported`` (:class:`PersistedQueryNotSupported`);
- ``persistedQuery`` not an object, or ``sha256Hash`` not 64 lowercase hex digits: 400, ``bad-request``
  (:class:`InvalidPersistedQuery`);
- ``query`` sent and its SHA-256 is not ``sha256Hash``: 400, ``PERSISTED_QUERY_HASH_MISMATCH``, message
  ``provided sha does not match query`` (:class:`PersistedQueryHashMismatch`); nothing is stored.

Apollo Server answers the two protocol signals with **200** and ``Cache-Control: private, no-cache,
must-revalidate`` (so a CDN never caches a miss of a GET), and so does the edge: Apollo Client reads them
from the body (older Apollo Client 3 releases even turned APQ off for good after a 400 or 500, see
apollo-client PR #10806). For ``version != 1`` Apollo
Server answers 400 "Unsupported persisted query version"; the edge answers ``PersistedQueryNotSupported``
instead, on which Apollo Client stops hashing and resends the full document, so a client speaking a future
version degrades instead of failing.

Hasura CE refuses requests that carry ``extensions.persistedQuery`` (``PersistedQueryNotSupported``), so
every request ``resolve`` handled comes back as a *new* dict without it (and without ``extensions`` when that
becomes empty); a request with no ``persistedQuery`` comes back as the same object. Re-serialise the body
when ``result is not request``.

Registration stores the query under its hash (unless the manifest already holds it, or it is larger than
``max_query_bytes``: it then runs, but is not kept). Stores never raise: a failing Redis reads as a miss, so
clients simply resend full documents until it is back.

**Safelist** (``GraphQLLimits.safelist``): only operations in the manifest may run.
:meth:`PersistedQueries.is_safelisted` accepts a document when the SHA-256 of its exact text is a manifest
id, or when its *normalised* form is: normalisation is ``graphql.print_ast(graphql.parse(query))`` (the
canonical printing: whitespace, commas and comments do not matter; field order, aliases, arguments and
``__typename`` selections do), hashed with SHA-256. Manifest entries are hashed both ways when loaded.
Check the *resolved* text, whatever path it came by (a hash may have been registered under another plan).
Documents a client rewrites before sending (Apollo Client adds ``__typename`` selections) must be listed as
sent. A refused operation is :class:`OperationNotSafelisted` (400, ``operation-not-safelisted``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections import OrderedDict
from typing import Any, Protocol

import redis.asyncio as aioredis
from graphql import GraphQLError, parse, print_ast

from edge.errors import BadRequest, EdgeError
from edge.graphql.manifest import Manifest
from edge.store_health import StoreHealth

__all__ = [
    "DEFAULT_MAX_QUERY_BYTES",
    "InvalidPersistedQuery",
    "MemoryPersistedQueryStore",
    "OperationNotSafelisted",
    "PersistedQueries",
    "PersistedQueryHashMismatch",
    "PersistedQueryNotFound",
    "PersistedQueryNotSupported",
    "PersistedQueryStore",
    "RedisPersistedQueryStore",
    "normalised_hash",
    "sha256_hex",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_QUERY_BYTES = 100_000
NORMALISE_MAX_TOKENS = 15_000
"""Token bound for the parse behind normalisation (the analyser's default ``max_tokens``)."""
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Apollo Server's headers for the two protocol signals: a shared cache must never keep a miss.
_NO_CACHE = (("Cache-Control", "private, no-cache, must-revalidate"),)


class PersistedQueryNotFound(EdgeError):
    """A hash-only request whose hash is neither in the manifest nor in the store: resend with ``query``."""

    status = 200
    code = "PERSISTED_QUERY_NOT_FOUND"
    default_message = "PersistedQueryNotFound"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers=_NO_CACHE)


class PersistedQueryNotSupported(EdgeError):
    """A ``persistedQuery`` extension of a version other than 1: Apollo clients fall back to full documents."""

    status = 200
    code = "PERSISTED_QUERY_NOT_SUPPORTED"
    default_message = "PersistedQueryNotSupported"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, headers=_NO_CACHE)


class InvalidPersistedQuery(BadRequest):
    """The ``persistedQuery`` extension is malformed (not an object, or a hash that is not 64 lowercase hex)."""

    default_message = "extensions.persistedQuery is malformed"
    # Apollo's protocol, not Hasura's (Hasura CE has no persisted queries): Apollo Server's 400 stays.
    hasura_status: int | None = None
    hasura_code: str | None = None


class PersistedQueryHashMismatch(BadRequest):
    """``query`` and ``sha256Hash`` were both sent and the hash is not the SHA-256 of the query's UTF-8."""

    code = "PERSISTED_QUERY_HASH_MISMATCH"
    default_message = "provided sha does not match query"
    hasura_status: int | None = None  # Apollo's protocol: Apollo Server's 400 stays
    hasura_code: str | None = None


class OperationNotSafelisted(BadRequest):
    """The plan runs safelisted operations only, and this one is not in the persisted-operations manifest."""

    code = "operation-not-safelisted"
    default_message = "The operation is not in the persisted-operations manifest; this plan runs only those"
    # Hasura's allow list refuses with ``throw400 ValidationFailed "query is not allowed"``
    # (``checkQueryInAllowlist`` in server/src-lib/Hasura/GraphQL/Execute.hs).
    hasura_code: str | None = "validation-failed"


def sha256_hex(text: str) -> str:
    """SHA-256 of ``text``'s UTF-8, in lowercase hex (the APQ hash); a lone surrogate is a 400."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("The query is not valid Unicode") from None
    return hashlib.sha256(data).hexdigest()


def normalised_hash(query: str, *, max_tokens: int = NORMALISE_MAX_TOKENS) -> str | None:
    """SHA-256 of ``print_ast(parse(query))``, or None when the document does not parse within ``max_tokens``."""
    try:
        document = parse(query, no_location=True, max_tokens=max_tokens)
    except (GraphQLError, RecursionError):
        return None
    return hashlib.sha256(print_ast(document).encode("utf-8")).hexdigest()


class PersistedQueryStore(Protocol):
    """Where registered APQ documents live, by hash. Implementations never raise to the caller."""

    async def get(self, sha256: str) -> str | None: ...

    async def put(self, sha256: str, query: str) -> None: ...


class MemoryPersistedQueryStore:
    """A per-process LRU of at most ``max_entries`` documents and ``max_total_bytes`` UTF-8 bytes in all.

    Documents over ``max_query_bytes`` are not kept (counted in ``skipped``).
    """

    def __init__(
        self,
        max_entries: int = 10_000,
        max_query_bytes: int = DEFAULT_MAX_QUERY_BYTES,
        *,
        max_total_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        if max_entries < 1 or max_query_bytes < 1 or max_total_bytes < 1:
            raise ValueError("max_entries, max_query_bytes and max_total_bytes must be positive")
        self.max_entries = max_entries
        self.max_query_bytes = max_query_bytes
        self.max_total_bytes = max_total_bytes
        self.skipped = 0
        self.total_bytes = 0
        self._entries: OrderedDict[str, tuple[str, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, sha256: str) -> str | None:
        entry = self._entries.get(sha256)
        if entry is None:
            return None
        self._entries.move_to_end(sha256)
        return entry[0]

    async def put(self, sha256: str, query: str) -> None:
        size = len(query.encode("utf-8", "surrogatepass"))
        if size > self.max_query_bytes or size > self.max_total_bytes:
            self.skipped += 1
            return
        previous = self._entries.pop(sha256, None)
        if previous is not None:
            self.total_bytes -= previous[1]
        self._entries[sha256] = (query, size)
        self.total_bytes += size
        while len(self._entries) > self.max_entries or self.total_bytes > self.max_total_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self.total_bytes -= evicted


class RedisPersistedQueryStore:
    """APQ documents shared by every replica: ``SET {prefix}{sha256} <query> EX ttl_seconds``.

    Every call is capped at ``timeout`` seconds. Failures never raise: ``get`` answers None (a miss, so
    the client resends the full document) and ``put`` is dropped; both count in ``store_errors`` and log
    ``apq_store_error`` at most once per ``log_interval`` seconds (exception type and a redacted message).
    A value whose SHA-256 is not its key (a tampered Redis) is a miss too, logged as ``apq_store_mismatch``.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "edge:apq:",
        ttl_seconds: int = 86_400,
        timeout: float = 0.25,
        log_interval: float = 10.0,
    ) -> None:
        if ttl_seconds < 1 or timeout <= 0:
            raise ValueError("ttl_seconds and timeout must be positive")
        self.client = client
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.timeout = timeout
        self.health = StoreHealth("apq_store", logger, log_interval=log_interval)

    @property
    def store_errors(self) -> int:
        return self.health.errors

    async def get(self, sha256: str) -> str | None:
        try:
            async with asyncio.timeout(self.timeout):
                value: Any = await self.client.get(self.prefix + sha256)
        except Exception as exc:  # the store never raises to the request path
            self.health.failed(exc)
            return None
        self.health.succeeded()
        if value is None:
            return None
        try:
            query = value.decode("utf-8") if isinstance(value, bytes) else str(value)
        except UnicodeDecodeError:
            query = ""
        if hashlib.sha256(query.encode("utf-8", "surrogatepass")).hexdigest() != sha256:
            logger.warning("apq_store_mismatch", extra={"sha256": sha256[:12]})
            return None
        return query

    async def put(self, sha256: str, query: str) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self.client.set(self.prefix + sha256, query.encode("utf-8"), ex=self.ttl_seconds)
        except Exception as exc:  # a lost registration only costs the client one more full request
            self.health.failed(exc)
            return
        self.health.succeeded()


class PersistedQueries:
    """APQ resolution (:meth:`resolve`) and the safelist check (:meth:`is_safelisted`) for one edge process."""

    def __init__(
        self,
        store: PersistedQueryStore,
        *,
        manifest: Manifest | None = None,
        max_query_bytes: int = DEFAULT_MAX_QUERY_BYTES,
        safelist_cache_size: int = 4096,
    ) -> None:
        self.store = store
        self.manifest = manifest if manifest is not None else Manifest(())
        self.max_query_bytes = max_query_bytes
        self.hits = 0
        self.misses = 0
        self.registered = 0
        self._safelist_cache_size = safelist_cache_size
        # exact sha256 of a document -> whether it is safelisted (bounded; saves a parse per repeat).
        self._safelisted: OrderedDict[str, bool] = OrderedDict()

    async def resolve(self, request: dict[str, Any]) -> dict[str, Any]:
        """The request with ``query`` filled in from its ``persistedQuery`` hash (see the module docstring).

        Raises :class:`PersistedQueryNotFound`, :class:`PersistedQueryNotSupported`,
        :class:`InvalidPersistedQuery` or :class:`PersistedQueryHashMismatch`.
        """
        extensions = request.get("extensions")
        if not isinstance(extensions, dict) or "persistedQuery" not in extensions:
            return request
        persisted = extensions["persistedQuery"]
        resolved = dict(request)
        rest = {name: value for name, value in extensions.items() if name != "persistedQuery"}
        if rest:
            resolved["extensions"] = rest
        else:
            del resolved["extensions"]
        if persisted is None:
            return resolved
        if not isinstance(persisted, dict):
            raise InvalidPersistedQuery("extensions.persistedQuery must be an object")
        version = persisted.get("version")
        if type(version) is not int or version != 1:  # bool is an int subclass: `true` is not version 1
            raise PersistedQueryNotSupported()
        sha256 = persisted.get("sha256Hash")
        if not isinstance(sha256, str) or _SHA256_HEX.fullmatch(sha256) is None:
            raise InvalidPersistedQuery("extensions.persistedQuery.sha256Hash must be 64 lowercase hex digits")
        query = request.get("query")
        if query is None:
            found = await self._lookup(sha256)
            if found is None:
                self.misses += 1
                raise PersistedQueryNotFound()
            self.hits += 1
            resolved["query"] = found
            return resolved
        if not isinstance(query, str):
            raise BadRequest("query must be a string")
        if sha256_hex(query) != sha256:
            raise PersistedQueryHashMismatch()
        if self.manifest.get(sha256) is None and len(query.encode("utf-8")) <= self.max_query_bytes:
            await self.store.put(sha256, query)
            self.registered += 1
        return resolved

    async def _lookup(self, sha256: str) -> str | None:
        entry = self.manifest.get(sha256)
        if entry is not None:
            return entry.body
        return await self.store.get(sha256)

    def is_safelisted(self, query: str) -> bool:
        """Whether ``query`` is in the manifest, as written or once normalised (see the module docstring)."""
        exact = sha256_hex(query)
        manifest = self.manifest
        if manifest.contains(exact):
            return True
        cached = self._safelisted.get(exact)
        if cached is not None:
            self._safelisted.move_to_end(exact)
            return cached
        normalised = normalised_hash(query)
        allowed = normalised is not None and manifest.contains(normalised)
        self._safelisted[exact] = allowed
        if len(self._safelisted) > self._safelist_cache_size:
            self._safelisted.popitem(last=False)
        return allowed

    def check_safelisted(self, query: str) -> None:
        """Raise :class:`OperationNotSafelisted` unless :meth:`is_safelisted`."""
        if not self.is_safelisted(query):
            raise OperationNotSafelisted()

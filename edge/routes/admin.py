"""Operator routes under ``/admin``, each family protected by its own secret.

- ``EDGE_ADMIN_SECRET`` (``X-Edge-Admin-Secret``): schema refresh, response-cache clearing, and API
  key revocation (effective at once on this edge, within the key-cache TTL on the others).
- ``EDGE_USAGE_ADMIN_SECRET`` (``X-Edge-Usage-Secret``): the usage report, for billing; a
  separate secret so a billing job cannot clear caches.

Secrets are compared in constant time. A wrong or missing secret gets 404, exactly like a route
that does not exist, and without the setting the routes are not mounted at all. They are never
reachable with a client's JWT or API key.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Literal

import orjson
import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from psycopg_pool import PoolTimeout

from edge.cache import clear_key, clear_operation
from edge.cache.store import ResponseCacheStore
from edge.graphql.schema_source import SchemaSource
from edge.keys import ApiKeyNotFound, ApiKeyRepository, ApiKeyStore, ApiKeyStoreUnavailable
from edge.observability import UsageUnavailable, usage_report
from edge.observability.metering import UsageMeter

__all__ = ["admin_router", "usage_router"]


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _require(expected_secret: str, header_name: str) -> Callable[[Request], None]:
    expected = expected_secret.encode("utf-8")

    def check(request: Request) -> None:
        given = request.headers.get(header_name, "").encode("utf-8")
        if not hmac.compare_digest(given, expected):
            raise HTTPException(status_code=404)  # indistinguishable from a route that does not exist

    return check


def admin_router(
    secret: str,
    *,
    schema_source: SchemaSource,
    cache_store: ResponseCacheStore | None,
    key_repository: ApiKeyRepository | None = None,
    key_store: ApiKeyStore | None = None,
    on_key_revoked: Callable[[str], Awaitable[int]] | None = None,
) -> APIRouter:
    router = APIRouter(prefix="/admin", dependencies=[Depends(_require(secret, "X-Edge-Admin-Secret"))])

    @router.post("/schema/refresh", summary="Re-introspect Hasura's schema now (type-aware cost)")
    async def refresh_schema() -> Response:
        ok = await schema_source.refresh()
        return _json({"refreshed": ok, "schema_loaded": schema_source.schema is not None}, 200 if ok else 503)

    @router.post("/cache/clear", summary="Clear cached responses by cache key or by operation name")
    async def clear_cache(
        key: str | None = Query(default=None), operation: str | None = Query(default=None)
    ) -> Response:
        if cache_store is None:
            return _json({"cleared": 0, "cache": "off"})
        if (key is None) == (operation is None):
            return _json({"error": "give exactly one of ?key= or ?operation="}, 400)
        cleared = (
            int(await clear_key(cache_store, key))
            if key is not None
            else await clear_operation(cache_store, operation or "")
        )
        return _json({"cleared": cleared})

    @router.post("/keys/{key_id}/revoke", summary="Revoke an API key now")
    async def revoke_key(key_id: str) -> Response:
        if key_repository is None or key_store is None:
            return _json({"error": "API keys are not configured (EDGE_DATABASE_URL)"}, 404)
        try:
            key = await key_repository.revoke(key_id)
        except ApiKeyNotFound:
            return _json({"error": "no such key"}, 404)
        except (ApiKeyStoreUnavailable, psycopg.Error, PoolTimeout):
            return _json({"error": "key store unavailable"}, 503)
        key_store.invalidate(key_id)  # this edge refuses the key from the next request on
        closed = await on_key_revoked(key_id) if on_key_revoked is not None else 0  # and its open sockets
        return _json({"revoked": True, "key_id": key.key_id, "sockets_closed": closed})

    return router


def usage_router(secret: str, *, meter: UsageMeter) -> APIRouter:
    router = APIRouter(prefix="/admin", dependencies=[Depends(_require(secret, "X-Edge-Usage-Secret"))])

    @router.get("/usage", summary="Requests, cost points, rows and subscription-seconds per key and per user")
    async def usage(
        kind: Literal["key", "user"] | None = Query(default=None), period: str | None = Query(default=None)
    ) -> Response:
        try:
            return _json(await usage_report(meter, kind=kind, period=period))
        except UsageUnavailable:
            return _json({"error": "usage store unavailable"}, 503)

    return router

"""Operator routes under ``/admin``, protected by their own secret (``EDGE_ADMIN_SECRET``).

The secret travels in ``X-Edge-Admin-Secret`` and is compared in constant time; without
``EDGE_ADMIN_SECRET`` the routes do not exist (404). They are never reachable with a
client's JWT or API key.
"""

from __future__ import annotations

import hmac
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, HTTPException
from fastapi.responses import Response

from edge.graphql.schema_source import SchemaSource

__all__ = ["admin_router"]


def admin_router(secret: str, *, schema_source: SchemaSource) -> APIRouter:
    expected = secret.encode("utf-8")

    def require_admin(x_edge_admin_secret: Annotated[str | None, Header()] = None) -> None:
        given = (x_edge_admin_secret or "").encode("utf-8")
        if not hmac.compare_digest(given, expected):
            raise HTTPException(status_code=404)  # indistinguishable from a route that does not exist

    router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])

    @router.post("/schema/refresh", summary="Re-introspect Hasura's schema now (type-aware cost)")
    async def refresh_schema() -> Response:
        ok = await schema_source.refresh()
        body = {"refreshed": ok, "schema_loaded": schema_source.schema is not None}
        return Response(orjson.dumps(body), status_code=200 if ok else 503, media_type="application/json")

    return router

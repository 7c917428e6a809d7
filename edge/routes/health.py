"""``/healthz`` (the process is up) and ``/readyz`` (Hasura, and Redis when configured, answer)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from edge.upstream.base import Upstream, UpstreamError

__all__ = ["ReadinessCheck", "health_router", "hasura_check"]

ReadinessCheck = Callable[[], Awaitable[bool]]
_CHECK_TIMEOUT = 2.0


def hasura_check(upstream: Upstream) -> ReadinessCheck:
    async def check() -> bool:
        try:
            response = await upstream.get("/healthz", timeout=_CHECK_TIMEOUT)
        except UpstreamError:
            return False
        return response.status == 200

    return check


def redis_check(redis_client: Any) -> ReadinessCheck:
    async def check() -> bool:
        try:
            return bool(await asyncio.wait_for(redis_client.ping(), _CHECK_TIMEOUT))
        except Exception:  # any failure means "not ready"; the reason is not for the public
            return False

    return check


def health_router(checks: dict[str, ReadinessCheck]) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz", summary="The edge process is up")
    async def healthz() -> Response:
        return Response(orjson.dumps({"status": "ok"}), media_type="application/json")

    @router.get("/readyz", summary="Hasura (and Redis when configured) are reachable")
    async def readyz() -> Response:
        names = list(checks)
        results = await asyncio.gather(*(checks[name]() for name in names))
        report = {name: "ok" if ok else "unavailable" for name, ok in zip(names, results, strict=True)}
        ready = all(results)
        body = orjson.dumps({"status": "ready" if ready else "unavailable", "checks": report})
        return Response(body, status_code=200 if ready else 503, media_type="application/json")

    return router

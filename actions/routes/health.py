"""Liveness and readiness. No secret: they reveal nothing and orchestrators call them without one."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from actions.deps import ResourcesDep

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up", responses={200: {"description": "ok"}})
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database answers",
    responses={200: {"description": "ready"}, 503: {"description": "database unreachable"}},
)
async def readyz(resources: ResourcesDep) -> JSONResponse:
    try:
        async with resources.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # any failure means "not ready"; the detail goes to the log, not the probe
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ready"})

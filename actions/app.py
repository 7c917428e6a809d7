"""``create_app(settings)``: the actions service as a FastAPI app.

The lifespan opens one pooled async engine and disposes of it on shutdown; routes reach it through
``actions.deps``. Every error leaves through one of the handlers below, in Hasura's action error shape.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from actions.db import is_transient, make_engine, make_sessionmaker
from actions.deps import Resources
from actions.errors import InvalidInput, ServiceError, TransientFailure, render
from actions.providers import PaymentProvider, make_provider
from actions.routes import actions as action_routes
from actions.routes import events as event_routes
from actions.routes import health as health_routes
from actions.security import SharedSecretGuard
from actions.settings import ActionsSettings

__all__ = ["create_app"]

logger = logging.getLogger("actions")


def create_app(settings: ActionsSettings, *, provider: PaymentProvider | None = None) -> FastAPI:
    """Build the app. ``provider`` replaces the configured PaymentProvider (tests inject fakes)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings)
        app.state.resources = Resources(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            provider=provider if provider is not None else make_provider(settings),
        )
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="hasura-edge actions",
        summary="Hasura Actions and Event Trigger webhooks",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )

    def service_error(error: ServiceError) -> JSONResponse:
        headers = {}
        if isinstance(error, TransientFailure) and settings.event_retry_after_seconds:
            headers["Retry-After"] = str(settings.event_retry_after_seconds)
        return JSONResponse(render(error), status_code=error.status, headers=headers)

    async def on_service_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        return service_error(exc)

    async def on_invalid_request(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": [str(part) for part in item.get("loc", ())], "msg": str(item.get("msg", ""))}
            for item in exc.errors()
        ]
        return service_error(InvalidInput("request payload is not valid", errors=errors))

    async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
        # 5xx either way, so Hasura redelivers events; only transient failures invite a quick retry.
        if is_transient(exc):
            logger.warning("database_unavailable", extra={"path": request.url.path, "error": type(exc).__name__})
            return service_error(TransientFailure("database unavailable; retry later"))
        logger.exception("database_error", extra={"path": request.url.path})
        return JSONResponse({"message": "internal error", "extensions": {"code": "INTERNAL"}}, status_code=500)

    # Outermost: rejects unauthenticated calls before FastAPI reads the body.
    app.add_middleware(SharedSecretGuard, secret=settings.webhook_secret.get_secret_value())
    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(RequestValidationError, on_invalid_request)
    app.add_exception_handler(SQLAlchemyError, on_database_error)
    app.add_exception_handler(OSError, on_database_error)

    app.include_router(action_routes.router)
    app.include_router(event_routes.router)
    app.include_router(health_routes.router)
    _describe_real_validation_status(app)
    return app


def _describe_real_validation_status(app: FastAPI) -> None:
    """FastAPI documents a 422 HTTPValidationError on every route with a body, but invalid bodies get
    400 VALIDATION_FAILED here (on_invalid_request). Drop that generated entry so OpenAPI tells the truth."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    default = operation.get("responses", {}).get("422", {})
                    if "HTTPValidationError" in str(default.get("content", "")):
                        del operation["responses"]["422"]
            schema.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
            schema.get("components", {}).get("schemas", {}).pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

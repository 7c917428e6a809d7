"""``create_app(settings)``: the actions service as a FastAPI app.

The lifespan opens one pooled async engine and disposes of it on shutdown; routes reach it through
``actions.deps``. Every error leaves in Hasura's action error format (``actions.error_responses``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from actions.body_limit import BodySizeLimit
from actions.db import make_engine, make_sessionmaker
from actions.deps import Resources
from actions.error_responses import install_error_handlers
from actions.metrics import ActionsMetrics, RequestMetrics
from actions.providers import PaymentProvider, make_provider
from actions.routes import actions as action_routes
from actions.routes import events as event_routes
from actions.routes import health as health_routes
from actions.security import SharedSecretGuard
from actions.settings import ActionsSettings

__all__ = ["create_app"]


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

    # add_middleware puts each stage outside the ones before it: the secret is checked first, then the
    # body is read up to ACTIONS_MAX_BODY_BYTES, then FastAPI runs.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SharedSecretGuard, secret=settings.webhook_secret.get_secret_value())
    install_error_handlers(app, settings)

    app.include_router(action_routes.router)
    app.include_router(event_routes.router)
    app.include_router(health_routes.router)
    _describe_real_validation_status(app)
    # Added last, so outermost: every answer is counted, the secret check's and the body limit's too.
    # Its route label values: the paths the OpenAPI document lists (what the routers declare).
    app.add_middleware(RequestMetrics, metrics=ActionsMetrics(app.openapi()["paths"]))
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

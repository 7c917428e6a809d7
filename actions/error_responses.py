"""Every failure leaves the service in Hasura's action error format, with the status its route needs.

* Action routes (``/actions/...``) answer only 2xx and 4xx: Hasura relays nothing else
  (``actions.errors.relayed_status``). A transient failure carries ``retryable: true`` and
  ``retryAfterSeconds`` in ``extensions``, which Hasura hands to the client verbatim.
* Event-trigger routes (``/events/...``) and the rest keep 5xx for server-side failures: Hasura retries
  any non-2xx, and a 503 carries ``Retry-After``, which Hasura uses as the retry delay, past
  ``num_retries`` too (server/src-lib/Hasura/Eventing/EventTrigger.hs, ``retryOrSetError``).

``install_error_handlers`` covers what FastAPI and Starlette would otherwise answer in their own shapes:
unknown routes, wrong methods, request validation, database errors and unexpected exceptions.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.types import Send

from actions.db import is_transient
from actions.errors import (
    InternalError,
    InvalidInput,
    MethodNotAllowed,
    RouteNotFound,
    ServiceError,
    TransientFailure,
    relayed_status,
    render,
)
from actions.settings import ActionsSettings

__all__ = ["ACTION_ROUTES", "install_error_handlers", "send_error"]

logger = logging.getLogger("actions")

ACTION_ROUTES = "/actions/"
_SHOWN_PATH = 200  # characters of an unknown path echoed in a 404


def install_error_handlers(app: FastAPI, settings: ActionsSettings) -> None:
    """Register the handlers that turn every exception into an action-format response."""

    def respond(request: Request, error: ServiceError, headers: dict[str, str] | None = None) -> JSONResponse:
        on_action = request.url.path.startswith(ACTION_ROUTES)
        headers = dict(headers or {})
        if isinstance(error, TransientFailure):
            retry_after = settings.action_retry_after_seconds if on_action else settings.event_retry_after_seconds
            if retry_after:
                headers["Retry-After"] = str(retry_after)
                error.extra.setdefault("retryAfterSeconds", retry_after)
            error.extra.setdefault("retryable", True)
        if isinstance(error, InternalError) and on_action:
            # processPayment releases its claim on any failure, so the same key can be sent again safely.
            error.extra.setdefault("retryable", True)
        status = relayed_status(error) if on_action else error.status
        return JSONResponse(render(error), status_code=status, headers=headers)

    async def on_service_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        return respond(request, exc)

    async def on_invalid_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": [str(part) for part in item.get("loc", ())], "msg": str(item.get("msg", ""))}
            for item in exc.errors()
        ]
        return respond(request, InvalidInput("request payload is not valid", errors=errors))

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        error: ServiceError
        if exc.status_code == 404:
            error = RouteNotFound(f"no route at {request.url.path[:_SHOWN_PATH]}")
        elif exc.status_code == 405:
            allowed = headers.get("Allow", "")
            error = MethodNotAllowed(
                f"{request.method} is not allowed on {request.url.path}; use {allowed}", allowed=allowed.split(", ")
            )
        else:  # nothing else is raised by the routes in use; keep the status, name the code after it
            error = ServiceError(str(exc.detail), code=_status_code_name(exc.status_code), status=exc.status_code)
        return respond(request, error, headers)

    async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
        if is_transient(exc):
            logger.warning("database_unavailable", extra={"path": request.url.path, "error": type(exc).__name__})
            return respond(request, TransientFailure("database unavailable; retry later"))
        logger.exception("database_error", extra={"path": request.url.path})
        return respond(request, InternalError("internal error in the actions service"))

    async def on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        # Starlette's ServerErrorMiddleware calls this and then re-raises, so the server logs the traceback.
        logger.error("unexpected_error", extra={"path": request.url.path, "error": type(exc).__name__})
        return respond(request, InternalError("internal error in the actions service"))

    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(RequestValidationError, on_invalid_request)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(SQLAlchemyError, on_database_error)
    app.add_exception_handler(OSError, on_database_error)
    app.add_exception_handler(Exception, on_unexpected_error)


def _status_code_name(status: int) -> str:
    try:
        return HTTPStatus(status).name
    except ValueError:
        return f"HTTP_{status}"


async def send_error(send: Send, error: ServiceError, *, headers: dict[str, str] | None = None) -> None:
    """Answer with ``error`` from a pure ASGI stage (before FastAPI runs). Only for 4xx errors, which
    every route sends as they are."""
    body = orjson.dumps(render(error))
    raw_headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    for name, value in (headers or {}).items():
        raw_headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    await send({"type": "http.response.start", "status": error.status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})

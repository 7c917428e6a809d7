"""Errors the service returns to Hasura, as one tree. Each carries its HTTP status and a stable code.

Rendered by ``render()`` in Hasura's action error format: ``{"message", "extensions": {"code", ...}}``.
Hasura relays an action handler's answer only when it is 2xx or 4xx: a 4xx body's ``message`` becomes the
GraphQL error message and its ``extensions`` object replaces the error's extensions verbatim; any other
status reaches the client as ``internal error`` with code ``unexpected`` (``callWebhook`` in
server/src-lib/Hasura/GraphQL/Execute/Action.hs; tests-py queries/actions/sync/client_error_response.yaml,
server_error_response.yaml, extensions_code_both_codes.yaml). So on action routes a server-side failure
goes out as ``relayed_status()`` (424) with its own code; event-trigger routes keep the 5xx, which Hasura
retries (server/src-lib/Hasura/Eventing/EventTrigger.hs, ``retryOrSetError``).

* ServiceError
  - Unauthorized (401 UNAUTHORIZED): shared-secret header missing or wrong.
  - Forbidden (403 FORBIDDEN): the session has no usable ``x-hasura-user-id``.
  - InvalidInput (400 VALIDATION_FAILED / INVALID_JSON / JSON_TOO_DEEP / INVALID_AMOUNT / ...): input
    rejected.
  - RouteNotFound (404 NOT_FOUND): no route at this path.
  - MethodNotAllowed (405 METHOD_NOT_ALLOWED): the route exists, the method does not (``Allow`` says which).
  - OrderNotFound (404 ORDER_NOT_FOUND): no such order *for this user* (others' orders look absent).
  - OrderNotPayable (409 ORDER_NOT_PAYABLE): the order is not pending/awaiting_payment.
  - AmountMismatch (422 AMOUNT_MISMATCH): amount/currency differ from the order total.
  - IdempotencyKeyReused (422 IDEMPOTENCY_KEY_REUSED): same key, different input.
  - IdempotencyInProgress (409 IDEMPOTENCY_IN_PROGRESS): same key is being processed; retry later.
  - PayloadTooLarge (413 PAYLOAD_TOO_LARGE): the body is over ``ACTIONS_MAX_BODY_BYTES``.
  - ProviderUnavailable (424 PROVIDER_TIMEOUT / PROVIDER_UNAVAILABLE): outcome unknown, nothing stored.
  - EventMismatch (400 EVENT_MISMATCH): an event for another trigger/table was sent to this route.
  - HistoryConflict (409 HISTORY_VERSION_CONFLICT): a different event already wrote this version
    with different content.
  - TransientFailure (503 TRANSIENT_FAILURE; 424 on actions): database unreachable; retry later.
  - InternalError (500 INTERNAL; 424 on actions): a bug or an unexpected database error.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AmountMismatch",
    "EventMismatch",
    "Forbidden",
    "HistoryConflict",
    "IdempotencyInProgress",
    "IdempotencyKeyReused",
    "InvalidInput",
    "OrderNotFound",
    "InternalError",
    "MethodNotAllowed",
    "OrderNotPayable",
    "PayloadTooLarge",
    "ProviderUnavailable",
    "RELAYED_FAILURE_STATUS",
    "RouteNotFound",
    "ServiceError",
    "TransientFailure",
    "Unauthorized",
    "relayed_status",
    "render",
]

RELAYED_FAILURE_STATUS = 424
"""The status an action route answers instead of a 5xx, so that Hasura relays the error's code.
424 Failed Dependency: the request failed for a reason other than its content, as with the payment
provider. Clients see only the GraphQL error, never this status."""


class ServiceError(Exception):
    """Base: ``status`` is the HTTP status, ``code`` goes to ``extensions.code``."""

    status: int = 400
    code: str = "BAD_REQUEST"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra = extra


class Unauthorized(ServiceError):
    status, code = 401, "UNAUTHORIZED"


class Forbidden(ServiceError):
    status, code = 403, "FORBIDDEN"


class InvalidInput(ServiceError):
    status, code = 400, "VALIDATION_FAILED"


class RouteNotFound(ServiceError):
    status, code = 404, "NOT_FOUND"


class MethodNotAllowed(ServiceError):
    status, code = 405, "METHOD_NOT_ALLOWED"


class PayloadTooLarge(ServiceError):
    status, code = 413, "PAYLOAD_TOO_LARGE"


class OrderNotFound(ServiceError):
    status, code = 404, "ORDER_NOT_FOUND"


class OrderNotPayable(ServiceError):
    status, code = 409, "ORDER_NOT_PAYABLE"


class AmountMismatch(ServiceError):
    status, code = 422, "AMOUNT_MISMATCH"


class IdempotencyKeyReused(ServiceError):
    status, code = 422, "IDEMPOTENCY_KEY_REUSED"


class IdempotencyInProgress(ServiceError):
    status, code = 409, "IDEMPOTENCY_IN_PROGRESS"


class ProviderUnavailable(ServiceError):
    status, code = 424, "PROVIDER_UNAVAILABLE"


class EventMismatch(ServiceError):
    status, code = 400, "EVENT_MISMATCH"


class HistoryConflict(ServiceError):
    status, code = 409, "HISTORY_VERSION_CONFLICT"


class TransientFailure(ServiceError):
    status, code = 503, "TRANSIENT_FAILURE"


class InternalError(ServiceError):
    status, code = 500, "INTERNAL"


def relayed_status(error: ServiceError) -> int:
    """The status for ``error`` on an action route: its own when Hasura relays it (4xx), else 424.

    >>> relayed_status(TransientFailure("down")), relayed_status(OrderNotPayable("paid"))
    (424, 409)
    """
    return RELAYED_FAILURE_STATUS if error.status >= 500 else error.status


def render(error: ServiceError) -> dict[str, Any]:
    """The JSON body Hasura expects from a failing action handler."""
    return {"message": error.message, "extensions": {"code": error.code, **error.extra}}

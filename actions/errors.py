"""Errors the service returns to Hasura, as one tree. Each carries its HTTP status and a stable code.

Rendered by ``render()`` in Hasura's action error format: a 4xx with ``{"message", "extensions":
{"code"}}`` (hasura-contracts.md §6.2; Hasura copies ``extensions`` verbatim into the GraphQL error).

* ServiceError
  - Unauthorized (401 UNAUTHORIZED): shared-secret header missing or wrong.
  - Forbidden (403 FORBIDDEN): the session has no usable ``x-hasura-user-id``.
  - InvalidInput (400 VALIDATION_FAILED / INVALID_AMOUNT / INVALID_CURRENCY / ...): input rejected.
  - OrderNotFound (404 ORDER_NOT_FOUND): no such order *for this user* (others' orders look absent).
  - OrderNotPayable (409 ORDER_NOT_PAYABLE): the order is not pending/awaiting_payment.
  - AmountMismatch (422 AMOUNT_MISMATCH): amount/currency differ from the order total.
  - IdempotencyKeyReused (422 IDEMPOTENCY_KEY_REUSED): same key, different input.
  - IdempotencyInProgress (409 IDEMPOTENCY_IN_PROGRESS): same key is being processed; retry later.
  - ProviderUnavailable (424 PROVIDER_TIMEOUT / PROVIDER_UNAVAILABLE): outcome unknown, nothing stored.
  - EventMismatch (400 EVENT_MISMATCH): an event for another trigger/table was sent to this route.
  - HistoryConflict (409 HISTORY_VERSION_CONFLICT): a different event already wrote this version
    with different content.
  - TransientFailure (503 TRANSIENT_FAILURE): database unreachable; Hasura should retry.
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
    "OrderNotPayable",
    "ProviderUnavailable",
    "ServiceError",
    "TransientFailure",
    "Unauthorized",
    "render",
]


class ServiceError(Exception):
    """Base: ``status`` is the HTTP status, ``code`` goes to ``extensions.code``."""

    status: int = 400
    code: str = "BAD_REQUEST"

    def __init__(self, message: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra = extra


class Unauthorized(ServiceError):
    status, code = 401, "UNAUTHORIZED"


class Forbidden(ServiceError):
    status, code = 403, "FORBIDDEN"


class InvalidInput(ServiceError):
    status, code = 400, "VALIDATION_FAILED"


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


def render(error: ServiceError) -> dict[str, Any]:
    """The JSON body Hasura expects from a failing action handler."""
    return {"message": error.message, "extensions": {"code": error.code, **error.extra}}

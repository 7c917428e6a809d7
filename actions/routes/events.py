"""One POST route per event trigger. 2xx only after the handler's transaction committed; any other status
makes Hasura redeliver (503 with Retry-After on transient failures); every handler is idempotent on the
event id."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from actions.deps import ResourcesDep
from actions.handlers.document_history import record_document_history
from actions.handlers.low_stock import record_low_stock
from actions.handlers.orders import record_order_confirmation
from actions.hasura import DocumentRow, EventAck, EventRequest, InventoryRow, OrderRow
from actions.routes._json import StrictJSONRoute
from actions.routes._responses import error
from actions.security import VerifiedEvent

__all__ = ["router"]

router = APIRouter(prefix="/events", tags=["events"], dependencies=[VerifiedEvent], route_class=StrictJSONRoute)

_COMMON: dict[int | str, dict[str, Any]] = {
    400: error(
        "VALIDATION_FAILED (payload not Hasura-shaped), INVALID_JSON, JSON_TOO_DEEP or EVENT_MISMATCH "
        "(wrong trigger/table); nothing written"
    ),
    401: error("UNAUTHORIZED: X-Hasura-Webhook-Secret missing or wrong; nothing written"),
    413: error("PAYLOAD_TOO_LARGE: body over ACTIONS_MAX_BODY_BYTES; raise it, then redeliver the event"),
    500: error("INTERNAL: unexpected error, logged; nothing written; Hasura retries"),
    503: error("TRANSIENT_FAILURE: database unreachable; carries Retry-After so Hasura retries"),
}


@router.post(
    "/documents_history",
    response_model=EventAck,
    summary="Record a document version with a unified diff",
    responses={
        200: {"description": "recorded, duplicate (redelivery) or skipped"},
        **_COMMON,
        409: error("HISTORY_VERSION_CONFLICT: another event stored this version with different content"),
    },
)
async def documents_history(body: EventRequest[DocumentRow], resources: ResourcesDep) -> EventAck:
    return await record_document_history(sessions=resources.sessions, event=body)


@router.post(
    "/inventory_low_stock",
    response_model=EventAck,
    summary="Raise a low-stock alert when quantity crosses below the threshold",
    responses={200: {"description": "recorded, duplicate (redelivery) or skipped"}, **_COMMON},
)
async def inventory_low_stock(body: EventRequest[InventoryRow], resources: ResourcesDep) -> EventAck:
    return await record_low_stock(sessions=resources.sessions, event=body)


@router.post(
    "/order_created",
    response_model=EventAck,
    summary="Write the order confirmation",
    responses={200: {"description": "recorded, duplicate (redelivery) or skipped"}, **_COMMON},
)
async def order_created(body: EventRequest[OrderRow], resources: ResourcesDep) -> EventAck:
    return await record_order_confirmation(sessions=resources.sessions, event=body)

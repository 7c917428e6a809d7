"""Request bodies shaped exactly like Hasura's, plus builders.

Hasura's side: ``ActionWebhookPayload`` (server/src-lib/Hasura/GraphQL/Execute/Action/Types.hs) and
``createEventPayload`` (server/src-lib/Hasura/Eventing/EventTrigger.hs).

The literal samples are what Hasura v2 POSTs; the builders vary them for the tests.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

ALICE = "11111111-1111-4111-8111-111111111111"
BOB = "22222222-2222-4222-8222-222222222222"
CAROL = "33333333-3333-4333-8333-333333333333"
ALICE_ORDER = "cccccccc-0000-4000-8000-000000000001"  # awaiting_payment, 148.00 USD
BOB_PAID_ORDER = "cccccccc-0000-4000-8000-000000000002"  # paid, 279.00 USD
LAUNCH_PLAN = "dddddddd-0000-4000-8000-000000000001"  # alice's document, version 1 (seeded history row)
BERLIN = "bbbbbbbb-0000-4000-8000-000000000001"
KEYBOARD = "aaaaaaaa-0000-4000-8000-000000000001"  # 42 in Berlin, threshold 10

# processPayment(input: ProcessPaymentInput!) as sent by Hasura for a `user` role request.
PROCESS_PAYMENT_REQUEST: dict[str, Any] = {
    "action": {"name": "processPayment"},
    "input": {
        "input": {
            "orderId": ALICE_ORDER,
            "amount": 148.00,
            "currency": "USD",
            "idempotencyKey": "0b6c2d1e-6f1a-4d55-9a51-5c2a3f7e9b10",
        }
    },
    "session_variables": {"x-hasura-role": "user", "x-hasura-user-id": ALICE},
    "request_query": (
        'mutation { processPayment(input: {orderId: "cccccccc-0000-4000-8000-000000000001", amount: 148.00, '
        'currency: "USD", idempotencyKey: "0b6c2d1e-6f1a-4d55-9a51-5c2a3f7e9b10"}) '
        "{ paymentId status orderStatus idempotentReplay } }"
    ),
}

# An UPDATE of public.documents delivered to the documents_history trigger.
DOCUMENT_UPDATE_EVENT: dict[str, Any] = {
    "id": "85558393-c75d-4d2f-9c15-e80591b83894",
    "created_at": "2026-03-03T10:00:00.123456",
    "trigger": {"name": "documents_history"},
    "table": {"schema": "public", "name": "documents"},
    "event": {
        "op": "UPDATE",
        "data": {
            "old": {
                "id": LAUNCH_PLAN,
                "owner_id": ALICE,
                "title": "Launch plan",
                "content": "Goals\n- Ship the edge gateway\n- Enable API keys\n",
                "version": 1,
                "created_at": "2026-03-01T08:00:00+00:00",
                "updated_at": "2026-03-01T08:00:00+00:00",
            },
            "new": {
                "id": LAUNCH_PLAN,
                "owner_id": ALICE,
                "title": "Launch plan",
                "content": "Goals\n- Ship the edge gateway\n- Enable API keys\n- Write the runbook\n",
                "version": 2,
                "created_at": "2026-03-01T08:00:00+00:00",
                "updated_at": "2026-03-03T10:00:00.123456+00:00",
            },
        },
        "session_variables": {"x-hasura-role": "user", "x-hasura-user-id": BOB},
        "trace_context": {"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331"},
    },
    "delivery_info": {"max_retries": 5, "current_retry": 0},
}

INVENTORY_UPDATE_EVENT: dict[str, Any] = {
    "id": "0d5f0b56-41a5-4f0f-8d8c-4c2b3e4a5f60",
    "created_at": "2026-03-04T09:30:00.5",
    "trigger": {"name": "inventory_low_stock"},
    "table": {"schema": "public", "name": "inventory"},
    "event": {
        "op": "UPDATE",
        "data": {
            "old": {
                "warehouse_id": BERLIN,
                "product_id": KEYBOARD,
                "quantity": 42,
                "low_stock_threshold": 10,
                "updated_at": "2026-01-10T10:00:00+00:00",
            },
            "new": {
                "warehouse_id": BERLIN,
                "product_id": KEYBOARD,
                "quantity": 7,
                "low_stock_threshold": 10,
                "updated_at": "2026-03-04T09:30:00.5+00:00",
            },
        },
        "session_variables": {"x-hasura-role": "admin"},
        "trace_context": None,
    },
    "delivery_info": {"max_retries": 5, "current_retry": 0},
}

ORDER_INSERT_EVENT: dict[str, Any] = {
    "id": "5b0f2a7c-2f8e-4a57-b1f0-6a8f3c9d1e22",
    "created_at": "2026-02-01T12:00:00.000001",
    "trigger": {"name": "order_created"},
    "table": {"schema": "public", "name": "orders"},
    "event": {
        "op": "INSERT",
        "data": {
            "old": None,
            "new": {
                "id": ALICE_ORDER,
                "user_id": ALICE,
                "status": "awaiting_payment",
                "total": 0,  # the order row is inserted before its nested items; triggers fix the total
                "currency": "USD",
                "created_at": "2026-02-01T12:00:00+00:00",
                "updated_at": "2026-02-01T12:00:00+00:00",
            },
        },
        "session_variables": {"x-hasura-role": "user", "x-hasura-user-id": ALICE},
        "trace_context": None,
    },
    "delivery_info": {"max_retries": 5, "current_retry": 0},
}


def payment_request(
    *,
    order_id: str = ALICE_ORDER,
    amount: Any = 148.00,
    currency: str = "USD",
    key: str | None = None,
    user_id: str | None = ALICE,
    role: str = "user",
    extra_input: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """PROCESS_PAYMENT_REQUEST with the given input and session; a fresh key unless one is given."""
    body = copy.deepcopy(PROCESS_PAYMENT_REQUEST)
    body["input"]["input"] = {
        "orderId": order_id,
        "amount": amount,
        "currency": currency,
        "idempotencyKey": key if key is not None else str(uuid.uuid4()),
        **(extra_input or {}),
    }
    session: dict[str, str] = {"x-hasura-role": role}
    if user_id is not None:
        session["x-hasura-user-id"] = user_id
    body["session_variables"] = session
    return body


def document_event(
    *,
    old_content: str | None,
    new_content: str,
    old_version: int | None,
    new_version: int,
    document_id: str = LAUNCH_PLAN,
    event_id: str | None = None,
    author: str | None = BOB,
    op: str = "UPDATE",
    current_retry: int = 0,
) -> dict[str, Any]:
    body = copy.deepcopy(DOCUMENT_UPDATE_EVENT)
    body["id"] = event_id or str(uuid.uuid4())
    body["event"]["op"] = op
    old = body["event"]["data"]["old"]
    new = body["event"]["data"]["new"]
    for row in (old, new):
        row["id"] = document_id
    if old_content is None:
        body["event"]["data"]["old"] = None
    else:
        old.update(content=old_content, version=old_version)
    new.update(content=new_content, version=new_version)
    body["event"]["session_variables"] = (
        None if author is None else {"x-hasura-role": "user", "x-hasura-user-id": author}
    )
    body["delivery_info"]["current_retry"] = current_retry
    return body


def inventory_event(
    *, old_quantity: int, new_quantity: int, threshold: int = 10, event_id: str | None = None
) -> dict[str, Any]:
    body = copy.deepcopy(INVENTORY_UPDATE_EVENT)
    body["id"] = event_id or str(uuid.uuid4())
    body["event"]["data"]["old"].update(quantity=old_quantity, low_stock_threshold=threshold)
    body["event"]["data"]["new"].update(quantity=new_quantity, low_stock_threshold=threshold)
    return body


def order_event(*, event_id: str | None = None, order_id: str = ALICE_ORDER, op: str = "INSERT") -> dict[str, Any]:
    body = copy.deepcopy(ORDER_INSERT_EVENT)
    body["id"] = event_id or str(uuid.uuid4())
    body["event"]["op"] = op
    body["event"]["data"]["new"]["id"] = order_id
    return body

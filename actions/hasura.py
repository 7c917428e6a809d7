"""Wire models for what Hasura sends and what the action returns.

Hasura's side: ``ActionWebhookPayload`` (server/src-lib/Hasura/GraphQL/Execute/Action/Types.hs) for actions,
``createEventPayload`` (server/src-lib/Hasura/Eventing/EventTrigger.hs) for event triggers.

Identity is read only from ``session_variables`` (keys lower-cased, as Hasura sends them), never from
``input``. Unknown keys in the input objects are ignored, so a client-supplied ``userId`` is dropped
before any handler sees it.
"""

from __future__ import annotations

import math
import re
import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, field_validator

__all__ = [
    "ActionName",
    "ActionRequest",
    "DeliveryInfo",
    "DocumentRow",
    "EventAck",
    "EventBody",
    "EventData",
    "EventRequest",
    "EventTable",
    "EventTrigger",
    "ErrorExtensions",
    "HasuraError",
    "InventoryRow",
    "Money",
    "OrderRow",
    "PaymentResult",
    "PostgresText",
    "ProcessPaymentArgs",
    "ProcessPaymentInput",
    "SessionVariables",
    "session_role",
    "session_user_id",
]

InputT = TypeVar("InputT", bound=BaseModel)
RowT = TypeVar("RowT", bound=BaseModel)

_DECIMAL_TEXT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _parse_decimal(value: Any) -> Decimal:
    """Hasura passes a ``numeric`` argument through as the client wrote it: a JSON number or a string."""
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        result = Decimal(repr(value))  # repr is the shortest round-trip form: 10.01 -> "10.01"
    elif isinstance(value, str) and _DECIMAL_TEXT.match(value.strip()):
        try:
            result = Decimal(value.strip())
        except InvalidOperation as exc:  # pragma: no cover - the regex admits only valid literals
            raise ValueError("must be a decimal number") from exc
    else:
        raise ValueError("must be a decimal number")
    if not result.is_finite():
        raise ValueError("must be a finite number")
    return result


Money = Annotated[
    Decimal,
    BeforeValidator(_parse_decimal),
    PlainSerializer(lambda value: format(value, "f"), return_type=str),
]
"""A decimal amount: parsed from a JSON number or string without float rounding, rendered as a string."""


def _postgres_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain U+0000: PostgreSQL text cannot hold it")
    return value


PostgresText = Annotated[str, AfterValidator(_postgres_text)]
"""A string the service stores in a ``text`` column. PostgreSQL text cannot hold U+0000 (JSON ``"\\u0000"``),
so one containing it is refused as the request's validation error (400 VALIDATION_FAILED), never sent to
the database (where it would fail the statement: a 500)."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- Actions ---------------------------------------------------------------------------------


class SessionVariables(_Wire):
    """``session_variables`` as sent by Hasura. Only these two are used; the rest is ignored."""

    model_config = ConfigDict(extra="allow", frozen=True)

    role: str | None = Field(default=None, alias="x-hasura-role")
    user_id: str | None = Field(default=None, alias="x-hasura-user-id")


def _lower_session(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key).lower(): item for key, item in value.items()}
    return value


def session_user_id(session: SessionVariables | None) -> uuid.UUID | None:
    """The caller's user id from the session, or None when absent or not a UUID."""
    if session is None or session.user_id is None:
        return None
    try:
        return uuid.UUID(session.user_id)
    except ValueError:
        return None


def session_role(session: SessionVariables | None) -> str | None:
    return None if session is None else session.role


class ActionName(_Wire):
    name: str


class ActionRequest(_Wire, Generic[InputT]):
    """The body Hasura POSTs to an action handler."""

    action: ActionName
    input: InputT
    session_variables: Annotated[SessionVariables, BeforeValidator(_lower_session)]
    request_query: str | None = None


class ProcessPaymentInput(_Wire):
    """``input ProcessPaymentInput`` in hasura/metadata/actions.graphql."""

    orderId: uuid.UUID
    amount: Money
    currency: str = Field(min_length=1, max_length=16)
    idempotencyKey: PostgresText = Field(min_length=1, max_length=255)


class ProcessPaymentArgs(_Wire):
    """The arguments of ``processPayment(input: ProcessPaymentInput!)``."""

    input: ProcessPaymentInput


class PaymentResult(BaseModel):
    """``type PaymentResult`` in hasura/metadata/actions.graphql. ``amount`` is a decimal string."""

    model_config = ConfigDict(frozen=True)

    paymentId: uuid.UUID
    orderId: uuid.UUID
    status: Literal["approved", "declined"]
    orderStatus: str
    amount: Money
    currency: str
    providerReference: str | None
    idempotentReplay: bool
    createdAt: datetime


# --- Event triggers --------------------------------------------------------------------------


class EventTrigger(_Wire):
    name: str


class EventTable(_Wire):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    schema_name: str = Field(alias="schema")
    name: str


class EventData(_Wire, Generic[RowT]):
    old: RowT | None = None
    new: RowT | None = None


class EventBody(_Wire, Generic[RowT]):
    op: Literal["INSERT", "UPDATE", "DELETE", "MANUAL"]
    data: EventData[RowT]
    session_variables: SessionVariables | None = None
    trace_context: dict[str, Any] | None = None

    @field_validator("session_variables", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return _lower_session(value)


class DeliveryInfo(_Wire):
    max_retries: int
    current_retry: int


class EventRequest(_Wire, Generic[RowT]):
    """The body Hasura POSTs to an event-trigger webhook (top-level keys, not wrapped in ``payload``)."""

    id: PostgresText = Field(min_length=1, max_length=255)
    created_at: str
    trigger: EventTrigger
    table: EventTable
    event: EventBody[RowT]
    delivery_info: DeliveryInfo | None = None


class DocumentRow(_Wire):
    id: uuid.UUID
    owner_id: uuid.UUID | None = None
    title: str | None = None
    content: PostgresText
    version: int = Field(gt=0)


class InventoryRow(_Wire):
    warehouse_id: uuid.UUID
    product_id: uuid.UUID
    quantity: int
    low_stock_threshold: int


class OrderRow(_Wire):
    id: uuid.UUID
    user_id: uuid.UUID
    status: str
    total: Money
    currency: str


class EventAck(BaseModel):
    """2xx body for a processed event. ``outcome`` says what happened; Hasura only logs it."""

    event_id: str
    outcome: Literal["recorded", "duplicate", "skipped"]
    detail: str | None = None


class ErrorExtensions(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str


class HasuraError(BaseModel):
    """Hasura's action error body (a 4xx): ``message`` becomes the GraphQL error message and
    ``extensions`` replaces the error's extensions verbatim."""

    message: str
    extensions: ErrorExtensions

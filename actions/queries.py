"""Keyword-only data-access helpers. Each runs inside the caller's transaction; none commits."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from actions.models import (
    DocumentHistory,
    LowStockAlert,
    Order,
    OrderConfirmation,
    Payment,
    PaymentIdempotency,
    User,
)

__all__ = [
    "claim_idempotency_key",
    "complete_idempotency_key",
    "confirmation_exists",
    "get_history_by_version",
    "get_idempotency_record",
    "get_order",
    "insert_confirmation",
    "insert_history",
    "insert_low_stock_alert",
    "insert_payment",
    "release_idempotency_key",
    "set_order_status",
    "take_over_stale_claim",
]


async def get_order(session: AsyncSession, *, order_id: uuid.UUID, for_update: bool = False) -> Order | None:
    # populate_existing: a session reused across transactions must see the row as it is now, not the
    # copy it loaded earlier (the re-check under FOR UPDATE depends on it).
    statement = select(Order).where(Order.id == order_id).execution_options(populate_existing=True)
    if for_update:
        statement = statement.with_for_update()
    return (await session.execute(statement)).scalar_one_or_none()


async def claim_idempotency_key(
    session: AsyncSession, *, user_id: uuid.UUID, key: str, fingerprint: str
) -> datetime | None:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING``: the claim's token (its ``updated_at``) if this call
    created the row, None if the key already exists. A concurrent uncommitted claim makes this wait for
    that transaction, then return None."""
    statement = (
        insert(PaymentIdempotency)
        .values(user_id=user_id, idempotency_key=key, request_fingerprint=fingerprint, state="in_progress")
        .on_conflict_do_nothing(index_elements=[PaymentIdempotency.user_id, PaymentIdempotency.idempotency_key])
        .returning(PaymentIdempotency.updated_at)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def get_idempotency_record(session: AsyncSession, *, user_id: uuid.UUID, key: str) -> PaymentIdempotency | None:
    statement = select(PaymentIdempotency).where(
        PaymentIdempotency.user_id == user_id, PaymentIdempotency.idempotency_key == key
    )
    return (await session.execute(statement.execution_options(populate_existing=True))).scalar_one_or_none()


async def take_over_stale_claim(
    session: AsyncSession, *, user_id: uuid.UUID, key: str, fingerprint: str, token: datetime, lease_seconds: float
) -> datetime | None:
    """Take an ``in_progress`` claim whose holder presumably died (older than the lease). The BEFORE UPDATE
    trigger sets a fresh ``updated_at``, which becomes the new token; the old holder's token stops matching."""
    statement = (
        update(PaymentIdempotency)
        .where(
            PaymentIdempotency.user_id == user_id,
            PaymentIdempotency.idempotency_key == key,
            PaymentIdempotency.request_fingerprint == fingerprint,
            PaymentIdempotency.state == "in_progress",
            PaymentIdempotency.updated_at == token,
            PaymentIdempotency.updated_at < func.now() - timedelta(seconds=lease_seconds),
        )
        .values(request_fingerprint=fingerprint)
        .returning(PaymentIdempotency.updated_at)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def complete_idempotency_key(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    key: str,
    token: datetime,
    response_status: int,
    response_body: dict[str, Any],
) -> bool:
    """Mark our claim completed with the response to replay. False if we no longer hold the claim."""
    statement = (
        update(PaymentIdempotency)
        .where(
            PaymentIdempotency.user_id == user_id,
            PaymentIdempotency.idempotency_key == key,
            PaymentIdempotency.state == "in_progress",
            PaymentIdempotency.updated_at == token,
        )
        .values(state="completed", response_status=response_status, response_body=response_body)
        .returning(PaymentIdempotency.idempotency_key)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None


async def release_idempotency_key(session: AsyncSession, *, user_id: uuid.UUID, key: str, token: datetime) -> None:
    """Delete our own ``in_progress`` claim so that a retry with the same key starts afresh."""
    await session.execute(
        delete(PaymentIdempotency).where(
            PaymentIdempotency.user_id == user_id,
            PaymentIdempotency.idempotency_key == key,
            PaymentIdempotency.state == "in_progress",
            PaymentIdempotency.updated_at == token,
        )
    )


async def insert_payment(
    session: AsyncSession,
    *,
    order_id: uuid.UUID,
    user_id: uuid.UUID,
    amount: Decimal,
    currency: str,
    status: str,
    provider: str,
    provider_reference: str | None,
    idempotency_key: str,
) -> tuple[uuid.UUID, datetime]:
    statement = (
        insert(Payment)
        .values(
            order_id=order_id,
            user_id=user_id,
            amount=amount,
            currency=currency,
            status=status,
            provider=provider,
            provider_reference=provider_reference,
            idempotency_key=idempotency_key,
        )
        .returning(Payment.id, Payment.created_at)
    )
    row = (await session.execute(statement)).one()
    return row[0], row[1]


async def set_order_status(session: AsyncSession, *, order_id: uuid.UUID, status: str) -> None:
    await session.execute(update(Order).where(Order.id == order_id).values(status=status))


async def insert_history(
    session: AsyncSession,
    *,
    event_id: str,
    document_id: uuid.UUID,
    version: int,
    author_id: uuid.UUID | None,
    diff: str,
    content_after: str,
) -> bool:
    """Insert one history row; False if either unique key (event_id, or document_id+version) already exists.
    ``author_id`` is kept only if that user exists (the column is a nullable FK)."""
    author = select(User.id).where(User.id == author_id).scalar_subquery() if author_id is not None else None
    statement = (
        insert(DocumentHistory)
        .values(
            event_id=event_id,
            document_id=document_id,
            version=version,
            author_id=author,
            diff=diff,
            content_after=content_after,
        )
        .on_conflict_do_nothing()
        .returning(DocumentHistory.id)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None


async def get_history_by_version(
    session: AsyncSession, *, document_id: uuid.UUID, version: int
) -> DocumentHistory | None:
    statement = select(DocumentHistory).where(
        DocumentHistory.document_id == document_id, DocumentHistory.version == version
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def insert_low_stock_alert(
    session: AsyncSession,
    *,
    event_id: str,
    product_id: uuid.UUID,
    warehouse_id: uuid.UUID,
    quantity: int,
    threshold: int,
) -> bool:
    statement = (
        insert(LowStockAlert)
        .values(
            event_id=event_id,
            product_id=product_id,
            warehouse_id=warehouse_id,
            quantity=quantity,
            threshold=threshold,
        )
        .on_conflict_do_nothing(index_elements=[LowStockAlert.event_id])
        .returning(LowStockAlert.id)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None


async def confirmation_exists(session: AsyncSession, *, order_id: uuid.UUID) -> bool:
    statement = select(OrderConfirmation.id).where(OrderConfirmation.order_id == order_id).limit(1)
    return (await session.execute(statement)).scalar_one_or_none() is not None


async def insert_confirmation(
    session: AsyncSession,
    *,
    event_id: str,
    order_id: uuid.UUID,
    user_id: uuid.UUID,
    total: Decimal,
    currency: str,
) -> bool:
    statement = (
        insert(OrderConfirmation)
        .values(event_id=event_id, order_id=order_id, user_id=user_id, total=total, currency=currency)
        .on_conflict_do_nothing(index_elements=[OrderConfirmation.event_id])
        .returning(OrderConfirmation.id)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None

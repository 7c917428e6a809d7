"""processPayment: charge an order once per (user, idempotency key), with Stripe's idempotency semantics.

Protocol (actions/README.md, "processPayment idempotency"), every step keyed by ``(session user id, idempotencyKey)``:

1. **Validate the input** without touching the database: positive, finite amount with no more decimals
   than the currency allows, a known ISO 4217 code, a key of 1..255 characters. Failure: 400, nothing
   stored.
2. **Claim** (transaction 1): check the order exists and belongs to the caller (404 otherwise, so
   other users' orders are indistinguishable from missing ones), then
   ``INSERT ... ON CONFLICT DO NOTHING RETURNING``.
   - Row created: check the order is payable and the amount/currency equal its total; on failure the
     transaction rolls back, so the claim never becomes visible and nothing is stored. Else commit:
     concurrent duplicates now see ``in_progress``.
   - Row exists with another fingerprint: 422 IDEMPOTENCY_KEY_REUSED.
   - Row exists, completed: replay the stored status and body with ``idempotentReplay: true``.
   - Row exists, in progress: 409 IDEMPOTENCY_IN_PROGRESS (retryable), unless the claim is older than
     the lease (its holder died), in which case this request takes it over.
3. **Charge** (transaction 2): lock the order (``SELECT ... FOR UPDATE``, so two *different* keys can
   never both charge one order), re-check it is payable, call the provider with a key derived from
   (user, key), then write the payment row, the new order status and the completed idempotency record
   **in this one transaction**. A decline is a completed result (payment ``declined``, order
   ``payment_failed``) and is replayed like an approval.
4. **Provider timeout / error**: the outcome is unknown, so nothing is recorded as completed. The
   transaction rolls back and the claim is released (deleted), and the client gets 424
   PROVIDER_TIMEOUT. Storing the timeout as the final answer would pin the key to "unknown" forever,
   while the money may in fact have moved. Releasing is safe because the retry reaches the provider with
   the *same* provider idempotency key, so the provider returns the original charge instead of making a
   second one: the retry reconciles. (A crash between the provider's answer and our commit leaves the
   claim ``in_progress``; after the lease it is taken over and reconciled the same way.)

Claims carry a token (their ``updated_at``, reset by the table's trigger on every update); completion and
release match on it, so a request whose claim was taken over can neither complete nor delete it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from actions import queries
from actions.currencies import minor_units, quantum
from actions.errors import (
    AmountMismatch,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    InvalidInput,
    OrderNotFound,
    OrderNotPayable,
    ProviderUnavailable,
)
from actions.hasura import PaymentResult, ProcessPaymentInput
from actions.models import Order
from actions.providers import ChargeRequest, PaymentProvider, ProviderError, ProviderTimeout

__all__ = [
    "PAYABLE_STATUSES",
    "PaymentCommand",
    "PaymentOutcome",
    "fingerprint",
    "process_payment",
    "validate_payment_input",
]

logger = logging.getLogger(__name__)

PAYABLE_STATUSES = frozenset({"pending", "awaiting_payment"})
# payments.amount and orders.total are numeric(12, 2): anything from 10^10 up cannot be stored.
_MAX_AMOUNT = Decimal(10) ** 10
_CLAIM_ATTEMPTS = 3


@dataclass(frozen=True)
class PaymentCommand:
    """A validated processPayment request. ``amount`` is quantized to the currency's minor unit."""

    user_id: uuid.UUID
    order_id: uuid.UUID
    amount: Decimal
    currency: str
    idempotency_key: str


@dataclass(frozen=True)
class PaymentOutcome:
    """What the route returns: the HTTP status and the JSON body (a PaymentResult)."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class _Claim:
    token: datetime


def validate_payment_input(data: ProcessPaymentInput, *, user_id: uuid.UUID) -> PaymentCommand:
    """Check what can be checked without the database. Raises InvalidInput.

    >>> validate_payment_input(ProcessPaymentInput(orderId=uuid.UUID(int=1), amount="10.5",
    ...     currency="usd", idempotencyKey="k"), user_id=uuid.UUID(int=2)).amount
    Decimal('10.50')
    """
    currency = data.currency.strip().upper()
    digits = minor_units(currency) if len(currency) == 3 and currency.isalpha() else None
    if digits is None:
        raise InvalidInput(f"unknown currency {data.currency!r}; use an ISO 4217 code", code="INVALID_CURRENCY")
    amount = data.amount
    if amount <= 0:
        raise InvalidInput("amount must be positive", code="INVALID_AMOUNT")
    if amount >= _MAX_AMOUNT:
        raise InvalidInput("amount is too large", code="INVALID_AMOUNT")
    step = quantum(currency)
    if amount != amount.quantize(step):
        raise InvalidInput(f"{currency} amounts have at most {digits} decimal places", code="INVALID_AMOUNT_PRECISION")
    if not data.idempotencyKey.strip():
        raise InvalidInput("idempotencyKey must not be blank", code="INVALID_IDEMPOTENCY_KEY")
    return PaymentCommand(
        user_id=user_id,
        order_id=data.orderId,
        amount=amount.quantize(step),
        currency=currency,
        idempotency_key=data.idempotencyKey,
    )


def fingerprint(command: PaymentCommand) -> str:
    """SHA-256 of the canonical input minus the key: ``10.5`` and ``"10.50"`` USD fingerprint alike."""
    canonical = {
        "amount": format(command.amount, "f"),
        "currency": command.currency,
        "orderId": str(command.order_id),
    }
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


def provider_key(command: PaymentCommand) -> str:
    """The key sent to the provider: stable per (user, client key), opaque to the provider."""
    return hashlib.sha256(f"{command.user_id}:{command.idempotency_key}".encode()).hexdigest()


def _check_payable(order: Order, command: PaymentCommand) -> None:
    if order.status not in PAYABLE_STATUSES:
        raise OrderNotPayable(f"order is {order.status}; only pending or awaiting_payment orders can be paid")
    if order.currency.strip() != command.currency or order.total != command.amount:
        raise AmountMismatch(
            "amount and currency must equal the order total",
            expected={"amount": format(order.total, "f"), "currency": order.currency.strip()},
        )


async def process_payment(
    *,
    sessions: async_sessionmaker[AsyncSession],
    provider: PaymentProvider,
    user_id: uuid.UUID,
    data: ProcessPaymentInput,
    provider_timeout: float,
    claim_lease_seconds: float,
) -> PaymentOutcome:
    """Run the protocol in the module docstring. Raises ServiceError subclasses for every 4xx."""
    command = validate_payment_input(data, user_id=user_id)
    request_fingerprint = fingerprint(command)
    async with sessions() as session:
        claim = await _claim_or_replay(session, command, request_fingerprint, claim_lease_seconds=claim_lease_seconds)
        if isinstance(claim, PaymentOutcome):
            return claim
        try:
            return await _charge(session, command, provider, claim, provider_timeout=provider_timeout)
        except BaseException:
            await _release(sessions, command, claim)
            raise


async def _claim_or_replay(
    session: AsyncSession, command: PaymentCommand, request_fingerprint: str, *, claim_lease_seconds: float
) -> _Claim | PaymentOutcome:
    for _ in range(_CLAIM_ATTEMPTS):
        async with session.begin():
            order = await queries.get_order(session, order_id=command.order_id)
            if order is None or order.user_id != command.user_id:
                raise OrderNotFound("no such order")
            token = await queries.claim_idempotency_key(
                session, user_id=command.user_id, key=command.idempotency_key, fingerprint=request_fingerprint
            )
            if token is not None:
                _check_payable(order, command)  # raising rolls the claim back: nothing is stored
                return _Claim(token)
            record = await queries.get_idempotency_record(session, user_id=command.user_id, key=command.idempotency_key)
            if record is None:
                continue  # released between our INSERT and SELECT: try to claim again
            if record.request_fingerprint != request_fingerprint:
                raise IdempotencyKeyReused("this idempotencyKey was already used with different input; use a new key")
            if record.state == "completed" and record.response_body is not None:
                body = {**record.response_body, "idempotentReplay": True}
                return PaymentOutcome(status=record.response_status or 200, body=body)
            token = await queries.take_over_stale_claim(
                session,
                user_id=command.user_id,
                key=command.idempotency_key,
                fingerprint=request_fingerprint,
                token=record.updated_at,
                lease_seconds=claim_lease_seconds,
            )
            if token is not None:
                _check_payable(order, command)
                return _Claim(token)
            raise IdempotencyInProgress(
                "a request with this idempotencyKey is still being processed; retry shortly", retryable=True
            )
    raise IdempotencyInProgress("the idempotencyKey is contended; retry shortly", retryable=True)


async def _charge(
    session: AsyncSession,
    command: PaymentCommand,
    provider: PaymentProvider,
    claim: _Claim,
    *,
    provider_timeout: float,
) -> PaymentOutcome:
    async with session.begin():
        order = await queries.get_order(session, order_id=command.order_id, for_update=True)
        if order is None:  # pragma: no cover - orders with payments cannot be deleted (RESTRICT)
            raise OrderNotFound("no such order")
        _check_payable(order, command)
        request = ChargeRequest(
            idempotency_key=provider_key(command),
            order_id=command.order_id,
            user_id=command.user_id,
            amount=command.amount,
            currency=command.currency,
        )
        try:
            async with asyncio.timeout(provider_timeout):
                result = await provider.charge(request)
        except (TimeoutError, ProviderTimeout) as exc:
            raise ProviderUnavailable(
                "the payment provider did not answer in time; nothing was recorded, retry with the same key",
                code="PROVIDER_TIMEOUT",
                retryable=True,
            ) from exc
        except ProviderError as exc:
            raise ProviderUnavailable(
                "the payment provider is unavailable; nothing was recorded, retry with the same key",
                retryable=True,
            ) from exc
        order_status = "paid" if result.status == "approved" else "payment_failed"
        payment_id, created_at = await queries.insert_payment(
            session,
            order_id=command.order_id,
            user_id=command.user_id,
            amount=command.amount,
            currency=command.currency,
            status=result.status,
            provider=provider.name,
            provider_reference=result.reference,
            idempotency_key=command.idempotency_key,
        )
        await queries.set_order_status(session, order_id=command.order_id, status=order_status)
        body = PaymentResult(
            paymentId=payment_id,
            orderId=command.order_id,
            status=result.status,
            orderStatus=order_status,
            amount=command.amount,
            currency=command.currency,
            providerReference=result.reference,
            idempotentReplay=False,
            createdAt=created_at,
        ).model_dump(mode="json")
        completed = await queries.complete_idempotency_key(
            session,
            user_id=command.user_id,
            key=command.idempotency_key,
            token=claim.token,
            response_status=200,
            response_body=body,
        )
        if not completed:  # our claim was taken over after the lease: let the new holder finish
            raise IdempotencyInProgress("the claim on this idempotencyKey expired; retry shortly", retryable=True)
    return PaymentOutcome(status=200, body=body)


async def _release(sessions: async_sessionmaker[AsyncSession], command: PaymentCommand, claim: _Claim) -> None:
    """Best effort: if the database is down too, the claim stays until the lease expires."""
    try:
        async with sessions() as session, session.begin():
            await queries.release_idempotency_key(
                session, user_id=command.user_id, key=command.idempotency_key, token=claim.token
            )
    except Exception:  # the original error is the one worth raising
        logger.warning("idempotency_claim_release_failed", exc_info=True)

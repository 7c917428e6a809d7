"""The payment-provider seam: a Protocol, its value types and its errors."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol

__all__ = ["ChargeRequest", "ChargeResult", "PaymentProvider", "ProviderError", "ProviderTimeout"]


class ProviderError(Exception):
    """The provider could not give an answer (unreachable, 5xx). The charge's outcome is unknown."""


class ProviderTimeout(ProviderError):
    """The provider did not answer within the deadline. The charge may or may not have happened."""


@dataclass(frozen=True)
class ChargeRequest:
    """One charge. ``idempotency_key`` is stable for a (user, client key) pair, so a retry after a
    timeout reaches the provider with the same key and cannot charge twice."""

    idempotency_key: str
    order_id: uuid.UUID
    user_id: uuid.UUID
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class ChargeResult:
    status: Literal["approved", "declined"]
    reference: str | None
    decline_reason: str | None = None


class PaymentProvider(Protocol):
    """Charges money. Implementations must be idempotent on ``ChargeRequest.idempotency_key``."""

    @property
    def name(self) -> str: ...

    async def charge(self, request: ChargeRequest) -> ChargeResult: ...

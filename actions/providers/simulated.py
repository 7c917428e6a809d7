"""A deterministic stand-in for a card processor, for development and tests.

* amounts whose two-decimal form ends in ``decline_suffix`` (default ``.13``) are declined;
* amounts ending in ``timeout_suffix`` (default ``.42``) or listed in ``timeout_amounts`` raise
  ProviderTimeout;
* everything else is approved with reference ``sim_<sha256(idempotency key)[:24]>``: the same key always
  gives the same reference, as a real provider's idempotent replay would.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable
from decimal import Decimal

from actions.providers.base import ChargeRequest, ChargeResult, ProviderTimeout

__all__ = ["SimulatedProvider"]

_CENTS = Decimal("0.01")


class SimulatedProvider:
    """Deterministic PaymentProvider; see the module docstring for the rules."""

    def __init__(
        self,
        *,
        decline_suffix: str = ".13",
        timeout_suffix: str = ".42",
        timeout_amounts: Iterable[Decimal] = (),
        latency_seconds: float = 0.0,
    ) -> None:
        self._decline_suffix = decline_suffix
        self._timeout_suffix = timeout_suffix
        self._timeout_amounts = frozenset(timeout_amounts)
        self._latency = latency_seconds
        self.calls: list[ChargeRequest] = []

    @property
    def name(self) -> str:
        return "simulated"

    @staticmethod
    def reference_for(idempotency_key: str) -> str:
        return "sim_" + hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:24]

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        self.calls.append(request)
        if self._latency:
            await asyncio.sleep(self._latency)
        two_decimals = format(request.amount.quantize(_CENTS), "f")
        if request.amount in self._timeout_amounts or (
            self._timeout_suffix and two_decimals.endswith(self._timeout_suffix)
        ):
            raise ProviderTimeout(f"simulated timeout for {two_decimals} {request.currency}")
        reference = self.reference_for(request.idempotency_key)
        if self._decline_suffix and two_decimals.endswith(self._decline_suffix):
            return ChargeResult(status="declined", reference=reference, decline_reason="card_declined")
        return ChargeResult(status="approved", reference=reference)

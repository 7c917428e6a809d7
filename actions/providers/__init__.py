"""Payment providers behind one Protocol; ``make_provider(settings)`` picks the configured one."""

from __future__ import annotations

from actions.providers.base import ChargeRequest, ChargeResult, PaymentProvider, ProviderError, ProviderTimeout
from actions.providers.simulated import SimulatedProvider
from actions.settings import ActionsSettings

__all__ = [
    "ChargeRequest",
    "ChargeResult",
    "PaymentProvider",
    "ProviderError",
    "ProviderTimeout",
    "SimulatedProvider",
    "make_provider",
]


def make_provider(settings: ActionsSettings) -> PaymentProvider:
    # settings.payment_provider is a Literal with one member today; a real provider adds a branch here.
    return SimulatedProvider(
        decline_suffix=settings.simulated_decline_suffix,
        timeout_suffix=settings.simulated_timeout_suffix,
        timeout_amounts=settings.simulated_timeout_amounts,
        latency_seconds=settings.simulated_latency_seconds,
    )

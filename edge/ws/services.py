"""What a bridge needs from the rest of the edge (built once in ``create_app``), and its settings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from edge.graphql.analysis import Analyser, OperationAnalysis
from edge.graphql.policy import OperationRejected, Violation
from edge.limits.base import CostBudgets, Limiter
from edge.pipeline.analyse_operation import CostModelHolder
from edge.pipeline.authenticate import Authenticate
from edge.pipeline.identify_plan import IdentifyPlan
from edge.plans import GraphQLLimits, Plan
from edge.ws.counters import SubscriptionCounter
from edge.ws.protocols import CloseCode
from edge.ws.upstream import UpstreamConnector

if TYPE_CHECKING:
    from edge.observability.metering import UsageMeter
    from edge.observability.recorder import RequestObserver
    from edge.session import Identity

__all__ = ["OpenSocket", "Registry", "Services", "WebSocketConfig"]

_FLUSH_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class WebSocketConfig:
    init_timeout: float = 3.0
    keepalive: float = 5.0
    messages_per_second: float = 50.0
    message_burst: int = 100
    send_queue_messages: int = 256
    expiry_grace: float = 0.0
    recheck_seconds: float = 30.0
    upstream_reconnect_attempts: int = 2
    upstream_reconnect_delay: float = 0.5


class OpenSocket(Protocol):
    """What the registry uses of an open socket's bridge (``edge.ws.bridge.Bridge``)."""

    identity: Identity | None
    close_code: int | None

    def active_subscriptions(self) -> int: ...

    def end_credentials(self, reason: str) -> None: ...

    async def recheck(self) -> None: ...

    def close(self, code: int, reason: str = "") -> None: ...

    def drain(self, reason: str) -> None: ...


class Registry:
    """The open bridges of this process (for shutdown, revocation and metrics)."""

    def __init__(self) -> None:
        self.bridges: set[OpenSocket] = set()

    def add(self, bridge: OpenSocket) -> None:
        self.bridges.add(bridge)

    def discard(self, bridge: OpenSocket) -> None:
        self.bridges.discard(bridge)

    def __len__(self) -> int:
        return len(self.bridges)

    def subscriptions(self) -> int:
        """Active subscriptions over every open socket (read at metrics scrape time)."""
        return sum(bridge.active_subscriptions() for bridge in list(self.bridges))

    def close_key(self, key_id: str, reason: str = "API key revoked") -> int:
        """Close every socket authenticated with this API key (e.g. right after revoking it here)."""
        closed = 0
        for bridge in list(self.bridges):
            identity = bridge.identity
            if identity is not None and identity.api_key is not None and identity.api_key.key_id == key_id:
                bridge.end_credentials(reason)
                closed += 1
        return closed

    async def recheck_key(self, key_id: str) -> int:
        """Verify again every socket using this API key (call it after ``ApiKeyStore.invalidate``, e.g. from
        the admin revoke route): revoked or expired keys close with 4403 at once. Returns how many closed."""
        using = [
            bridge
            for bridge in list(self.bridges)
            if bridge.identity is not None
            and bridge.identity.api_key is not None
            and bridge.identity.api_key.key_id == key_id
        ]
        await asyncio.gather(*(bridge.recheck() for bridge in using))
        return sum(1 for bridge in using if bridge.close_code is not None)

    def close_all(self, code: int, reason: str) -> None:
        for bridge in list(self.bridges):
            bridge.close(code, reason)

    async def drain(self, timeout: float, reason: str = "Server shutting down") -> None:
        """Graceful shutdown: every socket closes with 1001 once its queries and mutations in flight have
        their results, or after ``timeout`` seconds (what is still in flight then ends with an error)."""
        for bridge in list(self.bridges):
            bridge.drain(reason)
        await self._wait_empty(timeout)
        self.close_all(CloseCode.GOING_AWAY, reason)
        await self._wait_empty(_FLUSH_SECONDS)  # the errors and close frames written before the server closes

    async def _wait_empty(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.bridges and loop.time() < deadline:
            await asyncio.sleep(0.05)


@dataclass(slots=True)
class Services:
    authenticate: Authenticate
    identify_plan: IdentifyPlan
    analyser: Analyser | Callable[..., OperationAnalysis]
    costs: CostModelHolder
    check: Callable[[OperationAnalysis, int | None, GraphQLLimits], list[Violation]]
    first_rejection: Callable[[list[Violation]], OperationRejected | None]
    limiter: Limiter
    budgets: CostBudgets
    counter: SubscriptionCounter
    connector: UpstreamConnector
    admin_secret: str
    connection_plan: Plan | None
    registry: Registry
    connection_plans: dict[str, Plan] = field(default_factory=dict)
    """Per-plan connection-rate plans, built once (see ``Bridge._admit``)."""
    meter: UsageMeter | None = None
    """Subscription-seconds per key and per user, recorded when each subscription ends."""
    observer: RequestObserver | None = None
    """Request metrics and access log, each operation once it has ended (``edge.ws.observation``)."""
    on_warn_only: Callable[[str, str], None] | None = None
    """Called with (limit, plan name) for each warn-only violation (``EdgeMetrics.limit_warn_only``)."""
    introspection_roles: frozenset[str] = frozenset()
    """Roles that may introspect whatever their plan says (``EDGE_INTROSPECTION_ROLES``), as over HTTP."""

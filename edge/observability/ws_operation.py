"""One WebSocket operation once it has ended, as the request observer records it.

``edge.ws.observation`` builds it when the operation ends; ``RequestObserver.websocket_operation`` counts
it in the request metrics and hands it to ``AccessLog.record_websocket`` for its line.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.session import Identity

__all__ = ["EndedOperation"]


@dataclass(frozen=True, slots=True)
class EndedOperation:
    request_id: str
    """The connection's request id (the handshake's ``X-Request-Id``, else one the edge made)."""
    operation_id: str
    """The client's id for the operation."""
    operation_type: str | None
    operation_name: str | None
    query: str | None
    identity: Identity | None
    plan: str
    status: int
    """What an HTTP request with the same outcome gets (``edge.ws.observation``)."""
    outcome: str
    error_code: str | None
    duration: float
    """Seconds from its ``subscribe``/``start`` to its end."""
    cost_estimated: int | None

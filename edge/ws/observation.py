"""A WebSocket operation observed like an HTTP request: counted in the request metrics, one access-log line.

Each operation (``subscribe``/``start`` with an id) is recorded once, when it ends:

- refused by the edge (analysis, the plan's limits, bad ``variables``/``operationName``): at once;
- a query or mutation: when Hasura's ``complete`` (after its result) or ``error`` arrives, or when it ends
  without a result (the edge ends it with an error for its id, the client stops it, the socket ends);
- a subscription: when it ends, whoever ends it, with how long it ran.

A ``subscribe`` without a usable id or query is a protocol error, not an operation, and is not recorded.

``outcome`` says how it ended; ``status`` is the status an HTTP request with the same outcome gets, so the
requests metrics read alike on both transports (``status=~"5.."`` are the edge's or Hasura's failures):

=========== ============================================================== =======================================
outcome     when                                                           status
=========== ============================================================== =======================================
completed   Hasura completed it (after its result)                         200
error       Hasura answered with ``error`` (as over HTTP, where Hasura     200
            answers GraphQL errors with 200)
stopped     the client's ``complete``/``stop``                             200; 499 for a query or mutation that
                                                                           had no result yet (client went away)
closed      the socket ended while it was open                             as ``stopped``
refused     the edge refused it                                            the error's (400, 403, 429, 503...)
aborted     the edge ended it with an error for its id (``code``:          502 for ``upstream-unavailable`` and
            ``connection-closed``, ``upstream-unavailable``,               ``upstream-renewed``, 503 for
            ``upstream-renewed``; ``docs/subscriptions.md``)               ``connection-closed``
=========== ============================================================== =======================================

``refused`` and ``aborted`` also count in ``edge_rejections_total{code, transport="websocket"}``: the client
got an error the edge made, with that ``extensions.code``, as every HTTP rejection counts there.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from edge.errors import ServiceUnavailable, UpstreamUnavailable
from edge.graphql.analysis import OperationAnalysis
from edge.observability.recorder import RequestObserver
from edge.observability.ws_operation import EndedOperation
from edge.session import Identity

__all__ = ["CLIENT_CLOSED", "OperationRecord", "record_operation"]

log = logging.getLogger("edge.ws")

CLIENT_CLOSED = 499
"""The status of a query or mutation whose client left before its result (nginx's "client closed request")."""
_ABORTED_STATUS = {
    "upstream-unavailable": UpstreamUnavailable.status,
    "upstream-renewed": UpstreamUnavailable.status,
    "connection-closed": ServiceUnavailable.status,
}


@dataclass(slots=True)
class OperationRecord:
    """What is known of one operation, from its ``subscribe``/``start`` on (never its variables)."""

    operation_id: str
    query: str
    started: float
    """``time.perf_counter()`` when its message arrived."""
    operation_name: str | None = None
    operation_type: str | None = None
    cost: int | None = None
    error: bool = False
    """Hasura answered ``error`` (on ``graphql-ws`` its ``complete`` follows, which ends the operation)."""

    def analysed(self, analysis: OperationAnalysis, cost: int) -> None:
        self.operation_type = analysis.operation_type
        self.operation_name = analysis.operation_name
        self.cost = cost


def status_of(record: OperationRecord, outcome: str, code: str | None) -> int:
    """The HTTP status of an operation that ended with ``outcome`` (not ``refused``: the error has its own)."""
    if code is not None:
        return _ABORTED_STATUS.get(code, 500)
    if outcome in ("stopped", "closed") and record.operation_type != "subscription":
        return CLIENT_CLOSED
    return 200


def record_operation(
    observer: RequestObserver,
    record: OperationRecord,
    outcome: str,
    *,
    request_id: str,
    identity: Identity | None,
    plan: str,
    code: str | None = None,
    status: int | None = None,
) -> None:
    """Hand one ended operation to the observer; never raises (observing never breaks a socket)."""
    try:
        ended = EndedOperation(
            request_id=request_id,
            operation_id=record.operation_id,
            operation_type=record.operation_type,
            operation_name=record.operation_name,
            query=record.query,
            identity=identity,
            plan=plan,
            status=status if status is not None else status_of(record, outcome, code),
            outcome=outcome,
            error_code=code,
            duration=time.perf_counter() - record.started,
            cost_estimated=record.cost,
        )
        observer.websocket_operation(ended)
    except Exception:
        log.exception("ws_observation_failed", extra={"request_id": request_id})

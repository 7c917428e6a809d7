"""The one call the ``/graphql`` handler makes once a request is answered: metrics, access log, usage.

``RequestObserver.finished(ctx, ...)`` keeps the handler to one line per exit path. What it records:

- metrics: ``observe_request`` once per operation (a batch of n counts n operations, each with the HTTP
  status), ``rejected(code)`` for an edge error, ``cost(estimated, actual, plan)``, ``observe_upstream``;
- the access log: one line per operation (``AccessLog.record``);
- usage, only for requests Hasura answered (``ctx.response`` is set): refused requests (401, 429, 400...)
  are not billed. ``requests`` is the number of operations, ``cost_points`` the actual cost when counted,
  else the estimate; recorded for the API key (``key_id``) and for the user (``x-hasura-user-id``), each
  when present.

``websocket_operation(ended)`` is the same for one operation over a WebSocket, once it has ended: the requests
and rejections metrics with ``transport="websocket"`` and its access-log line. Usage over a WebSocket is
subscription-seconds, which ``edge.ws.bridge`` meters itself.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from edge.context import RequestContext
from edge.observability.access_log import AccessLog
from edge.observability.metering import UsageMeter
from edge.observability.metrics import EdgeMetrics
from edge.observability.ws_operation import EndedOperation

__all__ = ["RequestObserver"]


class RequestObserver:
    """Metrics, access log and usage meter behind one call; any of the three may be None (off)."""

    def __init__(
        self,
        *,
        metrics: EdgeMetrics | None = None,
        access_log: AccessLog | None = None,
        meter: UsageMeter | None = None,
    ) -> None:
        self.metrics = metrics
        self.access_log = access_log
        self.meter = meter

    def finished(
        self,
        ctx: RequestContext,
        *,
        status: int,
        started: float,
        upstream_duration: float | None = None,
        error_code: str | None = None,
        estimated_costs: Sequence[int] | None = None,
        actual_costs: Sequence[int] | None = None,
        rows: int = 0,
    ) -> None:
        """Record one answered request. ``started`` is ``time.perf_counter()`` at its arrival."""
        duration = time.perf_counter() - started
        # Every field of ``ctx`` is read once, into a local.
        identity = ctx.identity
        role = identity.session.role if identity is not None else ""
        plan = ctx.plan_name
        analyses = ctx.analyses
        estimated = ctx.estimated_cost
        actual = sum(actual_costs) if actual_costs is not None else None
        metrics = self.metrics
        if metrics is not None:
            if analyses:
                for analysis in analyses:
                    metrics.observe_request(analysis.operation_type, status, plan, role, duration)
            else:
                metrics.observe_request("none", status, plan, role, duration)
            if error_code is not None:
                metrics.rejected(error_code)
            if upstream_duration is not None:
                metrics.observe_upstream(upstream_duration)
            if estimated or actual:
                metrics.cost(estimated, actual, plan)
        access_log = self.access_log
        if access_log is not None:
            access_log.record(
                ctx,
                status=status,
                duration=duration,
                upstream_duration=upstream_duration,
                error_code=error_code,
                estimated_costs=estimated_costs,
                actual_costs=actual_costs,
            )
        meter = self.meter
        if meter is None or identity is None or ctx.response is None:
            return
        requests = len(analyses) or 1
        points = actual if actual is not None else estimated
        if identity.api_key is not None:
            meter.record("key", identity.api_key.key_id, requests=requests, cost_points=points, rows=rows)
        user_id = identity.session.user_id
        if user_id:
            meter.record("user", user_id, requests=requests, cost_points=points, rows=rows)

    def websocket_operation(self, ended: EndedOperation) -> None:
        """Record one ended WebSocket operation (see ``edge.ws.observation``)."""
        metrics = self.metrics
        if metrics is not None:
            role = ended.identity.session.role if ended.identity is not None else ""
            metrics.observe_websocket_operation(
                ended.operation_type or "none", ended.status, ended.plan, role, ended.duration
            )
            if ended.error_code is not None:
                metrics.websocket_rejected(ended.error_code)
        access_log = self.access_log
        if access_log is not None:
            access_log.record_websocket(ended)

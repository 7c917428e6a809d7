"""The order of the stages, declared once: the sequence the handlers run.

A stage is a callable taking the request's :class:`~edge.context.RequestContext`. It fills its part
of the context or raises an :class:`~edge.errors.EdgeError`. Stages that may wait return an
awaitable (``async def __call__``), which the handler awaits; the others return None and stay plain
calls: a coroutine per stage per request is measurable on the hot path.

:class:`Stages` names one stage per step, in the order the request meets them; its
:meth:`Stages.sequence` is exactly what :class:`edge.graphql_http.GraphQLHTTPHandler` runs. Another
path declares a variant with ``dataclasses.replace``: ``edge.rest`` replaces receive, proxy and respond,
adds ``resolve_endpoint``, and runs the other steps, the same objects, in the same order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

from edge.context import RequestContext

__all__ = ["Stage", "Stages"]

Stage = Callable[[RequestContext], Awaitable[None] | None]
"""One step of the request path: fills the context or raises an EdgeError; awaited only when it
returns an awaitable."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Stages:
    """The request path, one field per step, declared in the order the steps run."""

    receive: Stage
    """``pipeline/receive_request.py``: method, content type, body, JSON (405, 413, 415, 400)."""
    authenticate: Stage
    """``pipeline/authenticate.py``: JWT, API key, authorizer or the unauthorized role (401, 403)."""
    identify_plan: Stage
    """``pipeline/identify_plan.py``: usage plan, roles on it (403), limit key."""
    resolve_endpoint: Stage | None = None
    """REST only (``edge/rest/handler.py``): the endpoint's operation and variables; /graphql has it
    from the body already."""
    analyse: Stage
    """``pipeline/analyse_operation.py``: depth, cost, the plan's GraphQL limits, safelist (400)."""
    limit: Stage
    """``pipeline/limit.py``: rate, burst, quota, cost budget (429, 503)."""
    inject_session: Stage
    """``pipeline/inject_session.py``: the trust boundary, the headers Hasura receives."""
    proxy: Stage
    """``pipeline/proxy.py`` (502, 503, 504), inside ``pipeline/cached_proxy.py`` when the response
    cache is on and ``pipeline/traced_proxy.py`` when tracing is on."""
    finish: Stage
    """``pipeline/finish_response.py``: actual cost and refund, ``extensions.cost``, no suggestions."""
    respond: Stage
    """``pipeline/respond.py``: the response's headers, gzip, sent."""

    def sequence(self) -> tuple[Stage, ...]:
        """The stages in the declared order (the order of the fields above), the absent ones left out."""
        steps = (getattr(self, field.name) for field in dataclasses.fields(self))
        return tuple(step for step in steps if step is not None)

"""The one object each stage of the ``/graphql`` pipeline reads and extends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from edge.session import Identity, Session
from edge.upstream.base import UpstreamResponse

if TYPE_CHECKING:
    from edge.graphql.analysis import OperationAnalysis
    from edge.limits.decision import BudgetDecision
    from edge.observability.tracing import RequestSpan
    from edge.plans import Plan
    from edge.rest.call import RestCall

__all__ = ["BodyReader", "RequestContext", "Responder"]

Headers = list[tuple[bytes, bytes]]
BodyReader = Callable[[int], Awaitable[bytes]]
"""``read_body(limit)``: the whole request body; raises PayloadTooLarge past ``limit`` bytes, ClientDisconnected."""
Responder = Callable[[int, list[tuple[bytes, bytes]], bytes], Awaitable[None] | None]
"""``respond(status, headers, body)``: send one complete response (``content-length`` is added); it
returns an awaitable when sending may wait (ASGI's ``send``), None when it has written already."""


class RequestContext:
    """State of one HTTP request as it moves through the pipeline.

    The handler makes it with what the server gives (method, headers, the body or its reader, the
    responder); stages fill it in order: ``receive_request`` (``body``, ``operations``), ``authenticate``
    (``identity``), ``identify_plan`` (``plan``, ``limit_key``), ``analyse_operation``
    (``analyses``, ``estimated_cost``), ``limit`` (``limit_headers``, ``budget``),
    ``inject_session`` (``upstream_headers``), ``proxy`` (``response``, ``upstream_duration``),
    ``finish_response`` (``response``, ``actual_costs``, ``rows``), ``respond`` (``status``).

    The fields a stage fills start as class-level defaults, all immutable (``None``, ``0``, ``()``),
    and stages assign new values rather than mutate them: one request then allocates only what
    its stages actually produce (this object is built for every request on the hot path).
    """

    body: bytes = b""
    payload: Any = None
    """The decoded GraphQL request: one dict, or a list of dicts for a batch."""
    is_batch: bool = False
    identity: Identity | None = None
    plan_name: str = ""
    plan: Plan | None = None
    limit_key: str = ""
    analyses: Sequence[OperationAnalysis] = ()
    estimated_cost: int = 0
    estimated_costs: Sequence[int] = ()
    """Per operation, in order (``estimated_cost`` is their sum)."""
    actual_costs: Sequence[int] = ()
    """Per operation, counted from Hasura's rows (plans with a cost budget)."""
    rows: int = 0
    """Rows Hasura returned, when the answer was parsed (usage metering)."""
    limit_headers: Sequence[tuple[bytes, bytes]] = ()
    budget: BudgetDecision | None = None
    upstream_headers: Sequence[tuple[bytes, bytes]] = ()
    response: UpstreamResponse | None = None
    upstream_duration: float | None = None
    """Seconds the proxy stage waited for Hasura (None: it did not call Hasura)."""
    status: int = 0
    """The status the respond stage sent."""
    span: RequestSpan | None = None
    """The request's trace when tracing is on (the proxy stage opens the CLIENT span in it)."""
    rest_call: RestCall | None = None
    """REST endpoints only (``edge.rest``): the call, resolved into the operation and Hasura's target."""

    def __init__(
        self,
        *,
        method: str,
        headers: Headers,
        query_string: bytes,
        client: tuple[str, int] | None,
        request_id: str,
        origin: bytes | None = None,
        read_body: BodyReader | None = None,
        arrived_body: bytes | None = None,
        respond: Responder | None = None,
    ) -> None:
        """``arrived_body``: the whole body when the server had it already, else ``read_body`` reads it;
        ``respond``: what the respond stage sends the answer with."""
        self.method = method
        self.headers = headers
        self.query_string = query_string
        self.client = client
        self.request_id = request_id
        self.origin = origin
        self.read_body = read_body
        self.arrived_body = arrived_body
        self.respond = respond
        # First value of each (lower-case) header name, built once: header() is called several times.
        self.first_values: dict[bytes, bytes] = dict(reversed(headers))

    @property
    def operations(self) -> list[dict[str, Any]]:
        """The GraphQL requests in this HTTP request (one, or each of a batch)."""
        return self.payload if self.is_batch else [self.payload]

    @property
    def session(self) -> Session | None:
        return self.identity.session if self.identity is not None else None

    def header(self, name: bytes) -> bytes | None:
        """First value of a (lower-case) header name, or None."""
        return self.first_values.get(name)

    def header_values(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key == name]

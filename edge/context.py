"""The one object each stage of the ``/graphql`` pipeline reads and extends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edge.session import Identity, Session
from edge.upstream.base import UpstreamResponse

if TYPE_CHECKING:
    from edge.graphql.analysis import OperationAnalysis
    from edge.limits.decision import BudgetDecision
    from edge.plans import Plan

__all__ = ["RequestContext"]


@dataclass(slots=True)
class RequestContext:
    """State of one HTTP request as it moves through the pipeline.

    Stages fill it in order: ``receive_request`` (``body``, ``operations``), ``authenticate``
    (``identity``), ``identify_plan`` (``plan``, ``limit_key``), ``analyse_operation``
    (``analyses``, ``estimated_cost``), ``limit`` (``limit_headers``, ``budget``),
    ``inject_session`` (``upstream_headers``), ``proxy`` (``response``).
    """

    method: str
    headers: list[tuple[bytes, bytes]]
    query_string: bytes
    client: tuple[str, int] | None
    request_id: str
    origin: bytes | None = None
    body: bytes = b""
    payload: Any = None
    """The decoded GraphQL request: one dict, or a list of dicts for a batch."""
    is_batch: bool = False
    identity: Identity | None = None
    plan_name: str = ""
    plan: Plan | None = None
    limit_key: str = ""
    analyses: list[OperationAnalysis] = field(default_factory=list)
    estimated_cost: int = 0
    estimated_costs: list[int] = field(default_factory=list)
    """Per operation, in order (``estimated_cost`` is their sum)."""
    actual_costs: list[int] = field(default_factory=list)
    """Per operation, counted from Hasura's rows (plans with a cost budget)."""
    rows: int = 0
    """Rows Hasura returned, when the answer was parsed (usage metering)."""
    limit_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    budget: BudgetDecision | None = None
    upstream_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    response: UpstreamResponse | None = None
    first_values: dict[bytes, bytes] = field(default_factory=dict)
    """First value of each header name, built once (``header()`` is called several times)."""

    def __post_init__(self) -> None:
        self.first_values = dict(reversed(self.headers))

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

"""Usage plans (tiers): what a caller may do, declared in the edge's YAML configuration.

A plan bundles a request rate with burst, a calendar quota, a budget of cost points, GraphQL
limits and the roles its callers may use. Every request runs under exactly one plan:

- an API key's plan when the request carries ``X-API-Key``;
- otherwise ``jwt_plan`` for requests with verified credentials (JWT or authorizer);
- otherwise ``anonymous_plan`` (keyed by client address).

Example (``EDGE_CONFIG`` file)::

    plans:
      free:
        rate: {requests_per_second: 5, burst: 10}
        quota: {limit: 10000, period: MONTH}
        cost_budget: {maximum: 1000, restore_rate: 50}
        graphql: {max_depth: 6, max_cost: 500}
        roles: [user]
      partner:
        rate: {requests_per_second: 100, burst: 200}
        quota: {limit: 5000000, period: DAY, offset: "+02:00"}
    jwt_plan: free
    anonymous_plan: free

Unknown plan names (in ``jwt_plan``, ``anonymous_plan`` or an API key) are refused at start-up
or key creation with a message naming the plan.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "DEFAULT_PLAN",
    "CostBudget",
    "GraphQLLimits",
    "Plan",
    "Quota",
    "RateLimit",
    "WARN_ONLY_LIMITS",
    "parse_utc_offset",
    "with_introspection",
]

DEFAULT_PLAN = "default"
_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")


def parse_utc_offset(text: str) -> int:
    """``"+02:00"`` -> 7200 seconds; the offset shifts calendar period boundaries from UTC."""
    match = _OFFSET.fullmatch(text)
    if match is None:
        raise ValueError(f"offset {text!r} must look like +HH:MM or -HH:MM")
    sign, hours, minutes = match.groups()
    seconds = int(hours) * 3600 + int(minutes) * 60
    if seconds > 14 * 3600 or int(minutes) >= 60:
        raise ValueError(f"offset {text!r} is out of range")
    return seconds if sign == "+" else -seconds


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimit(_Strict):
    """Sustained ``requests_per_second`` with up to ``burst`` requests at once (GCRA)."""

    requests_per_second: float = Field(gt=0)
    burst: int = Field(ge=1)


class Quota(_Strict):
    """At most ``limit`` operations per calendar ``period`` in UTC, shifted by ``offset``."""

    limit: int = Field(ge=1)
    period: Literal["DAY", "WEEK", "MONTH"]
    offset: str = "+00:00"

    @field_validator("offset")
    @classmethod
    def _valid_offset(cls, value: str) -> str:
        parse_utc_offset(value)
        return value

    @property
    def offset_seconds(self) -> int:
        return parse_utc_offset(self.offset)


class CostBudget(_Strict):
    """A bucket of ``maximum`` cost points refilling at ``restore_rate`` points per second."""

    maximum: int = Field(ge=1)
    restore_rate: float = Field(gt=0)


WARN_ONLY_LIMITS = frozenset(
    {"introspection", "max_depth", "max_aliases", "max_root_fields", "max_directives", "max_cost", "max_batch_size"}
)
"""The limits a plan may list in ``warn_only``: those ``edge.graphql.policy`` reports as violations. The token
bound (``max_tokens``) stops the parser itself, so it always refuses."""


class GraphQLLimits(_Strict):
    """Per-operation limits, checked before Hasura is called."""

    max_depth: int = Field(default=10, ge=1)
    max_aliases: int = Field(default=30, ge=0)
    max_root_fields: int = Field(default=20, ge=1)
    max_batch_size: int = Field(default=5, ge=1)
    max_tokens: int = Field(default=15_000, ge=10)
    max_directives: int = Field(default=50, ge=0)
    max_cost: int | None = Field(default=None, ge=1)
    introspection: bool = False
    """Allow ``__schema``/``__type`` queries (``__typename`` is always allowed)."""
    warn_only: frozenset[str] = frozenset()
    """Limit names (``max_depth``, ``max_cost``...) that log and count instead of rejecting."""
    safelist: bool = False
    """Only operations whose hash is in the persisted-operations manifest may run."""

    @field_validator("warn_only")
    @classmethod
    def _known_limits(cls, names: frozenset[str]) -> frozenset[str]:
        # A misspelt name would leave its limit enforced while the operator believes it only warns.
        unknown = sorted(names - WARN_ONLY_LIMITS)
        if unknown:
            raise ValueError(
                f"unknown limit(s) {', '.join(unknown)}; warn_only takes {', '.join(sorted(WARN_ONLY_LIMITS))}"
            )
        return names


def with_introspection(limits: GraphQLLimits) -> GraphQLLimits:
    """The same limits with introspection allowed (for ``EDGE_INTROSPECTION_ROLES``), built once per plan."""
    return _opened(limits)


@lru_cache(maxsize=256)
def _opened(limits: GraphQLLimits) -> GraphQLLimits:
    return limits if limits.introspection else limits.model_copy(update={"introspection": True})


class Plan(_Strict):
    rate: RateLimit | None = None
    quota: Quota | None = None
    cost_budget: CostBudget | None = None
    graphql: GraphQLLimits = GraphQLLimits()
    max_subscriptions: int | None = Field(default=None, ge=0)
    """Concurrent subscriptions per connection and per key or user (None: unlimited)."""
    ws_connection_rate: RateLimit | None = None
    """New WebSocket connections per key or user (None: ``EDGE_WS_CONNECTIONS_PER_SECOND``)."""
    roles: frozenset[str] | None = None
    """Hasura roles callers on this plan may use (None: any role their credentials allow)."""

"""What a limiter decided, and the response fields that tell the client.

``LimitDecision.headers()`` gives the IETF draft fields (draft-ietf-httpapi-ratelimit-headers, the
widely deployed separate-field form) ``RateLimit-Limit``, ``RateLimit-Remaining`` and
``RateLimit-Reset`` (integer seconds), plus ``Retry-After`` on refusals.

Which limit the fields describe when a plan has both a rate and a quota: **the one closest to refusing**.

- Refused: the limit that refused (the quota when both did, since its wait is the longer one and
  retrying after the rate's wait would still fail).
- Allowed: the limit with the fewest ``remaining`` operations; on a tie, the one whose reset is further
  away. This is what the draft recommends when several policies apply, and it is the only choice that
  lets a well-behaved client pace itself: describing the rate alone would show ``remaining: 9`` to a
  client one request away from its monthly quota, and describing the quota alone would hide the burst
  it is about to hit.

``RateLimit-Limit`` is the burst for a rate (the most operations admitted at once) and the period
limit for a quota; ``RateLimit-Reset`` is the time until the bucket is full again (rate) or until the
period ends (quota), rounded up.

A decision with ``limit == 0`` describes no limit (plan without rate or quota, or a degraded decision
made without the store): ``headers()`` then carries no ``RateLimit-*`` fields.
"""

from __future__ import annotations

import math
from math import ceil as _ceil
from typing import Final, final

from edge.limits.calendar import QuotaResult
from edge.limits.gcra import EPSILON, GcraResult, gcra_available
from edge.plans import CostBudget

__all__ = [
    "ALLOWED_UNLIMITED",
    "LIMITER_UNAVAILABLE",
    "QUOTA_EXCEEDED",
    "RATE_LIMITED",
    "Admission",
    "BudgetDecision",
    "LimitDecision",
    "budget_decision",
    "ceil_seconds",
    "combine",
    "retry_seconds",
]

RATE_LIMITED = "rate-limited"
QUOTA_EXCEEDED = "quota-exceeded"
LIMITER_UNAVAILABLE = "limiter-unavailable"


@final
class LimitDecision:
    """Outcome of ``Limiter.hit``.

    ``code`` is None when allowed, else ``"rate-limited"``, ``"quota-exceeded"`` or ``"limiter-unavailable"``
    (store down with ``failure_mode="closed"``: answer 503). ``retry_after`` is None when allowed, and also
    when a refused request can never succeed (more operations than the burst or the quota limit): retrying
    the same request is pointless, so no ``Retry-After`` is sent. ``degraded`` is True when the store
    could not be reached and the decision was made without it.

    Immutable. A plain class rather than a frozen dataclass: compiled with mypyc it is built natively,
    where a frozen dataclass runs an interpreted ``__init__`` (a decision is made per limited request).
    """

    __slots__ = ("allowed", "code", "degraded", "limit", "remaining", "reset_seconds", "retry_after")

    def __init__(
        self,
        allowed: bool,
        code: str | None,
        limit: int,
        remaining: int,
        reset_seconds: int,
        retry_after: int | None,
        degraded: bool = False,
    ) -> None:
        self.allowed: Final = allowed
        self.code: Final = code
        self.limit: Final = limit
        self.remaining: Final = remaining
        self.reset_seconds: Final = reset_seconds
        self.retry_after: Final = retry_after
        self.degraded: Final = degraded

    def _fields(self) -> tuple[bool, str | None, int, int, int, int | None, bool]:
        return (
            self.allowed,
            self.code,
            self.limit,
            self.remaining,
            self.reset_seconds,
            self.retry_after,
            self.degraded,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LimitDecision):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        allowed, code, limit, remaining, reset_seconds, retry_after, degraded = self._fields()
        return (
            f"LimitDecision(allowed={allowed}, code={code!r}, limit={limit}, remaining={remaining}, "
            f"reset_seconds={reset_seconds}, retry_after={retry_after}, degraded={degraded})"
        )

    def headers(self) -> list[tuple[bytes, bytes]]:
        fields: list[tuple[bytes, bytes]] = []
        if self.limit > 0:
            fields.append((b"ratelimit-limit", str(self.limit).encode()))
            fields.append((b"ratelimit-remaining", str(self.remaining).encode()))
            fields.append((b"ratelimit-reset", str(self.reset_seconds).encode()))
        if not self.allowed and self.retry_after is not None:
            fields.append((b"retry-after", str(self.retry_after).encode()))
        return fields


ALLOWED_UNLIMITED = LimitDecision(True, None, 0, 0, 0, None)


@final
class BudgetDecision:
    """Outcome of ``CostBudgets.charge``: ``available`` points after charging (before, when refused).

    ``retry_after`` is None when allowed or when ``requested > maximum`` (never satisfiable).
    Immutable; a plain class for mypyc, as ``LimitDecision`` (one is made per request with a cost budget).
    """

    __slots__ = ("allowed", "available", "degraded", "maximum", "requested", "restore_rate", "retry_after")

    def __init__(
        self,
        allowed: bool,
        requested: int,
        maximum: int,
        available: float,
        restore_rate: float,
        retry_after: int | None,
        degraded: bool = False,
    ) -> None:
        self.allowed: Final = allowed
        self.requested: Final = requested
        self.maximum: Final = maximum
        self.available: Final = available
        self.restore_rate: Final = restore_rate
        self.retry_after: Final = retry_after
        self.degraded: Final = degraded

    def _fields(self) -> tuple[bool, int, int, float, float, int | None, bool]:
        return (
            self.allowed,
            self.requested,
            self.maximum,
            self.available,
            self.restore_rate,
            self.retry_after,
            self.degraded,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BudgetDecision):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        allowed, requested, maximum, available, restore_rate, retry_after, degraded = self._fields()
        return (
            f"BudgetDecision(allowed={allowed}, requested={requested}, maximum={maximum}, available={available}, "
            f"restore_rate={restore_rate}, retry_after={retry_after}, degraded={degraded})"
        )


@final
class Admission:
    """Outcome of ``Limiter.admit``: the rate/quota decision, and the cost budget's charge.

    ``budget`` is None when the plan has no cost budget, and when ``limit`` refused (nothing was charged).
    A plain class for mypyc, as ``LimitDecision``.
    """

    __slots__ = ("budget", "limit")

    def __init__(self, limit: LimitDecision, budget: BudgetDecision | None) -> None:
        self.limit: Final = limit
        self.budget: Final = budget

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Admission):
            return NotImplemented
        return (self.limit, self.budget) == (other.limit, other.budget)

    def __hash__(self) -> int:
        return hash((self.limit, self.budget))

    def __repr__(self) -> str:
        return f"Admission(limit={self.limit!r}, budget={self.budget!r})"


def ceil_seconds(seconds: float) -> int:
    """Whole seconds, rounded up (ignoring float noise below EPSILON); never negative."""
    return max(math.ceil(seconds - EPSILON), 0)


def retry_seconds(seconds: float) -> int | None:
    """``Retry-After`` for a wait of ``seconds``: None when the request can never succeed (an infinite wait)."""
    return None if seconds == math.inf else max(ceil_seconds(seconds), 1)


def combine(rate: GcraResult | None, rate_limit: int, quota: QuotaResult | None, quota_limit: int) -> LimitDecision:
    """One decision from the rate step and the quota step (either may be absent; not both)."""
    # reset_after is never negative, so ceil(x - EPSILON) is ceil_seconds(x) without the call.
    if quota is not None and not quota.allowed:
        wait = quota.retry_after if rate is None or rate.allowed else max(quota.retry_after, rate.retry_after)
        return LimitDecision(
            False, QUOTA_EXCEEDED, quota_limit, quota.remaining, _ceil(quota.reset_after - EPSILON), retry_seconds(wait)
        )
    if rate is not None and not rate.allowed:
        return LimitDecision(
            False,
            RATE_LIMITED,
            rate_limit,
            rate.remaining,
            _ceil(rate.reset_after - EPSILON),
            retry_seconds(rate.retry_after),
        )
    if quota is not None and (
        rate is None
        or quota.remaining < rate.remaining
        or (quota.remaining == rate.remaining and quota.reset_after >= rate.reset_after)
    ):
        return LimitDecision(True, None, quota_limit, quota.remaining, _ceil(quota.reset_after - EPSILON), None)
    assert rate is not None
    return LimitDecision(True, None, rate_limit, rate.remaining, _ceil(rate.reset_after - EPSILON), None)


def budget_decision(
    allowed: bool, retry_after: float, tat: float | None, *, now: float, budget: CostBudget, points: int
) -> BudgetDecision:
    """The ``BudgetDecision`` for a GCRA step on a cost budget whose state is now ``tat``."""
    return BudgetDecision(
        allowed=allowed,
        requested=points,
        maximum=budget.maximum,
        available=gcra_available(tat, now=now, rate=budget.restore_rate, burst=budget.maximum),
        restore_rate=budget.restore_rate,
        retry_after=None if allowed else retry_seconds(retry_after),
    )

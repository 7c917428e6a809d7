"""Generic Cell Rate Algorithm (GCRA): a rate with burst, stored as ONE number, as a pure function.

The state is the theoretical arrival time (TAT): the instant at which the key's bucket would be full
again. With ``interval = 1 / rate`` and ``capacity = burst * interval``, a request of ``cost`` operations
is allowed when ``max(tat, now) + cost * interval - now <= capacity``. From a full bucket that admits
``burst`` operations at once, then one every ``interval``. Equivalent to a token bucket of ``burst``
tokens refilled at ``rate`` per second, with less state. ``tat=None`` (unknown key) means full.

All or nothing: a batched request of 5 operations costs 5 and is refused whole if 5 do not fit; a
refused request leaves the TAT unchanged. ``cost > burst`` can never succeed: ``retry_after`` is
``math.inf``.

The Redis script in ``redis_store.py`` implements the same formulas (same EPSILON, same order of
operations), so in-memory and Redis limiters decide alike.

    >>> r = gcra(None, now=100.0, rate=1.0, burst=2)
    >>> r.allowed, r.remaining, r.new_tat
    (True, 1, 101.0)
"""

from __future__ import annotations

import math
from typing import Final, final

__all__ = ["EPSILON", "GcraResult", "gcra", "gcra_available", "gcra_refund"]

EPSILON = 1e-6
"""Seconds of slack in comparisons: float epoch seconds near 1.7e9 have a resolution of ~2.4e-7 s."""


@final
class GcraResult:
    """Outcome of one GCRA step (a plain class: compiled, it is built natively, where a NamedTuple runs
    an interpreted ``__new__``; one or two are made per limited request).

    - ``new_tat``: the state to store when allowed (equal to the effective old state when refused);
    - ``remaining``: whole operations that would still be admitted right now (after this one if allowed);
    - ``retry_after``: seconds until this same request would be allowed (0 if allowed, inf if never);
    - ``reset_after``: seconds until the bucket is full again.
    """

    __slots__ = ("allowed", "new_tat", "remaining", "reset_after", "retry_after")

    def __init__(self, allowed: bool, new_tat: float, remaining: int, retry_after: float, reset_after: float) -> None:
        self.allowed: Final = allowed
        self.new_tat: Final = new_tat
        self.remaining: Final = remaining
        self.retry_after: Final = retry_after
        self.reset_after: Final = reset_after

    def fields(self) -> tuple[bool, float, int, float, float]:
        return (self.allowed, self.new_tat, self.remaining, self.retry_after, self.reset_after)

    def __eq__(self, other: object) -> bool:
        return self.fields() == other.fields() if isinstance(other, GcraResult) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.fields())

    def __repr__(self) -> str:
        return (
            f"GcraResult(allowed={self.allowed!r}, new_tat={self.new_tat!r}, remaining={self.remaining!r}, "
            f"retry_after={self.retry_after!r}, reset_after={self.reset_after!r})"
        )


def gcra(tat: float | None, *, now: float, rate: float, burst: int, cost: int = 1) -> GcraResult:
    """One all-or-nothing GCRA step for ``cost`` operations at ``rate``/s with ``burst`` capacity."""
    interval = 1.0 / rate
    capacity = burst * interval
    base = now if tat is None or tat < now else tat
    new_tat = base + cost * interval
    backlog = new_tat - now
    if backlog <= capacity + EPSILON:
        remaining = max(math.floor((capacity - backlog) / interval + EPSILON), 0)
        return GcraResult(True, new_tat, remaining, 0.0, backlog)
    used = base - now
    remaining = max(math.floor((capacity - used) / interval + EPSILON), 0)
    retry_after = math.inf if cost > burst else backlog - capacity
    return GcraResult(False, base, remaining, retry_after, used)


def gcra_available(tat: float | None, *, now: float, rate: float, burst: int) -> float:
    """Fractional operations (points) available at ``now``: ``burst`` when full."""
    if tat is None or tat <= now:
        return float(burst)
    return max(burst - (tat - now) * rate, 0.0)


def gcra_refund(tat: float | None, *, now: float, rate: float, cost: int) -> float | None:
    """Give back ``cost`` operations: the new TAT, never below ``now`` (so never above full); None when full."""
    if tat is None or tat <= now:
        return None
    new_tat = tat - cost / rate
    return new_tat if new_tat > now else None

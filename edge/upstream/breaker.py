"""A circuit breaker per upstream target: a pure state machine over an injected clock.

::

    closed ──(failure_threshold consecutive failures)──> open
    open ──(reset_timeout elapsed; noticed by allow()/state/retry_after())──> half_open
    half_open ──(a probe succeeds)──> closed
    half_open ──(a probe fails)──> open (the reset_timeout starts again)

While closed every call is allowed; while open none is (``allow()`` is False and ``retry_after()``
says when a probe may go); while half-open at most ``half_open_max_calls`` probes are in flight.

What counts as a failure is decided by :func:`is_failure` and :func:`is_failure_status`, not here:
the breaker only hears ``record_success()`` / ``record_failure()`` / ``release()``. Outcomes that
arrive while the circuit is open (requests admitted before it opened) are ignored: the circuit is
already open and a late success says little about now. Outcomes that arrive while half-open count,
whoever sent them: a success there is evidence the upstream answers again, a failure that it does not.
"""

from __future__ import annotations

import collections
import enum
import math
import time
from collections.abc import Callable
from typing import Final

from edge.upstream.base import (
    UpstreamConnectError,
    UpstreamError,
    UpstreamPoolTimeout,
    UpstreamProtocolError,
    UpstreamTimeout,
)

__all__ = [
    "FAILURE_STATUSES",
    "BreakerState",
    "CircuitBreaker",
    "UpstreamCircuitOpen",
    "is_failure",
    "is_failure_status",
]

# Hasura answers 500 for an internal error of one request; the process is alive and the next request
# may well succeed, so 500 is passed back and counts as a success. 502/503/504 mean "not available"
# (a proxy in front of Hasura, or Hasura itself starting/overloaded): they count as failures.
FAILURE_STATUSES: Final[frozenset[int]] = frozenset({502, 503, 504})


class UpstreamCircuitOpen(UpstreamError):
    """No upstream target may be called now; ``retry_after`` is whole seconds until one may (>= 1).

    The caller answers 503 with ``Retry-After: <retry_after>``.
    """

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def is_failure(exc: BaseException) -> bool:
    """Whether an exception from a client says the upstream is unhealthy.

    Connect errors, timeouts and protocol errors count. A pool timeout does not: every pooled connection
    to the upstream was busy, which is the edge's own saturation (the upstream may be perfectly well),
    and opening the circuit then would turn load into an outage. Anything that is not an UpstreamError
    (cancellation, a ValueError for a bad header) says nothing about the upstream.
    """
    if isinstance(exc, UpstreamPoolTimeout):
        return False
    return isinstance(exc, UpstreamConnectError | UpstreamTimeout | UpstreamProtocolError)


def is_failure_status(status: int) -> bool:
    """Whether an HTTP status from the upstream counts as a failure (502, 503, 504; see FAILURE_STATUSES)."""
    return status in FAILURE_STATUSES


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


# Module globals: an enum member looked up on its class costs several times a global read.
_CLOSED, _OPEN, _HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


class CircuitBreaker:
    """Consecutive-failure circuit breaker. Not thread-safe; one event loop only (no awaits inside)."""

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 10.0,
        half_open_max_calls: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if reset_timeout <= 0:
            raise ValueError("reset_timeout must be positive")
        if half_open_max_calls < 1:
            raise ValueError("half_open_max_calls must be at least 1")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.half_open_max_calls = half_open_max_calls
        self._clock = clock
        self._state: BreakerState = _CLOSED
        self._failures = 0  # consecutive, while closed
        self._opened_at = 0.0
        self._probes = 0  # admitted and not yet resolved, while half-open
        # (from, to) -> count, e.g. transitions[(CLOSED, OPEN)]: for metrics and tests.
        self.transitions: collections.Counter[tuple[BreakerState, BreakerState]] = collections.Counter()

    @property
    def state(self) -> BreakerState:
        self._tick()
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    @property
    def times_opened(self) -> int:
        """How many times the circuit opened (from closed or from half-open)."""
        return self.transitions[(_CLOSED, _OPEN)] + self.transitions[(_HALF_OPEN, _OPEN)]

    # The hot path (every request) finds the circuit closed: the methods below answer that case first,
    # without reading the clock (only an open circuit can change state with time).

    def available(self) -> bool:
        """Whether :meth:`allow` would return True now, without taking a half-open probe slot."""
        if self._state is _CLOSED:
            return True
        self._tick()
        if self._state is _CLOSED:
            return True
        if self._state is _HALF_OPEN:
            return self._probes < self.half_open_max_calls
        return False

    def allow(self) -> bool:
        """Admit one call (True) or refuse it (False). In half-open, an admitted call is a probe: its
        outcome must be reported with record_success(), record_failure() or release()."""
        if self._state is _CLOSED:
            return True
        if not self.available():
            return False
        if self._state is _HALF_OPEN:
            self._probes += 1
        return True

    def record_success(self) -> None:
        if self._state is _CLOSED:
            self._failures = 0
            return
        self._tick()
        if self._state is _CLOSED:
            self._failures = 0
        elif self._state is _HALF_OPEN:
            self._to(_CLOSED)

    def record_failure(self) -> None:
        self._tick()
        if self._state is _CLOSED:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._to(_OPEN)
        elif self._state is _HALF_OPEN:
            self._to(_OPEN)

    def release(self) -> None:
        """An admitted call ended without an outcome (cancelled, or a local error): free its probe slot."""
        if self._state is _HALF_OPEN and self._probes > 0:
            self._probes -= 1

    def retry_after(self) -> int:
        """Whole seconds until a call may be admitted: 0 when one may be now; at least 1 otherwise.

        While half-open with every probe slot taken, 1: the probe's outcome decides soon.
        """
        self._tick()
        if self.available():
            return 0
        if self._state is _OPEN:
            return max(1, math.ceil(self._opened_at + self.reset_timeout - self._clock()))
        return 1

    def _tick(self) -> None:
        if self._state is _OPEN and self._clock() - self._opened_at >= self.reset_timeout:
            self._to(_HALF_OPEN)

    def _to(self, state: BreakerState) -> None:
        self.transitions[(self._state, state)] += 1
        self._state = state
        self._failures = 0
        self._probes = 0
        if state is _OPEN:
            self._opened_at = self._clock()

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.state} failures={self._failures} probes={self._probes}>"

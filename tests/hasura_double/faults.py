"""Switchable upstream failures for the edge's tests (not a Hasura behaviour; the brief's fault model).

Tests flip attributes on :class:`Faults` from their own thread; the server thread reads them once per request
through :meth:`Faults.take`, which returns an immutable :class:`FaultPlan`. ``times`` limits a fault to the
next N requests it applies to, after which every switch goes back to its default.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

__all__ = ["FaultPlan", "Faults"]


@dataclass(frozen=True)
class FaultPlan:
    """The faults one request gets, fixed when the request arrives."""

    delay: float
    status: int | None
    status_body: bytes | None
    hang: bool
    hang_limit: float
    drop: bool
    release_generation: int

    @property
    def name(self) -> str | None:
        """Most severe fault of the plan, as recorded on :class:`RecordedRequest.fault`."""
        if self.drop:
            return "drop"
        if self.hang:
            return "hang"
        if self.status is not None:
            return "status"
        if self.delay > 0:
            return "delay"
        return None


@dataclass
class Faults:
    """Mutable switches, read per request.

    - ``delay``: seconds to wait before answering (then answer normally or apply the other faults).
    - ``status``: answer ``/v1/graphql`` (and ``/api/rest/*``) with this HTTP status and a plain-text body
      (``status_body``, default the reason phrase), e.g. 500 or 503.
    - ``hang``: read the request, never answer. A hung request ends when :meth:`HasuraDouble.reset` (or
      :meth:`release`) is called (the request is then answered normally), when the client disconnects, when
      the server shuts down, or after ``hang_limit`` seconds (safety net); the last two close the connection
      without a response.
    - ``drop``: close the TCP connection without sending any response byte.
    - ``times``: apply the faults only to the next N requests they match, then clear them.
    - ``include_health``: also apply ``delay``/``hang``/``drop`` to ``/healthz`` and ``/hasura/healthz``.

    Precedence when several are set: ``delay`` first, then ``drop`` > ``hang`` > ``status``.
    """

    delay: float = 0.0
    status: int | None = None
    status_body: bytes | None = None
    hang: bool = False
    hang_limit: float = 60.0
    drop: bool = False
    times: int | None = None
    include_health: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _release_generation: int = field(default=0, repr=False, compare=False)

    @property
    def release_generation(self) -> int:
        """Bumped by :meth:`clear` and :meth:`release`; hung requests watch it."""
        return self._release_generation

    def take(self, *, health: bool = False) -> FaultPlan | None:
        """The plan for one request (``None`` if no fault applies), consuming one of ``times``."""
        with self._lock:
            if health and not self.include_health:
                return None
            plan = FaultPlan(
                delay=max(0.0, float(self.delay)),
                status=None if health else self.status,
                status_body=self.status_body,
                hang=self.hang,
                hang_limit=self.hang_limit,
                drop=self.drop,
                release_generation=self._release_generation,
            )
            if plan.name is None:
                return None
            if self.times is not None:
                self.times -= 1
                if self.times <= 0:
                    self._set_defaults()
            return plan

    def release(self) -> None:
        """Let every currently hung request go on (they are then answered normally)."""
        with self._lock:
            self._release_generation += 1

    def clear(self) -> None:
        """Back to defaults, in place (references held by tests stay valid); releases hung requests."""
        with self._lock:
            self._set_defaults()
            self._release_generation += 1

    def _set_defaults(self) -> None:
        self.delay = 0.0
        self.status = None
        self.status_body = None
        self.hang = False
        self.hang_limit = 60.0
        self.drop = False
        self.times = None
        self.include_health = False

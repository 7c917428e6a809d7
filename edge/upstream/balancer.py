"""Several Hasura base URLs behind one :class:`Upstream`: weighted round robin, breakers, health, drain.

Choosing a target: nginx's smooth weighted round robin over the targets that are healthy (see
:mod:`edge.upstream.health`) and whose :class:`CircuitBreaker` admits a call. If no healthy target is
admitted, the unhealthy ones the breaker admits are used instead (health checks only steer traffic
among alternatives, they never refuse a request the breakers would let through; Envoy calls this
"panic mode"). If no breaker admits a call, :class:`UpstreamCircuitOpen` is raised with the smallest
``retry_after`` of all breakers (503 + Retry-After).

Outcomes: an UpstreamError for which :func:`is_failure` holds, or a 502/503/504 response, is a breaker
failure; any other response (200 with GraphQL errors, 4xx, 500) is a success. Responses are returned
as received, whatever their status.

Retries: only when the caller says ``idempotent=True`` (GraphQL queries; never mutations) and only on
:class:`UpstreamConnectError` (the connection failed or closed before any response byte), on the next
target not yet tried, at most ``len(targets) - 1`` times. Never on timeouts (the request may be
running), on protocol errors (it ran), or on any status. The flag is passed on to the target's client,
which for a request that is not idempotent never writes it twice either (:class:`Upstream`). A
half-open breaker's probe is an ordinary request admitted by ``allow()``: it is sent once, like any
other, and nothing is resent to test a target (health checks are separate ``GET``s of ``/healthz``).

With one target, ``BalancedUpstream`` is that target's client plus its breaker: no health checks run
and there is nothing to retry on.

Shutdown: :meth:`BalancedUpstream.drain` stops admitting requests (:class:`UpstreamDraining`, a 503 with
Retry-After: 1), waits for those in flight, then closes every client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from edge.upstream.base import Upstream, UpstreamConnectError, UpstreamError, UpstreamResponse
from edge.upstream.breaker import FAILURE_STATUSES, CircuitBreaker, UpstreamCircuitOpen, is_failure
from edge.upstream.health import HealthChecker

__all__ = ["BalancedUpstream", "Target", "UpstreamDraining", "parse_targets"]


class UpstreamDraining(UpstreamCircuitOpen):
    """The edge is shutting down: no new upstream request is started (503, Retry-After: 1)."""

    def __init__(self) -> None:
        super().__init__("the edge is shutting down", retry_after=1)


@dataclass(frozen=True)
class Target:
    url: str
    weight: int = 1

    def __post_init__(self) -> None:
        if self.weight < 1:
            raise ValueError("target weight must be at least 1")


def parse_targets(spec: str) -> list[Target]:
    """``"http://a:8080|3, http://b:8080"`` -> [Target(a, 3), Target(b, 1)]: comma-separated URLs, each
    optionally followed by ``|weight`` (a ``|`` is never part of an http URL's authority)."""
    targets: list[Target] = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        url, sep, weight = item.rpartition("|")
        if not sep:
            url, weight = item, "1"
        try:
            number = int(weight.strip())
        except ValueError:
            raise ValueError(f"target weight must be an integer: {weight.strip()!r}") from None
        targets.append(Target(url.strip().rstrip("/"), number))
    if not targets:
        raise ValueError("at least one upstream URL is needed")
    return targets


def _label(url: str) -> str:
    """host:port for logs and metrics, never userinfo."""
    return urlsplit(url).netloc.rpartition("@")[2] or url


class _Member:
    __slots__ = ("bit", "breaker", "client", "current", "index", "label", "weight")

    def __init__(self, index: int, target: Target, client: Upstream, breaker: CircuitBreaker) -> None:
        self.index, self.weight, self.client, self.breaker = index, target.weight, client, breaker
        self.bit = 1 << index  # in the bit set of targets already tried by one request
        self.label = _label(target.url)
        self.current = 0  # smooth weighted round robin state


class BalancedUpstream:
    """An :class:`Upstream` over several targets; ``post``'s ``idempotent`` flag also allows fail-over."""

    def __init__(
        self,
        targets: Sequence[Target],
        *,
        make_client: Callable[[str], Upstream],
        breaker_factory: Callable[[], CircuitBreaker] | None = None,
        health_interval: float | None = 5.0,
        health_timeout: float = 2.0,
        health_path: str = "/healthz",
        health_rise: int = 2,
        health_fall: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not targets:
            raise ValueError("at least one upstream target is needed")
        factory = breaker_factory or (lambda: CircuitBreaker(clock=clock))
        self._members = [_Member(i, t, make_client(t.url), factory()) for i, t in enumerate(targets)]
        self.health: HealthChecker | None = None
        if health_interval is not None and len(self._members) > 1:
            self.health = HealthChecker(
                [m.client for m in self._members],
                names=[m.label for m in self._members],
                path=health_path,
                interval=health_interval,
                timeout=health_timeout,
                rise=health_rise,
                fall=health_fall,
            )
        # The common deployment, one target, skips the weighted choice (see _pick).
        self._single = self._members[0] if len(self._members) == 1 else None
        self._health_pending = self.health is not None  # started by the first request if not before
        self._in_flight = 0
        self._idle = asyncio.Event()  # set when the requests in flight reach 0 while draining
        self._draining = False
        self._closed = False

    # Introspection (metrics, tests) ------------------------------------------------------------

    @property
    def breakers(self) -> list[CircuitBreaker]:
        return [m.breaker for m in self._members]

    def target_states(self) -> list[tuple[str, str, bool, int]]:
        """Per target, for metrics: its host:port, its breaker's state (``closed``, ``open``, ``half_open``),
        whether the health checks count it healthy (True without health checks: one target), and how many
        times its breaker opened."""
        health = self.health
        return [
            (
                m.label,
                m.breaker.state.value,
                health.is_healthy(m.index) if health is not None else True,
                m.breaker.times_opened,
            )
            for m in self._members
        ]

    @property
    def clients(self) -> list[Upstream]:
        return [m.client for m in self._members]

    @property
    def in_flight(self) -> int:
        return self._in_flight

    # The Upstream protocol ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start health checks (also started lazily by the first request). Needs a running loop."""
        if self.health is not None and not self._closed:
            self.health.start()

    async def post(
        self,
        body: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        *,
        timeout: float | None = None,
        idempotent: bool = False,
    ) -> UpstreamResponse:
        if self._draining:
            raise UpstreamDraining()
        if self._health_pending:
            self._health_pending = False
            if self.health is not None:
                self.health.start()  # idempotent, and a no-op once closed: once is enough
        self._in_flight += 1
        try:
            tried = 0  # bit set of _Member.bit
            attempts = 0
            while True:
                member = self._pick(tried)
                tried |= member.bit
                attempts += 1
                breaker = member.breaker
                try:
                    response = await member.client.post(body, headers, timeout=timeout, idempotent=idempotent)
                except UpstreamError as exc:
                    if is_failure(exc):
                        breaker.record_failure()
                    else:
                        breaker.release()
                    if not (idempotent and isinstance(exc, UpstreamConnectError)):
                        raise
                    if attempts >= len(self._members) or not self._any_available(tried):
                        raise
                    continue
                except BaseException:  # cancelled, or a local error (bad header): no verdict on the target
                    breaker.release()
                    raise
                if response.status in FAILURE_STATUSES:
                    breaker.record_failure()
                else:
                    breaker.record_success()
                return response
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._none_in_flight()

    async def request(
        self,
        method: str,
        target: str,
        body: bytes | None,
        headers: Sequence[tuple[bytes, bytes]],
        *,
        timeout: float | None = None,
        idempotent: bool = False,
    ) -> UpstreamResponse:
        """Any method on another path (Hasura's REST endpoints), with :meth:`post`'s choice of target,
        breakers, retries (``idempotent`` only) and draining. Kept apart from :meth:`post`, the hot path."""
        if self._draining:
            raise UpstreamDraining()
        if self._health_pending:
            self._health_pending = False
            if self.health is not None:
                self.health.start()
        self._in_flight += 1
        try:
            tried = 0
            attempts = 0
            while True:
                member = self._pick(tried)
                tried |= member.bit
                attempts += 1
                breaker = member.breaker
                try:
                    response = await member.client.request(
                        method, target, body, headers, timeout=timeout, idempotent=idempotent
                    )
                except UpstreamError as exc:
                    if is_failure(exc):
                        breaker.record_failure()
                    else:
                        breaker.release()
                    if not (idempotent and isinstance(exc, UpstreamConnectError)):
                        raise
                    if attempts >= len(self._members) or not self._any_available(tried):
                        raise
                    continue
                except BaseException:
                    breaker.release()
                    raise
                if response.status in FAILURE_STATUSES:
                    breaker.record_failure()
                else:
                    breaker.record_success()
                return response
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._none_in_flight()

    def _none_in_flight(self) -> None:
        if self._draining:  # only drain() waits on the event (and clears it first)
            self._idle.set()

    async def get(self, path: str, *, timeout: float | None = None) -> UpstreamResponse:
        """GET ``path`` on every target at once (readiness): the first 2xx wins; else the first answer;
        else the first error is raised. Breakers are neither consulted nor fed: this asks whether any
        target is reachable right now."""
        if self.health is not None:
            self.health.start()
        if len(self._members) == 1:
            return await self._members[0].client.get(path, timeout=timeout)
        results = await asyncio.gather(
            *(m.client.get(path, timeout=timeout) for m in self._members), return_exceptions=True
        )
        answers = [r for r in results if isinstance(r, UpstreamResponse)]
        for answer in answers:
            if 200 <= answer.status < 300:
                return answer
        if answers:
            return answers[0]
        errors = [r for r in results if isinstance(r, BaseException)]
        for error in errors:
            if not isinstance(error, UpstreamError):
                raise error  # cancelled, or a local error such as a bad path
        raise errors[0]

    async def drain(self, timeout: float) -> bool:
        """Refuse new requests, wait up to ``timeout`` seconds for those in flight, then close
        everything (:meth:`aclose`; requests still running then fail). True if all finished in time."""
        self._draining = True
        drained = True
        if self._in_flight:
            self._idle.clear()  # post() sets it when the last request in flight ends
            try:
                async with asyncio.timeout(timeout):
                    await self._idle.wait()
            except TimeoutError:
                drained = False
        await self.aclose()
        return drained

    async def aclose(self) -> None:
        """Close health checks and every client now (in-flight requests fail). Idempotent."""
        self._draining = True
        if self._closed:
            return
        self._closed = True
        if self.health is not None:
            await self.health.aclose()
        for member in self._members:
            await member.client.aclose()

    # Choosing ------------------------------------------------------------------------------------

    def _pick(self, tried: int) -> _Member:
        """The next target by smooth weighted round robin, admitted by its breaker (a probe slot taken
        in half-open). Raises UpstreamCircuitOpen when no untried target's breaker admits a call.
        ``tried`` is the bit set of the targets this request already tried."""
        single = self._single
        if single is not None:  # one target: no choice to make, no health checks (tried is always 0 here)
            if single.breaker.allow():
                return single
            raise UpstreamCircuitOpen(
                "every upstream circuit is open", retry_after=max(1, single.breaker.retry_after())
            )
        # Candidates as bit sets, without building lists: untried and admitted, and of those the healthy.
        health = self.health
        admitted = healthy = 0
        for member in self._members:
            if not tried & member.bit and member.breaker.available():
                admitted |= member.bit
                if health is None or health.is_healthy(member.index):
                    healthy |= member.bit
        candidates = healthy or admitted  # all unhealthy: try them anyway (panic mode)
        if not candidates:
            retry_after = min(m.breaker.retry_after() for m in self._members)
            raise UpstreamCircuitOpen("every upstream circuit is open", retry_after=max(1, retry_after))
        total = 0
        best: _Member | None = None
        for member in self._members:
            if candidates & member.bit:
                member.current += member.weight
                total += member.weight
                if best is None or member.current > best.current:
                    best = member
        assert best is not None  # candidates is not empty
        best.current -= total
        if not best.breaker.allow():  # cannot happen: no await since available() said yes
            raise RuntimeError("circuit breaker available() and allow() disagree")
        return best

    def _any_available(self, tried: int) -> bool:
        return any(not tried & m.bit and m.breaker.available() for m in self._members)

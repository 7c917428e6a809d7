"""Active health checks: GET ``/healthz`` on every target, every ``interval`` seconds.

A target starts healthy (traffic flows before the first round ends). It is marked unhealthy after
``fall`` consecutive failed checks and healthy again after ``rise`` consecutive good ones, like
nginx/HAProxy's ``rise``/``fall``. A check is good when the answer is 2xx within ``timeout``
(Hasura answers ``200 OK``, ``200 WARN: inconsistent metadata`` still serves, ``500 ERROR`` does not);
any UpstreamError or another status is a failed check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from edge.upstream.base import Upstream, UpstreamError

__all__ = ["HealthChecker"]

log = logging.getLogger("edge.upstream.health")


class HealthChecker:
    """Health state of ``clients[i]`` is ``is_healthy(i)``; ``names[i]`` labels it in logs (never a secret)."""

    def __init__(
        self,
        clients: Sequence[Upstream],
        *,
        names: Sequence[str] | None = None,
        path: str = "/healthz",
        interval: float = 5.0,
        timeout: float = 2.0,
        rise: int = 2,
        fall: int = 2,
        on_change: Callable[[int, bool], None] | None = None,
    ) -> None:
        if interval <= 0 or timeout <= 0:
            raise ValueError("interval and timeout must be positive")
        if rise < 1 or fall < 1:
            raise ValueError("rise and fall must be at least 1")
        if names is not None and len(names) != len(clients):
            raise ValueError("names must match clients one to one")
        self.clients = list(clients)
        self.names = list(names) if names is not None else [str(i) for i in range(len(self.clients))]
        self.path, self.interval, self.timeout = path, interval, timeout
        self.rise, self.fall = rise, fall
        self.on_change = on_change
        self._healthy = [True] * len(self.clients)
        self._streak = [0] * len(self.clients)  # consecutive checks disagreeing with the current state
        self.rounds = 0  # completed check rounds (tests wait on it)
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def is_healthy(self, index: int) -> bool:
        return self._healthy[index]

    @property
    def healthy(self) -> tuple[bool, ...]:
        return tuple(self._healthy)

    def start(self) -> None:
        """Begin checking in the background; needs a running loop. Idempotent; a no-op once closed."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="edge-upstream-health")

    async def aclose(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check_once(self) -> None:
        """One round: every target concurrently, then update the states."""
        results = await asyncio.gather(*(self._probe(client) for client in self.clients))
        for index, ok in enumerate(results):
            self._observe(index, ok)
        self.rounds += 1

    async def _run(self) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(self.interval)

    async def _probe(self, client: Upstream) -> bool:
        try:
            async with asyncio.timeout(self.timeout):
                response = await client.get(self.path, timeout=self.timeout)
        except (UpstreamError, TimeoutError):
            return False
        return 200 <= response.status < 300

    def _observe(self, index: int, ok: bool) -> None:
        if ok == self._healthy[index]:
            self._streak[index] = 0
            return
        self._streak[index] += 1
        if self._streak[index] < (self.rise if ok else self.fall):
            return
        self._healthy[index] = ok
        self._streak[index] = 0
        log.warning("upstream_health_changed", extra={"target": self.names[index], "healthy": ok})
        if self.on_change is not None:
            self.on_change(index, ok)

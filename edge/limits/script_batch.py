"""The shared stores' Lua script calls, sent together: one pipelined round trip per event-loop turn.

Every ``EVALSHA`` asked for during one turn of the event loop is queued; at the end of the turn one
redis-py pipeline (``transaction=False``: no MULTI/EXEC) sends them all and hands each caller its own
reply. Each decision is still one script, so each stays atomic on its own; the pipeline only shares
the round trip and redis-py's per-command Python (connection pool, retry wrapper, timeouts), which
is most of what a limit in Redis costs (``docs/benchmarks.md``, "Redis-backed limits"). A Cluster
client's pipeline sends each node the commands whose keys it owns.

A command whose script the server does not know (NOSCRIPT: after a restart, failover or ``SCRIPT
FLUSH``) has the script loaded and is sent again on its own. A failure of the whole round trip
(connection refused, timeout) is every queued caller's exception; a caller that stopped waiting
(its own timeout) is simply skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError

__all__ = ["ScriptBatch"]

Arguments = Sequence[str | int | float]


class ScriptBatch:
    """Queues ``EVALSHA`` calls on ``client`` and sends each turn's calls in one pipeline."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._queued: list[tuple[str, str, Sequence[str], Arguments, asyncio.Future[Any]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def call(self, sha: str, source: str, keys: Sequence[str], args: Arguments) -> asyncio.Future[Any]:
        """The script's reply, once this turn's batch has been answered."""
        loop = asyncio.get_running_loop()
        if not self._queued:
            loop.call_soon(self._send)
        future: asyncio.Future[Any] = loop.create_future()
        self._queued.append((sha, source, keys, args, future))
        return future

    def _send(self) -> None:
        queued, self._queued = self._queued, []
        task = asyncio.get_running_loop().create_task(self._execute(queued))
        self._tasks.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, queued: list[tuple[str, str, Sequence[str], Arguments, asyncio.Future[Any]]]) -> None:
        try:
            pipe = self._client.pipeline(transaction=False)
            for sha, _, keys, args, _ in queued:
                pipe.evalsha(sha, len(keys), *keys, *args)
            replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # the whole round trip failed: every caller decides per its failure mode
            for *_, future in queued:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, source, keys, args, future), reply in zip(queued, replies, strict=True):
            if isinstance(reply, NoScriptError):
                try:
                    sha = await self._client.script_load(source)
                    reply = await self._client.evalsha(sha, len(keys), *keys, *args)
                except Exception as exc:
                    reply = exc
            if future.done():
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

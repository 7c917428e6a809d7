"""The ASGI lifespan protocol: start-up before the first connection, shutdown after the last."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from edge.asgi import ASGIApp, Message

__all__ = ["Lifespan", "LifespanFailed"]

log = logging.getLogger("edge.http")


class LifespanFailed(Exception):
    """The application refused to start (``lifespan.startup.failed``) or failed while starting."""


class Lifespan:
    """``await startup()`` runs the application's start-up; ``await shutdown()`` its shutdown.

    The application must speak the protocol: raising before it answers start-up fails start-up.
    """

    def __init__(self, app: ASGIApp, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state
        self.incoming: asyncio.Queue[Message] = asyncio.Queue()
        self.started = asyncio.Event()
        self.stopped = asyncio.Event()
        self.failure: str | None = None
        self.complete = False  # start-up completed
        self.task: asyncio.Task[None] | None = None

    async def startup(self) -> None:
        self.task = asyncio.create_task(self.run(), name="lifespan")
        await self.incoming.put({"type": "lifespan.startup"})
        await self.started.wait()
        if self.failure is not None:
            raise LifespanFailed(self.failure)

    async def shutdown(self) -> None:
        if self.task is None or self.task.done():
            return
        await self.incoming.put({"type": "lifespan.shutdown"})
        await self.stopped.wait()
        if self.failure is not None:
            log.error("edge_lifespan_shutdown_failed", extra={"reason": self.failure})

    async def run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        try:
            await self.app(scope, self.receive, self.send)
        except BaseException as exc:
            # One line for the operator (the application's own start-up failure message may be a
            # whole traceback); the traceback is logged only for a failure after start-up.
            self.failure = f"{type(exc).__name__}: {exc}"
            if self.complete:
                log.exception("edge_lifespan_error")
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self.started.set()
            self.stopped.set()

    async def receive(self) -> Message:
        return await self.incoming.get()

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            self.complete = True
            self.started.set()
        elif kind == "lifespan.startup.failed":
            self.failure = str(message.get("message") or "start-up failed")
            self.started.set()
        elif kind == "lifespan.shutdown.complete":
            self.stopped.set()
        elif kind == "lifespan.shutdown.failed":
            self.failure = str(message.get("message") or "shutdown failed")
            self.stopped.set()

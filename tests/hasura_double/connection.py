"""Reach the uvicorn connection behind an ASGI ``send`` callable, for the ``drop`` and ``hang`` faults.

ASGI has no way to close a connection without answering: an app that raises or returns early makes uvicorn
send a 500. uvicorn's ``send`` is the bound method ``RequestResponseCycle.send`` (both the ``httptools`` and
``h11`` implementations), whose cycle holds the asyncio ``transport`` and whose ``on_response`` is bound to
the connection protocol. Closing the transport gives the client EOF without a status line; wrapping the
protocol's ``shutdown`` tells a hung request that the server is stopping (uvicorn waits for open connections
before it runs lifespan shutdown, so lifespan is too late). This only works when the double's ``app`` is the
ASGI app uvicorn calls directly (no middleware wrapping ``send``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

__all__ = ["ConnectionControl", "ConnectionDropped", "wait_for_disconnect"]

Receive = Callable[[], Awaitable[dict[str, Any]]]


class ConnectionDropped(ConnectionError):
    """Raised by :meth:`ConnectionControl.drop` when no uvicorn transport is reachable (e.g. under
    ``httpx.ASGITransport``), so the client at least sees a failure instead of a response."""


class ConnectionControl:
    """Transport and protocol of the uvicorn connection serving one request (``None`` if unknown)."""

    def __init__(self, send: Callable[..., Any]) -> None:
        cycle = getattr(send, "__self__", None)
        transport = getattr(cycle, "transport", None)
        self.transport: asyncio.BaseTransport | None = (
            transport if isinstance(transport, asyncio.BaseTransport) else None
        )
        self.protocol: Any = getattr(getattr(cycle, "on_response", None), "__self__", None)

    def drop(self) -> None:
        """Close the TCP connection; nothing of a response has been written."""
        if self.transport is None:
            raise ConnectionDropped("hasura double dropped the connection")
        self.transport.close()

    @contextlib.contextmanager
    def on_server_shutdown(self, callback: Callable[[], None]) -> Iterator[None]:
        """Call ``callback`` when uvicorn starts its graceful shutdown while this block runs."""
        protocol = self.protocol
        original = getattr(protocol, "shutdown", None)
        if protocol is None or original is None:
            yield
            return

        def shutdown() -> None:
            callback()
            original()

        protocol.shutdown = shutdown
        try:
            yield
        finally:
            with contextlib.suppress(AttributeError):
                del protocol.shutdown


async def wait_for_disconnect(receive: Receive) -> None:
    """Wait until the ASGI server reports ``http.disconnect`` (the body must already be consumed)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return

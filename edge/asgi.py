"""The ASGI contract written down once, and the two helpers every stage shares."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from edge.errors import PayloadTooLarge

__all__ = [
    "DENIAL_RESPONSE",
    "ASGIApp",
    "ClientDisconnected",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "asgi_client",
    "read_body",
    "send_response",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DENIAL_RESPONSE = "websocket.http.response"
"""The WebSocket Denial Response extension: in ``scope["extensions"]``, the server lets the application refuse
a handshake with an HTTP answer of its own (``websocket.http.response.start``, then ``.body``) instead of
``websocket.close``, which the specification answers with HTTP 403 and nothing to say why."""


class ClientDisconnected(Exception):
    """The client went away before its request was complete; nothing is answered."""


async def read_body(receive: Receive, limit: int) -> bytes:
    """Read the whole request body, counting bytes as they arrive (``Content-Length`` is not trusted).

    Raises ``PayloadTooLarge`` as soon as more than ``limit`` bytes have arrived, so an oversized
    or lying request never makes the edge buffer more than ``limit`` plus one chunk.
    """
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnected
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise PayloadTooLarge.over(limit)
        return body
    chunks = [body]
    size = len(body)
    while True:
        if size > limit:
            raise PayloadTooLarge.over(limit)
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            break
    if size > limit:
        raise PayloadTooLarge.over(limit)
    return b"".join(chunks)


async def send_response(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    """Send a complete response; ``content-length`` is always computed here, never copied."""
    headers.append((b"content-length", str(len(body)).encode("ascii")))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def asgi_client(scope: Scope) -> tuple[str, int] | None:
    """``scope["client"]`` as the ASGI specification types it: servers differ (granian sends the port as text)."""
    client = scope.get("client")
    if not client:
        return None
    try:
        return str(client[0]), int(client[1])
    except (TypeError, ValueError, IndexError):
        return None

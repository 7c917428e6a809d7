"""Placeholder for the WebSocket side of the double (contracts §5), built later.

``HasuraDouble.websocket_app`` is called for every ``websocket`` scope on any path. Until the subscription
protocols are implemented it refuses the handshake (uvicorn answers HTTP 403).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["WebSocketApp", "reject_websocket"]

WebSocketApp = Callable[
    [dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], Awaitable[None]]],
    Awaitable[None],
]


async def reject_websocket(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    """Refuse the handshake: ``websocket.close`` before ``websocket.accept``."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": 1008})

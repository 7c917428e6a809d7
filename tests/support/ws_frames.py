"""The text frames the Hasura double's WebSocket side received, exactly as they arrived.

The double records what it parsed (``WsConnection.operations``); a test that must prove what bytes reached
Hasura wraps ``HasuraDouble.websocket_app`` with :class:`FrameRecorder` (``monkeypatch.setattr``, so the
double gets its own app back after the test).
"""

from __future__ import annotations

import threading
from typing import Any

from tests.hasura_double.websocket import Receive, Send, WebSocketApp

__all__ = ["FrameRecorder"]


class FrameRecorder:
    """An ASGI WebSocket app that keeps every text frame its wrapped app receives, then hands it on."""

    def __init__(self, app: WebSocketApp) -> None:
        self.app = app
        self._frames: list[str] = []
        self._lock = threading.Lock()

    @property
    def frames(self) -> list[str]:
        with self._lock:
            return list(self._frames)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        async def recording_receive() -> dict[str, Any]:
            message = await receive()
            text = message.get("text") if message["type"] == "websocket.receive" else None
            if text is not None:
                with self._lock:
                    self._frames.append(text)
            return message

        await self.app(scope, recording_receive, send)

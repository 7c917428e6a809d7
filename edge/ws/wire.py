"""uvicorn's sans-I/O WebSocket protocol, closing with 1001 on shutdown and closing slow readers.

Three changes:

- shutdown sends 1001 instead of 1012 (below), and sends nothing to a client whose own close is
  being answered already (uvicorn's shutdown raises there);
- ``websocket.close`` is written even while the transport is paused (the client does not read): a
  close frame is a few bytes, and waiting for a reader that never reads would keep the connection,
  and the application's state for it, forever. The transport closes ``close_timeout`` later.

uvicorn's own shutdown sends 1012 (service restart) to every open WebSocket. For a replica that is
being drained, 1001 is the accurate code: the service is fine, this server is leaving, reconnect
(to another replica). The application then sees ``websocket.disconnect`` and releases its state.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

__all__ = ["EdgeWebSocketProtocol"]

GOING_AWAY = 1001


class EdgeWebSocketProtocol(WebSocketsSansIOProtocol):
    async def send(self, message: Any) -> None:
        paused = not self.writable.is_set()
        if (
            paused
            and message["type"] == "websocket.close"
            and self.handshake_complete
            and self.initial_response is None
            and not self.close_sent
            and not self.disconnected
        ):
            code = message.get("code", 1000)
            reason = message.get("reason", "") or ""
            self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
            self.conn.send_close(code, reason)
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
            self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)
            return
        await super().send(message)

    def shutdown(self) -> None:
        if self.handshake_complete and not self.close_sent and self.conn.state is not State.OPEN:
            # The client closed first and websockets answered its close frame by itself: nothing
            # more may be sent (uvicorn's shutdown would try a second close and raise InvalidState).
            self.stop_keepalive()
            self.transport.close()
            return
        if self.handshake_complete and not self.close_sent and not self.transport.is_closing():
            self.stop_keepalive()
            self.queue.put_nowait({"type": "websocket.disconnect", "code": GOING_AWAY})
            self.conn.send_close(GOING_AWAY, "Server shutting down")
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
            self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)
            return
        super().shutdown()

"""uvicorn's sans-I/O WebSocket protocol, closing with 1001 (going away) on graceful shutdown.

uvicorn's own shutdown sends 1012 (service restart) to every open WebSocket. For a replica that is
being drained, 1001 is the accurate code: the service is fine, this server is leaving, reconnect
(to another replica). The application then sees ``websocket.disconnect`` and releases its state.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

__all__ = ["EdgeWebSocketProtocol"]

GOING_AWAY = 1001


class EdgeWebSocketProtocol(WebSocketsSansIOProtocol):
    def shutdown(self) -> None:
        if self.handshake_complete and not self.close_sent and not self.transport.is_closing():
            self.stop_keepalive()
            self.queue.put_nowait({"type": "websocket.disconnect", "code": GOING_AWAY})
            self.conn.send_close(GOING_AWAY, "Server shutting down")
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
            self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)
            return
        super().shutdown()

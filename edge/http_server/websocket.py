"""A WebSocket connection after the HTTP upgrade, served to an ASGI application.

The frames are the ``websockets`` library's business, through its documented sans-I/O API
(``ServerProtocol``: ``receive_data`` -> ``events_received``, ``send_*`` -> ``data_to_send``); this
class owns the socket once :class:`~edge.http_server.connection.HttpConnection` hands it over and
turns events into ASGI ``websocket.*`` messages and back.

The edge's rules, beyond the protocol:

- no compression (CPU, and decompression bombs); messages over ``max_message_bytes`` close with 1009;
- protocol pings every ``ping_interval``; a peer that does not answer is closed with 1011;
- the application sees one message at a time: reading pauses until it asks for the next, so a
  client cannot queue up memory in the edge;
- a ``websocket.close`` is written even while the client does not read: a close frame is a few
  bytes, and waiting for a reader that never reads would keep the connection (and the
  application's state for it) forever; the socket is dropped ``close_timeout`` later;
- graceful shutdown closes with 1001 (going away: this replica leaves, reconnect elsewhere);
- a refusal before ``websocket.accept`` is an HTTP 403, unless the application answers over HTTP
  itself (ASGI's WebSocket Denial Response extension, ``websocket.http.response.start`` and
  ``.body``): its status, headers and body, with ``content-length`` and ``connection: close``. The
  body is held until its last part, so that the head can carry its length (the application's
  answers here are a few hundred bytes).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from edge.asgi import DENIAL_RESPONSE, ClientDisconnected, Message
from edge.http_server.responses import encode_head
from edge.http_server.state import ServerState

__all__ = ["GOING_AWAY", "WebSocketConnection"]

log = logging.getLogger("edge.ws")
# The library's lines under its own name, so that ``edge.logs`` keeps its DEBUG lines (every handshake header,
# the ends of every frame: credentials) out of the log whatever the edge's own level.
_protocol_log = logging.getLogger("websockets.server")

GOING_AWAY = 1001
_INTERNAL_ERROR = 1011
_INVALID_DATA = 1007
_ABNORMAL = 1006  # what the application hears after a refused handshake: the socket closed without a close frame


class _DenialResponse:
    """An HTTP answer to the handshake, as the application sends it: the head, then the body in parts."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.status = status
        self.headers = headers
        self.body: list[bytes] = []


class WebSocketConnection:
    """One upgraded socket: the handshake, the frames, and the ASGI application's task."""

    def __init__(
        self,
        state: ServerState,
        target: bytes,
        path: bytes,
        query: bytes,
        headers: list[tuple[bytes, bytes]],
        client: tuple[str, int] | None,
        server_address: tuple[str, int] | None,
    ) -> None:
        self.state = state
        self.loop = state.loop
        options = state.config.websocket
        self.ping_interval = options.ping_interval
        self.ping_timeout = options.ping_timeout
        self.close_timeout = options.close_timeout
        # No extensions (no permessage-deflate) and no subprotocols here: the application picks one.
        self.conn = ServerProtocol(max_size=options.max_message_bytes, logger=_protocol_log)
        # The request as the edge parsed it, for websockets' own handshake checks (key, version).
        self.handshake = b"".join(
            [b"GET ", target, b" HTTP/1.1\r\n", *(b"%s: %s\r\n" % header for header in headers), b"\r\n"]
        )
        subprotocols: list[str] = []
        for name, value in headers:
            if name == b"sec-websocket-protocol":
                subprotocols.extend(token.strip() for token in value.decode("latin-1").split(",") if token.strip())
        self.scope: dict[str, Any] = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "wss" if state.scheme == "https" else "ws",
            "server": server_address,
            "client": client,
            "root_path": "",
            "path": path.decode("utf-8", "replace"),
            "raw_path": target.partition(b"?")[0],
            "query_string": query,
            "headers": headers,
            "subprotocols": subprotocols,
            "state": state.app_state.copy(),
            "extensions": {DENIAL_RESPONSE: {}},
        }
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.response: Response | None = None
        self.queue: asyncio.Queue[Message] = asyncio.Queue()
        self.accepted = False  # the 101 is sent
        self.answered = False  # a handshake response (101 or a refusal) is sent
        self.denial: _DenialResponse | None = None  # the application's HTTP answer, until its last part
        self.close_sent = False
        self.disconnected = False
        self.read_paused = False
        self.writable = asyncio.Event()
        self.writable.set()
        self.close_timer: asyncio.TimerHandle | None = None
        self.ping_timer: asyncio.TimerHandle | None = None
        self.pong_timer: asyncio.TimerHandle | None = None
        self.ping_payload: bytes | None = None
        self.fragments: list[bytes] = []
        self.text = False

    # --- the socket -------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:
        """Called by the HTTP connection after ``transport.set_protocol(self)``."""
        self.transport = transport
        self.state.connections.add(self)
        conn = self.conn
        conn.receive_data(self.handshake)
        events = conn.events_received()
        request = events[0] if events and isinstance(events[0], Request) else None
        if request is None or conn.handshake_exc is not None:
            written = b"".join(conn.data_to_send())
            self.refuse_handshake(written or None)
            return
        response = conn.accept(request)
        if response.status_code != 101:  # not a valid handshake (key, version...): websockets says why
            self.answered = True
            conn.send_response(response)
            self.write_out()
            transport.close()
            return
        self.response = response
        self.queue.put_nowait({"type": "websocket.connect"})
        task = self.loop.create_task(self.run())
        self.state.tasks.add(task)
        task.add_done_callback(self.state.tasks.discard)

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        conn.receive_data(data)
        for event in conn.events_received():
            if isinstance(event, Frame):
                self.on_frame(event)
        if conn.parser_exc is not None:
            # A protocol error, a message too big (1009), invalid UTF-8 (1007): websockets has
            # queued the close frame; the application hears the same code.
            close = conn.close_sent
            code = close.code if close is not None else _INTERNAL_ERROR
            self.queue.put_nowait({"type": "websocket.disconnect", "code": code})
            self.close_sent = True
            self.write_out()
            self.transport.close()
            return
        self.write_out()  # automatic pongs and close replies

    def eof_received(self) -> None:
        self.conn.receive_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections.discard(self)
        self.stop_keepalive()
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        if not self.disconnected:
            self.disconnected = True
            code = 1005 if self.accepted else 1006
            self.queue.put_nowait({"type": "websocket.disconnect", "code": code})
        self.writable.set()  # a send() waiting for the client to read would wait forever

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def write_out(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.transport.is_closing():
            self.transport.write(b"".join(data))

    # --- frames ------------------------------------------------------------------------------------

    def on_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            self.text = opcode is Opcode.TEXT
            self.fragments = [bytes(frame.data)]
        elif opcode is Opcode.CONT:
            self.fragments.append(bytes(frame.data))
        elif opcode is Opcode.PONG:
            if self.ping_payload is not None and bytes(frame.data) == self.ping_payload:
                self.ping_payload = None
                if self.pong_timer is not None:
                    self.pong_timer.cancel()
                    self.pong_timer = None
                self.schedule_ping()
            return
        elif opcode is Opcode.CLOSE:
            self.on_close_frame()
            return
        else:
            return  # PING: websockets queued the pong itself
        if frame.fin:
            self.deliver()

    def deliver(self) -> None:
        data = self.fragments[0] if len(self.fragments) == 1 else b"".join(self.fragments)
        self.fragments = []
        if self.close_sent:
            return  # the application is past websocket.close: keep reading until the peer's close arrives
        if self.text:
            try:
                message: Message = {"type": "websocket.receive", "text": data.decode()}
            except UnicodeDecodeError:
                self.fail(_INVALID_DATA, "invalid UTF-8")
                return
        else:
            message = {"type": "websocket.receive", "bytes": data}
        self.queue.put_nowait(message)
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def on_close_frame(self) -> None:
        if self.close_sent:  # the peer answered our close: the closing handshake is complete
            self.transport.close()
            return
        received = self.conn.close_rcvd
        self.disconnected = True
        self.queue.put_nowait(
            {
                "type": "websocket.disconnect",
                "code": received.code if received is not None else 1005,
                "reason": received.reason if received is not None else "",
            }
        )
        self.write_out()  # websockets answered the close
        self.transport.close()

    def fail(self, code: int, reason: str) -> None:
        self.conn.fail(code, reason)
        self.close_sent = True
        self.write_out()
        if not self.disconnected:
            self.disconnected = True
            self.queue.put_nowait({"type": "websocket.disconnect", "code": code})
        self.transport.close()

    # --- keep-alive pings ------------------------------------------------------------------------

    def schedule_ping(self) -> None:
        if self.ping_interval is not None and self.ping_interval > 0:
            self.ping_timer = self.loop.call_later(self.ping_interval, self.send_ping)

    def send_ping(self) -> None:
        self.ping_timer = None
        if self.close_sent or self.transport.is_closing():
            return
        self.ping_payload = os.urandom(4)  # tells our ping's pong from unsolicited ones
        self.conn.send_ping(self.ping_payload)
        self.write_out()
        self.pong_timer = self.loop.call_later(self.ping_timeout, self.ping_timed_out)

    def ping_timed_out(self) -> None:
        self.pong_timer = None
        if not self.close_sent and not self.transport.is_closing():
            self.fail(_INTERNAL_ERROR, "keepalive ping timeout")

    def stop_keepalive(self) -> None:
        for timer in (self.ping_timer, self.pong_timer):
            if timer is not None:
                timer.cancel()
        self.ping_timer = self.pong_timer = None

    # --- graceful shutdown -----------------------------------------------------------------------

    def shutdown(self) -> None:
        self.stop_keepalive()
        if self.transport.is_closing():
            return
        if not self.answered:
            return  # the handshake is still being decided: the application's answer closes it
        if self.close_sent or self.conn.state is not State.OPEN:
            # Our close is out already, or the client closed first and websockets answered: nothing more.
            self.transport.close()
            return
        self.send_close(GOING_AWAY, "Server shutting down")

    def abort(self) -> None:
        self.transport.abort()

    def send_close(self, code: int, reason: str) -> None:
        if not self.disconnected:
            self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self.write_out()
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()  # the peer's close frame must be read
        # The peer's close frame is awaited that long; then the socket is dropped, unread data or not.
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.abort)

    # --- the ASGI application ----------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self.state.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except Exception:
            log.exception("edge_websocket_application_error")
            if not self.answered:
                self.refuse_handshake(None, status=500)
            elif not self.close_sent and not self.disconnected:
                self.send_close(_INTERNAL_ERROR, "")
            return
        if not self.answered:
            log.error("edge_websocket_no_handshake_answer")
            self.refuse_handshake(None, status=500)
        elif self.close_timer is None and not self.transport.is_closing():
            self.transport.close()

    def refuse_handshake(self, written: bytes | None, *, status: int = 400) -> None:
        self.answered = True
        self.close_sent = True
        if written is None:
            response = self.conn.reject(status, "" if status != 400 else "Invalid WebSocket handshake\n")
            self.conn.send_response(response)
            written = b"".join(self.conn.data_to_send())
        if not self.transport.is_closing():
            self.transport.write(written)
            self.transport.close()

    def receive_denial(self, message: Message) -> None:
        """One message of the application's HTTP answer to the handshake; the last one sends it."""
        kind = message["type"]
        if self.denial is None:
            if kind != "websocket.http.response.start":
                raise RuntimeError(f"expected websocket.http.response.start, got {kind!r}")
            status = int(message["status"])
            if not 200 <= status <= 599:  # 1xx would not end the handshake; 101 would pretend to accept it
                raise RuntimeError(f"invalid status {status} for a refused WebSocket handshake")
            headers = [(bytes(name).lower(), bytes(value)) for name, value in message.get("headers", ())]
            self.denial = _DenialResponse(status, headers)
            return
        if kind != "websocket.http.response.body":
            raise RuntimeError(f"expected websocket.http.response.body, got {kind!r}")
        self.denial.body.append(bytes(message.get("body", b"")))
        if not message.get("more_body", False):
            self.send_denial(self.denial)

    def send_denial(self, denial: _DenialResponse) -> None:
        body = b"".join(denial.body)
        head, _ = encode_head(denial.status, self.state.date.current(), denial.headers, len(body), keep_alive=False)
        self.answered = True
        self.close_sent = True
        if not self.transport.is_closing():
            self.transport.write(head + body)
            self.transport.close()
        self.disconnect_refused()

    def disconnect_refused(self) -> None:
        """After a refused handshake, the application's next receive() is the end of the connection."""
        if not self.disconnected:
            self.disconnected = True
            self.queue.put_nowait({"type": "websocket.disconnect", "code": _ABNORMAL})

    async def receive(self) -> Message:
        message = await self.queue.get()
        if self.read_paused and self.queue.empty():
            self.read_paused = False
            self.transport.resume_reading()
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if not self.answered:
            if self.denial is not None or kind.startswith("websocket.http.response."):
                self.receive_denial(message)
                return
            if kind == "websocket.accept":
                assert self.response is not None
                subprotocol = message.get("subprotocol")
                headers = Headers(
                    [(bytes(n).decode("latin-1"), bytes(v).decode("latin-1")) for n, v in message.get("headers", ())]
                )
                if subprotocol:
                    headers["Sec-WebSocket-Protocol"] = subprotocol
                self.response.headers.update(headers)
                self.answered = self.accepted = True
                if self.transport.is_closing():
                    raise ClientDisconnected
                self.conn.send_response(self.response)
                self.write_out()
                self.schedule_ping()
                return
            if kind == "websocket.close":  # refused before the handshake: HTTP 403
                self.refuse_handshake(None, status=403)
                self.disconnect_refused()
                return
            raise RuntimeError(f"expected websocket.accept or websocket.close, got {kind!r}")
        if self.disconnected and not self.close_sent:
            raise ClientDisconnected
        if self.close_sent:
            raise RuntimeError(f"{kind!r} after websocket.close")
        if kind == "websocket.close":
            # Written even while the client does not read (see the module docstring).
            self.send_close(int(message.get("code") or 1000), message.get("reason") or "")
            return
        if kind != "websocket.send":
            raise RuntimeError(f"unexpected ASGI message {kind!r}")
        await self.writable.wait()
        if self.disconnected or self.close_sent:
            raise ClientDisconnected
        text = message.get("text")
        if text is not None:
            self.conn.send_text(text.encode())
        else:
            self.conn.send_binary(message.get("bytes") or b"")
        self.write_out()

"""The edge's WebSocket connection to Hasura (``ws(s)://<hasura>/v1/graphql``), one per client socket.

``UpstreamConnector.connect(protocol, init_payload)`` opens the socket with the client's subprotocol,
sends the edge-made ``connection_init`` and waits for ``connection_ack`` (keep-alives before it are
skipped). It raises :class:`UpstreamRefused` when Hasura refuses the init (``connection_error`` or a
4xxx close) and :class:`UpstreamUnavailable` when Hasura cannot be reached or does not answer in time.

Built on the ``websockets`` client, a runtime dependency already (aiohttp's client would add one).
Compression is off, and frames from Hasura are capped at ``max_message_bytes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from edge.ws.protocols import Protocol

__all__ = ["UpstreamConnection", "UpstreamConnector", "UpstreamRefused", "UpstreamUnavailable", "websocket_url"]


class UpstreamUnavailable(Exception):
    """Hasura could not be reached, refused the handshake, or did not acknowledge in time."""


class UpstreamRefused(Exception):
    """Hasura refused the edge's ``connection_init`` (a configuration problem: wrong admin secret)."""


def websocket_url(hasura_base_url: str) -> str:
    """``http://hasura:8080`` -> ``ws://hasura:8080/v1/graphql`` (https -> wss)."""
    if hasura_base_url.startswith("https://"):
        return "wss://" + hasura_base_url[len("https://") :] + "/v1/graphql"
    return "ws://" + hasura_base_url.removeprefix("http://") + "/v1/graphql"


class UpstreamConnection:
    """One acknowledged socket to Hasura. ``receive()`` returns None once it is closed."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self.close_code: int | None = None

    async def send(self, message: bytes | str) -> None:
        """Send one text frame; a closed socket is ignored (the reader reports it)."""
        with contextlib.suppress(ConnectionClosed):
            await self._ws.send(message if isinstance(message, str) else message.decode("utf-8"))

    async def receive(self) -> str | None:
        try:
            message = await self._ws.recv()
        except ConnectionClosed as closed:
            self.close_code = closed.rcvd.code if closed.rcvd is not None else 1006
            return None
        return message if isinstance(message, str) else message.decode("utf-8", "replace")

    async def close(self, code: int = 1000) -> None:
        with contextlib.suppress(TimeoutError, ConnectionClosed, OSError):
            await asyncio.wait_for(self._ws.close(code), 2.0)


class UpstreamConnector:
    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 5.0,
        max_message_bytes: int = 16 * 1024 * 1024,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url
        self.connect_timeout = connect_timeout
        self.max_message_bytes = max_message_bytes
        self.ssl_context = ssl_context

    async def connect(self, protocol: Protocol, init_payload: dict[str, Any]) -> UpstreamConnection:
        options: dict[str, Any] = {}
        if self.url.startswith("wss://"):
            options["ssl"] = self.ssl_context or True
        try:
            async with asyncio.timeout(self.connect_timeout):
                ws = await connect(
                    self.url,
                    subprotocols=[protocol.name],  # type: ignore[list-item]
                    compression=None,
                    max_size=self.max_message_bytes,
                    open_timeout=None,
                    ping_interval=20,
                    ping_timeout=20,
                    close_timeout=2,
                    user_agent_header=None,
                    **options,
                )
                try:
                    await ws.send(orjson.dumps({"type": "connection_init", "payload": init_payload}).decode())
                    while True:
                        message = orjson.loads(await ws.recv())
                        kind = message.get("type") if isinstance(message, dict) else None
                        if kind == "connection_ack":
                            return UpstreamConnection(ws)
                        if kind == "connection_error":
                            raise UpstreamRefused(str(message.get("payload"))[:200])
                        if kind == "ping":
                            await ws.send('{"type":"pong"}')
                except BaseException:
                    await UpstreamConnection(ws).close()
                    raise
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else 1006
            if 4400 <= code < 4500:
                raise UpstreamRefused(f"Hasura closed the connection with {code}") from None
            raise UpstreamUnavailable(f"Hasura closed the connection with {code}") from None
        except (TimeoutError, OSError, InvalidHandshake, InvalidURI, orjson.JSONDecodeError) as exc:
            raise UpstreamUnavailable(type(exc).__name__) from None

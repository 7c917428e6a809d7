"""What the HTTP server needs to know, derived once from the edge's settings."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from edge.settings import EdgeSettings

__all__ = ["ServerConfig", "WebSocketOptions", "server_config", "tls_context"]


@dataclass(frozen=True, slots=True)
class WebSocketOptions:
    max_message_bytes: int = 65_536
    """A larger message closes the connection with 1009."""
    ping_interval: float | None = 20.0
    """Protocol pings; a peer that does not answer within ``ping_timeout`` is closed with 1011."""
    ping_timeout: float = 20.0
    close_timeout: float = 10.0
    """How long a sent close frame waits for the peer's before the connection is dropped."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    max_header_bytes: int = 32_768
    """The request line's target excluded; trailers count too (431)."""
    max_url_bytes: int = 8_192
    """The request target (414)."""
    max_body_bytes: int = 1_048_576
    """A declared ``Content-Length`` over it is refused at once; a chunked body when it passes it (413)."""
    request_deadline: float = 10.0
    """From a request's first byte (or the connection's start) to its last (408)."""
    keep_alive: float = 20.0
    """An idle keep-alive connection is closed after this long."""
    graceful_shutdown: float = 30.0
    """How long shutdown waits for requests in flight before cancelling them."""
    websocket: WebSocketOptions = field(default_factory=WebSocketOptions)
    tls: ssl.SSLContext | None = None
    """Serve https and wss on the same port when set."""


def tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server-side TLS context with the defaults of the ``ssl`` module (TLS 1.2+)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def server_config(settings: EdgeSettings) -> ServerConfig:
    """The server's half of the settings (one place: ``python -m edge`` and the tests use it)."""
    if (settings.tls_cert_file is None) != (settings.tls_key_file is None):
        raise ValueError("EDGE_TLS_CERT_FILE and EDGE_TLS_KEY_FILE must be set together")
    tls = None
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        tls = tls_context(str(settings.tls_cert_file), str(settings.tls_key_file))
    return ServerConfig(
        max_header_bytes=settings.max_header_bytes,
        max_url_bytes=settings.max_url_bytes,
        max_body_bytes=settings.max_body_bytes,
        request_deadline=settings.request_deadline_seconds,
        keep_alive=settings.keep_alive_seconds,
        websocket=WebSocketOptions(max_message_bytes=settings.ws_max_message_bytes),
        tls=tls,
    )

"""The edge's own HTTP/1.1 and WebSocket server, over asyncio, httptools and websockets' sans-I/O API.

``HttpServer`` listens and shuts down gracefully; ``HttpConnection`` owns each client connection
(parser, limits, deadlines, keep-alive, pipelining, flow control) until it closes or is upgraded,
and ``WebSocketConnection`` owns it after a WebSocket upgrade. Requests for a path with a direct
handler (the GraphQL endpoint) go to that handler without ASGI; everything else runs the ASGI app.
``docs/architecture.md`` draws the whole path.
"""

from edge.http_server.config import ServerConfig, WebSocketOptions, server_config
from edge.http_server.server import HttpServer, bind
from edge.http_server.state import DirectHandler

__all__ = ["DirectHandler", "HttpServer", "ServerConfig", "WebSocketOptions", "bind", "server_config"]

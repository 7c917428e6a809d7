"""GraphQL subscriptions through the edge: both WebSocket protocols, relayed to Hasura.

- ``protocols``: message vocabularies per direction, close codes, subprotocol choice.
- ``credentials``: the ``connection_init`` payload forms -> headers for ``Authenticate``.
- ``bridge``: one client socket <-> one Hasura socket (limits, expiry, refresh, backpressure).
- ``upstream``: the connection to Hasura; ``counters``: subscriptions per key across replicas.
- ``handler``: the ASGI entry (path, Origin, subprotocol); the WebSocket protocol itself is the server's
  (``edge.http_server.websocket``).
- ``devcert``: a development CA and certificate for the compose demo.

``make_websocket_handler`` builds the handler from settings and the HTTP pipeline's stages.
"""

from __future__ import annotations

from edge.ws.factory import make_websocket_handler
from edge.ws.handler import GraphQLWebSocketHandler, refuse_without_websocket_route

__all__ = ["GraphQLWebSocketHandler", "make_websocket_handler", "refuse_without_websocket_route"]

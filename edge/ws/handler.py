"""The ASGI handler for WebSocket ``/graphql`` and ``/v1/graphql``: Origin, subprotocol, then one :class:`Bridge`.

- Any other path (``edge.graphql_paths``): refused before the upgrade with 404 ``not-found``, the status
  and body an unknown path gets over plain HTTP (:func:`refuse_without_websocket_route`). Paths served
  over HTTP only (``/healthz``, ``/api/rest/...``) get the same 404, not a 405 or 400: nothing serves
  them over WebSocket, and Hasura answers an upgrade on any path but its WebSocket ones with 404
  ``not-found`` too (``checkPath`` in ``onConn``, ``server/src-lib/Hasura/GraphQL/Transport/WebSocket.hs``).
  The path is checked before ``Origin``, as Hasura does.
- ``Origin`` present and not exactly in ``EDGE_ALLOWED_ORIGINS`` (``null`` included): HTTP 403. With
  ``EDGE_GRAPHIQL`` on, the edge's own origin is allowed too (``same_origin``): the page the edge serves
  subscribes on the host it came from, so an ``Origin`` whose host and port are the request's ``Host``.
  Without ``Origin`` (a non-browser client) the upgrade is allowed; credentials are required in
  ``connection_init`` as always, so nothing is reachable without them (unless an unauthorized
  role is configured, exactly as on HTTP).
- Subprotocol: ``graphql-transport-ws`` (preferred) or ``graphql-ws``; none offered: legacy, as
  Hasura; only unknown ones: accepted without a subprotocol, then closed with 4406.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from edge.asgi import DENIAL_RESPONSE, Receive, Scope, Send, asgi_client
from edge.errors import NotFound
from edge.graphql_paths import GRAPHQL_PATHS
from edge.http.client_address import ClientAddressResolver
from edge.http.request_id import choose_request_id
from edge.ws.bridge import Bridge
from edge.ws.protocols import CloseCode, choose_subprotocol
from edge.ws.services import Services, WebSocketConfig

__all__ = ["GraphQLWebSocketHandler", "refuse_without_websocket_route"]

log = logging.getLogger("edge.ws")


class GraphQLWebSocketHandler:
    def __init__(
        self,
        services: Services,
        config: WebSocketConfig,
        *,
        allowed_origins: list[str],
        addresses: ClientAddressResolver,
        same_origin: bool = False,
        security_headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        self.services = services
        self.config = config
        self.allowed_origins = frozenset(origin.encode("latin-1") for origin in allowed_origins)
        self.addresses = addresses
        self.same_origin = same_origin
        self.security_headers = list(security_headers)  # on the 404 for another path, as on HTTP answers

    @property
    def registry(self) -> object:
        return self.services.registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if scope["path"] not in GRAPHQL_PATHS:
            await refuse_without_websocket_route(scope, send, self.security_headers)
            return
        headers: list[tuple[bytes, bytes]] = list(scope["headers"])
        origins = [value for name, value in headers if name == b"origin"]
        if any(not self._allowed(origin, headers) for origin in origins):
            await send({"type": "websocket.close", "code": CloseCode.POLICY})  # before accept: HTTP 403
            return
        protocol, subprotocol = choose_subprotocol(list(scope.get("subprotocols") or ()))
        if protocol is None:
            await send({"type": "websocket.accept"})
            await send(
                {"type": "websocket.close", "code": CloseCode.SUBPROTOCOL, "reason": "Subprotocol not acceptable"}
            )
            return
        await send({"type": "websocket.accept", "subprotocol": subprotocol})
        request_id = choose_request_id(next((value for name, value in headers if name == b"x-request-id"), None))
        forwarded = [value for name, value in headers if name == b"x-forwarded-for"]
        bridge = Bridge(
            protocol,
            receive,
            send,
            handshake=headers,
            client_address=self.addresses.resolve(asgi_client(scope), forwarded),
            request_id=request_id,
            services=self.services,
            config=self.config,
        )
        await bridge.run()

    def _allowed(self, origin: bytes, headers: list[tuple[bytes, bytes]]) -> bool:
        if origin in self.allowed_origins:
            return True
        if not self.same_origin:
            return False
        scheme, separator, authority = origin.partition(b"://")
        if not separator or scheme.lower() not in (b"http", b"https") or not authority:
            return False
        hosts = [value for name, value in headers if name == b"host"]
        return len(hosts) == 1 and authority.lower() == hosts[0].strip().lower()


async def refuse_without_websocket_route(
    scope: Scope, send: Send, security_headers: Sequence[tuple[bytes, bytes]]
) -> None:
    """Refuse an upgrade on a path nothing serves over WebSocket: 404 with the ``not-found`` error that an
    unknown path gets over HTTP (``edge.app``), byte for byte, and the connection closed.

    Under an ASGI server without the WebSocket Denial Response extension the application cannot
    answer over HTTP: the refusal is that server's 403.
    """
    if DENIAL_RESPONSE not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": CloseCode.POLICY})
        return
    error = NotFound()
    headers = [(b"content-type", b"application/json"), *security_headers]
    await send({"type": "websocket.http.response.start", "status": error.status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": error.body()})

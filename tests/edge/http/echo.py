"""Echo handlers that stand in for the GraphQL pipeline: they answer with what the HTTP layer handed over.

Each answers ``200`` with a JSON description of the request exactly as the layer gave it (method,
target, header list, body; bytes as latin-1 text, which maps every byte to one code point), and a
``413`` in the edge's error shape, with ``connection: close``, when the body is over the limit, as
``GraphQLHTTPHandler`` does. The ``/graphql`` handler has the signature of
``GraphQLHTTPHandler.handle``; the ASGI app serves every other request, and routes ``/graphql``
the way ``edge.app.EdgeApp`` does (by the decoded path), so both routes of the edge are visible.
The GraphQL handler is given the query string only, so a request that reaches it by either route
is reported with the target ``/graphql`` and its query string; others with the raw path.
"""

from __future__ import annotations

from edge.asgi import ClientDisconnected, Receive, Scope, Send, read_body, send_response
from edge.errors import PayloadTooLarge
from edge.graphql_http import BodyReader, Responder
from tests.edge.http.outcome import Handed, describe

__all__ = ["EchoApp", "EchoGraphQLHandler"]

GRAPHQL_PATH = "/graphql"  # where edge.app.EdgeApp mounts the GraphQL handler
_JSON = (b"content-type", b"application/json")
_CLOSE = (b"connection", b"close")


def _too_large(error: PayloadTooLarge) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return error.status, [_JSON, _CLOSE], error.body()


class EchoGraphQLHandler:
    """The GraphQL handler's ``handle`` signature (``edge.http_server.DirectHandler``), echoing.

    Not a subclass of ``GraphQLHTTPHandler``: that class is compiled in the image's build, and an
    interpreted class cannot extend a compiled one.
    """

    def __init__(self, *, body_limit: int) -> None:
        self.body_limit = body_limit

    async def handle(
        self,
        method: str,
        headers: list[tuple[bytes, bytes]],
        query_string: bytes,
        client: tuple[str, int] | None,
        read_body: BodyReader,
        respond: Responder,
        arrived_body: bytes | None = None,
    ) -> None:
        try:
            if arrived_body is None:
                body = await read_body(self.body_limit)
            elif len(arrived_body) > self.body_limit:  # as edge.pipeline.receive_request does
                raise PayloadTooLarge.over(self.body_limit)
            else:
                body = arrived_body
        except PayloadTooLarge as error:
            status, out, answer = _too_large(error)
        except ClientDisconnected:
            return
        else:
            target = GRAPHQL_PATH.encode("ascii") + (b"?" + query_string if query_string else b"")
            # A copy of the list as it is now: what the handler holds when it has the whole body.
            handed = Handed(method.encode("latin-1"), target, tuple(headers), body, "graphql")
            status, out, answer = 200, [_JSON], describe(handed)
        sending = respond(status, out, answer)
        if sending is not None:
            await sending


class EchoApp:
    """The ASGI app: echoes every HTTP request; ``direct_graphql`` is the handler for ``/graphql``."""

    def __init__(self, *, body_limit: int) -> None:
        self.body_limit = body_limit
        self.direct_graphql = EchoGraphQLHandler(body_limit=body_limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # WebSocket upgrades are not part of this table: refused by closing
        try:
            body = await read_body(receive, self.body_limit)
        except PayloadTooLarge as error:
            await send_response(send, *_too_large(error))
            return
        except ClientDisconnected:
            return
        query = scope["query_string"]
        if scope["path"] == GRAPHQL_PATH:
            route, path = "graphql", GRAPHQL_PATH.encode("ascii")  # what the GraphQL handler can know
        else:
            route, path = "other", scope["raw_path"]
        target = path + (b"?" + query if query else b"")
        handed = Handed(scope["method"].encode("latin-1"), target, tuple(scope["headers"]), body, route)
        await send_response(send, 200, [_JSON], describe(handed))


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return

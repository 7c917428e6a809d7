"""The edge behind other servers' public interfaces, for ``bench/servers.py``.

Each entry builds the edge as ``python -m edge`` does (``EdgeSettings()`` from the ``EDGE_*``
environment, ``create_app``) and serves it through one documented interface only:

- :func:`asgi_app`: ``EdgeApp`` as a plain ASGI app (for uvicorn's public ``Config`` and for
  ``granian --interface asgi --factory``);
- :func:`rsgi_app`: ``EdgeApp.graphql`` (``GraphQLHTTPHandler.handle``) behind granian's RSGI
  interface (``--interface rsgi --factory``): ``scope.headers``, ``await proto()``, ``async for
  chunk in proto``, ``proto.response_bytes(...)``, and the ``__rsgi_init__``/``__rsgi_del__``
  hooks, as granian's RSGI specification (docs/spec/RSGI.md in its repository) describes them;
- ``python bench/edge_servers.py uvicorn``: the ASGI app under ``uvicorn.Config(app,
  http="httptools", loop="uvloop")`` and ``uvicorn.Server``, with uvicorn's own options only.

Every one runs the app's ASGI lifespan and then ``gc.freeze()``, as ``edge.server.EdgeServer``
does after start-up, so that the rows differ only in the server. This is benchmark code: the RSGI
adapter answers ``/graphql`` only (anything else gets a GraphQL-shaped 404, a WebSocket is
refused), which is all the benchmark sends.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import sys
from typing import Any

from granian.rsgi import ProtocolClosed, ProtocolError

# ``edge`` is whichever the interpreter finds first: this checkout's (the editable install), or
# the copy that bench/servers.py puts first on PYTHONPATH to measure another revision.
from edge.app import EdgeApp, create_app
from edge.asgi import ASGIApp, ClientDisconnected, Message, Receive, Scope, Send
from edge.errors import PayloadTooLarge, graphql_error_body
from edge.logs import configure_logging
from edge.settings import EdgeSettings

__all__ = ["EdgeRSGI", "FrozenAfterStartup", "Lifespan", "asgi_app", "rsgi_app"]


def build_edge() -> tuple[EdgeSettings, EdgeApp]:
    settings = EdgeSettings()
    configure_logging(settings.log_level, settings.log_format)
    return settings, create_app(settings)


def freeze_startup_objects() -> None:
    """What ``EdgeServer.startup`` does: start-up's long-lived objects out of the collector's way."""
    gc.collect()
    gc.freeze()


class FrozenAfterStartup:
    """An ASGI app that calls :func:`freeze_startup_objects` once the wrapped app's lifespan has started."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_then_freeze(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                freeze_startup_objects()
            await send(message)

        await self.app(scope, receive, send_then_freeze)


def asgi_app() -> FrozenAfterStartup:
    """The edge as a plain ASGI app (``EdgeApp.__call__``), for any ASGI server."""
    return FrozenAfterStartup(build_edge()[1])


class Lifespan:
    """Runs an ASGI app's lifespan (the ASGI lifespan protocol) for a server that has none: RSGI."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self.replies: asyncio.Queue[Message] = asyncio.Queue()
        self.task: asyncio.Future[None] | None = None

    async def _send(self, message: Message) -> None:
        await self.replies.put(message)

    async def _exchange(self, kind: str) -> None:
        await self.messages.put({"type": f"lifespan.{kind}"})
        reply = await self.replies.get()
        if reply["type"] != f"lifespan.{kind}.complete":
            raise RuntimeError(f"lifespan {kind} failed: {reply.get('message', '')}")

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.3"}, "state": {}}
        self.task = asyncio.ensure_future(self.app(scope, self.messages.get, self._send))
        await self._exchange("startup")

    async def shutdown(self) -> None:
        await self._exchange("shutdown")
        if self.task is not None:
            await self.task


def _client_address(client: str) -> tuple[str, int] | None:
    """RSGI's ``scope.client`` is ``"{address}:{port}"`` (an IPv6 address without brackets)."""
    host, _, port = client.rpartition(":")
    return (host, int(port)) if port.isdigit() else None


async def _read_body(proto: Any, declared: str | None, limit: int) -> bytes:
    """The whole request body, never more than ``limit`` bytes (the handler's ``read_body``).

    With a Content-Length, hyper delivers exactly that many bytes, so one over the limit is
    refused before any is read and ``await proto()`` is bounded (it raises ``ProtocolClosed`` if
    the client leaves first). A chunked body is counted as it arrives; granian 2.8 ends that
    iteration quietly when the client leaves mid-body, so a cut chunked body cannot be told apart.
    """
    try:
        if declared is not None:
            if int(declared) > limit:
                raise PayloadTooLarge.over(limit)
            body: bytes = await proto()
            return body
        chunks: list[bytes] = []
        size = 0
        async for chunk in proto:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge.over(limit)
            chunks.append(chunk)
        return b"".join(chunks)
    except (ProtocolClosed, ProtocolError) as error:
        raise ClientDisconnected from error


def _respond(proto: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    # RSGI headers are str pairs; hyper writes Content-Length for a bytes body itself.
    proto.response_bytes(status, [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers], body)


_NOT_FOUND = graphql_error_body("resource does not exist", "not-found")


class EdgeRSGI:
    """``GraphQLHTTPHandler.handle`` as a granian RSGI application (the GraphQL paths only)."""

    def __init__(self, app: EdgeApp) -> None:
        self.app = app
        self.routes = {path.decode(): handler.handle for path, handler in app.direct_routes.items()}
        self.lifespan = Lifespan(app)

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # granian's process workers call this before their loop runs (its embedded server calls
        # it from inside the running loop, where this would fail: there a task would be needed).
        loop.run_until_complete(self.lifespan.startup())
        freeze_startup_objects()

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.lifespan.shutdown())

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            proto.close(1008)  # WebSocket: not served by this adapter
            return
        handle = self.routes.get(scope.path)
        if handle is None:
            proto.response_bytes(404, [("content-type", "application/json")], _NOT_FOUND)
            return
        request_headers = scope.headers
        await handle(
            scope.method,
            [(name.encode("latin-1"), value.encode("latin-1")) for name, value in request_headers.items()],
            scope.query_string.encode("utf-8"),
            _client_address(scope.client),
            functools.partial(_read_body, proto, request_headers.get("content-length")),
            functools.partial(_respond, proto),
        )


def rsgi_app() -> EdgeRSGI:
    """The factory for ``granian --interface rsgi --factory bench/edge_servers.py:rsgi_app``."""
    return EdgeRSGI(build_edge()[1])


def run_uvicorn() -> None:
    """uvicorn's public path: ``uvicorn.Config(app, http="httptools", loop="uvloop")``, documented options only."""
    import uvicorn

    settings, app = build_edge()
    config = uvicorn.Config(
        FrozenAfterStartup(app),
        host=settings.host,
        port=settings.port,
        http="httptools",
        loop="uvloop",
        log_config=None,
        access_log=False,
        lifespan="on",
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=int(settings.keep_alive_seconds),
        timeout_graceful_shutdown=30,
        ws="websockets-sansio",
        ws_max_size=settings.ws_max_message_bytes,
        ws_per_message_deflate=False,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    if sys.argv[1:] != ["uvicorn"]:
        sys.exit("usage: python bench/edge_servers.py uvicorn  (granian loads asgi_app or rsgi_app itself)")
    run_uvicorn()

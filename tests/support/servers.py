"""Run a server on a loopback port, in a background thread: the edge's own HTTP server
(``start_http_server``), or uvicorn for the stand-ins around it (``start_server``: the Hasura
double, JWKS and authorizer endpoints).

Tests talk to it over real sockets, the way production does. Each server has its own event
loop in its own thread, so a test's own loop (pytest-asyncio) never shares state with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from edge.http_server import DirectHandler, HttpServer, ServerConfig


def free_loopback_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class RunningServer:
    host: str
    port: int
    server: Any
    """The ``uvicorn.Server`` or the edge's ``HttpServer``."""
    thread: threading.Thread
    loop_box: dict[str, asyncio.AbstractEventLoop] = field(default_factory=dict)
    request_stop: Callable[[], None] | None = None
    app: Any = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.loop_box["loop"]

    def stop(self, timeout: float = 10.0) -> None:
        if self.request_stop is not None:
            self.request_stop()
        else:
            self.server.should_exit = True
        self.thread.join(timeout)


def _serve_in_thread(
    name: str, sock: socket.socket, serve: Callable[[], Awaitable[None]], started: Callable[[], bool], timeout: float
) -> tuple[threading.Thread, dict[str, asyncio.AbstractEventLoop]]:
    """Run ``serve()`` on a new event loop in a daemon thread; return once ``started()`` says so."""
    loop_box: dict[str, asyncio.AbstractEventLoop] = {}
    failure: list[BaseException] = []

    def run() -> None:
        loop = asyncio.new_event_loop()
        loop_box["loop"] = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:  # reported to the starting thread
            failure.append(exc)
        finally:
            loop.close()
            sock.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not started():
        if not thread.is_alive():
            raise RuntimeError(f"test server exited during start-up: {failure[0] if failure else '?'}")
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start in time")
        time.sleep(0.005)
    return thread, loop_box


def start_server(
    app: Any, *, startup_timeout: float = 10.0, server_class: type[uvicorn.Server] = uvicorn.Server, **config: Any
) -> RunningServer:
    """Start ``app`` under uvicorn (httptools, no access log) and wait until it accepts connections.

    Extra keyword arguments go to ``uvicorn.Config`` (for example ``lifespan="off"``).
    """
    sock = free_loopback_socket()
    host, port = sock.getsockname()[:2]
    options: dict[str, Any] = {"http": "httptools", "log_level": "warning", "access_log": False, "lifespan": "on"}
    options.update(config)
    server = server_class(uvicorn.Config(app, **options))
    try:
        thread, loop_box = _serve_in_thread(
            f"uvicorn-{port}", sock, lambda: server.serve(sockets=[sock]), lambda: server.started, startup_timeout
        )
    except RuntimeError:
        server.should_exit = True
        raise
    return RunningServer(host=host, port=port, server=server, thread=thread, loop_box=loop_box, app=app)


def start_http_server(
    app: Any,
    config: ServerConfig | None = None,
    *,
    direct: Mapping[bytes, DirectHandler] | None = None,
    lifespan: bool = True,
    drain_websockets: Callable[[], Awaitable[None]] | None = None,
    startup_timeout: float = 10.0,
) -> RunningServer:
    """Start ``app`` under the edge's own HTTP server (``edge.http_server``) and wait until it listens."""
    sock = free_loopback_socket()
    host, port = sock.getsockname()[:2]
    server = HttpServer(
        app, config or ServerConfig(), direct=direct, lifespan=lifespan, drain_websockets=drain_websockets
    )
    stop = asyncio.Event()  # bound to the server's loop on first use there

    async def serve() -> None:
        await server.start([sock])
        await stop.wait()
        await server.shutdown()

    thread, loop_box = _serve_in_thread(f"edge-{port}", sock, serve, lambda: server.started, startup_timeout)

    def request_stop() -> None:
        loop = loop_box["loop"]
        if not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)

    return RunningServer(
        host=host, port=port, server=server, thread=thread, loop_box=loop_box, request_stop=request_stop, app=app
    )


@contextlib.contextmanager
def serving(app: Any, **config: Any) -> Iterator[RunningServer]:
    running = start_server(app, **config)
    try:
        yield running
    finally:
        running.stop()

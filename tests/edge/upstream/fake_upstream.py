"""Small asyncio HTTP/1.1 servers on loopback that misbehave on purpose.

Each server runs in the test's own event loop. A handler decides what to do with every request
(answer, hang, close, send garbage); the server counts connections so tests can check pooling.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import orjson

JSON_BODY = orjson.dumps({"data": {"users": [{"id": i, "name": f"user {i}"} for i in range(20)]}})


@dataclass
class Request:
    method: str
    path: str
    headers: list[tuple[bytes, bytes]]  # lower-cased names, in order
    body: bytes

    def values(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.headers if n == name]


@dataclass
class Ctx:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    conn_no: int  # 0-based, in accept order
    req_no: int  # 0-based, on this connection
    server: FakeUpstream


Handler = Callable[[Request, Ctx], Awaitable[bool]]  # return False to close the connection


@dataclass
class FakeUpstream:
    handler: Handler
    port: int = 0
    connections: int = 0
    open_now: int = 0
    max_open: int = 0
    closed_conns: int = 0
    requests: list[Request] = field(default_factory=list)
    request_seen: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeUpstream:
        self._server = await asyncio.start_server(self._on_client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        await self._server.wait_closed()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn_no = self.connections
        self.connections += 1
        self.open_now += 1
        self.max_open = max(self.max_open, self.open_now)
        try:
            req_no = 0
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                self.requests.append(request)
                self.request_seen.set()
                if not await self.handler(request, Ctx(reader, writer, conn_no, req_no, self)):
                    break
                await writer.drain()
                req_no += 1
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.open_now -= 1
            self.closed_conns += 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._tasks.discard(task)


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head[:-4].split(b"\r\n")
    method, path, _ = lines[0].decode().split(" ", 2)
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.strip().lower(), value.strip()))
    length = int(dict(headers).get(b"content-length", b"0"))
    body = await reader.readexactly(length) if length else b""
    return Request(method, path, headers, body)


def response(status: int = 200, body: bytes = JSON_BODY, headers: list[tuple[bytes, bytes]] | None = None) -> bytes:
    lines = [b"HTTP/1.1 %d OK" % status, b"content-type: application/json"]
    lines += [b"%s: %s" % h for h in headers or []]
    lines.append(b"content-length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def until_client_closes(ctx: Ctx) -> None:
    """Hang without answering, but notice when the client closes the connection."""
    while await ctx.reader.read(65536):
        pass


# Handlers ----------------------------------------------------------------------------------------


async def ok(request: Request, ctx: Ctx) -> bool:
    ctx.writer.write(response())
    return True


async def echo_path(request: Request, ctx: Ctx) -> bool:
    ctx.writer.write(response(body=orjson.dumps({"method": request.method, "path": request.path})))
    return True


async def slow_ok(request: Request, ctx: Ctx) -> bool:
    await asyncio.sleep(0.002)  # long enough for requests to queue behind the pool limit
    ctx.writer.write(response())
    return True


async def hang(request: Request, ctx: Ctx) -> bool:
    await until_client_closes(ctx)
    return False


async def hang_if_asked(request: Request, ctx: Ctx) -> bool:
    if request.body == b'"hang"':
        await until_client_closes(ctx)
        return False
    ctx.writer.write(response())
    return True


async def close_silently(request: Request, ctx: Ctx) -> bool:
    return False


async def one_then_close_on_next(request: Request, ctx: Ctx) -> bool:
    """Answers the first request on a connection; closes without a byte on the second (stale race)."""
    if ctx.req_no == 0:
        ctx.writer.write(response())
        return True
    return False


async def one_then_hang(request: Request, ctx: Ctx) -> bool:
    if ctx.req_no == 0:
        ctx.writer.write(response())
        return True
    await until_client_closes(ctx)
    return False


async def one_then_partial(request: Request, ctx: Ctx) -> bool:
    if ctx.req_no == 0:
        ctx.writer.write(response())
        return True
    ctx.writer.write(b"HTTP/1.1 200 OK\r\nContent-Le")
    await ctx.writer.drain()
    return False


async def one_then_idle_close(request: Request, ctx: Ctx) -> bool:
    """Answers and closes without saying so: an idle keep-alive timeout on the server side."""
    ctx.writer.write(response())
    return False


async def chunked(request: Request, ctx: Ctx) -> bool:
    ctx.writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
    for piece in (JSON_BODY[:100], JSON_BODY[100:300], JSON_BODY[300:]):
        ctx.writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        await ctx.writer.drain()
        await asyncio.sleep(0.001)
    ctx.writer.write(b"0\r\n\r\n")
    return True


async def close_delimited(request: Request, ctx: Ctx) -> bool:
    ctx.writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n" + JSON_BODY)
    return False


async def connection_close(request: Request, ctx: Ctx) -> bool:
    ctx.writer.write(response(headers=[(b"connection", b"close")]))
    return False


async def oversized(request: Request, ctx: Ctx) -> bool:
    ctx.writer.write(response(body=b"x" * 300_000))
    return True


async def garbage(request: Request, ctx: Ctx) -> bool:
    ctx.writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\nthis is not http\r\n\r\n")
    await ctx.writer.drain()
    await asyncio.sleep(0.05)
    return False


async def hop_by_hop(request: Request, ctx: Ctx) -> bool:
    ctx.writer.write(
        response(
            status=201,
            headers=[
                (b"X-Request-Id", b"abc"),
                (b"Keep-Alive", b"timeout=5"),
                (b"Connection", b"keep-alive, X-Private"),
                (b"X-Private", b"hop"),
                (b"Set-Cookie", b"a=1"),
                (b"Set-Cookie", b"b=2"),
                (b"Upgrade", b"h2c"),
            ],
        )
    )
    return True


async def gzipped(request: Request, ctx: Ctx) -> bool:
    ctx.writer.write(response(body=gzip.compress(JSON_BODY), headers=[(b"content-encoding", b"gzip")]))
    return True

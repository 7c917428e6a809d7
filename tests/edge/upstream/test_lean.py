"""LeanUpstream's pool: stale connections (retried only when idempotent), idle bound, limits, cancellation,
size cap, shutdown.

What the pool does is observed from outside: the connections the server accepts, sees open and sees
closed, and :meth:`LeanUpstream.pool`'s counts. A slot that failed to come back shows as a request that
cannot start: tests with ``max_connections=1`` make one more request after the failure.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import orjson
import pytest

from edge.upstream import (
    UpstreamConnectError,
    UpstreamPoolTimeout,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from edge.upstream import lean as lean_module
from edge.upstream.lean import LeanUpstream, PoolState
from tests.edge.upstream import fake_upstream as fu
from tests.edge.upstream.conftest import ServeFn

BODY = orjson.dumps({"query": "{ users { id } }"})
MUTATION = orjson.dumps({"query": "mutation { delete_users(where: {}) { affected_rows } }"})
Lean = Callable[..., LeanUpstream]


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


def test_rejects_https_and_bad_sizes() -> None:
    with pytest.raises(ValueError, match="http://"):
        LeanUpstream("https://hasura.example")
    with pytest.raises(ValueError):
        LeanUpstream("http://hasura:8080", max_connections=0)
    with pytest.raises(ValueError, match="idle_timeout"):
        LeanUpstream("http://hasura:8080", idle_timeout=0)


async def test_header_injection_rejected(lean: Lean) -> None:
    client = lean("http://127.0.0.1:9")
    with pytest.raises(ValueError, match="CR or LF"):
        await client.post(BODY, [(b"x-evil", b"a\r\nx-hasura-role: admin")])
    with pytest.raises(ValueError):
        await client.get("/health z")


async def test_header_checks_hold_for_names_seen_before(serve: ServeFn, lean: Lean) -> None:
    """Forwarded names are remembered once checked; values are still checked on every request."""
    server = await serve(fu.ok)
    client = lean(server.url)
    await client.post(BODY, [(b"x-evil", b"fine"), (b"x-ok", b"1")])
    for bad in (b"a\r\nx-hasura-role: admin", b"a\rb", b"a\nb"):
        with pytest.raises(ValueError, match="CR or LF"):
            await client.post(BODY, [(b"x-ok", b"1"), (b"x-evil", bad)])
    for bad_name in (b"x-evil\r\nx-hasura-role", b"x\n"):
        with pytest.raises(ValueError, match="CR or LF"):
            await client.post(BODY, [(bad_name, b"v")])
    # Managed names are dropped in any case, however often they come.
    for _ in range(2):
        await client.post(BODY, [(b"Host", b"evil"), (b"CONTENT-LENGTH", b"1"), (b"x-ok", b"2"), (b"Connection", b"x")])
    assert len(server.requests) == 3
    last = server.requests[-1]
    assert last.values(b"host") == [server.url.removeprefix("http://").encode()]
    assert last.values(b"content-length") == [str(len(BODY)).encode()] and last.values(b"connection") == []
    assert last.values(b"x-ok") == [b"2"] and last.body == BODY


async def test_many_distinct_header_names(serve: ServeFn, lean: Lean) -> None:
    """Client-chosen names cannot grow the checked-names set without bound, and all are still sent."""
    server = await serve(fu.ok)
    client = lean(server.url)
    names = [b"x-custom-%d" % i for i in range(lean_module._FORWARDED_NAMES_MAX + 100)]
    await client.post(BODY, [(name, b"v") for name in names])
    assert [n for n, _ in server.requests[0].headers if n.startswith(b"x-custom-")] == names
    assert len(lean_module._FORWARDED_NAMES) <= lean_module._FORWARDED_NAMES_MAX
    with pytest.raises(ValueError, match="CR or LF"):
        await client.post(BODY, [(names[-1], b"v\r\n")])


async def test_response_header_names_are_lowered_and_classified_every_time(serve: ServeFn, lean: Lean) -> None:
    """The name cache gives the same headers on a repeat, and stays bounded under ever new names."""
    names = [b"X-Extra-%d" % i for i in range(lean_module._RESPONSE_NAMES_MAX + 50)]

    async def many_names(request: fu.Request, ctx: fu.Ctx) -> bool:
        extra = [(name, b"v") for name in names[ctx.req_no * 100 : ctx.req_no * 100 + 150]]
        hop = [(b"Keep-Alive", b"timeout=5"), (b"Connection", b"keep-alive, X-Extra-1"), (b"TE", b"x")]
        ctx.writer.write(fu.response(headers=[*hop, *extra]))
        return True

    server = await serve(many_names)
    client = lean(server.url)
    for round_no in range(3):
        resp = await client.post(BODY, [])
        expected = [name.lower() for name in names[round_no * 100 : round_no * 100 + 150] if name != b"X-Extra-1"]
        assert resp.headers == [(b"content-type", b"application/json"), *((name, b"v") for name in expected)]
        assert len(lean_module._RESPONSE_NAMES) <= lean_module._RESPONSE_NAMES_MAX


async def test_base_url_path_prefix(serve: ServeFn, lean: Lean) -> None:
    server = await serve(fu.echo_path)
    client = lean(server.url + "/hasura/")
    await client.post(BODY, [])
    await client.get("/healthz")
    assert [r.path for r in server.requests] == ["/hasura/v1/graphql", "/hasura/healthz"]


async def test_stale_keep_alive_retried_once_on_fresh_connection_when_idempotent(serve: ServeFn, lean: Lean) -> None:
    server = await serve(fu.one_then_close_on_next)
    client = lean(server.url)
    assert (await client.post(BODY, [])).status == 200
    # The reused connection dies before a byte: the query is sent again on a new connection.
    assert (await client.post(BODY, [], idempotent=True)).status == 200
    assert server.connections == 2
    assert len(server.requests) == 3


@pytest.mark.parametrize("explicit", [True, False])
async def test_stale_keep_alive_is_not_retried_when_not_idempotent(explicit: bool, serve: ServeFn, lean: Lean) -> None:
    """The server read the request, then closed without a byte: it may have run it, so it is not resent."""
    server = await serve(fu.one_then_close_on_next)
    client = lean(server.url, max_connections=1)
    assert (await client.post(BODY, [])).status == 200
    with pytest.raises(UpstreamConnectError):
        if explicit:
            await client.post(MUTATION, [], idempotent=False)
        else:
            await client.post(MUTATION, [])  # not idempotent unless the caller says so
    assert [r.body for r in server.requests] == [BODY, MUTATION]  # received once
    assert server.connections == 1  # no second connection was opened for it
    assert client.pool() == PoolState(open=0, idle=0, waiting=0)
    # The next request opens a new connection, in the one slot (it came back).
    assert (await client.post(MUTATION, [])).status == 200
    assert (server.connections, len(server.requests)) == (2, 3)


async def test_get_is_retried_on_a_stale_connection(serve: ServeFn, lean: Lean) -> None:
    server = await serve(fu.one_then_close_on_next)
    client = lean(server.url)
    await client.get("/healthz")
    assert (await client.get("/healthz")).status == 200
    assert (server.connections, len(server.requests)) == (2, 3)


async def test_idle_close_noticed_before_reuse(serve: ServeFn, lean: Lean) -> None:
    server = await serve(fu.one_then_idle_close)
    client = lean(server.url, max_connections=1)
    await client.post(BODY, [])
    await wait_until(lambda: server.closed_conns == 1)
    await wait_until(lambda: client.pool().idle == 0)  # the loop saw the close and took it out of the pool
    assert client.pool().open == 0
    assert (await client.post(BODY, [])).status == 200  # in the one slot, on a new connection
    assert (server.connections, len(server.requests)) == (2, 2)


# The idle bound: a connection idle for idle_timeout is closed, not reused. The tests with a short bound
# sleep for twice as long: however loaded the machine, the connection is then idle past the bound (the
# loop's clock is monotonic), so they cannot pass or fail by timing.

SHORT_IDLE = 0.05


@pytest.mark.parametrize("idempotent", [True, False])
async def test_a_connection_idle_past_the_bound_is_closed_not_reused(
    idempotent: bool, serve: ServeFn, lean: Lean
) -> None:
    server = await serve(fu.ok)
    client = lean(server.url, idle_timeout=SHORT_IDLE)
    await client.post(BODY, [])
    await asyncio.sleep(2 * SHORT_IDLE)
    assert server.open_now == 1 and client.pool().idle == 1  # open on both sides: the bound alone decides
    assert (await client.post(BODY, [], idempotent=idempotent)).status == 200
    assert server.connections == 2  # a new connection carried it
    await wait_until(lambda: server.closed_conns == 1)  # and the old one was closed by the client
    assert server.open_now == 1 and client.pool() == PoolState(open=1, idle=1, waiting=0)
    assert len(server.requests) == 2


async def test_a_connection_idle_within_the_bound_is_reused(serve: ServeFn, lean: Lean) -> None:
    server = await serve(fu.ok)
    client = lean(server.url, idle_timeout=15.0)
    await client.post(BODY, [])
    await asyncio.sleep(0.2)  # idle for a while, far within 15 s
    assert (await client.post(MUTATION, [])).status == 200
    assert (server.connections, len(server.requests)) == (1, 2)


async def test_the_idle_time_counts_from_the_exchange_start(serve: ServeFn, lean: Lean) -> None:
    """A connection whose response took longer than the bound is not reused (documented: closed early,
    never reused late), though it was idle for no time at all."""

    async def slower_than_the_bound(request: fu.Request, ctx: fu.Ctx) -> bool:
        await asyncio.sleep(2 * SHORT_IDLE)
        ctx.writer.write(fu.response())
        return True

    server = await serve(slower_than_the_bound)
    client = lean(server.url, idle_timeout=SHORT_IDLE)
    await client.post(BODY, [])
    await client.post(BODY, [])
    assert server.connections == 2
    await wait_until(lambda: server.closed_conns == 1)


async def test_every_idle_connection_past_the_bound_is_closed(serve: ServeFn, lean: Lean) -> None:
    server = await serve(fu.slow_ok)
    client = lean(server.url, idle_timeout=SHORT_IDLE, max_connections=3)
    await asyncio.gather(*(client.post(BODY, []) for _ in range(3)))
    assert server.connections == 3 and client.pool() == PoolState(open=3, idle=3, waiting=0)
    await asyncio.sleep(2 * SHORT_IDLE)
    assert (await client.post(BODY, [])).status == 200
    assert server.connections == 4
    await wait_until(lambda: server.closed_conns == 3)
    assert server.open_now == 1 and client.pool() == PoolState(open=1, idle=1, waiting=0)


# Linux's TCP states (include/net/tcp_states.h), the first byte of getsockopt(TCP_INFO).
TCP_FIN_WAIT2 = 5


class ClosingServer:
    """A blocking loopback server in a thread, for a close the client's event loop has not seen yet.

    It answers the first request on the first connection, then waits; ``close_first()`` closes that
    connection from this thread (the test's loop does not run meanwhile) and returns once the client's
    kernel has acknowledged the FIN: the close is then waiting on the client's socket, unprocessed.
    Every later connection is answered normally. ``requests`` lists (connection number, request bytes).
    """

    RESPONSE = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"data":{}}'

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.requests: list[tuple[int, bytes]] = []
        self._close = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def close_first(self) -> None:
        self._close.set()
        assert self._closed.wait(5)

    def _read(self, conn: socket.socket, number: int) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
        while len(body) < length:
            body += conn.recv(65536)
        self.requests.append((number, head + b"\r\n\r\n" + body))
        conn.sendall(self.RESPONSE)
        return True

    def _run(self) -> None:
        first, _ = self.listener.accept()
        self._read(first, 0)
        self._close.wait(10)
        first.shutdown(socket.SHUT_WR)  # the FIN; the socket stays ours to ask for its state
        for _ in range(5000):  # FIN_WAIT2: the peer's kernel acknowledged the FIN (at most 5 s)
            info = first.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
            if struct.unpack_from("B", info)[0] == TCP_FIN_WAIT2:
                self._closed.set()
                break
            time.sleep(0.001)
        first.close()
        number = 1
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                while self._read(conn, number):
                    pass
            number += 1

    def stop(self) -> None:
        self.listener.close()
        self._close.set()


@pytest.fixture
def closing_server() -> Iterator[ClosingServer]:
    server = ClosingServer()
    yield server
    server.stop()


async def test_a_close_the_loop_has_not_seen_is_noticed_before_a_mutation_is_written(
    closing_server: ClosingServer, lean: Lean
) -> None:
    client = lean(closing_server.url)
    await client.post(BODY, [])
    closing_server.close_first()  # the loop does not run from here until the post below
    assert client.pool().idle == 1  # so the closed connection is still in the pool
    # Written to it, the mutation would be lost (the server is gone: UpstreamConnectError, not resent).
    response = await client.post(MUTATION, [])  # the poll sees the close: a new connection, nothing lost
    assert response.status == 200
    assert [(n, r.endswith(MUTATION)) for n, r in closing_server.requests] == [(0, False), (1, True)]


async def test_without_the_check_an_idempotent_request_is_retried_instead(
    closing_server: ClosingServer, lean: Lean
) -> None:
    """Idempotent requests skip the syscall: the write fails and the request goes on a fresh connection."""
    client = lean(closing_server.url)
    await client.post(BODY, [])
    closing_server.close_first()
    assert (await client.post(BODY, [], idempotent=True)).status == 200
    assert [n for n, _ in closing_server.requests] == [0, 1]


async def test_no_retry_on_timeout_of_reused_connection(serve: ServeFn, lean: Lean) -> None:
    server = await serve(fu.one_then_hang)
    client = lean(server.url, read_timeout=0.3)
    await client.post(BODY, [])
    with pytest.raises(UpstreamTimeout):
        await client.post(BODY, [])
    assert server.connections == 1
    assert len(server.requests) == 2


async def test_fresh_connection_closed_is_connect_error_without_retry(serve: ServeFn, lean: Lean) -> None:
    server = await serve(fu.close_silently)
    client = lean(server.url, max_connections=1)
    with pytest.raises(UpstreamConnectError):
        await client.post(BODY, [])
    assert len(server.requests) == 1
    assert client.pool().open == 0
    with pytest.raises(UpstreamConnectError):  # the slot came back: not an UpstreamPoolTimeout
        await client.post(BODY, [])
    assert (server.connections, len(server.requests)) == (2, 2)


async def test_retry_that_also_fails_is_connect_error(serve: ServeFn, lean: Lean) -> None:
    async def first_only_then_close(request: fu.Request, ctx: fu.Ctx) -> bool:
        if ctx.conn_no == 0 and ctx.req_no == 0:
            ctx.writer.write(fu.response())
            return True
        return False

    server = await serve(first_only_then_close)
    client = lean(server.url, max_connections=1)
    await client.post(BODY, [])
    with pytest.raises(UpstreamConnectError):
        await client.post(BODY, [], idempotent=True)
    assert server.connections == 2  # one retry, not more
    assert client.pool().open == 0
    with pytest.raises(UpstreamConnectError):  # the slot came back: not an UpstreamPoolTimeout
        await client.post(BODY, [])
    assert server.connections == 3


async def test_oversized_response(serve: ServeFn, lean: Lean) -> None:
    server = await serve(fu.oversized)
    client = lean(server.url, max_response_bytes=100_000, max_connections=1)
    with pytest.raises(UpstreamProtocolError, match="exceeds"):
        await client.post(BODY, [])
    await wait_until(lambda: server.closed_conns == 1)  # the client dropped the connection
    assert client.pool().open == 0
    with pytest.raises(UpstreamProtocolError, match="exceeds"):  # the slot came back
        await client.post(BODY, [])


async def test_close_delimited_body(serve: ServeFn, lean: Lean) -> None:
    server = await serve(fu.close_delimited)
    client = lean(server.url)
    for _ in range(2):
        resp = await client.post(BODY, [])
        assert resp.body == fu.JSON_BODY
    assert server.connections == 2


async def test_interim_100_continue_skipped(serve: ServeFn, lean: Lean) -> None:
    async def continue_then_ok(request: fu.Request, ctx: fu.Ctx) -> bool:
        ctx.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + fu.response())
        return True

    server = await serve(continue_then_ok)
    client = lean(server.url)
    resp = await client.post(BODY, [])
    assert (resp.status, resp.body) == (200, fu.JSON_BODY)


async def test_200_concurrent_posts_never_exceed_8_sockets(serve: ServeFn, lean: Lean) -> None:
    server = await serve(fu.slow_ok)
    client = lean(server.url, max_connections=8)
    results = await asyncio.gather(*(client.post(BODY, []) for _ in range(200)))
    assert all(r.status == 200 and r.body == fu.JSON_BODY for r in results)
    assert len(server.requests) == 200
    assert server.max_open <= 8
    assert server.connections <= 8
    opened = server.connections  # every one still open on both sides, idle in the pool
    assert server.open_now == opened and client.pool() == PoolState(open=opened, idle=opened, waiting=0)


async def test_waiters_served_in_fifo_order(serve: ServeFn, lean: Lean) -> None:
    async def echo_body(request: fu.Request, ctx: fu.Ctx) -> bool:
        await asyncio.sleep(0.001)
        ctx.writer.write(fu.response(body=request.body))
        return True

    server = await serve(echo_body)
    client = lean(server.url, max_connections=1)
    finished: list[int] = []

    async def one(i: int) -> None:
        await client.post(str(i).encode(), [])
        finished.append(i)

    await asyncio.gather(*(one(i) for i in range(20)))
    assert finished == list(range(20))
    assert server.connections == 1


async def test_pool_wait_times_out(serve: ServeFn, lean: Lean) -> None:
    server = await serve(fu.hang_if_asked)
    client = lean(server.url, max_connections=1)
    stuck = asyncio.create_task(client.post(b'"hang"', []))
    await server.request_seen.wait()
    with pytest.raises(UpstreamPoolTimeout):
        await client.post(BODY, [], timeout=0.2)
    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck
    assert (await client.post(BODY, [])).status == 200


async def test_cancelled_post_closes_its_connection_and_frees_the_slot(serve: ServeFn, lean: Lean) -> None:
    server = await serve(fu.hang_if_asked)
    client = lean(server.url, max_connections=1)
    task = asyncio.create_task(client.post(b'"hang"', []))
    await server.request_seen.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.pool() == PoolState(open=0, idle=0, waiting=0)
    await wait_until(lambda: server.closed_conns == 1)  # the socket really closed
    assert (await client.post(BODY, [])).status == 200
    assert server.connections == 2


async def test_cancelled_waiter_leaves_no_trace(serve: ServeFn, lean: Lean) -> None:
    server = await serve(fu.hang_if_asked)
    client = lean(server.url, max_connections=1)
    stuck = asyncio.create_task(client.post(b'"hang"', []))
    await server.request_seen.wait()
    waiting = asyncio.create_task(client.post(BODY, []))
    await wait_until(lambda: client.pool().waiting == 1)
    waiting.cancel()
    stuck.cancel()
    await asyncio.gather(stuck, waiting, return_exceptions=True)
    assert client.pool() == PoolState(open=0, idle=0, waiting=0)
    assert (await client.post(BODY, [])).status == 200  # the freed slot went to no cancelled waiter
    assert client.pool() == PoolState(open=1, idle=1, waiting=0)
    assert server.connections == 2


async def test_aclose_fails_in_flight_and_waiting_requests(serve: ServeFn) -> None:
    server = await serve(fu.hang_if_asked)
    client = LeanUpstream(server.url, max_connections=1)
    await client.post(BODY, [])
    in_flight = asyncio.create_task(client.post(b'"hang"', []))
    await wait_until(lambda: len(server.requests) == 2)
    waiting = asyncio.create_task(client.post(BODY, []))
    await wait_until(lambda: client.pool().waiting == 1)
    await client.aclose()
    for task in (in_flight, waiting):
        with pytest.raises(UpstreamConnectError):
            await task
    assert client.pool() == PoolState(open=0, idle=0, waiting=0)
    await wait_until(lambda: server.open_now == 0)
    assert server.connections == 1
    with pytest.raises(UpstreamConnectError, match="closed"):
        await client.post(BODY, [])


async def test_read_timeout_is_an_inactivity_timeout(serve: ServeFn, lean: Lean) -> None:
    async def trickle(request: fu.Request, ctx: fu.Ctx) -> bool:
        ctx.writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for _ in range(6):  # 0.6 s in total, never silent for 0.3 s
            await asyncio.sleep(0.1)
            ctx.writer.write(b"1\r\nx\r\n")
            await ctx.writer.drain()
        ctx.writer.write(b"0\r\n\r\n")
        return True

    server = await serve(trickle)
    client = lean(server.url, read_timeout=0.3)
    assert (await client.post(BODY, [])).body == b"x" * 6


async def test_read_timeout_fires_once_data_stops(serve: ServeFn, lean: Lean) -> None:
    """The timer armed at the exchange's start is re-armed from the last chunk, then fires."""

    async def stall(request: fu.Request, ctx: fu.Ctx) -> bool:
        ctx.writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
        for _ in range(3):  # activity for 0.3 s, then silence
            await asyncio.sleep(0.1)
            ctx.writer.write(b"x")
            await ctx.writer.drain()
        await fu.until_client_closes(ctx)
        return False

    server = await serve(stall)
    client = lean(server.url, read_timeout=0.25)
    with pytest.raises(UpstreamTimeout):
        await client.post(BODY, [])
    assert client.pool() == PoolState(open=0, idle=0, waiting=0)
    await wait_until(lambda: server.closed_conns == 1)


async def test_read_timeout_on_a_connection_that_served_before(serve: ServeFn, lean: Lean) -> None:
    """One timer per connection: it outlives fast exchanges and idle spells, and still catches a hang."""

    async def ok_then_hang(request: fu.Request, ctx: fu.Ctx) -> bool:
        if request.body == b'"hang"':
            await fu.until_client_closes(ctx)
            return False
        ctx.writer.write(fu.response(body=request.body))
        return True

    server = await serve(ok_then_hang)
    client = lean(server.url, read_timeout=0.2, max_connections=1)
    for i in range(8):  # 0.4 s of traffic on one socket: the timer fires, sees no hang, lapses or re-arms
        assert (await client.post(b"%d" % i, [])).body == b"%d" % i
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # idle for longer than the timeout
    assert (await client.post(b"8", [])).body == b"8"
    with pytest.raises(UpstreamTimeout):
        await client.post(b'"hang"', [])
    assert server.connections == 1 and client.pool().open == 0
    await wait_until(lambda: server.closed_conns == 1)


async def test_a_shorter_per_call_timeout_than_the_armed_timer(serve: ServeFn, lean: Lean) -> None:
    server = await serve(fu.hang_if_asked)
    client = lean(server.url, read_timeout=30.0, max_connections=1)
    await client.post(BODY, [])  # arms the connection's timer 30 s out
    async with asyncio.timeout(10):  # a guard against hanging, far above the 0.2 s asked for
        with pytest.raises(UpstreamTimeout, match="0.2s"):
            await client.post(b'"hang"', [], timeout=0.2)
    assert server.connections == 1


async def test_bytes_after_the_response_drop_the_connection(serve: ServeFn, lean: Lean) -> None:
    async def answer_twice(request: fu.Request, ctx: fu.Ctx) -> bool:
        ctx.writer.write(fu.response() + fu.response())
        return True

    server = await serve(answer_twice)
    client = lean(server.url)
    for _ in range(2):
        assert (await client.post(BODY, [])).body == fu.JSON_BODY
        await wait_until(lambda: server.closed_conns == server.connections)  # the client dropped it ...
    assert server.connections == 2  # ... never reused
    assert client.pool() == PoolState(open=0, idle=0, waiting=0)


async def test_body_in_many_pieces_and_after_an_interim_response(serve: ServeFn, lean: Lean) -> None:
    async def pieces(request: fu.Request, ctx: fu.Ctx) -> bool:
        ctx.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await ctx.writer.drain()
        ctx.writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(fu.JSON_BODY))
        for i in range(0, len(fu.JSON_BODY), 100):
            await asyncio.sleep(0.002)
            ctx.writer.write(fu.JSON_BODY[i : i + 100])
            await ctx.writer.drain()
        return True

    server = await serve(pieces)
    client = lean(server.url)
    for _ in range(2):
        response = await client.post(BODY, [])
        assert (response.status, response.body) == (200, fu.JSON_BODY)
    assert server.connections == 1


async def test_pool_bookkeeping_survives_chaos(serve: ServeFn, lean: Lean) -> None:
    """Stale closes, Connection: close, hangs and cancellations mixed: no slot leaks."""

    async def chaotic(request: fu.Request, ctx: fu.Ctx) -> bool:
        n = int(request.body)
        if n % 7 == 0:
            await fu.until_client_closes(ctx)  # will be cancelled by the test
            return False
        await asyncio.sleep(0.001 * (n % 3))
        if n % 5 == 0:
            ctx.writer.write(fu.response(headers=[(b"connection", b"close")]))
            return False
        ctx.writer.write(fu.response(body=request.body))
        return n % 4 != 0  # every 4th: close silently after answering (goes stale in the pool)

    server = await serve(chaotic)
    client = lean(server.url, max_connections=4)

    async def one(n: int) -> bytes:  # idempotent: a stale connection is retried, so every answer arrives
        return (await client.post(str(n).encode(), [], idempotent=True)).body

    tasks = [asyncio.create_task(one(n)) for n in range(1, 201)]
    await asyncio.sleep(0.2)
    for n, task in enumerate(tasks, start=1):
        if n % 7 == 0:
            task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for n, result in enumerate(results, start=1):
        if n % 7 == 0:
            assert isinstance(result, asyncio.CancelledError | UpstreamTimeout), (n, result)
        else:
            assert result in (str(n).encode(), fu.JSON_BODY), (n, result)
    assert server.max_open <= 4
    # Every slot in use is an idle connection, open at the server too (once the client saw every close).
    await wait_until(lambda: client.pool().idle == server.open_now)
    state = client.pool()
    assert state.open == state.idle <= 4 and state.waiting == 0
    assert (await client.post(b"1", [])).body == b"1"

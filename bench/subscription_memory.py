"""Memory per idle WebSocket and per subscription in the edge, from the slope of its RSS.

``python -m edge`` (one process, no Redis, JWT on) in front of the Hasura double (``tests/hasura_double``,
served by uvicorn in this process, admin-secret mode). The edge runs under a small wrapper that makes
SIGUSR1 call ``gc.collect()`` in it (nothing else changes), so that every reading follows a full
collection. A reading: wait until the edge's VmRSS has not moved for 1 s (at most 10 s), send SIGUSR1,
wait 0.5 s, then read ``/proc/<pid>/status`` (VmRSS), ``/proc/<pid>/smaps_rollup`` (Pss) and count
``/proc/<pid>/fd``.

1. Warm-up: a few sockets each subscribe once and close (the WebSocket and subscription code paths
   imported and run once), then the baseline reading.
2. Sockets: ``--sockets`` graphql-transport-ws sockets (each its own user's HS256 token in
   ``connection_init``, acknowledged; the edge opens its Hasura socket at that point) opened in
   ``--steps`` equal steps, a reading after each: the slope is the bytes per idle socket, and fds
   per socket.
3. Subscriptions: with every socket open, subscriptions added round-robin over the sockets up to
   each of ``--subscriptions`` (default 500, 1000, 2000; each answered once by the double, then idle),
   a reading at each: the slope is the bytes per idle subscription.

Every socket has a reader that answers the edge's keep-alive pings and drains what arrives. The edge
holds two file descriptors per socket (the client's and its Hasura socket) and none per
subscription. The slopes are least-squares fits over the readings; RSS a process has once touched is
rarely given back, which is why the readings only go up.

    .venv/bin/python bench/subscription_memory.py                        # 300 sockets, 2000 subscriptions
    .venv/bin/python bench/subscription_memory.py --sockets 200 --subscriptions 400,800
    .venv/bin/python bench/subscription_memory.py --edge-source /tmp/compiled  # a directory holding a compiled edge/

``--edge-source`` as in ``bench/servers.py``: the working tree (default), a directory holding an
``edge/`` (compiled or not), or a git revision. Only memory is read; nothing here is timed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import edge_environment, free_port, start, stop, wait_port
from servers import compiled, edge_source
from websockets.asyncio.client import ClientConnection, connect

from tests.hasura_double import HasuraDouble
from tests.support.servers import start_server
from tests.support.tokens import hasura_claims, mint

ADMIN_SECRET = "bench-admin-secret"  # edge_environment()'s EDGE_HASURA_ADMIN_SECRET
SUBSCRIPTION = "subscription Users { users(limit: 1) { id name } }"
# ``python -m edge`` with one addition: SIGUSR1 runs a full collection (between two bytecodes of the
# main thread, where Python runs signal handlers; the event loop wakes at least for keep-alives).
EDGE_WITH_GC_SIGNAL = (
    "import gc, runpy, signal\n"
    "signal.signal(signal.SIGUSR1, lambda signum, frame: gc.collect())\n"
    "runpy.run_module('edge', run_name='__main__', alter_sys=True)\n"
)


@dataclass
class Reading:
    sockets: int
    subscriptions: int
    rss: int
    pss: int
    fds: int


def proc_kib(path: str, field: str) -> int:
    for line in Path(path).read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in {path}")


async def settle_and_read(pid: int, sockets: int, subscriptions: int) -> Reading:
    last, steady_since, deadline = -1, time.monotonic(), time.monotonic() + 10
    while time.monotonic() < deadline:
        rss = proc_kib(f"/proc/{pid}/status", "VmRSS")
        if rss != last:
            last, steady_since = rss, time.monotonic()
        elif time.monotonic() - steady_since >= 1.0:
            break
        await asyncio.sleep(0.2)
    os.kill(pid, signal.SIGUSR1)
    await asyncio.sleep(0.5)
    return Reading(
        sockets,
        subscriptions,
        proc_kib(f"/proc/{pid}/status", "VmRSS") * 1024,
        proc_kib(f"/proc/{pid}/smaps_rollup", "Pss") * 1024,
        len(os.listdir(f"/proc/{pid}/fd")),
    )


class Socket:
    """A graphql-transport-ws client: a reader task answers pings and hands over what it waits for."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.reader = asyncio.create_task(self.read())

    @classmethod
    async def open(cls, url: str, token: str) -> Socket:
        ws = await connect(url, subprotocols=["graphql-transport-ws"], max_size=None)  # type: ignore[list-item]
        socket = cls(ws)
        acked = socket.expect("ack")
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"headers": {"Authorization": f"Bearer {token}"}}})
        )
        await asyncio.wait_for(acked, 60)
        return socket

    def expect(self, key: str) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[key] = future
        return future

    async def read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "ping":
                await self.ws.send('{"type":"pong"}')
                continue
            key = "ack" if kind == "connection_ack" else str(message.get("id"))
            future = self.waiting.pop(key, None)
            if future is not None and not future.done():
                future.set_result(message)

    async def subscribe(self, op_id: str) -> None:
        answered = self.expect(op_id)
        await self.ws.send(json.dumps({"type": "subscribe", "id": op_id, "payload": {"query": SUBSCRIPTION}}))
        message = await asyncio.wait_for(answered, 60)
        if message["type"] != "next":
            raise RuntimeError(f"subscription {op_id} refused: {message}")

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()
        await asyncio.gather(self.reader, return_exceptions=True)


def slope(points: list[tuple[int, int]]) -> float:
    """Least-squares slope of y over x."""
    xs, ys = [x for x, _ in points], [y for _, y in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x in xs)


async def measure(url: str, pid: int, args: argparse.Namespace) -> list[Reading]:
    tokens = [mint(hasura_claims(f"user-{index}"), expires_in=3600) for index in range(args.sockets)]
    for index in range(5):  # warm-up: every code path once
        warm = await Socket.open(url, tokens[index % len(tokens)])
        await warm.subscribe("warm")
        await warm.close()
    readings = [await settle_and_read(pid, 0, 0)]
    sockets: list[Socket] = []
    step = -(-args.sockets // args.steps)
    while len(sockets) < args.sockets:
        batch = tokens[len(sockets) : len(sockets) + step]
        sockets += await asyncio.gather(*(Socket.open(url, token) for token in batch))
        readings.append(await settle_and_read(pid, len(sockets), 0))
    total = 0
    for target in args.subscriptions:
        pending = range(total, target)

        async def subscribe_on(index: int, numbers: list[int]) -> None:
            for number in numbers:
                await sockets[index].subscribe(f"s{number}")

        spread: dict[int, list[int]] = {}
        for number in pending:
            spread.setdefault(number % len(sockets), []).append(number)
        await asyncio.gather(*(subscribe_on(index, numbers) for index, numbers in spread.items()))
        total = target
        readings.append(await settle_and_read(pid, len(sockets), total))
    await asyncio.gather(*(socket.close() for socket in sockets))
    return readings


def print_table(readings: list[Reading], build: str, args: argparse.Namespace) -> None:
    print(f"# edge {build}; one process, no Redis; the Hasura double; readings after a full collection")
    print()
    print("| sockets | subscriptions | VmRSS MiB | Pss MiB | fds |")
    print("|---:|---:|---:|---:|---:|")
    for reading in readings:
        print(
            f"| {reading.sockets:,} | {reading.subscriptions:,} | {reading.rss / 2**20:.1f} | "
            f"{reading.pss / 2**20:.1f} | {reading.fds:,} |"
        )
    socket_points = [reading for reading in readings if reading.subscriptions == 0]
    subscription_points = [reading for reading in readings if reading.sockets == args.sockets]
    print()
    for name, points, x in (
        ("idle socket (after connection_init)", socket_points, "sockets"),
        ("idle subscription", subscription_points, "subscriptions"),
    ):
        rss = slope([(getattr(point, x), point.rss) for point in points])
        pss = slope([(getattr(point, x), point.pss) for point in points])
        fds = slope([(getattr(point, x), point.fds) for point in points])
        print(f"per {name}: VmRSS {rss / 1024:.1f} KiB, Pss {pss / 1024:.1f} KiB, {fds:.2f} fds")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, default=300, help="sockets opened (300)")
    parser.add_argument("--steps", type=int, default=3, help="steps the sockets are opened in (3)")
    parser.add_argument(
        "--subscriptions",
        default="500,1000,2000",
        help="subscription counts read, with every socket open (500,1000,2000; 0 is the last socket reading)",
    )
    parser.add_argument(
        "--edge-source",
        default="worktree",
        help="'worktree' (default), a directory holding edge/, or a git revision of edge/",
    )
    args = parser.parse_args()
    args.subscriptions = sorted(int(value) for value in args.subscriptions.split(",") if int(value) > 0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * args.sockets + 200  # this process holds both ends it serves: the clients and the double
    if needed > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))
    with tempfile.TemporaryDirectory(prefix="bench-subscription-memory-") as tmp_dir:
        source = edge_source(args.edge_source, Path(tmp_dir))
        build = f"from {args.edge_source}, {'compiled (mypyc)' if compiled(source) else 'interpreted'}"
        double = HasuraDouble(admin_secret=ADMIN_SECRET)
        upstream = start_server(double.app, backlog=4096)
        port = free_port()
        env = edge_environment(0, port, EDGE_WORKERS="1")
        env["EDGE_HASURA_URL"] = upstream.url
        env["PYTHONPATH"] = str(source)
        edge = start([sys.executable, "-c", EDGE_WITH_GC_SIGNAL], env=env, cwd=source)
        try:
            wait_port(port, timeout=60, process=edge)
            readings = asyncio.run(measure(f"ws://127.0.0.1:{port}/graphql", edge.pid, args))
        finally:
            stop(edge)
            upstream.stop()
    print_table(readings, build, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

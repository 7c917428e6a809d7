"""Subscriptions through the edge: memory per idle subscription, relay throughput and added latency.

Three processes on loopback: a minimal Hasura-shaped upstream (graphql-transport-ws, acks any init,
answers each subscription once, or streams ``count`` timestamped ``next`` messages when the
subscription's variables ask for it), the real edge (``python -m edge``, uvicorn websockets-sansio,
uvloop, ``EDGE_UNAUTHORIZED_ROLE`` so clients need no token), and this client.

1. Memory: open N sockets, each ``connection_init`` + one subscription, all idle; the edge's RSS
   growth divided by N (each subscription holds a client socket AND an upstream socket in the edge).
2. Relay: ``--streams`` sockets, each receiving ``--messages`` upstream-pushed 300-byte ``next``
   frames as fast as the upstream sends; messages/s at the client, and one-way latency (the upstream
   stamps ``time.perf_counter()``; CLOCK_MONOTONIC is shared across processes), through the edge
   versus straight from the upstream: the difference is the latency the edge adds.

    .venv/bin/python bench/ws_relay.py                      # 1,000 and 10,000 idle, relay 16 x 20,000
    .venv/bin/python bench/ws_relay.py --idle 1000 --streams 8 --messages 5000

Needs about 2 x N + 100 file descriptors in the edge (raised towards 65,536 when allowed).

Results (2 vCPU VM shared by all three processes, Python 3.11.7, uvloop, no TLS; 2026-11-21;
``--idle 1000 9900 10000``, relay 16 x 20,000):

    idle subscriptions (1 socket + 1 subscription each)   edge RSS growth   per subscription
    1,000                                                 +46 MiB           47.6 KiB
    9,900                                                 +401 MiB          41.5 KiB
    10,000                                                skipped here: the edge holds 2 fds per subscription
                                                          (client + Hasura) and this VM's hard RLIMIT_NOFILE is 20,000

    relay                                    msgs/s at the client   one-way latency p50 / p99
    direct, saturated (16 x 20,000)          100,587                (queueing: 62 / 225 ms)
    through the edge, saturated              43,604                 (queueing: 998 / 2,953 ms)
    direct, paced 4 x 500 msg/s              1,788                  0.116 / 2.20 ms
    through the edge, paced 4 x 500 msg/s    1,738                  0.282 / 2.52 ms   -> the edge adds ~0.17 ms p50

Saturated latency is queueing (the upstream sends faster than the client reads; the bench raises
EDGE_WS_SEND_QUEUE_MESSAGES so the edge buffers instead of closing the client with 1013).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PAD = "x" * 200


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for wanted in (65_536, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(wanted, hard)))
            return wanted
        except (ValueError, OSError):
            continue
    return soft


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the upstream ---------------------------------------------------------------------------------------


async def upstream_main(port: int) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    async def handler(ws: ServerConnection) -> None:
        streams: list[asyncio.Task[None]] = []

        async def stream(op_id: str, count: int, interval: float) -> None:
            for _ in range(count):
                if interval:
                    await asyncio.sleep(interval)
                stamp = time.perf_counter()
                await ws.send(f'{{"type":"next","id":"{op_id}","payload":{{"data":{{"t":{stamp!r},"pad":"{PAD}"}}}}}}')
            await ws.send(f'{{"type":"complete","id":"{op_id}"}}')

        try:
            async for raw in ws:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "connection_init":
                    await ws.send('{"type":"connection_ack"}')
                elif kind in ("subscribe", "start"):
                    variables = message["payload"].get("variables") or {}
                    count = int(variables.get("count", 0))
                    if count:
                        interval = float(variables.get("interval", 0))
                        streams.append(asyncio.create_task(stream(message["id"], count, interval)))
                    else:
                        await ws.send(json.dumps({"type": "next", "id": message["id"], "payload": {"data": {"ok": 1}}}))
                elif kind == "ping":
                    await ws.send('{"type":"pong"}')
        finally:
            for task in streams:
                task.cancel()

    async with serve(
        handler, "127.0.0.1", port, backlog=4096, subprotocols=["graphql-transport-ws"], compression=None, max_size=None
    ):  # type: ignore[list-item]
        await asyncio.Future()


# --- clients --------------------------------------------------------------------------------------------


async def open_subscription(url: str, op_id: str = "1", count: int = 0) -> Any:
    from websockets.asyncio.client import connect

    ws = await connect(url, subprotocols=["graphql-transport-ws"], compression=None, ping_interval=None, max_size=None)  # type: ignore[list-item]
    await ws.send('{"type":"connection_init","payload":{}}')
    while json.loads(await ws.recv())["type"] != "connection_ack":
        pass
    query = "subscription Bench($count: Int) { bench(count: $count) { t } }"
    await ws.send(
        json.dumps({"type": "subscribe", "id": op_id, "payload": {"query": query, "variables": {"count": count}}})
    )
    return ws


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def idle_memory(edge_url: str, edge_pid: int, count: int) -> dict[str, float]:
    warm = [await open_subscription(edge_url) for _ in range(20)]
    for ws in warm:
        await ws.recv()
    await asyncio.sleep(0.5)
    before = rss_kib(edge_pid)
    sockets = []
    for start in range(0, count, 100):  # batches: the listen backlogs are 100 (uvicorn: 2048)
        batch = await asyncio.gather(*(open_subscription(edge_url) for _ in range(min(100, count - start))))
        sockets.extend(batch)
    await asyncio.gather(*(ws.recv() for ws in sockets))  # every subscription answered once
    await asyncio.sleep(1.0)
    after = rss_kib(edge_pid)
    for ws in [*warm, *sockets]:
        await ws.close()
    return {
        "connections": count,
        "rss_before_mib": before / 1024,
        "rss_after_mib": after / 1024,
        "kib_per_subscription": (after - before) / count,
    }


async def relay(url: str, streams: int, messages: int, interval: float = 0.0) -> dict[str, float]:
    sockets = [await open_subscription(url, "s", 0) for _ in range(streams)]
    for ws in sockets:
        await ws.recv()  # the idle answer of the first subscribe
    latencies: list[float] = []

    async def consume(ws: Any, index: int) -> None:
        await ws.send(
            json.dumps(
                {
                    "type": "subscribe",
                    "id": f"n{index}",
                    "payload": {
                        "query": "subscription Bench($count: Int) { bench(count: $count) { t } }",
                        "variables": {"count": messages, "interval": interval},
                    },
                }
            )
        )
        seen = 0
        while True:
            raw = await ws.recv()
            now = time.perf_counter()
            if raw.startswith('{"type":"complete"'):
                return
            if '"t":' in raw:
                seen += 1
                if seen % 10 == 0:
                    latencies.append(now - json.loads(raw)["payload"]["data"]["t"])

    started = time.perf_counter()
    await asyncio.gather(*(consume(ws, i) for i, ws in enumerate(sockets)))
    elapsed = time.perf_counter() - started
    for ws in sockets:
        await ws.close()
    latencies.sort()
    return {
        "messages_per_second": streams * messages / elapsed,
        "latency_p50_ms": statistics.median(latencies) * 1000,
        "latency_p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


# --- orchestration --------------------------------------------------------------------------------------


def start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env={**os.environ, **(env or {})})


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


async def client_main(options: argparse.Namespace) -> None:
    upstream_port, edge_port = free_port(), free_port()
    processes = [start([__file__, "--role", "upstream", "--port", str(upstream_port)])]
    wait_port(upstream_port)
    env = {
        "EDGE_HASURA_URL": f"http://127.0.0.1:{upstream_port}",
        "EDGE_HASURA_ADMIN_SECRET": "bench-admin-secret-0123456789",
        "EDGE_UNAUTHORIZED_ROLE": "anonymous",
        "EDGE_PORT": str(edge_port),
        "EDGE_LOG_LEVEL": "error",
        "EDGE_UPSTREAM_CONNECT_TIMEOUT_SECONDS": "30",
        "EDGE_SCHEMA_REFRESH_SECONDS": "0",
        "EDGE_WS_MAX_MESSAGES_PER_SECOND": "100000",
        "EDGE_WS_MESSAGE_BURST": "100000",
        "EDGE_WS_SEND_QUEUE_MESSAGES": "100000",
    }
    processes.append(start([__file__, "--role", "edge"], env))
    try:
        wait_port(edge_port)
        edge_url = f"ws://127.0.0.1:{edge_port}/graphql"
        direct_url = f"ws://127.0.0.1:{upstream_port}/v1/graphql"
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        for count in options.idle:
            if 2 * count + 64 > limit:
                print(
                    json.dumps(
                        {"idle": {"connections": count, "skipped": f"needs ~{2 * count + 64} fds, limit {limit}"}}
                    )
                )
                continue
            print(json.dumps({"idle": await idle_memory(edge_url, processes[1].pid, count)}), flush=True)
            await asyncio.sleep(2)
        if options.streams:
            print(json.dumps({"relay_direct": await relay(direct_url, options.streams, options.messages)}), flush=True)
            print(json.dumps({"relay_edge": await relay(edge_url, options.streams, options.messages)}), flush=True)
            paced = (direct_url, "paced_direct"), (edge_url, "paced_edge")
            for url, name in paced:  # 4 x 500 msg/s: latency without queueing
                print(json.dumps({name: await relay(url, 4, 2000, 0.002)}), flush=True)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(40)
            except subprocess.TimeoutExpired:
                process.kill()


def edge_main() -> None:
    raise_fd_limit()
    sys.path.insert(0, str(ROOT))
    from edge.__main__ import main as edge

    raise SystemExit(edge([]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["client", "upstream", "edge"], default="client")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--idle", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--messages", type=int, default=20000)
    options = parser.parse_args()
    raise_fd_limit()
    import uvloop

    if options.role == "upstream":
        uvloop.run(upstream_main(options.port))
    elif options.role == "edge":
        edge_main()
    else:
        uvloop.run(client_main(options))


if __name__ == "__main__":
    main()

"""Redis commands per request, counted: the edge against a throwaway redis-server, per configuration.

For each configuration the script starts ``python -m edge`` (one process, ``EDGE_WORKERS=1``) in front
of the Hasura double (``tests/hasura_double``, in this process) with ``EDGE_REDIS_URL`` pointing at a
redis-server of its own (no persistence, emptied before each row), warms it up (every user's first
request, script loads, the cache entry or persisted query registered, a usage flush), then:

1. ``CONFIG RESETSTAT`` and ``MONITOR`` on a second connection;
2. ``--requests`` POSTs to /graphql (8 in flight, keep-alive), or the row's WebSocket steps;
3. a wait of ``EDGE_USAGE_FLUSH_SECONDS`` (1 s here) + 1.5 s, so the usage meter has flushed what
   the requests buffered;
4. ``INFO commandstats`` and ``INFO stats``;
5. for the HTTP rows, "Redis CPU µs" per request when Redis is saturated: each command the requests
   sent (one sample of each kind, as MONITOR saw it) replayed 20,000 times by ``redis-benchmark``
   over 16 connections, redis-server's CPU per call (``INFO cpu``) times the calls per request, summed
   (the usage meter's per-flush script left out). That one figure is a time, with the box's noise.

Printed per row and per request: the commands the edge sent (MONITOR lines from its address;
pipelined commands count one each), the commands Redis ran inside scripts (MONITOR's ``lua`` lines),
``INFO commandstats``'s calls (both kinds: Redis counts a script's commands too), Redis'
``total_reads_processed`` (socket reads: about one per round trip, fewer when replies of several
requests were sent together) and which store sent each command, by its key (``edge:limits:...:r``
the limiter, ``:b`` cost budgets, ``edge:usage:`` the usage meter, ``edge:cache:`` the response
cache, ``edge:apq:`` persisted queries, ``edge:ws:`` WebSocket counters).

The rows (``--only`` takes their keys):

  plain              no plan limits (the default plan), Redis configured
  rate-quota         a plan with rate and quota (``bench/http_path.py``'s LIMITED_PLANS)
  production         rate, quota and cost budget (``bench/http_path.py``'s PRODUCTION_PLANS), one user
  production-refund  the same with a query whose answer costs less than its estimate: the budget
                     refunds the difference once Hasura has answered
  production-users   the same as production, ``--users`` tokens sent round-robin (the usage meter's
                     flushes carry every user seen since the last one)
  cache-hit          an ``@cached`` query answered from ``EDGE_RESPONSE_CACHE=redis``, default plan
  apq-hit            a registered persisted query sent by its hash only (APQ), default plan
  websocket          ``--sockets`` graphql-transport-ws sockets with the production plan plus
                     ``max_subscriptions``: per socket, its subscriptions, a lease refresh (the
                     refresh interval is 20 s) and their ends, counted separately

    .venv/bin/python bench/redis_ops.py                    # every row, about 2 minutes
    .venv/bin/python bench/redis_ops.py --only plain,production --requests 500
    .venv/bin/python bench/redis_ops.py --edge-source HEAD  # a git revision's edge/ (or a directory holding edge/)

Needs ``redis-server``, ``redis-cli`` and ``redis-benchmark`` on PATH (Debian package ``redis-server``).
The counts are exact and repeat from run to run (except reads, which depend on timing); only the
Redis CPU column is measured time.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import contextlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import redis
from harness import edge_environment, free_port, start, stop, wait_port
from http_path import LIMITED_PLANS, PRODUCTION_PLANS
from servers import compiled, edge_source
from websockets.asyncio.client import ClientConnection, connect

from tests.hasura_double import HasuraDouble
from tests.support.servers import start_server
from tests.support.tokens import hasura_claims, mint

ADMIN_SECRET = "bench-admin-secret"  # edge_environment()'s EDGE_HASURA_ADMIN_SECRET
QUERY = "query Products { products(limit: 2) { id name } }"
# Estimated with EDGE_DEFAULT_LIST_SIZE (100) orders per user; the double answers 3: the budget refunds the rest.
SMALLER = "query UsersOrders { users(limit: 2) { id orders { id } } }"
CACHED = "query CachedProducts @cached(ttl: 300) { products(limit: 2) { id name } }"
SUBSCRIPTION = "subscription Users { users(limit: 1) { id } }"
IN_FLIGHT = 8
FLUSH_SECONDS = 1.0
REPLAYS = 20_000
MONITOR_LINE = re.compile(r"^\d+\.\d+ \[\d+ ([^\]]+)\] (.*)$")
ARGUMENT = re.compile(r'"((?:[^"\\]|\\.)*)"')


def plans_env(yaml_plans: str) -> dict[str, str]:
    """``EDGE_CONFIG``'s plans (the same YAML as ``bench/http_path.py``'s) written to a file."""
    path = Path(tempfile.mkstemp(prefix="bench-redis-ops-", suffix=".yaml")[1])
    path.write_text(yaml_plans)
    return {"EDGE_CONFIG": str(path)}


@dataclass
class Row:
    key: str
    label: str
    env: dict[str, str]
    kind: str = "http"  # http | refund | cache | apq | websocket
    users: int = 1
    counted: list[tuple[str, int, Counts]] = field(default_factory=list)
    """(what was counted, how many of it, the counts)."""
    redis_cpu_us: float | None = None
    """redis-server's CPU per request, from a second pass without MONITOR (HTTP rows)."""


@dataclass
class Counts:
    sent: Counter[str] = field(default_factory=Counter)
    """Commands the edge sent, by store and command name."""
    in_scripts: Counter[str] = field(default_factory=Counter)
    commandstats: Counter[str] = field(default_factory=Counter)
    reads: int = 0
    samples: dict[str, list[str]] = field(default_factory=dict)
    """One command line the edge sent for each "store: command", as sent (for the replay)."""
    seconds: float = 0.0
    """From the reset to the last reading."""


def store_of(command: str, arguments: list[str]) -> str:
    """Which of the edge's stores sent a command, from the key it names."""
    if command in ("evalsha", "eval") and len(arguments) > 2 and arguments[1] != "0":
        key = arguments[2]
    elif arguments:
        key = arguments[0]
    else:
        return "other"
    if key.startswith("edge:limits:"):
        return "budgets" if key.endswith(":b") else "limiter"
    for prefix, store in (
        ("edge:usage:", "usage"),
        ("edge:cache:", "cache"),
        ("edge:apq:", "apq"),
        ("edge:ws:", "websocket"),
    ):
        if key.startswith(prefix):
            return store
    return "other"


class Monitor:
    """``redis-cli monitor`` into a file while a step runs; parsed afterwards."""

    def __init__(self, port: int, tmp: Path) -> None:
        self.path = tmp / f"monitor-{time.monotonic_ns()}.txt"
        self.file = self.path.open("wb")
        self.process = subprocess.Popen(
            ["redis-cli", "-p", str(port), "monitor"], stdout=self.file, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while self.path.stat().st_size == 0 and time.monotonic() < deadline:  # "OK" once it monitors
            time.sleep(0.01)

    def finish(self, ignored_address: str) -> tuple[Counter[str], Counter[str], dict[str, list[str]]]:
        time.sleep(0.2)
        self.process.terminate()
        self.process.wait()
        self.file.close()
        sent: Counter[str] = Counter()
        in_scripts: Counter[str] = Counter()
        samples: dict[str, list[str]] = {}
        for line in self.path.read_text(errors="replace").splitlines():
            found = MONITOR_LINE.match(line)
            if found is None:
                continue
            source, rest = found.groups()
            words = ARGUMENT.findall(rest)
            if not words:
                continue
            command, arguments = words[0].lower(), words[1:]
            if source == "lua":
                in_scripts[command] += 1
            elif source != ignored_address:
                name = f"{store_of(command, arguments)}: {command}"
                sent[name] += 1
                samples.setdefault(name, [codecs.decode(word, "unicode_escape") for word in words])
        self.path.unlink()
        return sent, in_scripts, samples


def read_commandstats(client: redis.Redis) -> tuple[Counter[str], int]:
    stats: Counter[str] = Counter()
    for name, values in client.info("commandstats").items():
        command = name.removeprefix("cmdstat_")
        if command not in ("info", "config|resetstat", "monitor", "ping", "client|setname"):
            stats[command] = int(values["calls"])
    return stats, int(client.info("stats")["total_reads_processed"])


@contextlib.contextmanager
def counting(client: redis.Redis, port: int, tmp: Path, bench_address: str) -> Iterator[Counts]:
    counts = Counts()
    client.config_resetstat()
    monitor = Monitor(port, tmp)
    _, reads_before = read_commandstats(client)
    started = time.monotonic()
    try:
        yield counts
    finally:
        time.sleep(FLUSH_SECONDS + 1.5)
        counts.commandstats, reads_after = read_commandstats(client)
        counts.reads = reads_after - reads_before - 2  # less this script's two INFO commands after the step
        counts.seconds = time.monotonic() - started
        counts.sent, counts.in_scripts, counts.samples = monitor.finish(bench_address)


def tokens(users: int) -> list[str]:
    return [mint(hasura_claims(f"user-{index}"), expires_in=3600) for index in range(users)]


def body_for(kind: str, registered: bool) -> dict[str, Any]:
    if kind == "cache":
        return {"query": CACHED}
    if kind == "refund":
        return {"query": SMALLER}
    if kind == "apq":
        import hashlib

        digest = hashlib.sha256(QUERY.encode()).hexdigest()
        persisted = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}
        return {**persisted, "query": QUERY} if not registered else persisted
    return {"query": QUERY}


async def send_requests(url: str, row: Row, bearer: list[str], count: int, registered: bool = True) -> None:
    body = json.dumps(body_for(row.kind, registered))
    queue = iter(range(count))
    async with httpx.AsyncClient(timeout=30) as client:

        async def worker() -> None:
            for index in queue:
                headers = {"content-type": "application/json", "authorization": f"Bearer {bearer[index % len(bearer)]}"}
                response = await client.post(url, content=body, headers=headers)
                payload = response.json()
                if response.status_code != 200 or "errors" in payload:
                    raise RuntimeError(f"{row.label}: {response.status_code} {payload}")

        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))


class Socket:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, url: str, token: str) -> Socket:
        ws = await connect(url, subprotocols=["graphql-transport-ws"], max_size=None)  # type: ignore[list-item]
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"headers": {"Authorization": f"Bearer {token}"}}})
        )
        socket = cls(ws)
        await socket.until(lambda message: message["type"] == "connection_ack")
        return socket

    async def until(self, wanted: Any) -> dict[str, Any]:
        async with asyncio.timeout(30):
            while True:
                message = json.loads(await self.ws.recv())
                if message["type"] == "ping":
                    await self.ws.send(json.dumps({"type": "pong"}))
                    continue
                if wanted(message):
                    return dict(message)

    async def subscribe(self, op_id: str) -> None:
        await self.ws.send(json.dumps({"type": "subscribe", "id": op_id, "payload": {"query": SUBSCRIPTION}}))
        message = await self.until(lambda message: message.get("id") == op_id)
        if message["type"] != "next":
            raise RuntimeError(f"subscription refused: {message}")

    async def complete(self, op_id: str) -> None:
        """Stop ``op_id``; returns once the edge has handled it (a ping sent after it is answered)."""
        await self.ws.send(json.dumps({"type": "complete", "id": op_id}))
        await self.ws.send(json.dumps({"type": "ping", "payload": {"after": op_id}}))
        await self.until(lambda message: message.get("type") == "pong" and message.get("payload") == {"after": op_id})


async def websocket_steps(
    url: str, row: Row, client: redis.Redis, port: int, tmp: Path, bench_address: str, sockets: int, per_socket: int
) -> None:
    bearer = tokens(sockets)
    warm = await Socket.open(url, bearer[0])  # script loads and the first user's state
    await warm.subscribe("warm")
    await warm.complete("warm")
    await warm.ws.close()
    opened: list[Socket] = []
    with counting(client, port, tmp, bench_address) as counts:
        opened = [await Socket.open(url, token) for token in bearer]
    row.counted.append(("socket opened (connection_init)", sockets, counts))
    with counting(client, port, tmp, bench_address) as counts:
        for index, socket in enumerate(opened):
            for number in range(per_socket):
                await socket.subscribe(f"s{index}-{number}")
    row.counted.append(("subscription started", sockets * per_socket, counts))
    with counting(client, port, tmp, bench_address) as counts:
        # Every bridge refreshes its subscriptions' leases every lease / 3 = 20 s (edge/ws/counters.py).
        pinging = [asyncio.create_task(socket.until(lambda message: False)) for socket in opened]
        await asyncio.sleep(21.0)
        for task in pinging:
            task.cancel()
        await asyncio.gather(*pinging, return_exceptions=True)
    row.counted.append(("socket open 21 s, subscriptions idle", sockets, counts))
    with counting(client, port, tmp, bench_address) as counts:
        for index, socket in enumerate(opened):
            for number in range(per_socket):
                await socket.complete(f"s{index}-{number}")
    row.counted.append(("subscription completed", sockets * per_socket, counts))
    with counting(client, port, tmp, bench_address) as counts:
        for socket in opened:
            await socket.ws.close()
    row.counted.append(("socket closed", sockets, counts))


def rows(users: int) -> list[Row]:
    redis_only: dict[str, str] = {}
    production = plans_env(PRODUCTION_PLANS)
    with_subscriptions = plans_env(PRODUCTION_PLANS.replace("cost_budget:", "max_subscriptions: 100\n    cost_budget:"))
    return [
        Row("plain", "plain proxy, no plan limits", redis_only),
        Row("rate-quota", "rate + quota plan", plans_env(LIMITED_PLANS)),
        Row("production", "production plan (rate, quota, cost budget), 1 user", production),
        Row(
            "production-refund",
            "production plan, 1 user, an answer that costs less than its estimate",
            production,
            kind="refund",
        ),
        Row("production-users", f"production plan, {users:,} users round-robin", production, users=users),
        Row("cache-hit", "@cached hit, EDGE_RESPONSE_CACHE=redis", {"EDGE_RESPONSE_CACHE": "redis"}, kind="cache"),
        Row("apq-hit", "persisted query sent by hash", redis_only, kind="apq"),
        Row("websocket", "WebSocket, production plan + max_subscriptions", with_subscriptions, kind="websocket"),
    ]


def run_row(
    row: Row, args: argparse.Namespace, double_url: str, client: redis.Redis, redis_port: int, tmp: Path, source: Path
) -> None:
    client.flushall()
    port = free_port()
    env = edge_environment(
        0,
        port,
        EDGE_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        EDGE_WORKERS="1",
        EDGE_USAGE_FLUSH_SECONDS=str(FLUSH_SECONDS),
        **row.env,
    )
    env["EDGE_HASURA_URL"] = double_url
    env["PYTHONPATH"] = str(source)
    edge = start([sys.executable, "-m", "edge"], env=env, cwd=source)
    try:
        wait_port(port, timeout=60, process=edge)
        bench_address = str(client.client_info()["addr"])
        url = f"http://127.0.0.1:{port}/graphql"
        if row.kind == "websocket":
            asyncio.run(
                websocket_steps(
                    f"ws://127.0.0.1:{port}/graphql", row, client, redis_port, tmp, bench_address, args.sockets,
                    args.subscriptions_per_socket,
                )
            )  # fmt: skip
            return
        bearer = tokens(row.users)
        # Warm-up: every user once, the script loads, the cache entry or persisted query stored, a usage flush.
        asyncio.run(send_requests(url, row, bearer, 1, registered=False))
        asyncio.run(send_requests(url, row, bearer, max(row.users, 50)))
        time.sleep(FLUSH_SECONDS + 1.0)
        with counting(client, redis_port, tmp, bench_address) as counts:
            asyncio.run(send_requests(url, row, bearer, args.requests))
        row.counted.append(("request", args.requests, counts))
        if args.redis_cpu:
            row.redis_cpu_us = redis_cpu_per_request(client, redis_port, counts, args.requests)
        if row.key == "plain" and args.idle:
            with counting(client, redis_port, tmp, bench_address) as counts:
                time.sleep(args.idle)
            row.counted.append(("second, idle", round(counts.seconds), counts))
    finally:
        stop(edge)


def redis_cpu_seconds(client: redis.Redis) -> float:
    """redis-server's user+system CPU so far (``INFO cpu``, in µs resolution)."""
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


# Per-flush and connection set-up commands: not part of a request's cost at saturation.
NOT_REPLAYED = ("usage: eval", "other: hello", "other: script", "other: client")


def redis_cpu_per_request(client: redis.Redis, port: int, counts: Counts, count: int) -> float:
    """redis-server's CPU per request when it is saturated: each command a request sends, replayed.

    Every "store: command" the requests sent (less the usage meter's per-flush script and connection
    set-up) is sent again as MONITOR saw it, ``REPLAYS`` times by ``redis-benchmark`` over 16
    connections, which keeps redis-server busy; its CPU per call times the calls per request, summed.
    A Redis that is busy serves each command for less CPU than an idle one woken by every command (as
    here while the edge sends a few hundred requests per second), so this is what sizing needs.
    """
    total = 0.0
    for name, calls in counts.sent.items():
        if name.startswith(NOT_REPLAYED) or name not in counts.samples:
            continue
        before = redis_cpu_seconds(client)
        subprocess.run(
            ["redis-benchmark", "-p", str(port), "-c", "16", "-n", str(REPLAYS), "-q", *counts.samples[name]],
            check=True,
            capture_output=True,
        )
        total += (redis_cpu_seconds(client) - before) / REPLAYS * (calls / count)
    return total * 1e6


def per(value: int, count: int) -> str:
    return f"{value / count:.2f}" if count else "-"


def print_table(done: list[Row], build: str) -> None:
    print(f"# redis-server {redis_version()}; edge {build}; EDGE_WORKERS=1, EDGE_USAGE_FLUSH_SECONDS={FLUSH_SECONDS:g}")
    print()
    print(
        "| configuration | per | n | commands sent | in scripts | commandstats calls | reads | Redis CPU µs, saturated "
        "| sent, by store |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for row in done:
        for what, count, counts in row.counted:
            stores = ", ".join(f"{name} {per(value, count)}" for name, value in sorted(counts.sent.items()))
            cpu = f"{row.redis_cpu_us:.1f}" if what == "request" and row.redis_cpu_us is not None else "-"
            print(
                f"| {row.label} | {what} | {count:,} | {per(sum(counts.sent.values()), count)} | "
                f"{per(sum(counts.in_scripts.values()), count)} | {per(sum(counts.commandstats.values()), count)} | "
                f"{per(counts.reads, count)} | {cpu} | {stores or '-'} |"
            )
    print()
    print("commandstats calls per unit, by command:")
    for row in done:
        for what, count, counts in row.counted:
            detail = ", ".join(f"{name} {per(value, count)}" for name, value in sorted(counts.commandstats.items()))
            print(f"  {row.label} / {what.split(' (')[0]}: {detail or '-'}")


def redis_version() -> str:
    output = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    found = re.search(r"v=(\S+)", output)
    return found.group(1) if found else "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500, help="requests counted per HTTP row (500)")
    parser.add_argument("--users", type=int, default=100, help="users of the 'production, N users' row (100)")
    parser.add_argument("--sockets", type=int, default=20, help="sockets of the websocket row (20)")
    parser.add_argument("--subscriptions-per-socket", type=int, default=5, help="(5)")
    parser.add_argument(
        "--idle", type=float, default=3.0, help="seconds of the plain edge left idle, counted (3; 0: skip)"
    )
    parser.add_argument(
        "--no-redis-cpu",
        dest="redis_cpu",
        action="store_false",
        help="skip the replay of each HTTP row's commands that reads redis-server's CPU per request",
    )
    parser.add_argument("--only", default="", help="comma-separated row keys: plain, rate-quota, production, ...")
    parser.add_argument(
        "--edge-source",
        default="worktree",
        help="'worktree' (default), a directory holding edge/, or a git revision of edge/",
    )
    args = parser.parse_args()
    if any(shutil.which(tool) is None for tool in ("redis-server", "redis-cli", "redis-benchmark")):
        print(
            "redis-server, redis-cli and redis-benchmark are required (Debian package 'redis-server')", file=sys.stderr
        )
        return 2
    selected = rows(args.users)
    if args.only:
        keys = set(args.only.split(","))
        unknown = keys - {row.key for row in selected}
        if unknown:
            print(f"unknown rows: {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        selected = [row for row in selected if row.key in keys]
    done: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-redis-ops-") as tmp_dir:
        tmp = Path(tmp_dir)
        source = edge_source(args.edge_source, tmp)
        build = f"from {args.edge_source}, {'compiled (mypyc)' if compiled(source) else 'interpreted'}"
        redis_port = free_port()
        server = start(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        )
        double = HasuraDouble(admin_secret=ADMIN_SECRET)
        upstream = start_server(double.app)
        try:
            wait_port(redis_port, process=server)
            client = redis.Redis(port=redis_port)
            for row in selected:
                run_row(row, args, upstream.url, client, redis_port, tmp, source)
                done.append(row)
                double.requests.clear()
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
        finally:
            upstream.stop()
            stop(server)
            for row in selected:
                config = row.env.get("EDGE_CONFIG")
                if config:
                    Path(config).unlink(missing_ok=True)
    if not done:
        return 1
    print_table(done, build)
    return 0


if __name__ == "__main__":
    sys.exit(main())

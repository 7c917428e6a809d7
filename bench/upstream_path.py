"""CPU per request of the edge's upstream path: ``LeanUpstream`` alone and behind ``BalancedUpstream``.

Every ``/graphql`` request goes through ``BalancedUpstream.post`` and then ``LeanUpstream.post``. This
script measures what those two cost in the calling process, without the ASGI server or the pipeline:

  * a fast upstream runs in a subprocess on 127.0.0.1: uvloop + a tiny keep-alive HTTP/1.1 server
    answering every POST with a fixed ~1 KB JSON body;
  * this process (uvloop, like the edge) runs ``--workers`` concurrent asyncio tasks that send
    ``--requests`` POSTs in total (a 181-byte GraphQL body and the headers the edge forwards) through
    each client below, then reports this process's CPU (``time.process_time()``) per request, best
    of ``--runs``, after a warm-up:

      lean              ``LeanUpstream`` directly
      balanced          ``BalancedUpstream`` over one ``LeanUpstream``, built as
                        ``edge.components.build_upstream`` builds it for one URL
      noop              an in-process client that answers at once (the worker loop's own cost)
      balanced(noop)    ``BalancedUpstream`` over that client (the balancer's own cost, by difference)

Requests are posted as the proxy stage posts a query (``idempotent=True``); ``--not-idempotent`` posts
them as it posts a mutation, for which ``LeanUpstream`` checks a pooled connection with one ``poll(2)``
before writing.

    .venv/bin/python bench/upstream_path.py                    # 50,000 requests x 3 runs per client
    .venv/bin/python bench/upstream_path.py --requests 20000 --runs 5 --loop asyncio
    .venv/bin/python bench/upstream_path.py --not-idempotent --clients lean,balanced

The upstream subprocess's CPU is not counted. On a shared 2-core box the figures move by ±10 %:
compare CPU µs/request between clients of one execution. No test asserts on any of this.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.upstream import Upstream, UpstreamResponse  # noqa: E402
from edge.upstream.balancer import BalancedUpstream, Target  # noqa: E402
from edge.upstream.breaker import CircuitBreaker  # noqa: E402
from edge.upstream.lean import LeanUpstream  # noqa: E402

QUERY_BODY = json.dumps(
    {
        "query": "query GetUsers($limit: Int!) { users(limit: $limit) { id name email posts { id title "
        "comments { id body } } } }",
        "variables": {"limit": 10},
        "operationName": "GetUsers",
    }
).encode()
RESPONSE_BODY = json.dumps(
    {
        "data": {
            "users": [{"id": i, "name": f"user-{i}", "email": f"user{i}@example.com", "posts": []} for i in range(14)]
        }
    }
)
# What InjectSession builds for a JWT user, plus the client headers it forwards (lower-case names).
HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-hasura-admin-secret", b"bench-admin-secret-0123456789abcdef"),
    (b"x-hasura-role", b"user"),
    (b"x-hasura-user-id", b"42"),
    (b"x-request-id", b"0f1e2d3c4b5a69788796a5b4c3d2e1f0"),
    (b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    (b"user-agent", b"wrk/4.1.0"),
    (b"accept", b"application/json"),
]

from http_path import PY_UPSTREAM  # noqa: E402  # the same tiny keep-alive server: argv = port, body


class Noop:
    """An Upstream that answers at once, without I/O."""

    def __init__(self) -> None:
        self.response = UpstreamResponse(200, [(b"content-type", b"application/json")], RESPONSE_BODY.encode())

    async def post(
        self,
        body: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        *,
        timeout: float | None = None,
        idempotent: bool = False,
    ) -> UpstreamResponse:
        return self.response

    async def get(self, path: str, *, timeout: float | None = None) -> UpstreamResponse:
        return self.response

    async def aclose(self) -> None:
        return None


def balanced(client: Upstream) -> BalancedUpstream:
    """One target, the way ``edge.components.build_upstream`` builds it with the default settings."""
    return BalancedUpstream(
        [Target("http://upstream")],
        make_client=lambda url: client,
        breaker_factory=lambda: CircuitBreaker(5, 10.0, 1),
        health_interval=5.0,
        health_timeout=2.0,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


async def drive(client: Upstream, requests: int, workers: int, idempotent: bool) -> tuple[float, float]:
    """Send ``requests`` POSTs from ``workers`` tasks; (CPU seconds, wall seconds) of this process."""
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            response = await client.post(QUERY_BODY, HEADERS, idempotent=idempotent)
            if response.status != 200:
                raise RuntimeError(f"unexpected status {response.status}")

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return time.process_time() - cpu, time.perf_counter() - wall


async def measure(name: str, client: Upstream, args: argparse.Namespace) -> tuple[str, float, float]:
    """Best-of-runs CPU µs/request and that run's requests/s."""
    await drive(client, args.warmup, args.workers, args.idempotent)
    best: tuple[float, float] | None = None
    for _ in range(args.runs):
        cpu, wall = await drive(client, args.requests, args.workers, args.idempotent)
        run = (cpu / args.requests * 1e6, args.requests / wall)
        if best is None or run[0] < best[0]:
            best = run
    await client.aclose()
    assert best is not None
    return name, best[0], best[1]


async def bench(url: str, args: argparse.Namespace) -> list[tuple[str, float, float]]:
    def lean() -> LeanUpstream:
        return LeanUpstream(url, max_connections=256, connect_timeout=5.0, read_timeout=60.0)

    makers: dict[str, Callable[[], Upstream]] = {
        "lean": lean,
        "balanced": lambda: balanced(lean()),
        "noop": Noop,
        "balanced(noop)": lambda: balanced(Noop()),
    }
    return [await measure(name, makers[name](), args) for name in args.clients]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=50_000, help="requests per measured run")
    parser.add_argument("--warmup", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument(
        "--not-idempotent", dest="idempotent", action="store_false", help="post as a mutation is posted"
    )
    parser.add_argument(
        "--clients", type=lambda s: s.split(","), default=["lean", "balanced", "noop", "balanced(noop)"]
    )
    args = parser.parse_args()

    port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-c", PY_UPSTREAM, str(port), RESPONSE_BODY], stdout=subprocess.DEVNULL
    )
    try:
        wait_port(port)
        url = f"http://127.0.0.1:{port}"
        if args.loop == "uvloop":
            import uvloop

            results = uvloop.run(bench(url, args))
        else:
            results = asyncio.run(bench(url, args))
    finally:
        upstream.send_signal(signal.SIGTERM)
        upstream.wait(10)

    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}, Python {platform.python_version()}, loop {args.loop}")
    print(f"# {args.workers} workers, {args.requests:,} POSTs x {args.runs} runs (best), {args.warmup:,} warm-up")
    print(f"# {len(QUERY_BODY)}-byte body, {len(HEADERS)} headers, {len(RESPONSE_BODY)}-byte response")
    print(f"# posted with idempotent={args.idempotent}")
    print()
    print("| client | CPU µs/request | req/s |")
    print("|---|---:|---:|")
    for name, cpu_us, rps in results:
        print(f"| {name} | {cpu_us:.1f} | {rps:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""User-space instructions per ``/graphql`` request of ``python -m edge``, counted by callgrind.

Requests/s on a shared 2-core box move by ±15 % between runs; an instruction count does not. This
runs the edge (as built in this checkout: ``build/compiled/`` after ``make compile``, else the
sources interpreted; ``--interpreted`` for the sources anyway) under
``valgrind --tool=callgrind`` with instrumentation off, warms it up, switches instrumentation on
for a fixed number of requests over keep-alive connections, and prints the instructions per
request. The same build, options and request give the same figure within about 0.5 %, whatever
else the machine is doing, so a change's effect can be read from one run before and one after.

    .venv/bin/python bench/instructions.py                      # the plain proxied request
    .venv/bin/python bench/instructions.py --cached             # an @cached hit
    .venv/bin/python bench/instructions.py --limited            # with an in-memory rate+quota plan
    .venv/bin/python bench/instructions.py --log-level info     # with the access log's line per request
    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/instructions.py --production
                                                    # http_path.py's production row; take one part away
                                                    # with --log-level warning, --redis-url '' or --users 1
    .venv/bin/python bench/instructions.py --out /tmp/edge.cg   # keep the profile for callgrind_annotate
    .venv/bin/python bench/instructions.py --cache-sim          # and the cache misses per request

``--cache-sim`` runs callgrind's cache model with this CPU's L1 caches and, as its last level, one
core's L2 (read from ``/sys/devices/system/cpu/cpu0/cache``), and prints the misses per request. An
instruction count leaves out what memory costs: an L1 instruction miss costs a few cycles, an L2 miss
goes to the L3 that the box's other processes (and, on a VM, other guests) share, or to memory.

The upstream is the same as ``bench/http_path.py``'s (nginx with a fixed ~1 KB body, or the small
Python server without nginx), and so is the request (a POST of a 181-byte JSON body with an HS256 bearer token).
Kernel time is not counted: each request also makes four system calls (read and write on each
socket). Needs valgrind (Debian package ``valgrind``); takes about 15 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import http_path  # noqa: E402  (the same upstream, request and plans as the throughput benchmark)

from tests.support.tokens import JWT_SECRET_JSON, hasura_claims, mint  # noqa: E402


async def _client(port: int, requests: list[bytes], first: int, count: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for index in range(first, first + count):
            writer.write(requests[index % len(requests)])
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            if not lines[0].startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"the edge answered {lines[0].decode()}")
            length = next(int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
    finally:
        writer.close()


def _load(port: int, requests: list[bytes], start: int, count: int, connections: int) -> None:
    """``count`` requests over ``connections``, taking ``requests`` round-robin from ``start`` (one user's each)."""
    share = count // connections

    async def run() -> None:
        await asyncio.gather(*(_client(port, requests, start + n * share, share) for n in range(connections)))

    asyncio.run(run())


def _event_totals(profile: Path) -> dict[str, int]:
    """Each event's total over the profile's parts (``Ir``: instructions; with ``--cache-sim``, the misses)."""
    totals: dict[str, int] = {}
    for part in profile.parent.glob(profile.name + "*"):
        names: list[str] = []
        for line in part.read_text(errors="replace").splitlines():
            if line.startswith("events:"):
                names = line.split()[1:]
            elif line.startswith(("summary:", "totals:")):
                for name, value in zip(names, line.split()[1:], strict=False):
                    totals[name] = max(totals.get(name, 0), int(value))
    return totals


def _cache_options() -> list[str]:
    """callgrind's cache model set to this CPU's L1 caches, and its last level to the L2 (one core's own:
    what a request's code and data fit in before they go to the L3 that other processes and VMs share)."""
    caches: dict[tuple[str, str], str] = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        level, kind = (index / "level").read_text().strip(), (index / "type").read_text().strip()
        size = int((index / "size").read_text().strip().removesuffix("K")) * 1024
        ways = (index / "ways_of_associativity").read_text().strip()
        line = (index / "coherency_line_size").read_text().strip()
        caches[(level, kind)] = f"{size},{ways},{line}"
    return [
        "--cache-sim=yes",
        f"--I1={caches[('1', 'Instruction')]}",
        f"--D1={caches[('1', 'Data')]}",
        f"--LL={caches[('2', 'Unified')]}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="counted requests (default 2000)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=400, help="requests before counting starts")
    parser.add_argument("--cached", action="store_true", help="send the @cached query (a HIT after the first)")
    parser.add_argument("--limited", action="store_true", help="with an in-memory rate and quota plan")
    parser.add_argument(
        "--log-level",
        help="EDGE_LOG_LEVEL (default warning: no access-log lines; info, the default with --production: one each)",
    )
    parser.add_argument(
        "--production",
        action="store_true",
        help="http_path.py's production row: the production plan, the access log (info), metrics, one worker, "
        "Redis limits (--redis-url) and --users tokens",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", ""),
        help="with --production: Redis for the limits (default REDIS_URL; empty: in memory)",
    )
    parser.add_argument(
        "--users",
        type=int,
        help="distinct users' tokens, one per request round-robin (default 1; with --production "
        f"{http_path.PRODUCTION_USERS:,}, all verified during the warm-up)",
    )
    parser.add_argument("--out", type=Path, help="where to keep the callgrind profile")
    parser.add_argument(
        "--cache-sim",
        action="store_true",
        help="also count cache misses per request in callgrind's model of this CPU's L1 and L2 caches (slower)",
    )
    parser.add_argument(
        "--interpreted", action="store_true", help="run the checkout's sources, not build/compiled/ (make compile)"
    )
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            print(f"{tool} is required (Debian package 'valgrind')", file=sys.stderr)
            return 2
    requests = args.requests - args.requests % args.connections
    users = args.users or (http_path.PRODUCTION_USERS if args.production else 1)
    log_level = args.log_level or ("info" if args.production else "warning")
    # Every token is verified before counting starts: the counted requests find each in the edge's caches.
    warmup = max(args.warmup, users + args.warmup) if users > 1 else args.warmup
    build_variables, build = http_path.edge_build(interpreted=args.interpreted)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        profile = args.out or tmp / "callgrind.out"
        for stale in profile.parent.glob(profile.name + "*"):
            stale.unlink()
        upstream_port = http_path.free_port()
        nginx = shutil.which("nginx")
        if nginx:
            conf = tmp / "upstream.conf"
            conf.write_text(http_path.NGINX_UPSTREAM.format(tmp=tmp, port=upstream_port, body=http_path.RESPONSE_BODY))
            upstream = http_path.start([nginx, "-c", str(conf), "-p", str(tmp)])
        else:
            upstream = http_path.start(
                [sys.executable, "-c", http_path.PY_UPSTREAM, str(upstream_port), http_path.RESPONSE_BODY]
            )
        edge: subprocess.Popen[bytes] | None = None
        log_lines = (tmp / "edge.log").open("wb")  # the access log, when on, goes to stderr
        try:
            http_path.wait_port(upstream_port)
            port = http_path.free_port()
            env = {key: value for key, value in os.environ.items() if not key.startswith("EDGE_")}
            env.pop("PYTHONPATH", None)
            env.update(
                **build_variables,
                EDGE_HASURA_URL=f"http://127.0.0.1:{upstream_port}",
                EDGE_HASURA_ADMIN_SECRET="bench-admin-secret",
                EDGE_JWT_SECRET=JWT_SECRET_JSON,
                EDGE_PORT=str(port),
                EDGE_LOG_LEVEL=log_level,
            )
            if args.limited:
                plans = tmp / "limited.yaml"
                plans.write_text(http_path.LIMITED_PLANS)
                env["EDGE_CONFIG"] = str(plans)
            if args.production:
                plans = tmp / "production.yaml"
                plans.write_text(http_path.PRODUCTION_PLANS)
                env.update(EDGE_CONFIG=str(plans), EDGE_METRICS_PORT=str(http_path.free_port()), EDGE_WORKERS="1")
                if args.redis_url:
                    env["EDGE_REDIS_URL"] = args.redis_url
            edge = subprocess.Popen(
                [
                    "valgrind",
                    "--tool=callgrind",
                    "--instr-atstart=no",
                    *(_cache_options() if args.cache_sim else []),
                    f"--callgrind-out-file={profile}",
                    sys.executable,
                    "-m",
                    "edge",
                ],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=log_lines,
            )
            http_path.wait_port(port, timeout=120)
            body = (http_path.CACHED_BODY if args.cached else http_path.QUERY_BODY).encode()
            tokens = [mint(hasura_claims("user-1"), expires_in=3600)] if users == 1 else http_path.mint_tokens(users)
            prepared = [
                (
                    f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                    f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
                + body
                for token in tokens
            ]
            _load(port, prepared, 0, warmup, args.connections)
            subprocess.run(["callgrind_control", "-i", "on", str(edge.pid)], capture_output=True, check=True)
            _load(port, prepared, warmup, requests, args.connections)
            subprocess.run(["callgrind_control", "-i", "off", str(edge.pid)], capture_output=True, check=True)
            edge.send_signal(signal.SIGTERM)
            edge.wait(120)
        finally:
            if edge is not None and edge.poll() is None:
                edge.kill()
                edge.wait()
            http_path.stop(upstream)
            log_lines.close()
        totals = _event_totals(profile)
    variant = "an @cached hit" if args.cached else "a proxied request"
    if args.limited:
        variant += ", in-memory rate+quota plan"
    if args.production:
        variant += ", production plan in " + ("Redis" if args.redis_url else "memory") + ", metrics on"
    print(
        f"edge build: {build}; {variant}; EDGE_LOG_LEVEL={log_level}; "
        f"{users:,} user(s) round-robin; {requests} requests over {args.connections} connections"
    )
    print(f"instructions per request: {totals.get('Ir', 0) / requests:,.0f}")
    if args.cache_sim:
        per_request = {name: value / requests for name, value in totals.items()}
        print(
            f"cache misses per request: L1 instructions {per_request.get('I1mr', 0):,.0f}, "
            f"L1 data {per_request.get('D1mr', 0) + per_request.get('D1mw', 0):,.0f}, "
            f"L2 {per_request.get('ILmr', 0) + per_request.get('DLmr', 0) + per_request.get('DLmw', 0):,.0f} "
            f"(instructions {per_request.get('ILmr', 0):,.0f}, data read {per_request.get('DLmr', 0):,.0f}, "
            f"data written {per_request.get('DLmw', 0):,.0f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

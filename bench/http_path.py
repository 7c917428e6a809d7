"""Benchmark the edge's HTTP path against a fast upstream and nginx, in one run on one machine.

Measures requests/s, p50/p99 latency and the server's CPU µs per request for:

  direct  - the load generator straight to the fast upstream (the ceiling)
  nginx   - nginx as a reverse proxy to it (when nginx is on PATH): the baseline ratios use
  bare    - raw ASGI + the edge's upstream client under uvicorn, no features (the Python floor)
  edge    - ``python -m edge`` (one process, JWT verification on) in front of it, as built in
            this checkout: compiled with mypyc into ``build/compiled/`` by ``make compile`` (the
            Docker image's build), else the sources interpreted; the first output line says which
  edge, interpreted (``--interpreted``) - the checkout's sources as Python, beside the compiled build
  edge, via ASGI (``--asgi``) - the same edge and server with HTTP /graphql through the ASGI
            interface instead of the handler's direct call (``edge.http_server.exchange``)
  edge, @cached hit (``--cache-hit``) - the edge answering from its response cache
  edge + limiter (``--limiters``) - the same with a rate+quota plan, in memory and (with
            ``--redis-url`` or REDIS_URL) in Redis, reported as ratios to the plain edge
  production (``--production``) - the configuration a deployment runs: 5,000 users' tokens (each
            request takes the next one, round-robin), a plan with rate, quota and cost budget in
            Redis (``--redis-url``/REDIS_URL; in memory without one), the access log at the default
            level (``info``, one JSON line per operation to stderr, a file here), metrics on their
            own port, one process (``EDGE_WORKERS=1``). Three more rows each take one part away
            (limits in memory, no access log, one token), so each part's cost is a difference
            within the run; with Redis, two more take the access log or the 5,000 tokens away
            from the in-memory row (steadier than the Redis rows)

and prints every figure as a ratio to nginx. The fast upstream is nginx returning a fixed
~1 KB JSON body (or a small uvloop server when nginx is absent). Load comes from ``wrk`` (with
a Lua script for the POST and the percentiles); everything runs on loopback and stops by itself.

    .venv/bin/python bench/http_path.py                 # 3 runs x 10 s per target
    .venv/bin/python bench/http_path.py --duration 5 --runs 1 --connections 64
    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/http_path.py --production

Numbers on a shared 2-core box vary by ±15 %: compare ratios within one run, and prefer the
CPU µs/request figure. No test asserts on any of this.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Final

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The shared pieces; scripts that import this module (instructions.py, upstream_path.py) use them from here too.
from harness import (
    CLOCK_TICKS,
    NGINX_PROXY,
    NGINX_UPSTREAM,
    PY_UPSTREAM,
    QUERY_BODY,
    RESPONSE_BODY,
    ROOT,
    WRK_MANY_TOKENS_SCRIPT,
    WRK_SCRIPT,
    Result,
    cpu_seconds,
    edge_build,
    edge_environment,
    free_port,
    lua_string,
    measure,
    mint_token,
    mint_tokens,
    run_wrk,
    start,
    start_upstream,
    stop,
    wait_port,
)

__all__ = [
    "CACHED_BODY",
    "CLOCK_TICKS",
    "LIMITED_PLANS",
    "mint_tokens",
    "PRODUCTION_PLANS",
    "PRODUCTION_USERS",
    "NGINX_PROXY",
    "NGINX_UPSTREAM",
    "PY_UPSTREAM",
    "QUERY_BODY",
    "RESPONSE_BODY",
    "WRK_SCRIPT",
    "Result",
    "cpu_seconds",
    "edge_build",
    "free_port",
    "lua_string",
    "measure",
    "run_wrk",
    "start",
    "stop",
    "wait_port",
]

# The same operation with Hasura EE's @cached directive: after the first request, the edge answers
# from its response cache without calling the upstream (the cache-hit path).
CACHED_BODY = json.dumps(
    {
        "query": "query GetUsers($limit: Int!) @cached(ttl: 300) { users(limit: $limit) { id name email posts { id "
        "title comments { id body } } } }",
        "variables": {"limit": 10},
        "operationName": "GetUsers",
    }
)
# Limits that never refuse during a run: the point is what checking them costs.
LIMITED_PLANS = """
plans:
  bench:
    rate: {requests_per_second: 1000000000, burst: 1000000000}
    quota: {limit: 1000000000, period: DAY}
jwt_plan: bench
anonymous_plan: bench
"""
# The production rows' plan: every kind of limit a deployment configures, none of which refuses
# during a run (a refused request would be cheaper than an answered one).
PRODUCTION_PLANS = """
plans:
  production:
    rate: {requests_per_second: 1000000000, burst: 1000000000}
    quota: {limit: 1000000000000, period: DAY}
    cost_budget: {maximum: 1000000000000, restore_rate: 1000000000}
jwt_plan: production
anonymous_plan: production
"""
# Distinct users in the production rows: each has its own token, limits, usage and session, and each
# token comes back every PRODUCTION_USERS requests (verified once, then found in the edge's caches).
PRODUCTION_USERS = 5_000

# ``python -m edge`` with the direct /graphql path switched off: the same app and server, every
# request through the ASGI interface (scope, receive, send) instead of the handler's direct call.
ASGI_ONLY_EDGE = textwrap.dedent(
    """
    import asyncio, signal, uvloop
    from edge.app import create_app
    from edge.http_server import HttpServer, bind, server_config
    from edge.logs import configure_logging
    from edge.settings import EdgeSettings
    settings = EdgeSettings()
    configure_logging(settings.log_level, settings.log_format)
    async def main():
        server = HttpServer(create_app(settings), server_config(settings))
        await server.start([bind(settings.host, settings.port)])
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await server.shutdown()
    uvloop.run(main())
    """
)


PRODUCTION: Final = "production"
# Each row takes one part of the production configuration away: the differences are what each part costs.
WITHOUT_REDIS: Final = "production, limits in memory"
WITHOUT_ACCESS_LOG: Final = "production, no access log"
ONE_TOKEN: Final = "production, one token"
# The same two differences again with the limits in memory: Redis' round trips (redis-py's CPU) vary by tens of
# µs between runs on a shared box, which hides a part of a few µs; in memory the rows are steadier.
MEMORY_WITHOUT_ACCESS_LOG: Final = "production in memory, no access log"
MEMORY_ONE_TOKEN: Final = "production in memory, one token"


def production_variants(tmp: Path, token: str, redis_url: str) -> list[tuple[str, dict[str, str], Path]]:
    """The production row and the rows without one of its parts: (name, extra environment, wrk script)."""
    plans = tmp / "production.yaml"
    plans.write_text(PRODUCTION_PLANS)
    many = tmp / "many_tokens.lua"
    many.write_text(
        WRK_MANY_TOKENS_SCRIPT.format(
            body=lua_string(QUERY_BODY), tokens=", ".join(f'"{one}"' for one in mint_tokens(PRODUCTION_USERS))
        )
    )
    one = tmp / "one_token.lua"
    one.write_text(WRK_SCRIPT.format(body=lua_string(QUERY_BODY), token=token))
    production = {
        "EDGE_CONFIG": str(plans),
        "EDGE_LOG_LEVEL": "info",  # the default: the access log's line per operation (stderr: a file here)
        "EDGE_METRICS_PORT": "0",  # replaced by a free port for each row
        "EDGE_WORKERS": "1",  # one process, as every other row (`auto` would start one per CPU with Redis)
    }
    in_memory = dict(production)
    if redis_url:
        production["EDGE_REDIS_URL"] = redis_url
    rows = [(PRODUCTION if redis_url else f"{PRODUCTION} (no Redis)", production, many)]
    if redis_url:
        rows.append((WITHOUT_REDIS, in_memory, many))
    rows.append((WITHOUT_ACCESS_LOG, {**production, "EDGE_LOG_LEVEL": "warning"}, many))
    rows.append((ONE_TOKEN, production, one))
    if redis_url:
        rows.append((MEMORY_WITHOUT_ACCESS_LOG, {**in_memory, "EDGE_LOG_LEVEL": "warning"}, many))
        rows.append((MEMORY_ONE_TOKEN, in_memory, one))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--upstream-client", default="lean", help="EDGE_UPSTREAM_CLIENT for the edge run")
    parser.add_argument("--limiters", action="store_true", help="also run the edge with rate+quota plans")
    parser.add_argument("--cache-hit", action="store_true", help="also run the edge answering an @cached query")
    parser.add_argument(
        "--interpreted", action="store_true", help="also run the edge's sources interpreted (needs make compile)"
    )
    parser.add_argument(
        "--asgi", action="store_true", help="also run the edge with /graphql through ASGI, not the direct path"
    )
    parser.add_argument(
        "--production",
        action="store_true",
        help="also run the production configuration and the rows that each take one part of it away",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", ""),
        help="Redis for the shared-limiter run (default REDIS_URL)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is required (Debian package 'wrk')", file=sys.stderr)
        return 2
    build_variables, build = edge_build()
    if args.interpreted and not build_variables:
        print("--interpreted compares with the compiled build: run make compile first", file=sys.stderr)
        return 2
    nginx = shutil.which("nginx")
    processes: list[subprocess.Popen[bytes]] = []
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        token = mint_token()
        script = tmp / "post.lua"
        script.write_text(WRK_SCRIPT.format(body=lua_string(QUERY_BODY), token=token))
        try:
            upstream, upstream_port = start_upstream(tmp, nginx)
            processes.append(upstream)
            results.append(measure("direct", upstream_port, "/v1/graphql", None, script, args))

            if nginx:
                proxy_port = free_port()
                conf = tmp / "proxy.conf"
                conf.write_text(NGINX_PROXY.format(tmp=tmp, port=proxy_port, upstream=upstream_port))
                proxy = start([nginx, "-c", str(conf), "-p", str(tmp)])
                processes.append(proxy)
                wait_port(proxy_port)
                results.append(measure("nginx", proxy_port, "/graphql", proxy.pid, script, args))
                stop(proxy)

            bare_port = free_port()
            bare = start(
                [
                    sys.executable,
                    str(ROOT / "bench" / "bare_proxy.py"),
                    str(bare_port),
                    f"http://127.0.0.1:{upstream_port}",
                ]
            )
            processes.append(bare)
            wait_port(bare_port)
            results.append(measure("bare proxy", bare_port, "/graphql", bare.pid, script, args))
            stop(bare)

            cached_script = tmp / "cached.lua"
            cached_script.write_text(WRK_SCRIPT.format(body=lua_string(CACHED_BODY), token=token))
            variants: list[tuple[str, dict[str, str], Path]] = [(f"edge ({args.upstream_client})", {}, script)]
            if args.interpreted:
                variants.append(("edge, interpreted", {}, script))
            if args.asgi:
                variants.append(("edge, via ASGI", {"BENCH_ASGI_ONLY": "1"}, script))
            if args.cache_hit:
                variants.append(("edge, @cached hit", {}, cached_script))
            if args.limiters:
                limited = tmp / "limited.yaml"
                limited.write_text(LIMITED_PLANS)
                variants.append(("edge + memory limiter", {"EDGE_CONFIG": str(limited)}, script))
                if args.redis_url:
                    variants.append(
                        (
                            "edge + redis limiter",
                            {"EDGE_CONFIG": str(limited), "EDGE_REDIS_URL": args.redis_url},
                            script,
                        )
                    )
            if args.production:
                variants += production_variants(tmp, token, args.redis_url)
            for name, extra, variant_script in variants:
                edge_port = free_port()
                if "EDGE_METRICS_PORT" in extra:
                    extra = {**extra, "EDGE_METRICS_PORT": str(free_port())}
                if name != "edge, interpreted":
                    extra = {**build_variables, **extra}
                env = edge_environment(upstream_port, edge_port, EDGE_UPSTREAM_CLIENT=args.upstream_client, **extra)
                command = (
                    [sys.executable, "-c", ASGI_ONLY_EDGE]
                    if "BENCH_ASGI_ONLY" in extra
                    else [sys.executable, "-m", "edge"]
                )
                edge = start(command, env=env, cwd=ROOT)
                processes.append(edge)
                wait_port(edge_port)
                warm = PRODUCTION_USERS + 1000 if name.startswith(PRODUCTION) else 0
                results.append(measure(name, edge_port, "/graphql", edge.pid, variant_script, args, warm_requests=warm))
                stop(edge)
        finally:
            for process in processes:
                stop(process)

    baseline = next((result for result in results if result.name == "nginx"), results[0])
    print(
        f"wrk -t2 -c{args.connections} -d{args.duration}s, median of {args.runs}; "
        f"upstream: {'nginx' if nginx else 'python'}; baseline: {baseline.name}; "
        f"edge build: {build}{'' if build_variables else ' (run make compile for the image build)'}"
    )
    width = max(18, *(len(result.name) + 2 for result in results))
    print(
        f"{'target':<{width}}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}{'errors':>8}"
        f"{'x ' + baseline.name:>10}{'CPU x ' + baseline.name:>14}"
    )
    for result in results:
        cpu = f"{result.cpu_us_per_request:.0f}" if result.cpu_us_per_request is not None else "-"
        cpu_ratio = (
            f"{result.cpu_us_per_request / baseline.cpu_us_per_request:.1f}"
            if result.cpu_us_per_request is not None and baseline.cpu_us_per_request
            else "-"
        )
        print(
            f"{result.name:<{width}}{result.rps:>10.0f}{result.p50_ms:>9.2f}{result.p99_ms:>9.2f}{cpu:>12}"
            f"{result.errors:>8}{result.rps / baseline.rps:>10.2f}{cpu_ratio:>14}"
        )
    plain = next(result for result in results if result.name.startswith("edge ("))
    print(f"edge / {baseline.name} requests/s: {plain.rps / baseline.rps:.2f}")
    for result in results:
        if result.name.startswith(("edge +", "edge,")) and result.cpu_us_per_request and plain.cpu_us_per_request:
            if result.name == "edge, via ASGI":
                print(
                    f"direct /graphql path: {plain.rps / result.rps:.2f} x the ASGI path's requests/s, "
                    f"{plain.cpu_us_per_request - result.cpu_us_per_request:+.0f} us CPU per request"
                )
                continue
            if result.name == "edge, interpreted":
                print(
                    f"compiled edge: {plain.rps / result.rps:.2f} x the interpreted edge's requests/s, "
                    f"{plain.cpu_us_per_request - result.cpu_us_per_request:+.0f} us CPU per request"
                )
                continue
            print(
                f"{result.name}: {result.rps / plain.rps:.2f} x the plain edge's requests/s, "
                f"+{result.cpu_us_per_request - plain.cpu_us_per_request:.0f} us CPU per request"
            )
    print_production_parts(results)
    return 0


def print_production_parts(results: list[Result]) -> None:
    """What each part of the production configuration costs: the full row minus the row without it."""
    cpu = {result.name: result.cpu_us_per_request for result in results if result.cpu_us_per_request}
    full = cpu.get(PRODUCTION) or cpu.get(f"{PRODUCTION} (no Redis)")
    memory = cpu.get(WITHOUT_REDIS)
    parts = (
        (full, WITHOUT_REDIS, "limits in Redis instead of in memory"),
        (full, WITHOUT_ACCESS_LOG, "the access log's line"),
        (full, ONE_TOKEN, f"{PRODUCTION_USERS:,} users' tokens instead of one"),
        (memory, MEMORY_WITHOUT_ACCESS_LOG, "the access log's line, limits in memory"),
        (memory, MEMORY_ONE_TOKEN, f"{PRODUCTION_USERS:,} users' tokens instead of one, limits in memory"),
    )
    for whole, without, part in parts:
        if whole is not None and without in cpu:
            print(
                f"{part}: {whole - cpu[without]:+.1f} us CPU per request "
                f"(with it {whole:.1f}, without it {cpu[without]:.1f})"
            )


if __name__ == "__main__":
    sys.exit(main())

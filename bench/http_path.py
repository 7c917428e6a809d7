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
            between rows of the same rounds; with Redis, two more take the access log or the
            5,000 tokens away from the in-memory row (steadier than the Redis rows)

and prints every figure as a ratio to nginx. The fast upstream is nginx returning a fixed
~1 KB JSON body (or a small uvloop server when nginx is absent). Load comes from ``wrk`` (with
a Lua script for the POST and the percentiles); everything runs on loopback and stops by itself.

Every server is started and warmed up first, then the rows are measured interleaved: ``--runs``
rounds, each of which runs wrk once against every row, in the same order. The box's speed drifts
(by 2-3 x over minutes on a shared one): rows measured one after the other would each see another
state of it, while rows measured in the same rounds share them. Each row's figures are those of
its median run by requests/s; each difference between two rows (a part of the production
configuration, a flag's row against the plain edge) is the median of the per-round differences,
printed with them.

    .venv/bin/python bench/http_path.py                 # 3 rounds x 10 s per row
    .venv/bin/python bench/http_path.py --duration 5 --runs 1 --connections 64
    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/http_path.py --production

Compare ratios and paired differences within one run, and prefer the CPU µs/request figure.
No test asserts on any of this.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterable
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
    Target,
    cpu_seconds,
    edge_build,
    edge_environment,
    free_port,
    lua_string,
    median_run,
    mint_token,
    mint_tokens,
    one_run,
    run_wrk,
    start,
    start_upstream,
    stop,
    wait_port,
    warm_up,
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
    parser.add_argument("--duration", type=int, default=10, help="seconds of each measured run")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3, help="rounds: each runs every row once")
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
    # SIGTERM ends the run like Ctrl-C: the finally below stops every server this script started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    nginx = shutil.which("nginx")
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        try:
            targets = start_targets(args, tmp, nginx, build_variables, processes)
            for target in targets:
                warm_up(target, args.warmup, args.connections)
            rounds = run_rounds(targets, args)
        finally:
            for process in processes:
                stop(process)

    results = [median_run(runs) for runs in rounds.values()]
    baseline = next((result for result in results if result.name == "nginx"), results[0])
    print(
        f"wrk -t2 -c{args.connections} -d{args.duration}s, {rounds_text(args.runs)}, rows interleaved (each round runs "
        f"every row once), median per row; upstream: {'nginx' if nginx else 'python'}; baseline: {baseline.name}; "
        f"edge build: {build}{'' if build_variables else ' (run make compile for the image build)'}"
    )
    print_table(results, baseline)
    plain = next(result.name for result in results if result.name.startswith("edge ("))
    print_edge_comparisons(rounds, baseline.name, plain)
    print_production_ratios(rounds, plain)
    print_production_parts(rounds, {result.name: result for result in results})
    return 0


def start_targets(
    args: argparse.Namespace,
    tmp: Path,
    nginx: str | None,
    build_variables: dict[str, str],
    processes: list[subprocess.Popen[bytes]],
) -> list[Target]:
    """Start every row's server, each on its own port, and return the rows in the order every round runs them.

    Each process goes into ``processes`` as soon as it has started, for the caller to stop.
    """
    token = mint_token()
    script = tmp / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=lua_string(QUERY_BODY), token=token))
    upstream, upstream_port = start_upstream(tmp, nginx)
    processes.append(upstream)
    targets = [Target("direct", upstream_port, "/v1/graphql", None, script)]

    if nginx:
        proxy_port = free_port()
        conf = tmp / "proxy.conf"
        conf.write_text(NGINX_PROXY.format(tmp=tmp, port=proxy_port, upstream=upstream_port))
        proxy = start_server([nginx, "-c", str(conf), "-p", str(tmp)], proxy_port, processes)
        targets.append(Target("nginx", proxy_port, "/graphql", proxy.pid, script))

    bare_port = free_port()
    bare_command = [
        sys.executable,
        str(ROOT / "bench" / "bare_proxy.py"),
        str(bare_port),
        f"http://127.0.0.1:{upstream_port}",
    ]
    bare = start_server(bare_command, bare_port, processes)
    targets.append(Target("bare proxy", bare_port, "/graphql", bare.pid, script))

    for name, extra, variant_script in edge_variants(args, tmp, token, script):
        edge_port = free_port()
        if "EDGE_METRICS_PORT" in extra:
            extra = {**extra, "EDGE_METRICS_PORT": str(free_port())}
        if name != "edge, interpreted":
            extra = {**build_variables, **extra}
        env = edge_environment(upstream_port, edge_port, EDGE_UPSTREAM_CLIENT=args.upstream_client, **extra)
        command = (
            [sys.executable, "-c", ASGI_ONLY_EDGE] if "BENCH_ASGI_ONLY" in extra else [sys.executable, "-m", "edge"]
        )
        edge = start_server(command, edge_port, processes, env=env)
        warm = PRODUCTION_USERS + 1000 if name.startswith(PRODUCTION) else 0
        targets.append(Target(name, edge_port, "/graphql", edge.pid, variant_script, warm_requests=warm))
    return targets


def start_server(
    command: list[str],
    port: int,
    processes: list[subprocess.Popen[bytes]],
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a server, add it to ``processes``, and wait until it listens on ``port``."""
    process = start(command, env=env, cwd=ROOT)
    processes.append(process)
    wait_port(port, process=process)
    return process


def edge_variants(
    args: argparse.Namespace, tmp: Path, token: str, script: Path
) -> list[tuple[str, dict[str, str], Path]]:
    """The edge's rows that the flags ask for: (name, extra environment, wrk script); the plain edge first."""
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
            redis_limited = {"EDGE_CONFIG": str(limited), "EDGE_REDIS_URL": args.redis_url}
            variants.append(("edge + redis limiter", redis_limited, script))
    if args.production:
        variants += production_variants(tmp, token, args.redis_url)
    return variants


def run_rounds(targets: list[Target], args: argparse.Namespace) -> dict[str, list[Result]]:
    """``args.runs`` rounds, each one run of every target in order: each target's runs, round by round."""
    rounds: dict[str, list[Result]] = {target.name: [] for target in targets}
    for number in range(1, args.runs + 1):
        for target in targets:
            rounds[target.name].append(one_run(target, args.duration, args.connections))
        cpus = ", ".join(
            f"{name} {runs[-1].cpu_us_per_request:.0f}"
            for name, runs in rounds.items()
            if runs[-1].cpu_us_per_request is not None
        )
        print(f"round {number}/{args.runs}, CPU us per request: {cpus}", file=sys.stderr, flush=True)
    return rounds


def print_table(results: list[Result], baseline: Result) -> None:
    width = max(18, *(len(result.name) + 2 for result in results))
    print(
        f"{'target':<{width}}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}{'errors':>8}"
        f"{'x ' + baseline.name:>10}{'CPU x ' + baseline.name:>14}{'kernel us/req':>15}"
    )
    for result in results:
        cpu = f"{result.cpu_us_per_request:.0f}" if result.cpu_us_per_request is not None else "-"
        cpu_ratio = (
            f"{result.cpu_us_per_request / baseline.cpu_us_per_request:.1f}"
            if result.cpu_us_per_request is not None and baseline.cpu_us_per_request
            else "-"
        )
        kernel = f"{result.kernel_us_per_request:.0f}" if result.kernel_us_per_request is not None else "-"
        print(
            f"{result.name:<{width}}{result.rps:>10.0f}{result.p50_ms:>9.2f}{result.p99_ms:>9.2f}{cpu:>12}"
            f"{result.errors:>8}{result.rps / baseline.rps:>10.2f}{cpu_ratio:>14}{kernel:>15}"
        )


def cpu_difference(one: Result, other: Result) -> float | None:
    if one.cpu_us_per_request is None or other.cpu_us_per_request is None:
        return None
    return one.cpu_us_per_request - other.cpu_us_per_request


def cpu_ratio(one: Result, other: Result) -> float | None:
    if one.cpu_us_per_request is None or not other.cpu_us_per_request:
        return None
    return one.cpu_us_per_request / other.cpu_us_per_request


def rps_ratio(one: Result, other: Result) -> float | None:
    return one.rps / other.rps if other.rps else None


def paired(
    rounds: dict[str, list[Result]], name: str, other: str, compare: Callable[[Result, Result], float | None]
) -> list[float]:
    """``compare`` of row ``name``'s run with row ``other``'s run of the same round, round by round."""
    values = (compare(one, another) for one, another in zip(rounds[name], rounds[other], strict=True))
    return [value for value in values if value is not None]


def rounds_text(count: int) -> str:
    return f"{count} round{'' if count == 1 else 's'}"


def each_round(values: list[float], form: str) -> str:
    return f"median of {rounds_text(len(values))}: {', '.join(format(value, form) for value in values)}"


def signed(value: float, digits: int) -> str:
    """``value`` with its sign, to ``digits`` decimals; one that rounds to zero prints as +0, never -0."""
    return format(round(value, digits) + 0.0, f"+.{digits}f")


def each_difference(values: list[float]) -> str:
    return f"median of {rounds_text(len(values))}: {', '.join(signed(value, 0) for value in values)}"


def print_edge_comparisons(rounds: dict[str, list[Result]], baseline: str, plain: str) -> None:
    """The plain edge against the baseline, and each flag's edge row against the plain edge (paired per round)."""
    ratios = paired(rounds, plain, baseline, rps_ratio)
    if ratios:
        print(f"edge / {baseline} requests/s: {statistics.median(ratios):.2f} ({each_round(ratios, '.2f')})")
    for name in rounds:
        if not name.startswith(("edge +", "edge,")):
            continue
        if name in ("edge, via ASGI", "edge, interpreted"):
            speedups = paired(rounds, plain, name, rps_ratio)
            savings = paired(rounds, plain, name, cpu_difference)
            subject = "direct /graphql path" if name == "edge, via ASGI" else "compiled edge"
            other = "the ASGI path's" if name == "edge, via ASGI" else "the interpreted edge's"
        else:
            speedups = paired(rounds, name, plain, rps_ratio)
            savings = paired(rounds, name, plain, cpu_difference)
            subject, other = name, "the plain edge's"
        if speedups and savings:
            print(
                f"{subject}: {statistics.median(speedups):.2f} x {other} requests/s, "
                f"{signed(statistics.median(savings), 0)} us CPU per request ({each_difference(savings)})"
            )


def production_row(names: Iterable[str]) -> str | None:
    return next((name for name in names if name in (PRODUCTION, f"{PRODUCTION} (no Redis)")), None)


def print_production_ratios(rounds: dict[str, list[Result]], plain: str) -> None:
    """The production row's CPU per request over nginx's and the plain edge's: medians of the per-round ratios."""
    production = production_row(rounds)
    if production is None:
        return
    for other in ("nginx", plain):
        ratios = paired(rounds, production, other, cpu_ratio) if other in rounds else []
        if ratios:
            print(
                f"{production} / {other} CPU per request: {statistics.median(ratios):.2f} x "
                f"({each_round(ratios, '.2f')})"
            )


def print_production_parts(rounds: dict[str, list[Result]], results: dict[str, Result]) -> None:
    """What each part of the production configuration costs: the row with it minus the row without it,
    in the same round; the median of those differences, then each round's."""
    full = production_row(rounds)
    parts = (
        (full, WITHOUT_REDIS, "limits in Redis instead of in memory"),
        (full, WITHOUT_ACCESS_LOG, "the access log's line"),
        (full, ONE_TOKEN, f"{PRODUCTION_USERS:,} users' tokens instead of one"),
        (WITHOUT_REDIS, MEMORY_WITHOUT_ACCESS_LOG, "the access log's line, limits in memory"),
        (WITHOUT_REDIS, MEMORY_ONE_TOKEN, f"{PRODUCTION_USERS:,} users' tokens instead of one, limits in memory"),
    )
    for whole, without, part in parts:
        if whole not in rounds or without not in rounds:
            continue
        differences = paired(rounds, whole, without, cpu_difference)
        with_it, without_it = results[whole].cpu_us_per_request, results[without].cpu_us_per_request
        if differences and with_it is not None and without_it is not None:
            print(
                f"{part}: {signed(statistics.median(differences), 1)} us CPU per request "
                f"({each_difference(differences)}; with it {with_it:.1f}, without it {without_it:.1f})"
            )


if __name__ == "__main__":
    sys.exit(main())

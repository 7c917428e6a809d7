"""Which HTTP server should serve the edge: the candidates measured in one run on one machine.

Every row is one server process tree in front of the same fast upstream (nginx returning a fixed
~1 KB JSON body), loaded by ``wrk -t2`` with the same JWT-authenticated GraphQL POST as
``bench/http_path.py`` (its pieces are in ``bench/harness.py``), one worker each:

  nginx                 nginx as a reverse proxy (the baseline every ratio uses)
  edge's own server     ``python -m edge``: the edge's HTTP/1.1 server (``edge/http_server/``, asyncio
                        + httptools), /graphql answered by the handler without ASGI
  uvicorn ASGI          the edge app as a plain ASGI app under ``uvicorn.Config(app,
                        http="httptools", loop="uvloop")``, uvicorn's public options only
  granian ASGI          the same ASGI app under ``granian --interface asgi``, default options
  granian ASGI, tuned   the same with ``--granian-tuned`` (see below)
  granian RSGI          ``GraphQLHTTPHandler.handle`` behind a thin RSGI adapter
                        (``bench/edge_servers.py``) under ``granian --interface rsgi``
  granian RSGI, tuned   the same with ``--granian-tuned``

For each: requests/s, p50/p99, and the server's CPU µs per request: user+system time of the
server's whole process tree (every thread and worker process: granian runs its Rust threads in a
worker process it spawns) over each measured run, divided by the requests answered. All servers
run side by side (idle while another is measured) and the runs go round-robin, so that what else
the box does falls on every row alike; each figure is its median over the runs. Ratios are to nginx
in the same execution. The load generator shares the box's cores with the server and the upstream,
so compare CPU µs/request first and requests/s only as ratios within one execution.

All edge rows run the same ``edge/`` (``--edge-source``): this checkout's working tree (its sources,
interpreted), a git revision exported with ``git archive``, or a directory that holds an ``edge/``
(``build/compiled`` after ``make compile``: the compiled build); it comes first on the rows'
``sys.path``, so the rows differ only in the server.

    .venv/bin/python bench/servers.py                       # 3 runs x 10 s per row, about 5 minutes
    .venv/bin/python bench/servers.py --duration 5 --only nginx,granian-rsgi
    .venv/bin/python bench/servers.py --edge-source build/compiled --only nginx,own,granian-rsgi
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    NGINX_PROXY,
    QUERY_BODY,
    ROOT,
    WRK_SCRIPT,
    Result,
    Target,
    edge_environment,
    free_port,
    lua_string,
    mint_token,
    one_run,
    run_wrk,
    start,
    start_upstream,
    stop,
    wait_port,
)

EDGE_SERVERS = ROOT / "bench" / "edge_servers.py"
# One worker on a small box, as granian's README describes its options: the single-threaded runtime
# ("st", which it finds more efficient with few processes; "auto" picks it for RSGI but the
# multi-threaded one for ASGI) and one runtime I/O blocking thread instead of 512 (those serve
# files; the edge serves none). --runtime-threads 1 and one blocking thread are already the
# defaults (granian refuses more than one blocking thread for ASGI and RSGI). The experimental
# --task-impl rust was tried too: more requests/s in some runs, more CPU per request and a worse p99.
GRANIAN_TUNED = "--runtime-mode st --runtime-blocking-threads 1"


@dataclass
class Candidate:
    """One row: a short name for ``--only``, its label, and how to start it on a port (None: nginx)."""

    key: str
    label: str
    command: Callable[[int], list[str]] | None


def granian(interface: str, options: str) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            interface,
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
            "--no-access-log",
            *options.split(),
            f"{EDGE_SERVERS}:{interface}_app",
        ]

    return command


def candidates(tuned: str) -> list[Candidate]:
    return [
        Candidate("nginx", "nginx", None),
        Candidate("own", "edge's own server", lambda port: [sys.executable, "-m", "edge"]),
        Candidate("uvicorn", "uvicorn ASGI", lambda port: [sys.executable, str(EDGE_SERVERS), "uvicorn"]),
        Candidate("granian-asgi", "granian ASGI", granian("asgi", "")),
        Candidate("granian-asgi-tuned", "granian ASGI, tuned", granian("asgi", tuned)),
        Candidate("granian-rsgi", "granian RSGI", granian("rsgi", "")),
        Candidate("granian-rsgi-tuned", "granian RSGI, tuned", granian("rsgi", tuned)),
    ]


def edge_source(spec: str, tmp: Path) -> Path:
    """The directory whose ``edge/`` the rows run: the working tree, a directory, or a git revision."""
    if spec == "worktree":
        return ROOT
    if (Path(spec) / "edge").is_dir():
        return Path(spec).resolve()
    source = tmp / "edge-source"
    source.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", spec, "edge"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    return source


def compiled(source: Path) -> bool:
    return any((source / "edge").glob("graphql_http.cpython-*.so"))


@dataclass
class Running:
    candidate: Candidate
    process: subprocess.Popen[bytes]
    port: int
    runs: list[Result] = field(default_factory=list)

    def target(self, script: Path) -> Target:
        """What ``harness.one_run`` loads: this server's ``/graphql``, its whole process tree's CPU counted."""
        return Target(self.candidate.label, self.port, "/graphql", self.process.pid, script)


def start_candidate(candidate: Candidate, tmp: Path, upstream_port: int, nginx: str, source: Path) -> Running:
    port = free_port()
    if candidate.command is None:
        conf = tmp / "proxy.conf"
        conf.write_text(NGINX_PROXY.format(tmp=tmp, port=port, upstream=upstream_port))
        process = start([nginx, "-c", str(conf), "-p", str(tmp)])
    else:
        env = edge_environment(upstream_port, port)
        # The chosen edge/ first on sys.path (the editable install's finder comes after it).
        env["PYTHONPATH"] = str(source)
        process = start(candidate.command(port), env=env, cwd=source)
    try:
        wait_port(port, timeout=60, process=process)
    except BaseException:
        stop(process)
        raise
    return Running(candidate, process, port)


def median_result(running: Running) -> Result:
    """Each figure's median over the runs (errors: the total)."""
    runs = running.runs
    cpus = [run.cpu_us_per_request for run in runs if run.cpu_us_per_request is not None]
    return Result(
        running.candidate.label,
        statistics.median(run.rps for run in runs),
        statistics.median(run.p50_ms for run in runs),
        statistics.median(run.p99_ms for run in runs),
        statistics.median(cpus) if cpus else None,
        sum(run.errors for run in runs),
    )


def cpu_range(runs: list[Result]) -> str:
    cpus = [run.cpu_us_per_request for run in runs if run.cpu_us_per_request is not None]
    return f"{min(cpus):.0f}-{max(cpus):.0f}" if cpus else "-"


def print_table(measured: list[Running], args: argparse.Namespace, tuned: str, build: str) -> None:
    results = [median_result(one) for one in measured]
    baseline = next((result for result in results if result.name == "nginx"), results[0])
    print(
        f"# wrk -t2 -c{args.connections}, {args.duration} s x {args.runs} run(s) round-robin (median of each figure), "
        f"{args.warmup} s warm-up; one worker each; {build}"
    )
    print(f"# granian {installed_version('granian')}, tuned rows: {tuned}; uvicorn {installed_version('uvicorn')}")
    print()
    print(
        f"| server | req/s | x {baseline.name} | p50 ms | p99 ms | CPU µs/req | runs' range | x {baseline.name} CPU "
        "| errors |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for one, result in zip(measured, results, strict=True):
        cpu, base_cpu = result.cpu_us_per_request, baseline.cpu_us_per_request
        cpu_text = f"{cpu:.0f}" if cpu is not None else "-"
        cpu_ratio = f"{cpu / base_cpu:.1f}" if cpu is not None and base_cpu else "-"
        print(
            f"| {result.name} | {result.rps:,.0f} | {result.rps / baseline.rps:.2f} | {result.p50_ms:.2f} | "
            f"{result.p99_ms:.2f} | {cpu_text} | {cpu_range(one.runs)} | {cpu_ratio} | {result.errors} |"
        )


def installed_version(package: str) -> str:
    """The package's version, or "not installed" (granian is only needed for its own rows)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--only", default="", help="comma-separated row keys (nginx, own, uvicorn, granian-...)")
    parser.add_argument("--granian-tuned", default=GRANIAN_TUNED, help="granian options of the tuned rows")
    parser.add_argument(
        "--edge-source",
        default="worktree",
        help="'worktree' (default), a directory holding edge/, or a git revision of edge/ for the edge rows",
    )
    args = parser.parse_args()
    # SIGTERM ends the run like Ctrl-C: every server this script started is stopped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    nginx = shutil.which("nginx")
    if shutil.which("wrk") is None or nginx is None:
        print("wrk and nginx are required (Debian packages 'wrk' and 'nginx')", file=sys.stderr)
        return 2
    rows = candidates(args.granian_tuned)
    if args.only:
        keys = set(args.only.split(","))
        unknown = keys - {row.key for row in rows}
        if unknown:
            print(f"unknown rows: {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        rows = [row for row in rows if row.key in keys]
    running: list[Running] = []
    with tempfile.TemporaryDirectory(prefix="bench-servers-") as tmp_dir:
        tmp = Path(tmp_dir)
        script = tmp / "post.lua"
        script.write_text(WRK_SCRIPT.format(body=lua_string(QUERY_BODY), token=mint_token()))
        source = edge_source(args.edge_source, tmp)
        build = f"edge/ from {args.edge_source}, {'compiled (mypyc)' if compiled(source) else 'interpreted'}"
        upstream, upstream_port = start_upstream(tmp, nginx)
        try:
            for row in rows:
                try:
                    running.append(start_candidate(row, tmp, upstream_port, nginx, source))
                except RuntimeError as error:
                    print(f"{row.label}: failed to start: {error}", file=sys.stderr)
            for one in running:
                run_wrk(one.port, "/graphql", script, args.warmup, args.connections)
            # Round-robin: run i of every server before run i+1 of any, so that whatever else the
            # box does meanwhile falls on all rows alike rather than on the ones measured last.
            for _ in range(args.runs):
                for one in running:
                    one.runs.append(one_run(one.target(script), args.duration, args.connections))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
        finally:
            for one in running:
                stop(one.process)
            stop(upstream)
    measured = [one for one in running if one.runs]
    if not measured:
        return 1
    print_table(measured, args, args.granian_tuned, build)
    return 0


if __name__ == "__main__":
    sys.exit(main())

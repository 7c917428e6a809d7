"""The cyclic garbage collector's work per ``/graphql`` request of the production configuration.

Runs ``python -m edge`` with ``bench/http_path.py``'s production settings (5,000 users' tokens, the plan
in Redis, the access log, metrics) behind a launcher that counts, through ``gc.callbacks``, the
collections of each generation and the time they take. After a warm-up, ``wrk`` sends the measured
load (``--runs`` runs of ``--duration`` s), and the figures of that window are printed per request.

``--young-threshold N`` sets the youngest generation's threshold to N after the warm-up instead of the
edge's own (``edge.serve.YOUNG_COLLECTION_THRESHOLD``): ``--young-threshold 700`` is CPython's default.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/gc_collections.py
    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/gc_collections.py --young-threshold 700

Needs wrk and (for the upstream) nginx, like ``bench/http_path.py``. The times are wall-clock time inside
the collector, so they move with the machine's load; the counts do not.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import http_path  # noqa: E402
from harness import (  # noqa: E402
    edge_build,
    edge_environment,
    free_port,
    mint_token,
    run_wrk,
    start,
    start_upstream,
    stop,
    wait_port,
)

# Counts collections per generation; SIGUSR1 writes the counts to BENCH_GC_OUT (and, the first time, applies
# BENCH_YOUNG_THRESHOLD when set, so the edge's start-up ran with its own settings).
LAUNCHER = r"""
import gc, os, runpy, signal, sys, time
counts = {0: [0, 0.0], 1: [0, 0.0], 2: [0, 0.0]}
started = [0.0]
def observe(phase, info):
    if phase == "start":
        started[0] = time.perf_counter()
    else:
        entry = counts[info["generation"]]
        entry[0] += 1
        entry[1] += time.perf_counter() - started[0]
gc.callbacks.append(observe)
threshold = os.environ.get("BENCH_YOUNG_THRESHOLD")
def dump(*_):
    global threshold
    if threshold:
        gc.set_threshold(int(threshold), *gc.get_threshold()[1:])
        threshold = None
    with open(os.environ["BENCH_GC_OUT"], "w") as out:
        out.write(repr({"counts": counts, "threshold": gc.get_threshold()}))
signal.signal(signal.SIGUSR1, dump)
sys.argv = ["edge"]
runpy.run_module("edge", run_name="__main__", alter_sys=True)
"""


def snapshot(edge_pid: int, out: Path) -> dict[str, object]:
    out.unlink(missing_ok=True)
    os.kill(edge_pid, signal.SIGUSR1)
    for _ in range(100):
        if out.exists() and out.stat().st_size:
            return ast.literal_eval(out.read_text())  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise SystemExit("the edge did not write its collector counts")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--young-threshold", type=int, default=0, help="instead of the edge's (700: CPython's)")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is required (Debian package 'wrk')", file=sys.stderr)
        return 2
    build_variables, build = edge_build()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        upstream, upstream_port = start_upstream(tmp, shutil.which("nginx"))
        edge = None
        try:
            name, extra, script = http_path.production_variants(tmp, mint_token(), args.redis_url)[0]
            out = tmp / "gc.txt"
            extra = {**extra, "EDGE_METRICS_PORT": str(free_port()), "BENCH_GC_OUT": str(out)}
            if args.young_threshold:
                extra["BENCH_YOUNG_THRESHOLD"] = str(args.young_threshold)
            port = free_port()
            env = edge_environment(upstream_port, port, **{**build_variables, **extra})
            edge = start([sys.executable, "-c", LAUNCHER], env=env, cwd=ROOT)
            wait_port(port, process=edge)
            warmed = 0
            while warmed < http_path.PRODUCTION_USERS + 1000:
                warmed += run_wrk(port, "/graphql", script, 3, args.connections)[0]
            before = snapshot(edge.pid, out)
            requests = sum(
                run_wrk(port, "/graphql", script, args.duration, args.connections)[0] for _ in range(args.runs)
            )
            after = snapshot(edge.pid, out)
        finally:
            if edge is not None:
                stop(edge)
            stop(upstream)
    print(
        f"{name}, edge build: {build}; wrk -c{args.connections}, {args.runs} x {args.duration} s, "
        f"{requests} requests; gc thresholds {after['threshold']}"
    )
    counts_before: dict[int, list[float]] = before["counts"]  # type: ignore[assignment]
    counts_after: dict[int, list[float]] = after["counts"]  # type: ignore[assignment]
    total = 0.0
    for generation in (0, 1, 2):
        collections = int(counts_after[generation][0] - counts_before[generation][0])
        seconds = counts_after[generation][1] - counts_before[generation][1]
        total += seconds
        every = f"one per {requests / collections:,.0f} requests" if collections else "none"
        print(
            f"generation {generation}: {collections} collections ({every}), "
            f"{seconds * 1e3:.1f} ms, {seconds / requests * 1e6:.2f} µs per request"
        )
    print(f"all generations: {total / requests * 1e6:.2f} µs per request")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Instructions per request of the limit stage's store call (``admit``), counted by callgrind.

The production plan (rate, quota and cost budget, ``bench/http_path.py``'s ``PRODUCTION_PLANS``) is
asked ``--calls`` times: ``limiter.admit`` (on Redis one script for the rate, the quota and the budget's
charge), as the limit stage does for one request (``--two-calls``: ``hit`` then ``charge``, the two
round trips it made before), with ``--in-flight`` requests at once (1: one at a time; 8: as the edge's 8 connections
in ``bench/instructions.py``). The whole process runs under ``valgrind --tool=callgrind`` twice, once
with no calls and once with ``--calls`` after the same warm-up; the difference divided by ``--calls``
is the figure (start-up, imports and the warm-up cancel out). ``--client`` picks what the stores run on:

- ``lean``: ``LeanRedis`` (``edge.limits.resp_client``), what the edge uses for ``redis://`` and ``rediss://``;
- ``redis-py``: the redis-py client ``open_shared_redis`` builds (Sentinel and Cluster use that one);
- ``memory``: ``InMemoryLimiter`` and ``InMemoryCostBudgets`` (the floor).

    .venv/bin/python bench/limit_store_calls.py --client lean --in-flight 8
    .venv/bin/python bench/limit_store_calls.py --client redis-py --in-flight 1 --redis-url redis://127.0.0.1:6379/0
    .venv/bin/python bench/limit_store_calls.py --client lean --refund   # admit + refund
    .venv/bin/python bench/limit_store_calls.py --client lean --two-calls   # hit + charge
    .venv/bin/python bench/limit_store_calls.py --client lean --refund-in-background   # measured, not done

Run with ``PYTHONPATH=build/compiled`` (after ``make compile``) to count the compiled stores: the
``python -c`` process then imports ``edge`` from that tree (``tools/compiled_sitecustomize.py``).
    .venv/bin/python bench/limit_store_calls.py --client lean --cpu      # CPU µs per request, no valgrind

``--cpu`` runs the same calls without valgrind and prints the process's CPU time per request (user and
system: the socket calls' kernel time, which callgrind leaves out, counts too), best of 5 rounds.

Needs valgrind (Debian package ``valgrind``) and a Redis (default ``redis://127.0.0.1:6379/0``); each run
takes 10-40 s. The keys written are under a fresh ``bench:limits:<uuid>:`` prefix and expire by themselves.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_RUN = """
import asyncio, sys, time, uuid
import uvloop
sys.path.insert(0, {root!r})
import yaml
from edge.limits import InMemoryCostBudgets, InMemoryLimiter, RedisCostBudgets, RedisLimiter
from edge.plans import Plan
from edge.redis_topology import open_shared_redis

kind, url, calls, warmup, in_flight, refund, loop, cpu, two_calls, background = (
    {kind!r}, {url!r}, {calls}, {warmup}, {in_flight}, {refund}, {loop!r}, {cpu}, {two_calls}, {background}
)
pending = set()
spec = yaml.safe_load({plans!r})["plans"]["production"]
plan = Plan.model_validate(spec)
budget = plan.cost_budget

async def request(limiter, budgets, n):
    key = f"user-{{n % 8}}"
    if two_calls:
        decision = await limiter.hit(key, "production", plan)
        charged = await budgets.charge(key, "production", budget, 10)
    else:
        admission = await limiter.admit(key, "production", plan, operations=1, points=10, budgets=budgets)
        decision, charged = admission.limit, admission.budget
    assert decision.allowed and charged.allowed and not decision.degraded and not charged.degraded
    if background:  # not what the edge does: the refund as a task nobody waits for
        task = asyncio.get_running_loop().create_task(budgets.refund(key, "production", budget, 4))
        pending.add(task)
        task.add_done_callback(pending.discard)
    elif refund:
        await budgets.refund(key, "production", budget, 4)

async def batch(limiter, budgets, count):
    done = 0
    while done < count:
        size = min(in_flight, count - done)
        await asyncio.gather(*(request(limiter, budgets, done + i) for i in range(size)))
        done += size

async def main():
    shared = None
    if kind == "memory":
        limiter, budgets = InMemoryLimiter(), InMemoryCostBudgets()
    else:
        shared = open_shared_redis(url, timeout=10.0)  # valgrind runs the process 50 x slower
        client = shared.limits_client if kind == "lean" else shared.client
        prefix = f"bench:limits:{{uuid.uuid4().hex}}:"
        limiter, budgets = (
            RedisLimiter(client, prefix=prefix, timeout=10.0),
            RedisCostBudgets(client, prefix=prefix, timeout=10.0),
        )
    await batch(limiter, budgets, warmup)
    while pending:
        await asyncio.sleep(0)
    if cpu:  # process time (user + system: the socket calls count too), best of 5
        best = float("inf")
        for _ in range(5):
            started = time.process_time()
            await batch(limiter, budgets, calls)
            best = min(best, time.process_time() - started)
        print(f"{{best / calls * 1e6:.1f}}")
    else:
        await batch(limiter, budgets, calls)
    while pending:
        await asyncio.sleep(0.001)
    if shared is not None:
        await shared.aclose()

uvloop.run(main()) if loop == "uvloop" else asyncio.run(main())
"""


def _total_instructions(profile: Path) -> int:
    total = 0
    for part in profile.parent.glob(profile.name + "*"):
        for line in part.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split()[1]))
    return total


def _count(code: str, tmp: Path, name: str, keep: Path | None = None) -> int:
    profile = keep or tmp / name
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={profile}", sys.executable, "-c", code],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return _total_instructions(profile)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--client", choices=("lean", "redis-py", "memory"), default="lean")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--calls", type=int, default=4000, help="requests counted (default 4000)")
    parser.add_argument("--warmup", type=int, default=400)
    parser.add_argument("--in-flight", type=int, default=8, help="requests at once (default 8)")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop", help="the edge runs uvloop")
    parser.add_argument("--cpu", action="store_true", help="no valgrind: the process's CPU time per request")
    parser.add_argument("--out", type=Path, help="keep the profile of the run with calls (callgrind_annotate)")
    parser.add_argument("--refund", action="store_true", help="each request also refunds (finish_response)")
    parser.add_argument("--two-calls", action="store_true", help="hit then charge instead of admit")
    parser.add_argument(
        "--refund-in-background",
        action="store_true",
        help="the refund as a task not waited for (a measurement only: the edge waits for it)",
    )
    args = parser.parse_args()
    import http_path  # the production plan

    def code(calls: int, cpu: bool = False) -> str:
        return _RUN.format(
            root=str(ROOT),
            kind=args.client,
            url=args.redis_url,
            calls=calls,
            warmup=args.warmup,
            in_flight=args.in_flight,
            refund=args.refund,
            loop=args.loop,
            cpu=cpu,
            two_calls=args.two_calls,
            background=args.refund_in_background,
            plans=http_path.PRODUCTION_PLANS,
        )

    if args.cpu:
        run = subprocess.run(
            [sys.executable, "-c", code(args.calls, cpu=True)], cwd=ROOT, check=True, capture_output=True
        )
        print(f"client: {args.client}; {args.loop}; {args.in_flight} in flight; {args.calls} requests x 5")
        print(f"CPU µs per request (user + system, best of 5): {run.stdout.decode().strip()}")
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is required (Debian package 'valgrind')", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        base = _count(code(0), tmp, f"base-{uuid.uuid4().hex}.out")
        full = _count(code(args.calls), tmp, f"full-{uuid.uuid4().hex}.out", args.out)
    calls = ("hit + charge" if args.two_calls else "admit") + (" + refund" if args.refund else "")
    calls += " + refund in the background" if args.refund_in_background else ""
    print(f"client: {args.client}; {args.loop}; {args.in_flight} in flight; {args.calls} requests ({calls} each)")
    print(f"instructions per request: {(full - base) / args.calls:,.0f}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    sys.exit(main())

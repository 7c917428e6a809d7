"""Per-call cost of the usage-plan limiters, in process: InMemoryLimiter.hit and RedisLimiter.hit.

Each figure is the best of ``--repeat`` runs of ``--calls`` sequential awaited calls (GC off), in µs per
call, and as a ratio to an awaited no-op coroutine (the floor of any ``await limiter.hit(...)``). The
Redis figure is one EVALSHA round trip to REDIS_URL (default redis://127.0.0.1:6379/0) on loopback, so it
is dominated by redis-py and the network stack (the "client floor" line, a trivial EVALSHA, shows how much);
``--concurrency`` > 1 keeps that many calls in
flight to show throughput under load (µs per call = wall time / calls).

    .venv/bin/python bench/limiter.py
    .venv/bin/python bench/limiter.py --calls 20000 --repeat 5 --uvloop --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.limits import InMemoryLimiter, RedisLimiter, redis_client_from_url  # noqa: E402
from edge.plans import Plan  # noqa: E402

RATE = Plan.model_validate({"rate": {"requests_per_second": 1e9, "burst": 1000}})
RATE_QUOTA = Plan.model_validate(
    {"rate": {"requests_per_second": 1e9, "burst": 1000}, "quota": {"limit": 10**15, "period": "MONTH"}}
)
REFUSED = Plan.model_validate(
    {"rate": {"requests_per_second": 1e-6, "burst": 1}, "quota": {"limit": 10, "period": "DAY"}}
)


async def noop() -> None:
    return None


async def measure(call: Callable[[], Awaitable[object]], calls: int, repeat: int, concurrency: int = 1) -> float:
    """Best µs per call over ``repeat`` runs."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            started = time.perf_counter()
            if concurrency == 1:
                for _ in range(calls):
                    await call()
            else:

                async def worker(n: int) -> None:
                    for _ in range(n):
                        await call()

                await asyncio.gather(*(worker(calls // concurrency) for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
        finally:
            gc.enable()
        best = min(best, elapsed / calls * 1e6)
    return best


def report(name: str, micros: float, baseline: float) -> None:
    print(f"{name:<46} {micros:9.2f} µs/call   {micros / baseline:8.1f}x no-op")


async def main(args: argparse.Namespace) -> None:
    calls, repeat = args.calls, args.repeat
    baseline = await measure(noop, calls * 10, repeat)
    report("await no-op coroutine (baseline)", baseline, baseline)

    memory = InMemoryLimiter()
    report(
        "InMemoryLimiter.hit  rate", await measure(lambda: memory.hit("k", "free", RATE), calls * 10, repeat), baseline
    )
    report(
        "InMemoryLimiter.hit  rate+quota",
        await measure(lambda: memory.hit("k", "free", RATE_QUOTA), calls * 10, repeat),
        baseline,
    )
    report(
        "InMemoryLimiter.hit  rate+quota, refused",
        await measure(lambda: memory.hit("r", "free", REFUSED), calls * 10, repeat),
        baseline,
    )

    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    client = redis_client_from_url(url, timeout=2.0)
    prefix = f"bench:limits:{uuid.uuid4().hex}:"
    try:
        await client.ping()
    except Exception as exc:  # report and stop: the in-memory figures stand on their own
        print(f"Redis at {url.split('@')[-1]} unavailable ({type(exc).__name__}); Redis figures skipped")
        await client.aclose()
        return
    try:
        trivial = await client.script_load("return 1")
        report(
            "redis-py EVALSHA 'return 1' (client floor)",
            await measure(lambda: client.evalsha(trivial, 0), calls, repeat),
            baseline,
        )
        redis_limiter = RedisLimiter(client, prefix=prefix, timeout=2.0)
        await redis_limiter.hit("k", "free", RATE_QUOTA)  # load the script
        report(
            "RedisLimiter.hit     rate+quota (sequential)",
            await measure(lambda: redis_limiter.hit("k", "free", RATE_QUOTA), calls, repeat),
            baseline,
        )
        if args.concurrency > 1:
            report(
                f"RedisLimiter.hit     rate+quota ({args.concurrency} in flight)",
                await measure(
                    lambda: redis_limiter.hit("k", "free", RATE_QUOTA), calls, repeat, concurrency=args.concurrency
                ),
                baseline,
            )
        assert redis_limiter.store_errors == 0, "Redis errors during the run"
    finally:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10_000, help="Redis calls per run (in-memory: 10x)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (as the edge does)")
    arguments = parser.parse_args()
    if arguments.uvloop:
        import uvloop

        uvloop.install()
    print(f"Python {sys.version.split()[0]}, loop: {'uvloop' if arguments.uvloop else 'asyncio'}")
    asyncio.run(main(arguments))

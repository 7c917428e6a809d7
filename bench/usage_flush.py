"""How long the usage meter's flush holds Redis (the longest script, in batches and in one), and how long
the usage report takes to read that many subjects.

Redis runs one script at a time and serves no other client meanwhile, so the longest script of a flush is
how long every limiter call waits behind it. For each size this records that many users in a
``RedisUsageMeter`` (the edge's lean client, as on one server), flushes, and reads Redis' slow log (every
command logged with its duration, then restored): the number of scripts and the longest, first with the
meter's batches (``BATCH_SUBJECTS``) and then with the whole flush as one script (``batch_subjects`` set to
the size, as before batches). 100,000 subjects is the most a meter buffers while Redis is away. After each
flush it reads the subjects back with ``usage_report()``, what ``/admin/usage`` answers, and prints how long
that took and the event loop's longest stall meanwhile: on a serving edge, how long a request arriving
during the report could wait before the edge even read it.

    .venv/bin/python bench/usage_flush.py --redis-url redis://127.0.0.1:6379/0 [--subjects 1000 5000 100000]

Its keys go under a prefix of their own and are deleted afterwards. Needs a Redis whose configuration it may
change for the run (``CONFIG SET slowlog-*``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from loop_stall import longest_stall

from edge.limits.redis_store import redis_client_from_url
from edge.limits.resp_client import LeanRedis
from edge.observability.metering import BATCH_SUBJECTS, RedisUsageMeter, usage_report


async def flush(url: str, subjects: int, batch_subjects: int, prefix: str) -> tuple[float, float, float]:
    """Record ``subjects`` users in a meter and flush it, then read them back as ``/admin/usage`` does: the
    flush's and the report's wall-clock seconds, and the event loop's longest stall during the report."""
    client, lean = redis_client_from_url(url, timeout=30.0), LeanRedis.from_url(url, timeout=30.0)
    meter = RedisUsageMeter(
        client, prefix, scripts=lean, batch_subjects=batch_subjects, max_pending=subjects, timeout=30.0
    )
    try:
        for n in range(subjects):
            meter.record("user", f"user-{n}", requests=1, cost_points=5, rows=3)
        started = time.perf_counter()
        if not await meter.flush():
            raise RuntimeError(f"the flush failed ({meter.store_errors} store errors)")
        flushed = time.perf_counter()
        done = asyncio.Event()
        probe = asyncio.create_task(longest_stall(done))
        try:
            report = await usage_report(meter)
        finally:
            done.set()
        read = time.perf_counter()
        if len(report["subjects"]) != subjects:
            raise RuntimeError("the report did not read every subject back")
        return flushed - started, read - flushed, await probe
    finally:
        await lean.aclose()
        await client.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""), help="default REDIS_URL")
    parser.add_argument("--subjects", type=int, nargs="+", default=[1000, 5000, 100_000])
    args = parser.parse_args()
    if not args.redis_url:
        print("a Redis is needed: --redis-url or REDIS_URL", file=sys.stderr)
        return 2
    admin = redis.Redis.from_url(args.redis_url)
    saved: dict[str, str] = admin.config_get("slowlog-*")  # type: ignore[assignment]  # a sync client's dict
    print(
        "subjects | batches of | scripts | longest script ms | all scripts ms | flush ms | report ms | longest stall ms"
    )
    try:
        admin.config_set("slowlog-log-slower-than", 0)
        admin.config_set("slowlog-max-len", 1_000_000)
        asyncio.run(flush(args.redis_url, 1, 1, "bench:usage-flush:load:"))  # the script loaded before any count
        admin.delete(*admin.keys("bench:usage-flush:load:*"))
        for subjects in args.subjects:
            for batch_subjects in sorted({BATCH_SUBJECTS, subjects}):
                prefix = f"bench:usage-flush:{uuid.uuid4().hex}:"
                admin.slowlog_reset()
                flushed, read, stall = asyncio.run(flush(args.redis_url, subjects, batch_subjects, prefix))
                scripts = [
                    entry["duration"]
                    for entry in admin.slowlog_get(1_000_000)
                    if entry["command"].startswith(b"EVALSHA")
                ]
                for key in admin.scan_iter(match=prefix + "*", count=10_000):
                    admin.delete(key)
                print(
                    f"{subjects:,} | {batch_subjects:,} | {len(scripts)} | {max(scripts) / 1000:.1f} | "
                    f"{sum(scripts) / 1000:.1f} | {flushed * 1000:.1f} | {read * 1000:.1f} | {stall * 1000:.1f}"
                )
    finally:
        admin.config_set("slowlog-log-slower-than", saved["slowlog-log-slower-than"])
        admin.config_set("slowlog-max-len", saved["slowlog-max-len"])
        admin.slowlog_reset()
    return 0


if __name__ == "__main__":
    sys.exit(main())

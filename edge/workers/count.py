"""How many worker processes ``EDGE_WORKERS`` means.

``auto`` is one per CPU this process may use: the CPUs it may run on (its affinity), capped by the
container's CPU quota (cgroup v2 ``cpu.max``, or v1 ``cpu.cfs_quota_us``/``cpu.cfs_period_us``) rounded
up. Without ``EDGE_REDIS_URL`` it is 1: rate limits, quotas, budgets and subscription caps are kept in
each process's memory then, so N processes would allow N times the configured limits.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from edge.settings import EdgeSettings

__all__ = ["WorkerCount", "usable_cpus", "worker_count"]

_CGROUP = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class WorkerCount:
    count: int
    reason: str
    """Why this many, for the start-up log line."""
    shares_state: bool
    """Whether limits and caches are shared through Redis (False: each worker keeps its own)."""


def worker_count(settings: EdgeSettings, cgroup: Path = _CGROUP) -> WorkerCount:
    shares_state = settings.redis_url is not None
    if settings.workers != "auto":
        return WorkerCount(settings.workers, "EDGE_WORKERS", shares_state)
    if not shares_state:
        return WorkerCount(1, "EDGE_WORKERS=auto without EDGE_REDIS_URL: limits live in one process", False)
    return WorkerCount(usable_cpus(cgroup), "EDGE_WORKERS=auto: one per usable CPU", True)


def usable_cpus(cgroup: Path = _CGROUP) -> int:
    """The CPUs this process may run on, capped by a cgroup CPU quota when one is readable; at least 1."""
    cpus = len(os.sched_getaffinity(0))
    quota = _cgroup_quota(cgroup)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def _cgroup_quota(cgroup: Path) -> float | None:
    """CPUs' worth of time the cgroup may use, or None (no quota, or nothing readable: not a container)."""
    try:
        text = (cgroup / "cpu.max").read_text()  # cgroup v2: "max 100000" or "200000 100000"
    except OSError:
        return _cgroup_v1_quota(cgroup)
    parts = text.split()
    return _ratio(parts[0], parts[1]) if len(parts) == 2 else None


def _cgroup_v1_quota(cgroup: Path) -> float | None:
    try:
        quota = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()  # -1: no quota
        period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
    except OSError:
        return None
    return _ratio(quota, period)


def _ratio(quota: str, period: str) -> float | None:
    try:
        allowed, length = int(quota), int(period)
    except ValueError:  # "max"
        return None
    return allowed / length if allowed > 0 and length > 0 else None

"""The event loop's longest stall while something runs: how long a request arriving meanwhile would wait.

``longest_stall(done)`` is a task that asks to wake every ``TICK`` and keeps the longest time beyond that it
had to wait, until ``done`` is set. A serving edge reads new requests only when its loop is free, so this is
the longest a request could have waited behind the work measured, before the edge even read it.
"""

from __future__ import annotations

import asyncio
from typing import Final

__all__ = ["TICK", "longest_stall"]

TICK: Final = 0.001
"""The probe's sleep: it wakes this often when the event loop is free."""


async def longest_stall(done: asyncio.Event) -> float:
    """The longest time, in seconds, the event loop ran something else between two of this task's wake-ups
    (each asks to wake ``TICK`` later), until ``done``."""
    loop = asyncio.get_running_loop()
    longest, last = 0.0, loop.time()
    while not done.is_set():
        await asyncio.sleep(TICK)
        now = loop.time()
        longest, last = max(longest, now - last - TICK), now
    return longest

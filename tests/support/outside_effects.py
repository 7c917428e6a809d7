"""What code does outside the interpreter while it runs: files opened, processes started, connections made.

Python's audit hooks (PEP 578) report these events from the interpreter and the standard library, so a test
can assert that an operation did none of them, instead of inferring it from how long the operation took.
A hook cannot be removed: one is installed on first use and records only inside :func:`recording`, and
only the events of the thread that entered it (the test's event loop runs there).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["OUTSIDE_EVENTS", "recording"]

OUTSIDE_EVENTS = frozenset(
    {
        "open",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "subprocess.Popen",
        "socket.connect",
        "socket.getaddrinfo",
        "socket.sendto",
        "urllib.Request",
    }
)
"""Audit events meaning a file, a process or the network was reached."""

_recorders: dict[int, list[tuple[str, tuple[Any, ...]]]] = {}
_installed = False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event in OUTSIDE_EVENTS:
        recorded = _recorders.get(threading.get_ident())
        if recorded is not None:
            recorded.append((event, args))


@contextlib.contextmanager
def recording() -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
    """Collect ``(event, arguments)`` of every outside effect of this thread inside the block."""
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
    ident = threading.get_ident()
    if ident in _recorders:
        raise RuntimeError("recording() does not nest")
    events: list[tuple[str, tuple[Any, ...]]] = []
    _recorders[ident] = events
    try:
        yield events
    finally:
        del _recorders[ident]

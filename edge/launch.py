"""``python -m edge``: serve in this process, or supervise ``EDGE_WORKERS`` worker processes.

After a graceful shutdown the stopping signal is raised again with its default handler, so the process's
exit status says why it stopped (as a process killed by the signal would).
"""

from __future__ import annotations

import os
import signal
import sys

import uvloop

from edge.serve import StartupError, serve
from edge.settings import EdgeSettings
from edge.workers.count import worker_count
from edge.workers.supervisor import supervise

__all__ = ["run"]


def run(settings: EdgeSettings) -> int:
    """Serve; the exit code, or the process ends with the signal that stopped it.

    With ``EDGE_WORKERS`` resolving to more than 1, this process supervises that many workers
    (``edge.workers.supervisor``); with 1, it serves itself, with nothing in between.
    """
    count = worker_count(settings)
    if count.count > 1:
        return supervise(settings, count)
    try:
        signum = uvloop.run(serve(settings))
    except StartupError as exc:
        sys.stderr.write(f"hasura-edge: {exc}\n")
        return exc.exit_code
    if signum is not None:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    return 0

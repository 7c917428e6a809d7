"""What each worker process runs: the edge, on the sockets its supervisor bound.

A worker is a fresh interpreter (multiprocessing's ``spawn``), so nothing of the supervisor's state is
inherited but the sockets and the settings it is given. It tells the supervisor over ``link`` that it
serves, or why it could not start (``StartupError``'s line: the supervisor writes it once, not once per
worker). The supervisor never writes to ``link``: when it becomes readable the supervisor has gone
(killed without forwarding a signal), and the worker shuts down as if it had received SIGTERM rather
than serve on unsupervised.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from dataclasses import dataclass
from multiprocessing.connection import Connection

import uvloop

from edge.logs import configure_logging
from edge.observability.metrics_peers import MetricsPeers
from edge.serve import StartupError, Worker, serve
from edge.settings import EdgeSettings

__all__ = ["READY", "WorkerSpec", "run_worker"]

READY = "ready"


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker is given (pickled by multiprocessing: the sockets travel as file descriptors)."""

    index: int
    settings: EdgeSettings
    listening: socket.socket
    metrics_socket: socket.socket | None
    metrics_directory: str
    link: Connection


def run_worker(spec: WorkerSpec) -> None:
    """The worker process's body: serve until SIGTERM/SIGINT, then end with that signal like ``python -m edge``."""
    settings = spec.settings
    configure_logging(settings.log_level, settings.log_format, worker=spec.index)
    worker = Worker(
        listening=spec.listening,
        metrics_socket=spec.metrics_socket,
        metrics_peers=MetricsPeers(spec.metrics_directory, spec.index),
        started=lambda: _started(spec.link),
    )
    try:
        signum = uvloop.run(serve(settings, worker=worker))
    except StartupError as exc:
        spec.link.send((exc.exit_code, str(exc)))
        sys.exit(exc.exit_code)
    if signum is not None:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _started(link: Connection) -> None:
    link.send(READY)
    loop = asyncio.get_running_loop()

    def supervisor_gone() -> None:
        loop.remove_reader(link.fileno())
        os.kill(os.getpid(), signal.SIGTERM)

    loop.add_reader(link.fileno(), supervisor_gone)

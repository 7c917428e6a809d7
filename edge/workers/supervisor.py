"""The process ``python -m edge`` runs when ``EDGE_WORKERS`` means more than 1: it binds, starts the workers,
forwards signals, and replaces workers that die.

- The sockets (``EDGE_PORT``, ``EDGE_METRICS_PORT``) are bound here once, before any worker starts, so a busy
  port is still exit 2 naming the setting. Every worker accepts on the same listening socket, and the kernel
  hands each new connection to one of them.
- Workers are spawned (multiprocessing's ``spawn``): each is a fresh interpreter, so a replacement can be
  started at any time without inheriting this process's state.
- Start-up: when a worker cannot start, the others are stopped and the supervisor exits with the worker's
  code (2: configuration, else 3) and its one line. Once all have started, a worker that dies is replaced
  after a back-off (0.5 s, doubling to 30 s while replacements keep dying within a minute); a replacement
  that fails to start ``MAX_START_FAILURES`` times in a row stops the edge with exit 3.
- SIGTERM or SIGINT is forwarded to every worker, each drains as a single edge does, and when all have
  exited the supervisor ends with the same signal. Workers still running ``EXIT_GRACE_SECONDS`` after the
  drain deadline are killed.

This process runs no event loop and no thread: it waits on the workers' sentinels, their links and the
signal wake-up pipe (``multiprocessing.connection.wait``).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from edge.http_server import ServerConfig
from edge.serve import (
    EXIT_STARTUP_FAILED,
    StartupError,
    bind_metrics_or_fail,
    bind_or_fail,
    load_server_config,
    upstream_client_problem,
)
from edge.settings import EdgeSettings
from edge.workers.count import WorkerCount
from edge.workers.worker import READY, WorkerSpec, run_worker

__all__ = ["EXIT_GRACE_SECONDS", "MAX_START_FAILURES", "supervise"]

log = logging.getLogger("edge.workers")

MAX_START_FAILURES = 5
EXIT_GRACE_SECONDS = 15.0
_FIRST_DELAY = 0.5
_LONGEST_DELAY = 30.0
_STABLE_SECONDS = 60.0
"""A worker that served this long before dying is replaced after the first delay again."""


@dataclass
class _Slot:
    index: int
    process: BaseProcess | None = None
    link: Connection | None = None
    serving: bool = False
    served_since: float = 0.0
    start_failures: int = 0
    quick_deaths: int = 0
    restart_at: float | None = None
    failure: tuple[int, str] | None = None


@dataclass
class _Stopping:
    signum: int | None
    kill_at: float


@dataclass
class _Supervisor:
    settings: EdgeSettings
    config: ServerConfig
    listening: socket.socket
    metrics_socket: socket.socket | None
    directory: str
    slots: list[_Slot]
    context: Any = field(default_factory=lambda: multiprocessing.get_context("spawn"))
    all_started: bool = False
    stopping: _Stopping | None = None
    exit_code: int = 0

    # --- workers -----------------------------------------------------------------------------

    def spawn(self, slot: _Slot) -> None:
        ours, theirs = self.context.Pipe(duplex=True)
        spec = WorkerSpec(slot.index, self.settings, self.listening, self.metrics_socket, self.directory, theirs)
        process = self.context.Process(target=run_worker, args=(spec,), name=f"edge-worker-{slot.index}")
        process.start()
        theirs.close()  # the worker's end: only the worker holds it now
        slot.process, slot.link, slot.serving, slot.restart_at, slot.failure = process, ours, False, None, None
        log.info("edge_worker_started", extra={"worker_index": slot.index, "pid": process.pid})

    def running(self) -> list[_Slot]:
        return [slot for slot in self.slots if slot.process is not None]

    def read_link(self, slot: _Slot) -> None:
        link = slot.link
        if link is None:
            return
        try:
            while link.poll():
                message = link.recv()
                if message == READY:
                    slot.serving, slot.served_since, slot.start_failures = True, time.monotonic(), 0
                elif isinstance(message, tuple):
                    slot.failure = (int(message[0]), str(message[1]))
        except (EOFError, OSError):
            pass  # the worker has exited; its sentinel says so

    def exited(self, slot: _Slot) -> None:
        process = slot.process
        assert process is not None
        self.read_link(slot)
        process.join()
        status = process.exitcode
        if slot.link is not None:
            slot.link.close()
        slot.process = slot.link = None
        if self.stopping is not None:
            return
        now = time.monotonic()
        if not slot.serving:
            code, message = slot.failure or (
                EXIT_STARTUP_FAILED,
                f"worker {slot.index} exited ({_status(status)}) while starting",
            )
            if not self.all_started:
                self.fail(2 if code == 2 else EXIT_STARTUP_FAILED, message)
                return
            slot.start_failures += 1
            if slot.start_failures >= MAX_START_FAILURES:
                self.fail(
                    EXIT_STARTUP_FAILED,
                    f"worker {slot.index} failed to start {slot.start_failures} times in a row (last: {message})",
                )
                return
        elif now - slot.served_since < _STABLE_SECONDS:
            slot.quick_deaths += 1
        else:
            slot.quick_deaths = 0
        delay = min(_LONGEST_DELAY, _FIRST_DELAY * 2 ** max(slot.quick_deaths, slot.start_failures))
        slot.restart_at = now + delay
        log.warning(
            "edge_worker_exited",
            extra={"worker_index": slot.index, "status": _status(status), "restart_in_seconds": delay},
        )

    # --- stopping -----------------------------------------------------------------------------

    def stop(self, signum: int | None) -> None:
        """Forward ``signum`` (or SIGTERM) to every worker; a second signal is forwarded again."""
        if self.stopping is None:
            deadline = time.monotonic() + self.config.graceful_shutdown + EXIT_GRACE_SECONDS
            self.stopping = _Stopping(signum, deadline)
            log.info("edge_shutting_down", extra={"workers": len(self.running())})
        for slot in self.running():
            assert slot.process is not None and slot.process.pid is not None
            with contextlib.suppress(ProcessLookupError):
                os.kill(slot.process.pid, signum or signal.SIGTERM)

    def fail(self, code: int, message: str) -> None:
        sys.stderr.write(f"hasura-edge: {message}\n")
        self.exit_code = code
        self.stop(None)

    def kill_stragglers(self) -> None:
        for slot in self.running():
            assert slot.process is not None
            log.warning("edge_worker_killed", extra={"worker_index": slot.index, "pid": slot.process.pid})
            slot.process.kill()

    # --- the loop -----------------------------------------------------------------------------

    def loop(self, wakeup: int, received: list[int]) -> None:
        for slot in self.slots:
            self.spawn(slot)
        while self.stopping is None or self.running():
            waiting: list[Any] = [wakeup]
            for slot in self.running():
                assert slot.process is not None
                waiting.append(slot.process.sentinel)
                if not slot.serving and slot.link is not None:
                    waiting.append(slot.link)
            ready = set(wait(waiting, self.timeout()))
            if wakeup in ready:
                _drain(wakeup)
            while received:
                self.stop(received.pop(0))
            for slot in self.running():
                assert slot.process is not None
                if slot.link in ready:
                    self.read_link(slot)
                if slot.process.sentinel in ready:
                    self.exited(slot)
            if not self.all_started and all(slot.serving for slot in self.slots):
                self.all_started = True
                log.info("edge_workers_serving", extra={"workers": len(self.slots)})
            now = time.monotonic()
            if self.stopping is not None:
                if now >= self.stopping.kill_at:
                    self.kill_stragglers()
                continue
            for slot in self.slots:
                if slot.restart_at is not None and now >= slot.restart_at:
                    self.spawn(slot)

    def timeout(self) -> float | None:
        now = time.monotonic()
        if self.stopping is not None:
            return max(0.0, self.stopping.kill_at - now)
        restarts = [slot.restart_at for slot in self.slots if slot.restart_at is not None]
        return max(0.0, min(restarts) - now) if restarts else None


def _status(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"signal {signal.Signals(-exitcode).name}"
    return f"exit {exitcode}"


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def supervise(settings: EdgeSettings, count: WorkerCount) -> int:
    """Run ``count.count`` workers until SIGTERM/SIGINT (then end with that signal) or a start-up failure
    (the exit code)."""
    try:
        config = load_server_config(settings)
        problem = upstream_client_problem(settings)
        if problem is not None:
            raise StartupError(problem)
        listening = bind_or_fail(settings)
        try:
            metrics_socket = bind_metrics_or_fail(settings)
        except StartupError:
            listening.close()
            raise
    except StartupError as exc:
        sys.stderr.write(f"hasura-edge: {exc}\n")
        return exc.exit_code
    log.info("edge_workers", extra={"workers": count.count, "reason": count.reason})
    if not count.shares_state:
        log.warning(
            "edge_workers_without_redis",
            extra={
                "workers": count.count,
                "hint": "without EDGE_REDIS_URL each worker keeps its own rate limits, quotas, cost budgets, "
                "subscription caps and response cache: clients get up to EDGE_WORKERS times the configured "
                "limits; set EDGE_REDIS_URL, or EDGE_WORKERS=1",
            },
        )
    directory = tempfile.mkdtemp(prefix="hasura-edge-metrics-")  # mode 0700: only this user connects
    received: list[int] = []
    wakeup_read, wakeup_write = os.pipe()
    os.set_blocking(wakeup_read, False)
    os.set_blocking(wakeup_write, False)
    signal.set_wakeup_fd(wakeup_write)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _: received.append(number))
    supervisor = _Supervisor(
        settings, config, listening, metrics_socket, directory, [_Slot(index) for index in range(count.count)]
    )
    try:
        supervisor.loop(wakeup_read, received)
    finally:
        listening.close()
        if metrics_socket is not None:
            metrics_socket.close()
        shutil.rmtree(directory, ignore_errors=True)
    stopping = supervisor.stopping
    if supervisor.exit_code == 0 and stopping is not None and stopping.signum is not None:
        log.info("edge_workers_stopped")
        signal.signal(stopping.signum, signal.SIG_DFL)
        os.kill(os.getpid(), stopping.signum)
    return supervisor.exit_code

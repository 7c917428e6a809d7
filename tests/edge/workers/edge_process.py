"""``python -m edge`` as a real process whose JSON log lines are read as they come (a thread drains stderr, so
a chatty edge never blocks on a full pipe)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.edge.conftest import DOUBLE_ADMIN_SECRET
from tests.support.servers import free_loopback_socket
from tests.support.tokens import JWT_SECRET_JSON

ROOT = Path(__file__).resolve().parents[3]
SAFETY_NET = 60.0
"""Seconds before a wait gives up: a safety net for a broken edge, never a measure of speed."""

LogLine = dict[str, Any]


def free_port() -> int:
    sock = free_loopback_socket()
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def serving_env(hasura_url: str, port: int, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("EDGE_")}
    env.update(
        {
            "EDGE_HASURA_URL": hasura_url,
            "EDGE_HASURA_ADMIN_SECRET": DOUBLE_ADMIN_SECRET,
            "EDGE_JWT_SECRET": JWT_SECRET_JSON,
            "EDGE_PORT": str(port),
            "EDGE_LOG_FORMAT": "json",
            **extra,
        }
    )
    return env


class EdgeProcess:
    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edge"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            with self._changed:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def records(self) -> list[LogLine]:
        with self._changed:
            lines = list(self.lines)
        return [json.loads(line) for line in lines if line.startswith("{")]

    def events(self, event: str) -> list[LogLine]:
        return [record for record in self.records() if record.get("event") == event]

    def wait_for(self, found: Callable[[], Any], what: str) -> Any:
        deadline = time.monotonic() + SAFETY_NET
        with self._changed:
            while True:
                self._changed.release()
                try:
                    result = found()
                finally:
                    self._changed.acquire()
                if result:
                    return result
                assert self.process.poll() is None or self._reader.is_alive(), f"exited before {what}: {self.lines}"
                assert time.monotonic() < deadline, f"no {what}: {self.lines}"
                self._changed.wait(0.2)

    def wait_for_event(self, event: str, count: int = 1) -> list[LogLine]:
        return self.wait_for(lambda: len(self.events(event)) >= count and self.events(event), event)

    def finish(self) -> int:
        """The exit status once the process ended (stderr read to its end)."""
        status = self.process.wait(timeout=SAFETY_NET)
        self._reader.join(timeout=SAFETY_NET)
        return status

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=SAFETY_NET)
        self._reader.join(timeout=SAFETY_NET)
        if self.process.stderr is not None:
            self.process.stderr.close()

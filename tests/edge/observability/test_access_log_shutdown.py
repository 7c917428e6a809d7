"""A clean shutdown loses no access-log line: the edge's JSON handler writes the lines of an event-loop turn
together, and what it holds when ``python -m edge`` stops on SIGTERM still reaches stderr."""

from __future__ import annotations

import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.edge.observability.test_json_logs import assert_json_lines, free_port, start_edge_process, wait_until_serving
from tests.hasura_double import HasuraDouble
from tests.support.tokens import mint

REQUESTS = 240


def test_every_answered_operation_has_its_line_after_sigterm(hasura_url: str, hasura: HasuraDouble) -> None:
    port = free_port()
    token = mint()
    process = start_edge_process(hasura_url, port)
    answered: list[tuple[str, int]] = []
    lock = threading.Lock()
    enough = threading.Event()

    def one(number: int) -> None:
        name = f"Op{number}"
        try:
            status = httpx.post(
                f"http://127.0.0.1:{port}/graphql",
                json={"query": f"query {name} {{ users {{ id }} }}"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            ).status_code
        except httpx.TransportError:
            return  # refused once the edge stopped accepting: no line is owed
        with lock:
            answered.append((name, status))
            if len(answered) >= REQUESTS // 3:
                enough.set()

    try:
        wait_until_serving(process, port)
        with ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(one, number) for number in range(REQUESTS)]
            enough.wait(60)
            process.send_signal(signal.SIGTERM)  # with requests in flight: they drain, and their lines follow
            for future in futures:
                future.result()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGTERM
    entries = assert_json_lines(stderr, "stderr", [token])
    logged = [(entry["operation_name"], entry["status"]) for entry in entries if entry["logger"] == "edge.access"]
    assert len(answered) >= REQUESTS // 3
    assert sorted(line for line in logged if str(line[0]).startswith("Op")) == sorted(answered)

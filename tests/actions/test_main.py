"""``python -m actions`` starts from ACTIONS_* variables alone and serves the real app."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.actions.conftest import EVENT_HEADERS, SECRET, Db
from tests.actions.payloads import INVENTORY_UPDATE_EVENT
from tests.support.migrations import REPO_ROOT
from tests.support.servers import free_loopback_socket

pytestmark = pytest.mark.postgres


def test_python_m_actions_serves_from_the_environment(database_url: str, db: Db) -> None:
    with free_loopback_socket() as sock:
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "ACTIONS_DATABASE_URL": database_url,  # postgresql://, rewritten to the psycopg driver
        "ACTIONS_WEBHOOK_SECRET": SECRET,
        "ACTIONS_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "actions"], cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        with httpx.Client(base_url=base, timeout=5) as client:
            while True:
                try:
                    ready = client.get("/readyz")
                    break
                except httpx.TransportError:
                    assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
                    assert time.monotonic() < deadline, "python -m actions did not start"
                    time.sleep(0.1)
            assert ready.status_code == 200
            event = client.post("/events/inventory_low_stock", json=INVENTORY_UPDATE_EVENT, headers=EVENT_HEADERS)
            assert event.status_code == 200 and event.json()["outcome"] == "recorded"
            assert client.post("/events/inventory_low_stock", json=INVENTORY_UPDATE_EVENT).status_code == 401
        assert db.count("low_stock_alerts") == 1
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()

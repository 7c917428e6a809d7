"""Run the Node client scripts of ``tests/clients/`` (real npm client libraries, pinned by its
``package-lock.json``; ``make install`` installs them with ``npm ci``).

Each script takes one JSON argument and prints one JSON object (``tests/clients/harness.mjs``). The tests
skip, saying why, when ``node`` or the packages are absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

CLIENTS = Path(__file__).resolve().parents[1] / "clients"


def _installed_packages() -> list[str]:
    manifest = json.loads((CLIENTS / "package.json").read_text())
    return sorted(manifest["dependencies"])


def run_node(script: str, *, ca_file: Path | None = None, timeout: float = 120, **arguments: Any) -> dict[str, Any]:
    """Run ``tests/clients/<script>`` with ``arguments`` as its JSON argument; its printed JSON object.

    ``ca_file``: a CA Node trusts besides its own (NODE_EXTRA_CA_CERTS), for a wss/https edge.
    """
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (the npm client tests need it)")
    for package in _installed_packages():
        if not (CLIENTS / "node_modules" / package / "package.json").exists():
            pytest.skip(f"{package} is not installed in tests/clients (make install runs npm ci there)")
    env = dict(os.environ)
    if ca_file is not None:
        env["NODE_EXTRA_CA_CERTS"] = str(ca_file)
    completed = subprocess.run(
        [node, str(CLIENTS / script), json.dumps(arguments)],
        cwd=CLIENTS,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.strip().splitlines()
    assert lines, completed.stderr
    result: dict[str, Any] = json.loads(lines[-1])
    assert not result.get("timedOut"), (result, completed.stderr[-2000:])
    return result

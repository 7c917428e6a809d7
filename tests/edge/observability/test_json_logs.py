"""With ``EDGE_LOG_FORMAT=json`` every line ``python -m edge`` writes while it serves is one JSON object.

The edge runs as a real process at ``debug`` (the most its loggers and its libraries' loggers write) and is driven
over HTTP and WebSocket, errors included; then every line of its stdout and stderr must parse as JSON, carry no
ANSI escape, and hold no credential. Python's own channels (warnings, exceptions no one retrieved, exceptions in
threads, unraisable exceptions) are checked on ``configure_logging`` in a process of their own.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from tests.edge.conftest import DOUBLE_ADMIN_SECRET
from tests.hasura_double import HasuraDouble
from tests.support.servers import free_loopback_socket
from tests.support.tokens import HS256_KEY, JWT_SECRET_JSON, mint

ROOT = Path(__file__).resolve().parents[3]
SECRET_VARIABLE = "variable-value-never-logged"
ANSI_ESCAPE = "\x1b"
MUTATION = 'mutation { insert_orders_one(object: {status: "pending"}) { id } }'


def free_port() -> int:
    sock = free_loopback_socket()
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def start_edge_process(hasura_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("EDGE_")}
    env.update(
        {
            "EDGE_HASURA_URL": hasura_url,
            "EDGE_HASURA_ADMIN_SECRET": DOUBLE_ADMIN_SECRET,
            "EDGE_JWT_SECRET": JWT_SECRET_JSON,
            "EDGE_PORT": str(port),
            "EDGE_LOG_FORMAT": "json",
            "EDGE_LOG_LEVEL": "debug",
            "EDGE_METRICS_TOKEN": "scrape-token",
            "EDGE_WS_INIT_TIMEOUT_SECONDS": "1",
            "FORCE_COLOR": "1",  # a library that colours its output when asked to must still not
            "PYTHONWARNINGS": "default",
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "edge"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def wait_until_serving(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, "python -m edge exited while starting"
        assert time.monotonic() < deadline, "python -m edge did not start"
        time.sleep(0.1)


def http_traffic(port: int, hasura: HasuraDouble, token: str) -> None:
    """Answers and refusals of every kind (their statuses are other tests' business)."""
    url = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {token}"}
    query = {"query": "query Q($n: String) { users(where: {name: {_eq: $n}}) { id } }", "variables": {"n": "x"}}
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.post("/graphql", json=query, headers=auth).status_code == 200
        client.post("/graphql", json={"query": "{ users { id } }"})  # no credentials
        client.post("/graphql", json={"query": "{ users { id } }"}, headers={"Authorization": "Bearer not-a-jwt"})
        client.post("/graphql", headers={**auth, "content-type": "application/json"}, content=b'{"query":')
        client.post("/graphql", json={"query": "{ __schema { types { name } } }"}, headers=auth)
        client.get("/v2/query")
        client.options(
            "/graphql", headers={"Origin": "https://nowhere.example", "Access-Control-Request-Method": "POST"}
        )
        hasura.faults.status, hasura.faults.times = 500, 1
        client.post("/graphql", json={"query": "{ users { id } }"}, headers=auth)
        hasura.faults.drop, hasura.faults.times = True, 1  # a mutation is never sent again: 502
        client.post("/graphql", json={"query": MUTATION}, headers=auth)
        assert client.get("/metrics", headers={"Authorization": "Bearer scrape-token"}).status_code == 200
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:  # not HTTP at all: refused, closed
        raw.sendall(b"\x16\x03\x01 not a request\r\n\r\n")
        raw.recv(4096)


async def websocket_traffic(port: int, token: str) -> None:
    url = f"ws://127.0.0.1:{port}/graphql"

    async def receive(ws: Any) -> dict[str, Any]:
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if message.get("type") not in ("ping", "ka"):
                return dict(message)

    init = json.dumps({"type": "connection_init", "payload": {"headers": {"Authorization": f"Bearer {token}"}}})
    async with connect(url, subprotocols=["graphql-transport-ws"], open_timeout=5) as ws:  # type: ignore[list-item]
        await ws.send(init)
        assert (await receive(ws))["type"] == "connection_ack"
        query = "query Q($n: String) { users(where: {name: {_eq: $n}}, limit: 1) { id } }"
        payload = {"query": query, "variables": {"n": SECRET_VARIABLE}}
        await ws.send(json.dumps({"type": "subscribe", "id": "q", "payload": payload}))
        assert (await receive(ws))["type"] == "next"
        assert (await receive(ws))["type"] == "complete"
        await ws.send(
            json.dumps({"type": "subscribe", "id": "i", "payload": {"query": "{ __schema { types { name } } }"}})
        )
        assert (await receive(ws))["type"] == "error"  # refused by the edge
        await ws.send(json.dumps({"type": "subscribe", "id": "bad", "payload": {"query": "{ users { no_such } }"}}))
        assert (await receive(ws))["type"] == "error"  # refused by Hasura
        sub = {"query": "subscription { users(limit: 1) { id } }"}
        await ws.send(json.dumps({"type": "subscribe", "id": "s", "payload": sub}))
        assert (await receive(ws))["type"] == "next"
        await ws.send(json.dumps({"type": "complete", "id": "s"}))
        await ws.send(json.dumps({"type": "subscribe", "id": "open", "payload": sub}))
        assert (await receive(ws))["type"] == "next"
        await ws.send("{not json")  # a protocol error: 4400
        with pytest.raises(Exception):  # noqa: B017  (closed by the edge)
            await receive(ws)
    async with connect(url, subprotocols=["graphql-ws"], open_timeout=5) as ws:  # type: ignore[list-item]
        bad = json.dumps({"type": "connection_init", "payload": {"headers": {"Authorization": "Bearer nope"}}})
        await ws.send(bad)  # refused credentials: connection_error, then closed
        with pytest.raises(Exception):  # noqa: B017
            while True:
                await receive(ws)
    async with connect(url, subprotocols=["graphql-transport-ws"], open_timeout=5) as ws:  # type: ignore[list-item]
        await ws.send(b"\xff\xfe binary")
        await asyncio.sleep(1.5)  # no connection_init: closed when the init timeout ends
    # A client that sends its credentials in the handshake and goes away without a close frame, in the middle
    # of a subscription.
    ws = await connect(
        url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        open_timeout=5,
        additional_headers={"Authorization": f"Bearer {token}", "Cookie": f"session={token}"},
    )
    await ws.send(json.dumps({"type": "connection_init"}))
    assert (await receive(ws))["type"] == "connection_ack"
    await ws.send(json.dumps({"type": "subscribe", "id": "s", "payload": sub}))
    assert (await receive(ws))["type"] == "next"
    ws.transport.abort()
    # A handshake websockets refuses (no Sec-WebSocket-Key), and one on a path that is not served.
    for request in (
        b"GET /graphql HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        b"GET /nowhere HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await asyncio.wait_for(reader.read(4096), 5)
        writer.close()


def assert_json_lines(output: bytes, where: str, secrets: list[str]) -> list[dict[str, Any]]:
    text = output.decode("utf-8")
    assert ANSI_ESCAPE not in text, where
    entries = []
    for line in text.splitlines():
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            pytest.fail(f"{where}: not a JSON line: {line!r}")
        assert isinstance(entry, dict), line
        assert {"ts", "level", "logger", "event"} <= set(entry), line
        entries.append(entry)
    for secret in secrets:  # nor any part of one: websockets' debug lines show the ends of a frame
        for start in range(len(secret) - 11):
            assert secret[start : start + 12] not in text, f"{where} holds part of a secret"
    return entries


def test_every_line_of_the_served_edge_is_json_without_colour_or_secrets(hasura_url: str, hasura: HasuraDouble) -> None:
    port = free_port()
    token = mint()
    process = start_edge_process(hasura_url, port)
    try:
        wait_until_serving(process, port)
        http_traffic(port, hasura, token)
        asyncio.run(websocket_traffic(port, token))
        time.sleep(0.5)  # the access-log lines of the sockets just closed
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGTERM
    secrets = [token, HS256_KEY, DOUBLE_ADMIN_SECRET, SECRET_VARIABLE]
    assert_json_lines(stdout, "stdout", secrets)
    entries = assert_json_lines(stderr, "stderr", secrets)
    events = [(entry["logger"], entry["event"]) for entry in entries]
    assert ("edge.http", "edge_listening") in events
    assert ("edge.http", "edge_shutting_down") in events
    access = [entry for entry in entries if entry["logger"] == "edge.access"]
    assert {entry.get("transport", "http") for entry in access} == {"http", "websocket"}
    assert any(entry["status"] >= 400 for entry in access)
    assert any(entry["level"] == "warning" and entry["logger"].startswith("edge.") for entry in entries)  # the 502


PYTHON_CHANNELS = textwrap.dedent(
    """
    import asyncio, gc, sys, threading, warnings
    import uvloop
    from edge.logs import configure_logging

    configure_logging("info", "json")

    warnings.warn("a warning", DeprecationWarning, stacklevel=1)

    async def fails():
        raise RuntimeError("no one retrieved this")

    async def main():
        task = asyncio.get_running_loop().create_task(fails())
        await asyncio.sleep(0.01)
        del task
        gc.collect()
        asyncio.get_running_loop().call_soon(lambda: 1 / 0)
        await asyncio.sleep(0.01)

    asyncio.run(main())
    uvloop.run(main())  # the edge's loop
    thread = threading.Thread(target=lambda: [][1])
    thread.start()
    thread.join()

    class Unraisable:
        def __del__(self):
            raise ValueError("in __del__")

    Unraisable()
    gc.collect()
    raise SystemError("the process ends with an exception")
    """
)


def test_pythons_own_channels_write_json_lines_once_logging_is_configured() -> None:
    env = {**os.environ, "PYTHONWARNINGS": "default", "FORCE_COLOR": "1"}
    result = subprocess.run(
        [sys.executable, "-c", PYTHON_CHANNELS], cwd=ROOT, env=env, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 1
    entries = assert_json_lines(result.stderr, "stderr", [])
    text = result.stderr.decode()
    for expected in (
        "a warning",
        "no one retrieved this",
        "ZeroDivisionError",
        "IndexError",
        "in __del__",
        "the process ends with an exception",
    ):
        assert expected in text, expected
    assert all(entry["level"] in ("warning", "error", "critical") for entry in entries)

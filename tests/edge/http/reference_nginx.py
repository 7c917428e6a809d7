"""nginx as a reference: what nginx accepts, and the request it forwards after its normalisation.

nginx (Debian's package, when installed) runs from a minimal configuration in a temporary prefix
and proxies every request to an upstream echo (a small asyncio server here), which answers with
the request exactly as nginx forwarded it. nginx's own refusals are its error statuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tests.edge.http.outcome import Handed, describe

__all__ = ["nginx_binary", "serving_nginx"]

# Proxy headers nginx sets itself whatever the client sent (ngx_http_proxy_module's defaults:
# Connection: close, Content-Length recomputed, Transfer-Encoding, TE, Keep-Alive, Expect and
# Upgrade dropped) and Host (from $http_host below). Compared without them.
NGINX_REWRITTEN = frozenset(
    {b"connection", b"content-length", b"transfer-encoding", b"te", b"keep-alive", b"expect", b"upgrade"}
)

_CONFIG = """
user root;
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    client_max_body_size {body_limit};
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream_port};
            proxy_set_header Host $http_host;
            # The client half-closes after its request: keep answering (wire.converse_half_closed).
            proxy_ignore_client_abort on;
        }}
    }}
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((path for path in ("/usr/sbin/nginx",) if Path(path).exists()), None)


def _parse_forwarded(head: bytes) -> tuple[bytes, bytes, list[tuple[bytes, bytes]]]:
    """Request line and fields exactly as nginx wrote them (``name: value``; nothing stripped here)."""
    lines = head.split(b"\r\n")
    method, target, _ = lines[0].split(b" ")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b": ")
        headers.append((name, value))
    return method, target, headers


async def _echo_upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, headers = _parse_forwarded(head[:-4])
        length = next((int(value) for name, value in headers if name.lower() == b"content-length"), 0)
        body = await reader.readexactly(length)
        answer = describe(Handed(method, target, tuple(headers), body))
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: %d\r\n\r\n" % len(answer) + answer
        )
        await writer.drain()
    finally:
        writer.close()


@contextlib.contextmanager
def _serving_upstream() -> Iterator[int]:
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(_echo_upstream, "127.0.0.1", 0))
    port: int = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, name="nginx-upstream-echo", daemon=True)
    thread.start()
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, error_log: Path) -> None:
    deadline = time.monotonic() + 10.0
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited at start-up: {error_log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("nginx did not start listening in time")
        time.sleep(0.02)


@contextlib.contextmanager
def serving_nginx(binary: str, *, body_limit: int) -> Iterator[tuple[str, int]]:
    """nginx in front of the upstream echo; yields nginx's (host, port)."""
    with _serving_upstream() as upstream_port, tempfile.TemporaryDirectory(prefix="edge-nginx-") as prefix:
        port = _free_port()
        config = Path(prefix) / "nginx.conf"
        config.write_text(_CONFIG.format(prefix=prefix, port=port, upstream_port=upstream_port, body_limit=body_limit))
        error_log = Path(prefix) / "error.log"
        process = subprocess.Popen(
            [binary, "-p", prefix, "-e", str(error_log), "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_until_listening(process, port, error_log)
            yield "127.0.0.1", port
        finally:
            process.terminate()
            process.wait(10)

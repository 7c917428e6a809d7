"""A deliberately dumb HTTP/1.1 client over a raw socket, for what real clients refuse to send.

Lying Content-Length, slow trickles, oversized header blocks, hop-by-hop tricks: the edge must
handle bytes on the wire, so these tests write bytes on the wire.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass


@dataclass
class RawResponse:
    status: int | None
    headers: list[tuple[str, str]]
    body: bytes
    closed: bool

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def connect(host: str, port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_response(sock: socket.socket, timeout: float = 5.0) -> RawResponse:
    """Read one response (Content-Length framed) or until the peer closes."""
    sock.settimeout(timeout)
    data = b""
    closed = False
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            closed = True
            break
        if not chunk:
            closed = True
            break
        data += chunk
    if b"\r\n\r\n" not in data:
        return RawResponse(status=None, headers=[], body=data, closed=True)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = [(line.split(":", 1)[0].strip(), line.split(":", 1)[1].strip()) for line in lines[1:] if ":" in line]
    length = next((int(v) for k, v in headers if k.lower() == "content-length"), None)
    while length is not None and len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            closed = True
            break
        body += chunk
    return RawResponse(status=status, headers=headers, body=body, closed=closed)


def exchange(host: str, port: int, request: bytes, timeout: float = 5.0) -> RawResponse:
    with connect(host, port, timeout) as sock:
        sock.sendall(request)
        return read_response(sock, timeout)


def wait_closed(sock: socket.socket, timeout: float) -> tuple[bool, bytes, float]:
    """Wait until the peer closes; returns (closed, bytes received, seconds waited)."""
    start = time.monotonic()
    received = b""
    sock.settimeout(0.2)
    while time.monotonic() - start < timeout:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True, received, time.monotonic() - start
        if not chunk:
            return True, received, time.monotonic() - start
        received += chunk
    return False, received, time.monotonic() - start

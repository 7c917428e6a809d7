"""Send a case's raw bytes to a server over a socket and turn its answers into an :class:`Outcome`.

Two ways to end a conversation, because the two servers differ in what they must show:

- the edge (``converse_keeping_open``): once the answers the table expects have arrived, a probe
  request follows on the same connection; an answer to it shows the connection stayed open, an
  end of stream shows it was closed. No idle wait decides anything.
- nginx (``converse_half_closed``): the client shuts its write side after the case, and reads
  every answer until nginx closes (``proxy_ignore_client_abort on`` keeps it answering).

Reads time out after ``READ_TIMEOUT`` seconds only when a server stops answering (a failing case).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from tests.edge.http.outcome import Handed, Outcome, handed_from_json

__all__ = ["Answer", "converse_half_closed", "converse_keeping_open", "outcome_of"]

READ_TIMEOUT = 5.0
PROBE_TARGET = b"/__probe__"
PROBE = b"GET " + PROBE_TARGET + b" HTTP/1.1\r\nHost: probe\r\n\r\n"


@dataclass(frozen=True)
class Answer:
    status: int  # 0: an HTTP/0.9 answer, without a status line
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes

    def handed(self) -> Handed | None:
        """The request an echo described in this answer, if it is an echo's answer."""
        if self.status not in (0, 200):
            return None
        try:
            return handed_from_json(self.body)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None


class _Closed(Exception):
    pass


class AnswerReader:
    """Reads HTTP/1.1 responses (Content-Length framed, or up to the end of the stream) off a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.timed_out = False

    def _fill(self) -> None:
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            self.timed_out = True
            raise _Closed from None
        except OSError:  # reset: the peer closed with our bytes unread
            raise _Closed from None
        if not chunk:
            raise _Closed
        self.buffer += chunk

    def next(self) -> Answer | None:
        """The next answer; None when the stream ended (or nothing came for ``READ_TIMEOUT``).

        Bytes that do not start with a status line are an HTTP/0.9 answer (status 0): the body alone,
        up to the end of the stream.
        """
        try:
            while len(self.buffer) < 5 or (self.buffer.startswith(b"HTTP/") and b"\r\n\r\n" not in self.buffer):
                self._fill()
        except _Closed:
            if not self.buffer or self.buffer.startswith(b"HTTP/"):
                return None
        if not self.buffer.startswith(b"HTTP/"):
            with contextlib.suppress(_Closed):
                while True:
                    self._fill()
            body, self.buffer = self.buffer, b""
            return Answer(0, (), body)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        headers = tuple(
            (name.strip().lower(), value.strip()) for name, _, value in (line.partition(b":") for line in lines[1:])
        )
        if 100 <= status < 200:
            return Answer(status, headers, b"")
        length = next((int(value) for name, value in headers if name == b"content-length"), None)
        try:
            while length is None or len(self.buffer) < length:
                self._fill()
        except _Closed:
            if length is not None:
                return None  # cut short
        if length is None:
            length = len(self.buffer)
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return Answer(status, headers, body)


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
    except OSError:
        return False
    return True


def _write_case(sock: socket.socket, reader: AnswerReader, writes: Sequence[bytes], answers: list[Answer]) -> bool:
    """The first write at once, each later one after an answer (``100 Continue``); False if cut short."""
    for index, data in enumerate(writes):
        if index > 0:
            answer = reader.next()
            if answer is None:
                return False
            answers.append(answer)
            if answer.status >= 200:
                return True  # a final answer instead of the interim one: the rest is not sent
        if not _send(sock, data):
            return False
    return True


def converse_keeping_open(
    address: tuple[str, int], writes: Sequence[bytes], finals_expected: int
) -> tuple[list[Answer], bool | None]:
    """The answers to the case, and whether the connection was closed after them (None: it stalled)."""
    answers: list[Answer] = []
    with socket.create_connection(address, timeout=READ_TIMEOUT) as sock:
        reader = AnswerReader(sock)
        if not _write_case(sock, reader, writes, answers):
            return answers, None if reader.timed_out else True
        while sum(answer.status >= 200 for answer in answers) < finals_expected:
            answer = reader.next()
            if answer is None:
                return answers, None if reader.timed_out else True
            answers.append(answer)
        if not _send(sock, PROBE):
            return answers, True
        while True:
            answer = reader.next()
            if answer is None:
                return answers, None if reader.timed_out else True
            handed = answer.handed()
            if handed is not None and handed.target == PROBE_TARGET:
                return answers, False
            answers.append(answer)  # more than the table expects


def converse_half_closed(address: tuple[str, int], writes: Sequence[bytes]) -> tuple[list[Answer], bool]:
    """Every answer until the server closes; the flag is False when it stopped answering instead."""
    answers: list[Answer] = []
    with socket.create_connection(address, timeout=READ_TIMEOUT) as sock:
        reader = AnswerReader(sock)
        if _write_case(sock, reader, writes, answers):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        while True:
            answer = reader.next()
            if answer is None:
                return answers, not reader.timed_out
            answers.append(answer)


def outcome_of(answers: Sequence[Answer], *, ended: bool, closes: bool | None = None) -> Outcome:
    """Echo answers become handed-over requests; the first other final answer is the refusal."""
    requests: list[Handed] = []
    refusal: int | None = None
    continues = 0
    for answer in answers:
        if answer.status == 100:
            continues += 1
            continue
        handed = answer.handed()
        if handed is not None and refusal is None:
            requests.append(handed)
        elif refusal is None:
            refusal = answer.status
    return Outcome(
        tuple(requests), refusal, incomplete=not ended and refusal is None, continues=continues, closes=closes
    )

"""Bytes the server writes itself: status lines, response heads, the Date header, refusals."""

from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus
from typing import Final

from edge.errors import EdgeError, graphql_error_body

__all__ = ["CONTINUE", "DateHeader", "encode_head", "refusal", "status_line"]


def _phrase(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


_STATUS_LINES: Final[dict[int, bytes]] = {
    status: b"HTTP/1.1 %d %s\r\n" % (status, _phrase(status)) for status in range(100, 600)
}
_CLOSE_LINE: Final = b"connection: close\r\n"
_CHUNKED_LINE: Final = b"transfer-encoding: chunked\r\n\r\n"

CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"


def status_line(status: int) -> bytes:
    """``HTTP/1.1 <status> <phrase>\\r\\n``; ValueError for a status outside 100-599."""
    line = _STATUS_LINES.get(status)
    if line is None:
        raise ValueError(f"invalid HTTP status {status}")
    return line


class DateHeader:
    """The ``date`` header line (RFC 9110 §6.6.1), formatted at most once per second."""

    def __init__(self) -> None:
        self.second = -1
        self.line = b""

    def current(self) -> bytes:
        now = int(time.time())
        if now != self.second:
            self.second = now
            self.line = b"date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n"
        return self.line


def encode_head(
    status: int, date: bytes, headers: list[tuple[bytes, bytes]], content_length: int, *, keep_alive: bool
) -> tuple[bytes, bool]:
    """The status line and header block of a response, and whether the connection stays open.

    ``date`` is the server's ``date`` line. ``content_length`` is written as given; -1 frames the
    body with chunked transfer coding instead. ``connection: close`` is added when the connection
    will close, and a handler's own ``connection: close`` closes it; a handler's framing headers
    are never copied (the server frames the body itself). Raises ValueError when a name or value
    written contains CR or LF (it would split the response).
    """
    fields: list[bytes] = []
    for name, value in headers:
        if name == b"connection":
            if b"close" in value.lower():
                keep_alive = False
            continue  # written below when the connection closes
        if name == b"content-length" or name == b"transfer-encoding":
            continue
        fields.append(b"%s: %s" % (name, value))
    # Every name and value written, in one piece without the line ends: an int operand makes each
    # test one memchr over it (bytes.count walks it a byte at a time; a test per name or value
    # costs a call each).
    written = b"".join(fields)
    if 13 in written or 10 in written:
        raise ValueError("invalid HTTP response header (CR or LF in a name or value)")
    fields.append(b"")  # so that the join ends the last field with CRLF too, and writes nothing for none
    block = b"\r\n".join(fields)
    line = status_line(status)
    close = b"" if keep_alive else _CLOSE_LINE
    if content_length < 0:
        return b"%s%s%s%s%s" % (line, date, block, close, _CHUNKED_LINE), keep_alive
    return b"%s%s%s%scontent-length: %d\r\n\r\n" % (line, date, block, close, content_length), keep_alive


def refusal(error: EdgeError, date: bytes) -> bytes:
    """A complete GraphQL-shaped error response that closes the connection, for errors the server
    answers itself before (or instead of) any handler: 400, 408, 413, 414, 417, 431, 500."""
    body = graphql_error_body(error.message, error.code)
    return b"".join(
        [
            status_line(error.status),
            date,
            b"content-type: application/json; charset=utf-8\r\n",
            _CLOSE_LINE,
            b"content-length: %d\r\n\r\n" % len(body),
            body,
        ]
    )

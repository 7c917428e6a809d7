"""X-Request-ID: the client's when it is well formed, otherwise a fresh one."""

from __future__ import annotations

import re
import uuid

__all__ = ["choose_request_id"]

# Printable token characters only, bounded: the id is echoed in a response header and logged,
# so anything else (CR/LF, quotes, megabytes) is replaced rather than trusted.
_WELL_FORMED = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")


def choose_request_id(client_value: bytes | None) -> str:
    """Return the client's ``x-request-id`` if well formed, else a new UUID4 (hex with dashes).

    >>> choose_request_id(b"abc-123")
    'abc-123'
    """
    if client_value is not None and _WELL_FORMED.fullmatch(client_value):
        return client_value.decode("ascii")
    return str(uuid.uuid4())

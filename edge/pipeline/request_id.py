"""X-Request-ID: the client's when it is well formed, otherwise a fresh one."""

from __future__ import annotations

import random
import re

__all__ = ["choose_request_id"]

# Printable token characters only, bounded: the id is echoed in a response header and logged,
# so anything else (CR/LF, quotes, megabytes) is replaced rather than trusted.
_WELL_FORMED = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")


def choose_request_id(client_value: bytes | None) -> str:
    """Return the client's ``x-request-id`` if well formed, else a new random id in UUID4 form.

    >>> choose_request_id(b"abc-123")
    'abc-123'
    """
    if client_value is not None and _WELL_FORMED.fullmatch(client_value):
        return client_value.decode("ascii")
    return new_request_id()


def new_request_id() -> str:
    """A random UUID4-shaped id. Request ids need uniqueness, not secrecy, so this uses the
    process PRNG instead of ``uuid.uuid4()``, whose ``os.urandom`` syscall cost 4 % of a request."""
    h = f"{random.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"

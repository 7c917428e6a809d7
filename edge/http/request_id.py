"""X-Request-ID: the client's when it is well formed, otherwise a fresh one."""

from __future__ import annotations

import os
import random
import re
import uuid
from typing import Final

__all__ = ["choose_request_id", "new_request_id"]

# Printable token characters only, bounded: the id is echoed in a response header and logged,
# so anything else (CR/LF, quotes, megabytes) is replaced rather than trusted.
_WELL_FORMED: Final = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")

# Final: mypyc inlines them instead of looking each up in the module's dict on every call.
_TAIL_BITS: Final = 48  # the last UUID group: 12 hex digits
_TAIL_MASK: Final = (1 << 48) - 1
_TAIL_MARK: Final = 1 << 48  # a leading 1 so that hex() gives all 12 digits: "0x1" + tail
# Odd, so multiplying by it modulo 2**48 is a bijection: distinct counts give distinct tails. Below
# 2**13, so that the product stays below 2**61, within mypyc's unboxed ints (no big-int arithmetic).
_SPREAD: Final = 0x1F1D


class _RequestIds:
    """UUID4-shaped ids: a random prefix per process and a 48-bit tail from a counter.

    Request ids need uniqueness, not secrecy. A fresh ``uuid.uuid4()`` per request costs an
    ``os.urandom`` syscall, and even the process PRNG plus slicing its hex into groups cost about
    1 µs (7,500 instructions) per request; this costs a third of that. Ids stay unique for 2**48
    requests per process and across processes (74 random bits of prefix each). The counter is
    multiplied by an odd constant and XORed with a random key so that ids do not read as a count
    of the requests a process has served.
    """

    __slots__ = ("_count", "_key", "_prefix")

    def __init__(self) -> None:
        self._prefix = ""
        self._key = 0
        self._count = 0
        self.reseed()

    def reseed(self) -> None:
        self._prefix = str(uuid.uuid4())[:24]  # "xxxxxxxx-xxxx-4xxx-yxxx-": version and variant kept
        self._key = random.getrandbits(_TAIL_BITS)
        self._count = random.getrandbits(_TAIL_BITS)

    def next(self) -> str:
        count = (self._count + 1) & _TAIL_MASK
        self._count = count
        # hex() and a slice: a third of the cost of an f-string's ``:012x`` under mypyc.
        return self._prefix + hex((((count * _SPREAD) ^ self._key) & _TAIL_MASK) | _TAIL_MARK)[3:]


_ids: Final = _RequestIds()
if hasattr(os, "register_at_fork"):  # a forked worker must not repeat its parent's ids
    os.register_at_fork(after_in_child=_ids.reseed)


def choose_request_id(client_value: bytes | None) -> str:
    """Return the client's ``x-request-id`` if well formed, else a new id in UUID4 form.

    >>> choose_request_id(b"abc-123")
    'abc-123'
    """
    if client_value is not None and _WELL_FORMED.fullmatch(client_value):
        return client_value.decode("ascii")
    return _ids.next()


def new_request_id() -> str:
    """A new UUID4-shaped id, unique within this process and (with overwhelming odds) across processes."""
    return _ids.next()

"""What every ``/graphql`` response carries besides Hasura's headers: security headers and, for
clients that accept it, gzip.

The security headers suit a JSON API that browsers may call but must never render: no MIME
sniffing, no framing, no referrer leaks, a ``default-src 'none'`` CSP. ``Strict-Transport-Security``
is added only when the edge itself terminates TLS (``EDGE_TLS_CERT_FILE``).

Compression: gzip at a low level (fast, most of the gain on JSON) for bodies of at least 1,400
bytes (smaller ones fit one packet anyway) when ``Accept-Encoding`` allows it. The edge asks
Hasura for identity encoding, so what it compresses is always plain JSON.
"""

from __future__ import annotations

import gzip
from typing import Final

__all__ = ["SECURITY_HEADERS", "compress_if_worthwhile", "security_headers"]

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
)
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
MIN_COMPRESS_BYTES: Final = 1400


def security_headers(*, tls: bool) -> list[tuple[bytes, bytes]]:
    return [*SECURITY_HEADERS, _HSTS] if tls else list(SECURITY_HEADERS)


def _accepts_gzip(accept_encoding: bytes | None) -> bool:
    if not accept_encoding:
        return False
    for item in accept_encoding.lower().split(b","):
        coding, _, params = item.strip().partition(b";")
        if coding.strip() in (b"gzip", b"*"):
            return params.replace(b" ", b"") not in (b"q=0", b"q=0.0", b"q=0.00", b"q=0.000")
    return False


def compress_if_worthwhile(body: bytes, headers: list[tuple[bytes, bytes]], accept_encoding: bytes | None) -> bytes:
    """Gzip ``body`` (adding ``content-encoding`` and ``vary``) when worthwhile; else return it as is."""
    if len(body) < MIN_COMPRESS_BYTES or not _accepts_gzip(accept_encoding):
        return body
    if any(name == b"content-encoding" for name, _ in headers):
        return body
    headers.append((b"content-encoding", b"gzip"))
    headers.append((b"vary", b"Accept-Encoding"))
    return gzip.compress(body, compresslevel=1, mtime=0)

"""Stage 9: the answer, as the client gets it: Hasura's (or the cache's) response with the edge's headers.

Hasura's headers minus those the edge writes itself (``x-request-id``, ``date``, ``server``), then
``x-request-id``, the ``RateLimit-*`` fields of the limit stage, CORS for an allowed ``Origin``
(``edge.http.cors``), the security headers, and gzip when the client accepts it and the body is large
enough (``edge.http.response_headers``). Sent with the server's responder; awaited only when sending
may wait (ASGI's ``send``; the edge's own server writes at once).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Final

from edge.context import RequestContext
from edge.http.cors import CorsPolicy
from edge.http.response_headers import MIN_COMPRESS_BYTES, compress_if_worthwhile

__all__ = ["REPLACED_UPSTREAM_HEADERS", "Respond"]

REPLACED_UPSTREAM_HEADERS: Final = frozenset({b"x-request-id", b"date", b"server"})
"""Response headers the edge writes itself (the server adds Date; the request id is the edge's)."""


class Respond:
    """Sends ``ctx.response`` with the edge's headers; fills ``ctx.status``; never rejects."""

    def __init__(self, *, cors: CorsPolicy, security_headers: Sequence[tuple[bytes, bytes]]) -> None:
        self.cors = cors
        self.security_headers = list(security_headers)

    def __call__(self, ctx: RequestContext) -> Awaitable[None] | None:
        response = ctx.response
        respond = ctx.respond
        if response is None or respond is None:  # a pipeline bug, not a client error
            raise RuntimeError("respond ran without a response or a responder")
        out = [header for header in response.headers if header[0] not in REPLACED_UPSTREAM_HEADERS]
        out.append((b"x-request-id", ctx.request_id.encode("ascii")))
        if ctx.limit_headers:
            out += ctx.limit_headers
        if ctx.origin is not None:
            out += self.cors.response_headers(ctx.origin)
        out += self.security_headers
        body = response.body
        if len(body) >= MIN_COMPRESS_BYTES:
            body = compress_if_worthwhile(body, out, ctx.first_values.get(b"accept-encoding"))
        ctx.status = response.status
        return respond(response.status, out, body)

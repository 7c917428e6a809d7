"""CORS for browsers, with an exact-match origin allowlist (``EDGE_ALLOWED_ORIGINS``).

Preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from an allowed origin gets 204
with the methods and headers a GraphQL client needs; from any other origin, 403 without CORS
headers. Actual responses to an allowed origin carry ``Access-Control-Allow-Origin`` with that
exact origin and ``Vary: Origin``. No wildcard, no credentials mode: the edge authenticates
with headers, not cookies, unless the JWT config says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["CorsPolicy"]

_ALLOWED_REQUEST_HEADERS = (
    b"authorization, content-type, x-api-key, x-hasura-role, x-request-id, traceparent, tracestate, "
    b"graphql-require-preflight, apollo-require-preflight, x-apollo-operation-name"
)


class CorsPolicy:
    def __init__(self, allowed_origins: Iterable[str], *, allow_get: bool, token_headers: Iterable[bytes] = ()) -> None:
        """``token_headers``: the custom headers the JWT config reads tokens from, allowed as well."""
        self.allowed = frozenset(origin.encode("ascii") for origin in allowed_origins)
        self.methods = b"GET, POST" if allow_get else b"POST"
        self.allowed_headers = b", ".join([_ALLOWED_REQUEST_HEADERS, *(name.lower() for name in token_headers)])

    def is_allowed(self, origin: bytes | None) -> bool:
        return origin is not None and origin in self.allowed

    def response_headers(self, origin: bytes | None) -> list[tuple[bytes, bytes]]:
        """Headers added to an actual (non-preflight) response."""
        if origin is None or origin not in self.allowed:
            return []
        return [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]

    def preflight(self, origin: bytes | None) -> tuple[int, list[tuple[bytes, bytes]]]:
        if origin is None or origin not in self.allowed:
            return 403, [(b"vary", b"Origin")]
        return 204, [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-methods", self.methods),
            (b"access-control-allow-headers", self.allowed_headers),
            (b"access-control-max-age", b"600"),
            (b"vary", b"Origin"),
        ]

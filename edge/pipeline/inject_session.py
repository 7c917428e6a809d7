"""Stage N-1: build the headers Hasura receives. This is the trust boundary.

Hasura, given its admin secret, trusts every ``x-hasura-*`` header as a session variable and
runs as ``admin`` when no role is sent. So the upstream request carries identity made by the
edge only: the admin secret, ``x-hasura-role``, the verified session variables,
``x-request-id`` and a well-formed W3C ``traceparent``. From the client's headers the edge
drops, whatever their case or number:

- every ``x-hasura-*`` name (also spelled with underscores, which some servers fold to dashes),
- hop-by-hop headers (RFC 9110 §7.6.1) and every name the client lists in ``Connection``,
- the credentials the edge consumed (``Authorization``, ``X-API-Key``, a configured token
  header or cookie stays with the client's other cookies: see below),
- framing and encoding headers the edge sets itself (``Host``, ``Content-Length``,
  ``Content-Type``, ``Accept-Encoding``, ``Expect``).

Other headers (``User-Agent``, ``Cookie``, ...) pass, so Hasura actions configured with
``forward_client_headers`` still see them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from edge.context import RequestContext
from edge.session import Session

__all__ = ["DROPPED_CLIENT_HEADERS", "InjectSession", "client_headers_to_forward"]

# RFC 9110 §7.6.1 plus the non-standard ones proxies still meet.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
DROPPED_CLIENT_HEADERS: Final = HOP_BY_HOP | {
    b"host",
    b"content-length",
    b"content-type",
    b"accept-encoding",
    b"expect",
    b"authorization",
    b"x-api-key",
    b"x-request-id",
    b"traceparent",
    b"tracestate",
}
_TRACEPARENT: Final = re.compile(rb"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")


SESSION_MEMO_SIZE: Final = 10_000
"""Sessions whose identity headers are remembered at once; the memo starts over when full."""


def client_headers_to_forward(
    headers: Iterable[tuple[bytes, bytes]], dropped: frozenset[bytes] = DROPPED_CLIENT_HEADERS
) -> list[tuple[bytes, bytes]]:
    """The client's headers that may reach Hasura (names are lower-case, as ASGI gives them).

    ``dropped`` must contain ``DROPPED_CLIENT_HEADERS`` (``Connection`` among them).
    """
    forwarded = []
    listed: set[bytes] = set()  # names the client nominated as hop-by-hop in Connection
    for name, value in headers:
        if name in dropped:
            if name == b"connection":
                listed.update(token.strip().lower() for token in value.split(b","))
        elif not name.replace(b"_", b"-").startswith(b"x-hasura-"):
            forwarded.append((name, value))
    if listed:
        forwarded = [header for header in forwarded if header[0] not in listed]
    return forwarded


class InjectSession:
    """Fills ``ctx.upstream_headers`` from ``ctx.session``; never rejects."""

    def __init__(self, *, admin_secret: str, extra_dropped: Iterable[bytes] = ()) -> None:
        self.admin_secret_header = (b"x-hasura-admin-secret", admin_secret.encode("latin-1"))
        self.dropped = DROPPED_CLIENT_HEADERS | frozenset(extra_dropped)
        # id(session) -> (session, its identity headers). Sessions are reused across requests (the
        # authenticate stage remembers them per token), so their headers are encoded once. Holding
        # the session keeps its id from being reused by another object while it is remembered.
        self._memo: dict[int, tuple[Session, list[tuple[bytes, bytes]]]] = {}

    def __call__(self, ctx: RequestContext) -> None:
        session = ctx.session
        if session is None:  # a pipeline ordering bug, never a client error
            raise RuntimeError("inject_session ran before authenticate")
        headers = [*self._identity_headers(session), (b"x-request-id", ctx.request_id.encode("ascii"))]
        first_values = ctx.first_values
        traceparent = first_values.get(b"traceparent")
        if traceparent is not None and _TRACEPARENT.fullmatch(traceparent.strip()):
            headers.append((b"traceparent", traceparent.strip()))
            tracestate = first_values.get(b"tracestate")
            if tracestate is not None and len(tracestate) <= 512:
                headers.append((b"tracestate", tracestate))
        headers += client_headers_to_forward(ctx.headers, self.dropped)
        ctx.upstream_headers = headers

    def _identity_headers(self, session: Session) -> list[tuple[bytes, bytes]]:
        remembered = self._memo.get(id(session))
        if remembered is not None and remembered[0] is session:
            return remembered[1]
        headers = [
            self.admin_secret_header,
            (b"x-hasura-role", session.role.encode("utf-8")),
            *((name.encode("ascii"), value.encode("utf-8")) for name, value in session.variables.items()),
        ]
        if len(self._memo) >= SESSION_MEMO_SIZE:
            self._memo.clear()  # bounded; refilled by the next requests
        self._memo[id(session)] = (session, headers)
        return headers

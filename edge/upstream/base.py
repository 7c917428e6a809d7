"""The upstream seam: what the edge's proxy stage needs from an HTTP client to Hasura.

Every implementation returns an :class:`UpstreamResponse` or raises an :class:`UpstreamError`
subclass; the caller maps those to 502/503/504. Exception messages describe the failure only:
they never contain request bodies or headers (tokens live there).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, Protocol, final

__all__ = [
    "HOP_BY_HOP",
    "REQUEST_METHODS",
    "REQUEST_MANAGED",
    "Upstream",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamPoolTimeout",
    "UpstreamProtocolError",
    "UpstreamResponse",
    "UpstreamTimeout",
    "check_target",
    "strip_hop_by_hop",
]

# Response headers that describe the upstream hop, not the resource (RFC 9110 §7.6.1), plus
# content-length, which the edge recomputes for the body it sends. Names are lower-case bytes.
HOP_BY_HOP: Final[frozenset[bytes]] = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
    }
)

# Request headers the client writes itself (host, content-length, content-type) or that would
# change the framing or the connection's fate if forwarded (the hop-by-hop set). A caller's copy
# of any of these is dropped, so they are never duplicated on the wire.
REQUEST_MANAGED: Final[frozenset[bytes]] = HOP_BY_HOP | {b"host", b"content-type"}

REQUEST_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
"""The methods :meth:`Upstream.request` sends (Hasura's REST endpoints accept these five)."""


def check_target(method: str, target: str) -> None:
    """ValueError unless ``method`` is one of :data:`REQUEST_METHODS` and ``target`` a path (with its query
    string) of visible ASCII characters starting with ``/``: nothing that could split the request line."""
    if method not in REQUEST_METHODS:
        raise ValueError(f"method {method!r} is not one the upstream client sends")
    if not target.startswith("/") or not target.isascii() or any(ord(c) <= 32 or ord(c) == 127 for c in target):
        raise ValueError("target must start with '/' and contain visible ASCII characters only")


@final
class UpstreamResponse:
    """One response from Hasura. Immutable (``Final`` fields): a stage that changes it makes a new one.

    A plain class because one is made for every request: compiled with mypyc, building it runs no
    interpreted code, where a ``NamedTuple`` (its ``__new__``) or a frozen dataclass (its ``__init__``)
    would (``docs/architecture.md``, "The compiled build").
    """

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status: Final = status
        self.headers: Final = headers  # lower-case names, in received order, hop-by-hop removed
        self.body: Final = body

    def __repr__(self) -> str:
        return f"UpstreamResponse(status={self.status}, headers={self.headers!r}, body=<{len(self.body)} bytes>)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UpstreamResponse):
            return NotImplemented
        return (self.status, self.headers, self.body) == (other.status, other.headers, other.body)


class UpstreamError(Exception):
    """Base class: the upstream could not give a usable HTTP response."""


class UpstreamConnectError(UpstreamError):
    """Could not connect, connection refused, or the connection closed/reset before any response byte."""


class UpstreamTimeout(UpstreamError):
    """Connect or read timeout."""


class UpstreamPoolTimeout(UpstreamTimeout):
    """Every connection stayed busy for the whole timeout (the edge is overloaded: a 503 candidate)."""


class UpstreamProtocolError(UpstreamError):
    """Not valid HTTP, closed mid-response, or the response exceeded the size cap."""


class Upstream(Protocol):
    async def post(
        self,
        body: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        *,
        timeout: float | None = None,
        idempotent: bool = False,
    ) -> UpstreamResponse:
        """POST ``body`` to the GraphQL endpoint. ``headers`` are forwarded as given, except that
        the client sets Host, Content-Length and ``Content-Type: application/json`` itself and drops
        any caller copy of those and of hop-by-hop headers. ``timeout`` overrides the read timeout.

        ``idempotent``: the caller knows that running the request twice does no harm (a GraphQL
        request made only of queries). Without it, an implementation sends the request at most once:
        a request that may have reached Hasura (written to a connection that then failed before a
        response) is never written again, on this connection, another one, or another target."""
        ...

    async def get(self, path: str, *, timeout: float | None = None) -> UpstreamResponse:
        """GET ``path`` on the same upstream (readiness probes; not the hot path)."""
        ...

    async def request(
        self,
        method: str,
        target: str,
        body: bytes | None,
        headers: Sequence[tuple[bytes, bytes]],
        *,
        timeout: float | None = None,
        idempotent: bool = False,
    ) -> UpstreamResponse:
        """``method`` on ``target`` (a percent-encoded path starting with ``/``, with its query string) of
        the same upstream: Hasura's REST endpoints. ``body`` (JSON, or None for none) and ``headers`` as
        for :meth:`post`; ``idempotent`` as for :meth:`post`, whatever the method."""
        ...

    async def aclose(self) -> None: ...


def strip_hop_by_hop(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Lower-case names and drop hop-by-hop headers, including any the Connection header names."""
    headers: list[tuple[bytes, bytes]] = []
    nominated = b""
    for name, value in raw:
        name = name.lower()
        if name in HOP_BY_HOP:
            if name == b"connection":
                nominated += b"," + value.lower()
            continue
        headers.append((name, value))
    if nominated:
        named = {token.strip() for token in nominated.split(b",")} - {b"", b"close", b"keep-alive"}
        if named:
            headers = [h for h in headers if h[0] not in named]
    return headers

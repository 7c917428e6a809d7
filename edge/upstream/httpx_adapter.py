"""``Upstream`` on top of any client with httpx's API: httpx, httpx2, or httpx over aiohttp.

httpx's API is the seam the design names; this adapter keeps it (tests can pass an
``httpx.MockTransport``) while the transport underneath is chosen by measurement (bench/).
Every client exception becomes an ``UpstreamError`` here, in one place (:func:`map_exception`).

At most once: the adapter never resends, and neither do the clients under it for a POST. httpcore and
httpcore2 retry only the connect (``retries``, 0 here) and, before writing to a pooled connection,
drop it when its socket is readable (``is_readable``: the server closed it) and take another; once the
request is written, a close before the response is the caller's error ("Server disconnected without
sending a response"). aiohttp's ``ClientSession`` retries a request on a stale pooled connection only
when its method is in ``IDEMPOTENT_METHODS``, which does not contain POST. So ``post``'s ``idempotent``
flag has nothing to allow here: a query that meets a stale connection fails like a mutation, and the
balancer may fail it over. Redirects are not followed (``follow_redirects`` stays off).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from http.cookiejar import CookieJar
from typing import Any, Protocol

from edge.upstream.base import (
    REQUEST_MANAGED,
    UpstreamConnectError,
    UpstreamError,
    UpstreamPoolTimeout,
    UpstreamProtocolError,
    UpstreamResponse,
    UpstreamTimeout,
    check_target,
    strip_hop_by_hop,
)

__all__ = ["HttpxLikeClient", "HttpxUpstream", "map_exception"]


class HttpxLikeClient(Protocol):
    """What the adapter uses of ``httpx.AsyncClient`` (httpx2's has the same shape, other classes)."""

    headers: Any
    cookies: Any
    timeout: Any

    def build_request(
        self, method: str, url: Any, *, content: Any = ..., headers: Any = ..., timeout: Any = ...
    ) -> Any: ...

    async def send(self, request: Any, *, stream: bool = ...) -> Any: ...

    async def aclose(self) -> None: ...


class _NoCookies(CookieJar):
    """A proxy must not keep one caller's Set-Cookie and replay it for the next caller."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def add_cookie_header(self, request: Any) -> None:
        return None


# httpx and httpx2 have parallel exception trees with the same class names, so the mapping goes by
# name along the MRO: the most specific class wins, and httpx2 needs no import here.
_BY_NAME: dict[str, type[UpstreamError]] = {
    "PoolTimeout": UpstreamPoolTimeout,
    "TimeoutException": UpstreamTimeout,  # ConnectTimeout, ReadTimeout, WriteTimeout
    "ConnectError": UpstreamConnectError,
    "NetworkError": UpstreamConnectError,  # ReadError/WriteError/CloseError: a reset socket
    "ProtocolError": UpstreamProtocolError,  # RemoteProtocolError, LocalProtocolError
    "DecodingError": UpstreamProtocolError,
    "TransportError": UpstreamProtocolError,  # anything else at the transport level
}


def map_exception(exc: BaseException) -> UpstreamError | None:
    """The ``UpstreamError`` for a client exception, or None if it is not an upstream failure."""
    cause = exc.__cause__
    if cause is not None and type(cause).__module__.startswith("aiohttp"):
        refined = _from_aiohttp(cause)
        if refined is not None:
            return refined(f"upstream request failed: {type(cause).__name__}")
    for cls in type(exc).__mro__:
        target = _BY_NAME.get(cls.__name__)
        if target is not None:
            return target(f"upstream request failed: {cls.__name__}: {_describe(exc)}")
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout("upstream request timed out")
    if isinstance(exc, OSError):
        return UpstreamConnectError(f"upstream connection failed: {exc.strerror or type(exc).__name__}")
    if type(exc).__module__.startswith("aiohttp"):  # httpx-aiohttp lets some aiohttp errors through
        target = _from_aiohttp(exc) or UpstreamProtocolError
        return target(f"upstream request failed: {type(exc).__name__}")
    return None


def _from_aiohttp(exc: BaseException) -> type[UpstreamError] | None:
    # httpx-aiohttp 0.2 maps every aiohttp.ClientConnectionError (refused, disconnected, even
    # disconnected mid-response) to httpx.ConnectTimeout, so the aiohttp cause decides.
    if isinstance(exc, TimeoutError):  # aiohttp's timeout errors subclass it
        return UpstreamTimeout
    name = type(exc).__name__
    if name == "ServerDisconnectedError":
        # Its ``message`` is the partly parsed response once any byte arrived, else a string.
        return UpstreamConnectError if isinstance(getattr(exc, "message", None), str) else UpstreamProtocolError
    if name in ("ClientPayloadError", "ClientResponseError", "ServerFingerprintMismatch"):
        return UpstreamProtocolError
    if isinstance(exc, OSError):  # ClientConnectorError, ClientOSError
        return UpstreamConnectError
    return None


def _describe(exc: BaseException) -> str:
    # httpx messages describe the failure (never the request's headers or body); keep them short.
    return str(exc)[:200] or type(exc).__name__


class HttpxUpstream:
    """Adapts an httpx-style ``AsyncClient`` created with ``base_url`` to :class:`Upstream`.

    The adapter owns the client (``aclose`` closes it) and adjusts it for proxying: no cookie
    jar, and none of httpx's default ``Accept``/``Accept-Encoding``/``User-Agent`` headers, so what
    reaches Hasura is what the edge forwards. Bodies are read raw (never decompressed), so a
    ``Content-Encoding`` header from Hasura still matches the bytes passed back.
    """

    def __init__(
        self,
        client: HttpxLikeClient,
        *,
        path: str = "/v1/graphql",
        max_response_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self._client = client
        self._path = path
        self.max_response_bytes = max_response_bytes
        client.cookies = _NoCookies()
        for name in ("accept", "accept-encoding", "user-agent"):
            client.headers.pop(name, None)

    async def post(
        self,
        body: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        *,
        timeout: float | None = None,
        idempotent: bool = False,
    ) -> UpstreamResponse:
        forwarded = [(n, v) for n, v in headers if n.lower() not in REQUEST_MANAGED]
        forwarded.append((b"content-type", b"application/json"))
        return await self._send("POST", self._path, body, forwarded, timeout)

    async def get(self, path: str, *, timeout: float | None = None) -> UpstreamResponse:
        return await self._send("GET", path, None, [], timeout)

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
        check_target(method, target)
        forwarded = [(n, v) for n, v in headers if n.lower() not in REQUEST_MANAGED]
        if body is not None:
            forwarded.append((b"content-type", b"application/json"))
        return await self._send(method, target, body, forwarded, timeout)

    async def _send(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: list[tuple[bytes, bytes]],
        timeout: float | None,
    ) -> UpstreamResponse:
        client = self._client
        # A per-call timeout overrides read/write/pool and keeps the client's connect timeout.
        timeouts = client.timeout if timeout is None else type(client.timeout)(timeout, connect=client.timeout.connect)
        try:
            request = client.build_request(method, path, content=body, headers=headers, timeout=timeouts)
            response = await client.send(request, stream=True)
            try:
                if response.is_stream_consumed:  # httpx.MockTransport hands back already-read responses
                    content = response.content
                    if len(content) > self.max_response_bytes:
                        raise UpstreamProtocolError(f"upstream response exceeds {self.max_response_bytes} bytes")
                else:
                    content = await self._read_capped(response.aiter_raw())
            finally:
                await response.aclose()
        except UpstreamError:
            raise
        except Exception as exc:
            mapped = map_exception(exc)
            if mapped is None:
                raise
            raise mapped from exc
        return UpstreamResponse(response.status_code, strip_hop_by_hop(response.headers.raw), content)

    async def _read_capped(self, chunks: AsyncIterator[bytes]) -> bytes:
        parts: list[bytes] = []
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > self.max_response_bytes:
                raise UpstreamProtocolError(f"upstream response exceeds {self.max_response_bytes} bytes")
            parts.append(chunk)
        return b"".join(parts)

    async def aclose(self) -> None:
        await self._client.aclose()

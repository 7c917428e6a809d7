"""One pooled client from the edge to Hasura's ``{EDGE_HASURA_URL}/v1/graphql``.

``make_upstream`` picks the implementation. The default, ``lean``, won the measurement in
``bench/upstream_clients.py`` (see bench/README.md, "Upstream clients"); the httpx-API kinds stay
available behind the same :class:`Upstream` seam (``httpx-aiohttp`` is the one to use for https).
"""

from __future__ import annotations

import importlib
from typing import Any, Literal

from edge.upstream.base import (
    Upstream,
    UpstreamConnectError,
    UpstreamError,
    UpstreamPoolTimeout,
    UpstreamProtocolError,
    UpstreamResponse,
    UpstreamTimeout,
)
from edge.upstream.httpx_adapter import HttpxUpstream
from edge.upstream.lean import LeanUpstream

__all__ = [
    "HttpxUpstream",
    "LeanUpstream",
    "Upstream",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamKind",
    "UpstreamPoolTimeout",
    "UpstreamProtocolError",
    "UpstreamResponse",
    "UpstreamTimeout",
    "make_upstream",
]

UpstreamKind = Literal["lean", "httpx", "httpx2", "httpx-aiohttp"]
DEFAULT_KIND: UpstreamKind = "lean"


def _optional(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"this upstream kind needs the optional package {module!r}: pip install -e '.[bench]'"
        ) from exc


def make_upstream(
    base_url: str,
    *,
    kind: UpstreamKind = DEFAULT_KIND,
    connect_timeout: float,
    read_timeout: float,
    max_connections: int,
    idle_timeout: float = 15.0,
) -> Upstream:
    """Build the pooled client. Call it in the process that will use it (one per worker).

    ``idle_timeout``: pooled connections idle this long are not reused (every kind): below the
    keep-alive timeout of Hasura and of anything between, so that a request is not written to a
    connection the other side is closing."""
    if kind == "lean":
        return LeanUpstream(
            base_url,
            max_connections=max_connections,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            idle_timeout=idle_timeout,
        )
    if kind not in ("httpx", "httpx2", "httpx-aiohttp"):
        raise ValueError(f"unknown upstream kind: {kind!r}")
    lib: Any = _optional("httpx2") if kind == "httpx2" else _optional("httpx")
    # The pool timeout is the read timeout: waiting for a free connection is waiting for Hasura.
    timeout = lib.Timeout(read_timeout, connect=connect_timeout)
    limits = lib.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections, keepalive_expiry=idle_timeout
    )
    options: dict[str, Any] = {"base_url": base_url, "timeout": timeout, "limits": limits, "trust_env": False}
    if kind == "httpx-aiohttp":
        aiohttp = _optional("aiohttp")
        transport_mod = _optional("httpx_aiohttp")

        def session() -> Any:  # created lazily, inside the running loop, as aiohttp requires
            connector = aiohttp.TCPConnector(
                limit=max_connections, limit_per_host=max_connections, keepalive_timeout=idle_timeout
            )
            # aiohttp would add Accept, Accept-Encoding and User-Agent; a proxy forwards the caller's.
            return aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent"),
            )

        options["transport"] = transport_mod.AiohttpTransport(client=session, limits=limits)
    return HttpxUpstream(lib.AsyncClient(**options))

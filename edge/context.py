"""The one object each stage of the ``/graphql`` pipeline reads and extends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge.session import Session
from edge.upstream.base import UpstreamResponse

__all__ = ["RequestContext"]


@dataclass(slots=True)
class RequestContext:
    """State of one HTTP request as it moves through the pipeline.

    Stages fill it in order: ``receive_request`` (``body``, ``payload``), ``authenticate``
    (``session``), ``inject_session`` (``upstream_headers``), ``proxy`` (``response``).
    """

    method: str
    headers: list[tuple[bytes, bytes]]
    query_string: bytes
    client: tuple[str, int] | None
    request_id: str
    origin: bytes | None = None
    body: bytes = b""
    payload: Any = None
    """The decoded GraphQL request: one dict, or a list of dicts for a batch."""
    is_batch: bool = False
    session: Session | None = None
    upstream_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    response: UpstreamResponse | None = None
    first_values: dict[bytes, bytes] = field(default_factory=dict)
    """First value of each header name, built once (``header()`` is called several times)."""

    def __post_init__(self) -> None:
        self.first_values = dict(reversed(self.headers))

    def header(self, name: bytes) -> bytes | None:
        """First value of a (lower-case) header name, or None."""
        return self.first_values.get(name)

    def header_values(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key == name]

"""What the double saw: one :class:`RecordedRequest` per HTTP request, appended in arrival order.

Headers are kept exactly as the ASGI server delivered them (order, duplicates, lower-cased names), so tests
can prove what the edge forwarded, e.g. that no client ``x-hasura-*`` header survived (Hasura makes every one
a session variable: ``mkSessionVariablesHeaders`` in server/src-lib/Hasura/Session.hs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["RecordedRequest"]


@dataclass
class RecordedRequest:
    """One request as received. ``session`` is the Hasura session resolved for it (``auth.resolve_session``),
    ``None`` when authentication failed or the route does not authenticate. ``status`` is the HTTP status
    answered (``None`` while pending, or when the connection was dropped or hung), ``fault`` names the fault
    applied (``"delay"``, ``"status"``, ``"hang"``, ``"drop"``) if any."""

    method: str
    path: str
    query_string: bytes
    headers: list[tuple[str, str]]
    body: bytes
    session: dict[str, str] | None = None
    status: int | None = None
    fault: str | None = None
    request_id: str | None = field(default=None, repr=False)

    def json(self) -> Any:
        """The body decoded as JSON (raises on invalid JSON)."""
        return orjson.loads(self.body)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        values = self.header_all(name)
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in the order received."""
        wanted = name.lower()
        return [value for key, value in self.headers if key == wanted]

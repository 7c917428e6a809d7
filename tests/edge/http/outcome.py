"""What one side made of a case's bytes: the requests it handed over (or parsed), and how it ended.

The edge, h11 and nginx all end up as an :class:`Outcome`, so the table and the comparison speak
one vocabulary. A request travels as JSON (``describe`` / ``handed_from_json``): from the edge's
echo handlers and from the upstream echo behind nginx.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["Handed", "Outcome", "describe", "handed_from_json"]


@dataclass(frozen=True)
class Handed:
    """One request as a handler received it (or as a reference parsed it: ``route`` is then None).

    ``route`` is ``"graphql"`` for the GraphQL handler (either route to it) and ``"other"`` for the
    rest of the ASGI app.
    """

    method: bytes
    target: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    route: str | None = None


def describe(handed: Handed) -> bytes:
    return orjson.dumps(
        {
            "route": handed.route,
            "method": handed.method.decode("latin-1"),
            "target": handed.target.decode("latin-1"),
            "headers": [[name.decode("latin-1"), value.decode("latin-1")] for name, value in handed.headers],
            "body": handed.body.decode("latin-1"),
        }
    )


def handed_from_json(body: bytes) -> Handed:
    data: dict[str, Any] = orjson.loads(body)
    return Handed(
        method=data["method"].encode("latin-1"),
        target=data["target"].encode("latin-1"),
        headers=tuple((name.encode("latin-1"), value.encode("latin-1")) for name, value in data["headers"]),
        body=data["body"].encode("latin-1"),
        route=data["route"],
    )


@dataclass(frozen=True)
class Outcome:
    """How a side dealt with one case.

    ``requests``: handed over (answered 200 by an echo), in order. ``refusal``: the status of the
    answer that ended the exchange without handing a request over (400, 413, 417, ...; for h11 its
    ``error_status_hint``), if any. ``incomplete``: the side was still waiting for bytes at the end.
    The edge alone also has ``continues`` (``100 Continue`` answers) and ``closes`` (whether the
    connection was closed after the last answer; None in the table: not specified).
    """

    requests: tuple[Handed, ...] = ()
    refusal: int | None = None
    incomplete: bool = False
    continues: int = 0
    closes: bool | None = None

    @property
    def verdict(self) -> str:
        if self.refusal is not None:
            return "refuse"
        return "incomplete" if self.incomplete else "accept"

"""How an error the edge answers itself is sent: status semantics by content negotiation.

GraphQL over HTTP gives a GraphQL response two media types with two status semantics
(``edge/content_negotiation.py``). A client that accepts ``application/graphql-response+json`` gets
the edge's precise status (401 for a bad token, 400 for a request error) in that media type. A client
that accepts only ``application/json`` (every Hasura client) gets Hasura's semantics: Hasura's
``/v1/graphql`` answers every error it produces with HTTP 200 and its error body (``allMod200`` in
``server/src-lib/Hasura/Server/App.hs``; ``server/tests-py/test_jwt.py`` asserts 200 for
``invalid-jwt``, ``access-denied`` and the claims errors), so such a client reads the error from the
body exactly as it did from Hasura; its error links see ``extensions.code``. Conditions Hasura has no
equivalent for (405, 408, 413, 415, 429, 5xx...) keep their status either way
(``EdgeError.hasura_status``). ``EDGE_ERROR_STATUSES`` forces one semantics for every client.

Only errors are negotiated: a response from Hasura passes through as Hasura sent it, so the
``Accept`` header is read only on the error path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from edge.content_negotiation import prefers_graphql_response_json
from edge.errors import EdgeError

__all__ = ["ErrorStatusMode", "ErrorStatuses"]

ErrorStatusMode = Literal["negotiate", "edge", "hasura"]
"""``negotiate``: by ``Accept``; ``edge``: the edge's statuses for every client (in the media type the
client prefers); ``hasura``: Hasura's semantics for every client, as ``application/json``."""

_GRAPHQL_RESPONSE_JSON = (b"content-type", b"application/graphql-response+json; charset=utf-8")
_JSON = (b"content-type", b"application/json; charset=utf-8")
_VARY_ACCEPT = (b"vary", b"Accept")
_WWW_AUTHENTICATE = b"www-authenticate"
# Clients send a handful of distinct Accept values (each library its own), so each is parsed once:
# parsing costs tens of microseconds, an error flood (429s, refused tokens) would pay it per response.
_REMEMBERED_ACCEPTS = 256


class ErrorStatuses:
    """Turns an :class:`EdgeError` into the status, headers and body a given request gets."""

    def __init__(self, mode: ErrorStatusMode = "negotiate") -> None:
        self.mode = mode
        self._prefers_modern: dict[str | None, bool] = {}

    def answer(
        self, error: EdgeError, request_headers: Sequence[tuple[bytes, bytes]]
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """``(status, headers, body)`` for ``error``; the headers are the content type, ``Vary`` when the
        answer depends on ``Accept``, and the error's own (``Retry-After``, ``Allow``...)."""
        modern = self.mode != "hasura" and self._prefers_graphql_response_json(_accept(request_headers))
        hasura_semantics = self.mode == "hasura" or (self.mode == "negotiate" and not modern)
        if hasura_semantics and error.hasura_status is not None:
            status, body = error.hasura_status, error.hasura_body()
        else:
            status, body = error.status, error.body()
        headers = [_GRAPHQL_RESPONSE_JSON if modern else _JSON]
        if self.mode != "hasura":
            headers.append(_VARY_ACCEPT)
        for header in error.response_headers():
            # RFC 9110 §11.6.1: a 401 carries the challenge; a 200 carrying the error in its body does not.
            if header[0] != _WWW_AUTHENTICATE or status == 401:
                headers.append(header)
        return status, headers, body

    def _prefers_graphql_response_json(self, accept: str | None) -> bool:
        remembered = self._prefers_modern.get(accept)
        if remembered is None:
            remembered = prefers_graphql_response_json(accept)
            if len(self._prefers_modern) >= _REMEMBERED_ACCEPTS:
                self._prefers_modern.clear()  # bounded: a client inventing values only refills it
            self._prefers_modern[accept] = remembered
        return remembered


def _accept(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """Every ``Accept`` line of the request as one list (RFC 9110 §5.3), None when there is none."""
    values = [value for name, value in headers if name == b"accept"]
    if not values:
        return None
    return b",".join(values).decode("latin-1")

"""Credentials from a ``connection_init`` (or ``refresh``) payload plus the handshake headers.

Accepted payload forms (names are case-insensitive; values must be strings, else 4400):

- ``{"headers": {"Authorization": "Bearer <jwt>", "X-API-Key": "<key>", ...}}`` (Hasura's form);
- ``{"Authorization": "Bearer <jwt>"}`` (top-level, either case);
- ``{"authToken": "<jwt>"}`` (``Bearer`` is added when missing).

A payload value wins over a handshake header of the same name. ``x-hasura-role`` is kept: it
selects a role among the credential's allowed roles, exactly as on HTTP. Every other
``x-hasura-*`` name (dashes or underscores, any case) and the admin secret are ignored: identity
comes from verified credentials only, and nothing from the payload is ever forwarded to Hasura.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["BadInitPayload", "credential_headers"]

Headers = list[tuple[bytes, bytes]]

# Handshake headers that describe the WebSocket itself, not the client.
_HANDSHAKE_ONLY = frozenset(
    {
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"upgrade",
        b"connection",
        b"host",
    }
)
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_MAX_VALUE = 16_384


class BadInitPayload(Exception):
    """The payload is not an object, or a credential value is not a plain string."""


def _ignored(name: bytes) -> bool:
    folded = name.replace(b"_", b"-")
    return folded.startswith(b"x-hasura-") and folded != b"x-hasura-role"


def _name(raw: str) -> bytes:
    name = raw.strip().lower()
    if not name or not name.isascii() or any(ch in name for ch in " :\r\n\t"):
        raise BadInitPayload("connection_init payload header names must be plain ASCII tokens")
    return name.encode("ascii")


def _value(name: str, value: Any) -> bytes:
    if not isinstance(value, str):
        raise BadInitPayload(f"connection_init payload value for {name[:40]!r} must be a string")
    if len(value) > _MAX_VALUE or _BAD_VALUE.search(value):
        raise BadInitPayload(f"connection_init payload value for {name[:40]!r} is not a valid header value")
    return value.encode("utf-8")


def credential_headers(payload: Any, handshake: Headers) -> Headers:
    """The header list ``Authenticate.identify`` sees for this payload and handshake."""
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise BadInitPayload("connection_init payload must be an object")
    found: dict[bytes, bytes] = {}
    headers = payload.get("headers")
    if headers is not None:
        if not isinstance(headers, dict):
            raise BadInitPayload("connection_init payload.headers must be an object")
        for raw_name, value in headers.items():
            name = _name(str(raw_name))
            encoded = _value(str(raw_name), value)
            if not _ignored(name):
                found[name] = encoded
    for key in ("Authorization", "authorization"):
        if key in payload:
            found[b"authorization"] = _value(key, payload[key])
    if "authToken" in payload:
        token = _value("authToken", payload["authToken"])
        found[b"authorization"] = token if token[:7].lower() == b"bearer " else b"Bearer " + token
    kept = [
        (name, value)
        for name, value in handshake
        if name not in _HANDSHAKE_ONLY and name not in found and not _ignored(name)
    ]
    return [*found.items(), *kept]

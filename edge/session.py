"""The trusted identity a request runs as at Hasura, and the one place it is built."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from edge.errors import InvalidJWTClaims
from edge.session_names import RESERVED_SESSION_NAMES

if TYPE_CHECKING:
    from edge.keys.model import ApiKey

__all__ = ["Identity", "Session", "session_from_claims"]

# A session variable becomes an HTTP header at Hasura: a name must be a header token and a
# value must not carry control characters (CR/LF would split the upstream request).
_SESSION_NAME: Final = re.compile(r"x-hasura-[a-z0-9-]{1,100}")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_MAX_VALUE_LENGTH: Final = 4096


@dataclass(frozen=True, slots=True)
class Session:
    """A Hasura role plus session variables (lower-case ``x-hasura-*`` names, string values).

    Built only by :func:`session_from_claims` from verified credentials; ``variables`` never
    contains ``x-hasura-role`` (that is ``role``) nor any of the admin-only names.
    """

    role: str
    variables: Mapping[str, str] = field(default_factory=dict)
    user_id: str | None = None
    """``x-hasura-user-id`` when present: the identity used for limits and logs."""


CredentialKind = Literal["jwt", "api_key", "authorizer", "anonymous"]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request runs as (``session``), how that was established, and the API key if any.

    ``expires_at`` (wall-clock epoch seconds) is when the credential stops being valid: a JWT's
    ``exp``, an authorizer's ``Cache-Control``/``Expires``, a key's ``expires_at``; None: never.
    """

    session: Session
    credential: CredentialKind
    api_key: ApiKey | None = None
    expires_at: float | None = None


def session_from_claims(role: str, variables: Mapping[str, str]) -> Session:
    """Build the trusted session; drops reserved names, refuses values that cannot be a header."""
    clean: dict[str, str] = {}
    for name, value in variables.items():
        if name in RESERVED_SESSION_NAMES:
            continue
        if not _SESSION_NAME.fullmatch(name):
            raise InvalidJWTClaims(f"claim name {name[:60]!r} is not a valid session variable name")
        if len(value) > _MAX_VALUE_LENGTH or _CONTROL.search(value):
            raise InvalidJWTClaims(f"claim {name} has a value that cannot be sent as a header")
        clean[name] = value
    if _CONTROL.search(role) or not role:
        raise InvalidJWTClaims("the role is not a valid header value")
    return Session(role=role, variables=clean, user_id=clean.get("x-hasura-user-id"))

"""What an API key grants: an owner, a plan, a role and fixed session variables; and the rules for new keys.

An :class:`ApiKey` never carries its secret or hash, so it can be cached, logged (by ``key_id``)
and handed to the pipeline freely.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from uuid import UUID

from edge.keys.errors import ApiKeyValidationError, UnknownPlan
from edge.session_names import RESERVED_SESSION_NAMES

__all__ = [
    "RESERVED_SESSION_VARIABLES",
    "ApiKey",
    "validate_expires_at",
    "validate_owner",
    "validate_plan",
    "validate_role",
    "validate_session_variables",
]

RESERVED_SESSION_VARIABLES = RESERVED_SESSION_NAMES
"""Names the edge controls at Hasura; a key may never set them (see :mod:`edge.session`)."""

# A session variable becomes an HTTP header at Hasura: the name must be a header token and the value
# must not carry control characters (CR/LF would split the upstream request).
_SESSION_NAME = re.compile(r"x-hasura-[a-z0-9-]{1,100}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ROLE = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_SESSION_VARIABLES = 32
MAX_VALUE_LENGTH = 1024
MAX_OWNER_LENGTH = 200


@dataclass(frozen=True)
class ApiKey:
    """One row of ``edge.api_keys`` without its hash. ``role`` is None only for keys that use the default role."""

    id: UUID
    key_id: str
    owner: str
    plan: str
    role: str | None
    session_variables: Mapping[str, str] = field(hash=False)
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_rotated_at: datetime | None

    def __post_init__(self) -> None:
        # Read-only view of a private copy: a cached key cannot be changed by whoever holds it.
        object.__setattr__(self, "session_variables", MappingProxyType(dict(self.session_variables)))

    def revoked(self) -> bool:
        return self.revoked_at is not None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def usable(self, now: datetime) -> bool:
        """Not revoked and not expired at ``now`` (an aware datetime)."""
        return not self.revoked() and not self.expired(now)

    def status(self, now: datetime) -> str:
        """``revoked``, ``expired``, ``rotated`` (still valid during its grace period) or ``active``."""
        if self.revoked():
            return "revoked"
        if self.expired(now):
            return "expired"
        return "rotated" if self.last_rotated_at is not None else "active"


def validate_owner(owner: str) -> str:
    owner = owner.strip()
    if not owner:
        raise ApiKeyValidationError("owner must not be empty")
    if len(owner) > MAX_OWNER_LENGTH or _CONTROL.search(owner):
        raise ApiKeyValidationError(f"owner must be at most {MAX_OWNER_LENGTH} characters, without control characters")
    return owner


def validate_plan(plan: str, known_plans: Collection[str]) -> str:
    if plan not in known_plans:
        raise UnknownPlan(plan, sorted(known_plans))
    return plan


def validate_role(role: str | None) -> str | None:
    """None (the database default role) or a plain role name that is never ``admin`` in any case."""
    if role is None:
        return None
    if role.lower() == "admin":
        raise ApiKeyValidationError("role 'admin' is not allowed for API keys")
    if _ROLE.fullmatch(role) is None:
        raise ApiKeyValidationError(f"role {role!r} must be 1 to 64 characters of letters, digits, '_' and '-'")
    return role


def validate_session_variables(variables: Mapping[str, object] | None) -> dict[str, str]:
    """Lower-case ``x-hasura-*`` names (never the reserved ones) with string values safe for a header."""
    if variables is None:
        return {}
    if len(variables) > MAX_SESSION_VARIABLES:
        raise ApiKeyValidationError(f"at most {MAX_SESSION_VARIABLES} session variables")
    checked: dict[str, str] = {}
    for name, value in variables.items():
        if not isinstance(name, str) or _SESSION_NAME.fullmatch(name) is None:
            raise ApiKeyValidationError(
                f"session variable {name!r} must be a lower-case name starting with 'x-hasura-' "
                "(letters, digits and '-')"
            )
        if name in RESERVED_SESSION_VARIABLES:
            raise ApiKeyValidationError(f"session variable {name!r} is reserved and cannot be set on an API key")
        if not isinstance(value, str):
            raise ApiKeyValidationError(f"session variable {name!r} must have a string value")
        if len(value) > MAX_VALUE_LENGTH or _CONTROL.search(value):
            raise ApiKeyValidationError(
                f"session variable {name!r} must be at most {MAX_VALUE_LENGTH} characters, without control characters"
            )
        checked[name] = value
    return checked


def validate_expires_at(expires_at: datetime | None, now: datetime) -> datetime | None:
    if expires_at is None:
        return None
    if expires_at.tzinfo is None or expires_at.utcoffset() is None:
        raise ApiKeyValidationError("expires_at must be a timezone-aware datetime")
    if expires_at <= now:
        raise ApiKeyValidationError("expires_at must be in the future")
    return expires_at

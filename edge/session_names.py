"""Hasura's names for a session: the ``x-hasura-`` prefix, the two role claims, and the names only the edge sets.

One module of constants that the claims, the JWT configuration, the session and the API keys all read.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ALLOWED_ROLES", "DEFAULT_ROLE", "RESERVED_SESSION_NAMES", "SESSION_PREFIX"]

SESSION_PREFIX: Final = "x-hasura-"
ALLOWED_ROLES: Final = "x-hasura-allowed-roles"
DEFAULT_ROLE: Final = "x-hasura-default-role"

RESERVED_SESSION_NAMES: Final = frozenset(
    {
        "x-hasura-role",
        "x-hasura-admin-secret",
        "x-hasura-access-key",
        "x-hasura-use-backend-only-permissions",
    }
)
"""Names the edge controls at Hasura: never taken from claims, keys or an authorizer, because the
edge talks to Hasura with the admin secret, which would make Hasura honour them."""

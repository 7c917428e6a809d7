"""The trusted identity a request runs as at Hasura."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Session"]


@dataclass(frozen=True, slots=True)
class Session:
    """A Hasura role plus session variables (lower-case ``x-hasura-*`` names, string values).

    Built only by the edge from verified credentials; ``variables`` never contains
    ``x-hasura-role`` (that is ``role``) nor any of the admin-only headers.
    """

    role: str
    variables: Mapping[str, str] = field(default_factory=dict)
    user_id: str | None = None
    """``x-hasura-user-id`` when present: the identity used for limits and logs."""

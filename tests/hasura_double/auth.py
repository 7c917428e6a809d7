"""Admin-secret mode authentication, the only mode the double implements.

Hasura's ``getUserInfoWithExpTime_`` (server/src-lib/Hasura/Server/Auth.hs), ``AMAdminSecret`` case:

- ``x-hasura-admin-secret`` (or the deprecated ``x-hasura-access-key``) is checked first. Wrong value:
  ``access-denied`` ``invalid x-hasura-admin-secret/x-hasura-access-key`` (401 internally).
- Correct value: role = ``x-hasura-role`` or ``admin``; every ``x-hasura-*`` request header becomes a session
  variable (role impersonation), minus the secret headers, with ``x-hasura-role`` set to the resolved role.
- No secret: the unauthorized role if configured, with session variables taken from the request's
  ``x-hasura-*`` headers and the role forced (``mkSessionVariablesHeaders``); otherwise ``access-denied``
  ``x-hasura-admin-secret/x-hasura-access-key required, but not found``.

Header lookup follows Hasura: the secret is the first header value (``getRequestHeader``); session variables
come from ``HashMap.fromList`` over all ``x-hasura-*`` headers, so the last duplicate wins; names are
lower-cased (session variables are case-insensitive).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from .errors import HasuraError

__all__ = ["ADMIN_ROLE", "AuthConfig", "resolve_session"]

ADMIN_ROLE = "admin"
SECRET_HEADERS = ("x-hasura-admin-secret", "x-hasura-access-key")
ROLE_HEADER = "x-hasura-role"


@dataclass(frozen=True)
class AuthConfig:
    admin_secret: str
    unauthorized_role: str | None = None


def _first(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in headers if key == name), None)


def _session_from_headers(headers: list[tuple[str, str]]) -> dict[str, str]:
    session: dict[str, str] = {}
    for key, value in headers:
        name = key.lower()
        if name.startswith("x-hasura-") and name not in SECRET_HEADERS:
            session[name] = value
    return session


def resolve_session(headers: list[tuple[str, str]], config: AuthConfig) -> dict[str, str]:
    """The session variables for a request, or :class:`HasuraError` ``access-denied`` (status 401)."""
    sent = _first(headers, SECRET_HEADERS[0])
    if sent is None:
        sent = _first(headers, SECRET_HEADERS[1])
    session = _session_from_headers(headers)
    if sent is not None:
        if not hmac.compare_digest(sent.encode(), config.admin_secret.encode()):
            raise HasuraError("invalid x-hasura-admin-secret/x-hasura-access-key", "access-denied", status=401)
        session[ROLE_HEADER] = session.get(ROLE_HEADER, ADMIN_ROLE)
        return session
    if config.unauthorized_role is not None:
        session[ROLE_HEADER] = config.unauthorized_role
        return session
    raise HasuraError("x-hasura-admin-secret/x-hasura-access-key required, but not found", "access-denied", status=401)

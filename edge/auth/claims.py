"""Hasura claims: from a verified JWT payload to roles and session variables.

Implements Hasura's rules (``server/src-lib/Hasura/Server/Auth/JWT.hs``, ``parseClaimsMap``):

* the claims object sits under ``claims_namespace`` (default ``https://hasura.io/jwt/claims``)
  or at ``claims_namespace_path`` (a JSON path, :mod:`edge.auth.json_path`, looked up among the
  claims that are not RFC 7519's registered ones); with ``claims_format: stringified_json`` that
  value is a JSON *string* holding the object;
* or, when ``claims_map`` is configured, every session variable is a literal or
  ``{"path": ..., "default": ...}`` looked up in the whole payload (namespace/format ignored);
* only keys starting with ``x-hasura-`` count (case-insensitive, lower-cased here);
  ``x-hasura-allowed-roles`` must be a list of role names, ``x-hasura-default-role`` a role
  name, every other value a string (a numeric user id is ``jwt-invalid-claims``, as in Hasura).

Every malformed input (null, booleans, numbers, nested objects, lists where a string belongs)
ends in :class:`~edge.errors.InvalidJWTClaims` or :class:`~edge.errors.MissingRoleClaims`,
never in an unexpected exception. Messages name claims, never quote their values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from edge.auth.json_path import encode_json_path, is_missing, lookup_json_path, parse_json_path
from edge.errors import InvalidJWTClaims, MissingRoleClaims, RoleNotAllowed
from edge.session_names import ALLOWED_ROLES, DEFAULT_ROLE, SESSION_PREFIX

if TYPE_CHECKING:
    from edge.auth.jwt_config import JWTConfig

__all__ = [
    "HasuraClaims",
    "extract_hasura_claims",
    "select_role",
]

_NAME_IN_MESSAGE_MAX = 100
#: The registered claims of RFC 7519 (Haskell jose's ``ClaimsSet`` fields). Hasura looks
#: ``claims_namespace_path`` up in the other claims only (``parseClaimsMap`` in
#: ``server/src-lib/Hasura/Server/Auth/JWT.hs``), so a path starting with one finds nothing.
_REGISTERED_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti"})


@dataclass(frozen=True)
class HasuraClaims:
    """The Hasura part of a verified token.

    ``session_variables`` maps lower-cased ``x-hasura-*`` names to string values and excludes
    the two role claims. It may contain ``x-hasura-role`` if the token carries one: callers set
    the effective role from :func:`select_role`, which always wins.
    """

    allowed_roles: tuple[str, ...]
    default_role: str
    session_variables: Mapping[str, str] = field(hash=False)


def select_role(claims: HasuraClaims, requested_role: str | None) -> str:
    """The request's role: ``requested_role`` (the ``x-hasura-role`` header) or the default role.

    Raises :class:`~edge.errors.RoleNotAllowed` (403 ``access-denied``) when that role is not in
    ``allowed_roles``; this also covers a default role missing from the allowed list.
    """
    role = claims.default_role if requested_role is None else requested_role
    if role not in claims.allowed_roles:
        raise RoleNotAllowed()
    return role


def extract_hasura_claims(payload: Mapping[str, Any], config: JWTConfig) -> HasuraClaims:
    """Hasura's claims from a signature-verified payload, per ``config`` (see module docstring)."""
    if config.claims_map is not None:
        return _from_claims_map(payload, config.claims_map)
    source = _namespace_value(payload, config)
    if config.claims_format == "stringified_json":
        if not isinstance(source, str):
            raise InvalidJWTClaims("invalid claims: claims_format is stringified_json but the claims are not a string")
        try:
            source = json.loads(source)
        except (ValueError, RecursionError):
            raise InvalidJWTClaims("invalid claims: the stringified claims are not valid JSON") from None
    if not isinstance(source, Mapping):
        raise InvalidJWTClaims("invalid claims: the Hasura claims should be a JSON object")
    return _from_object(source)


def _namespace_value(payload: Mapping[str, Any], config: JWTConfig) -> Any:
    if config.claims_namespace_path is not None:
        path = parse_json_path(config.claims_namespace_path)
        found = lookup_json_path(payload, path)
        if is_missing(found) or (path and path[0] in _REGISTERED_CLAIMS):
            raise InvalidJWTClaims(f"claims not found at claims_namespace_path: '{encode_json_path(path)}'")
        return found
    if config.claims_namespace not in payload:
        raise InvalidJWTClaims(f"claims key: '{config.claims_namespace}' not found")
    return payload[config.claims_namespace]


def _from_object(source: Mapping[Any, Any]) -> HasuraClaims:
    claims: dict[str, Any] = {}
    for name, value in source.items():
        if not isinstance(name, str) or not name.lower().startswith(SESSION_PREFIX):
            continue
        lowered = name.lower()
        if lowered in claims:
            # Two spellings of one variable: which one Hasura would pick is an accident of parsing.
            raise InvalidJWTClaims(f"invalid claims: {_shown(lowered)} is given more than once")
        claims[lowered] = value
    if ALLOWED_ROLES not in claims:
        raise MissingRoleClaims(f"JWT claim does not contain {ALLOWED_ROLES}")
    if DEFAULT_ROLE not in claims:
        raise MissingRoleClaims(f"JWT claim does not contain {DEFAULT_ROLE}")
    return _build(claims)


def _from_claims_map(payload: Mapping[str, Any], claims_map: Mapping[str, Any]) -> HasuraClaims:
    claims: dict[str, Any] = {}
    for name, spec in claims_map.items():
        lowered = name.lower()
        if not isinstance(spec, Mapping):
            claims[lowered] = spec  # a literal value
            continue
        found = lookup_json_path(payload, parse_json_path(spec["path"]))
        if is_missing(found):
            if "default" not in spec:
                if lowered in (ALLOWED_ROLES, DEFAULT_ROLE):
                    raise MissingRoleClaims(f"JWT claim does not contain {lowered}")
                raise InvalidJWTClaims(f"JWT claim from claims_map, {_shown(lowered)} not found")
            found = spec["default"]
        claims[lowered] = found
    if ALLOWED_ROLES not in claims or DEFAULT_ROLE not in claims:
        # parse_jwt_secret guarantees both; a hand-built JWTConfig might not.
        missing = ALLOWED_ROLES if ALLOWED_ROLES not in claims else DEFAULT_ROLE
        raise MissingRoleClaims(f"JWT claim does not contain {missing}")
    return _build(claims)


def _build(claims: Mapping[str, Any]) -> HasuraClaims:
    allowed = claims[ALLOWED_ROLES]
    if not isinstance(allowed, list) or not all(_is_role(role) for role in allowed):
        raise InvalidJWTClaims(f"invalid {ALLOWED_ROLES}; should be a list of roles")
    default = claims[DEFAULT_ROLE]
    if not _is_role(default):
        raise InvalidJWTClaims(f"invalid {DEFAULT_ROLE}; should be a role")
    session: dict[str, str] = {}
    for name, value in claims.items():
        if name in (ALLOWED_ROLES, DEFAULT_ROLE):
            continue
        if not isinstance(value, str):
            raise InvalidJWTClaims(f"invalid {_shown(name)}; the value of a session variable should be a string")
        session[name] = value
    return HasuraClaims(tuple(allowed), default, MappingProxyType(session))


def _is_role(value: Any) -> bool:
    # Hasura's RoleName is any non-empty text.
    return isinstance(value, str) and value != ""


def _shown(name: str) -> str:
    """A claim name for a message: attacker-chosen, so bounded in length."""
    return name if len(name) <= _NAME_IN_MESSAGE_MAX else name[:_NAME_IN_MESSAGE_MAX] + "..."

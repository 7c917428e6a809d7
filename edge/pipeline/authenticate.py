"""Stage 2: establish who the request runs as, from verified credentials only.

- ``Authorization: Bearer <JWT>`` (or the cookie / custom header named in the JWT config) is
  verified by ``edge.auth.jwt_verifier``; the role is ``x-hasura-role`` if the client asks for
  one within ``x-hasura-allowed-roles`` (403 otherwise), else the token's default role.
- No credentials: the unauthorized role when configured, otherwise 401.
- Tokens are never read from the query string.

Session variables come from the token's claims only. Names the edge itself controls at Hasura
(the admin secret, the role, backend-only permissions) are never taken from claims, because the
edge talks to Hasura with the admin secret, which would make Hasura honour them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from http.cookies import CookieError, SimpleCookie

from edge.auth.claims import select_role
from edge.auth.jwt_config import JWTConfig
from edge.auth.jwt_verifier import JWTVerifier, VerifiedToken
from edge.context import RequestContext
from edge.errors import BadRequest, InvalidAuthHeader, InvalidJWTClaims, MissingCredentials
from edge.session import Session

__all__ = ["Authenticate", "RESERVED_SESSION_NAMES", "session_from_claims"]

RESERVED_SESSION_NAMES = frozenset(
    {
        "x-hasura-role",
        "x-hasura-admin-secret",
        "x-hasura-access-key",
        "x-hasura-use-backend-only-permissions",
    }
)
# A session variable becomes an HTTP header at Hasura: a name must be a header token and a
# value must not carry control characters (CR/LF would split the upstream request).
_SESSION_NAME = re.compile(r"x-hasura-[a-z0-9-]{1,100}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_VALUE_LENGTH = 4096
_SESSION_MEMO_SIZE = 10_000


def session_from_claims(role: str, variables: Mapping[str, str]) -> Session:
    """Build the trusted session; refuses claim values that cannot travel as a header."""
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


class Authenticate:
    """Fills ``ctx.session``; rejects 401 (missing/invalid credentials) and 403 (role not allowed)."""

    def __init__(
        self,
        *,
        verifier: JWTVerifier | None,
        configs: Sequence[JWTConfig],
        unauthorized_role: str | None,
    ) -> None:
        self.verifier = verifier
        # (token, requested role) -> (the verified token it was built from, its session):
        # a repeated token then costs two dict lookups instead of rebuilding the session.
        self._sessions: dict[tuple[str, str | None], tuple[VerifiedToken, Session]] = {}
        self.unauthorized_session = Session(role=unauthorized_role) if unauthorized_role else None
        locations = {(config.header.kind, (config.header.name or "").lower()) for config in configs}
        self.read_authorization = ("Authorization", "") in locations or not configs
        self.cookie_names = sorted(name for kind, name in locations if kind == "Cookie" and name)
        self.custom_headers = sorted(
            name.encode("latin-1") for kind, name in locations if kind == "CustomHeader" and name
        )

    async def __call__(self, ctx: RequestContext) -> None:
        token = self._find_token(ctx)
        if token is None:
            if self.unauthorized_session is None:
                raise MissingCredentials()
            ctx.session = self.unauthorized_session
            return
        if self.verifier is None:
            raise InvalidAuthHeader("This edge accepts no bearer tokens (EDGE_JWT_SECRET is not set)")
        verified = await self.verifier.verify(token)  # checks exp even when cached
        requested = _requested_role(ctx)
        remembered = self._sessions.get((token, requested))
        if remembered is not None and remembered[0] is verified:
            ctx.session = remembered[1]
            return
        role = select_role(verified.claims, requested)
        ctx.session = session_from_claims(role, verified.claims.session_variables)
        if len(self._sessions) >= _SESSION_MEMO_SIZE:
            self._sessions.clear()  # bounded; refilled by the next requests
        self._sessions[(token, requested)] = (verified, ctx.session)

    def _find_token(self, ctx: RequestContext) -> str | None:
        found: list[str] = []
        if self.read_authorization:
            values = ctx.header_values(b"authorization")
            if len(values) > 1:
                raise InvalidAuthHeader("More than one Authorization header")
            if values:
                found.append(_bearer_token(values[0]))
        for header in self.custom_headers:
            values = ctx.header_values(header)
            if len(values) > 1:
                raise InvalidAuthHeader("The token header is given more than once")
            if values:
                found.append(_decode_token(values[0]))
        if self.cookie_names:
            found.extend(_cookie_tokens(ctx.header_values(b"cookie"), self.cookie_names))
        if len(found) > 1:
            raise InvalidAuthHeader("Could not verify JWT: Multiple JWTs found")
        return found[0] if found else None


def _bearer_token(value: bytes) -> str:
    scheme, _, token = value.strip().partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or not token or b" " in token:
        raise InvalidAuthHeader()
    return _decode_token(token)


def _decode_token(raw: bytes) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidAuthHeader() from None


def _cookie_tokens(cookie_headers: list[bytes], names: list[str]) -> list[str]:
    tokens: list[str] = []
    for header in cookie_headers:
        cookie: SimpleCookie = SimpleCookie()
        try:
            cookie.load(header.decode("latin-1"))
        except CookieError:
            raise InvalidAuthHeader("Malformed Cookie header") from None
        tokens.extend(cookie[name].value for name in names if name in cookie)
    return tokens


def _requested_role(ctx: RequestContext) -> str | None:
    values = {value.strip() for key, value in ctx.headers if key == b"x-hasura-role"}
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest("x-hasura-role is given more than once with different values")
    try:
        return values.pop().decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest("x-hasura-role is not ASCII") from None

"""Stage 2: establish who the request runs as, from verified credentials only.

The rules, in order (``docs/identity.md`` explains them for operators):

1. A bearer token (or the cookie / custom header the JWT config names) that is a JWT, when
   ``EDGE_JWT_SECRET`` is set, is verified by ``edge.auth.jwt_verifier``. The role is the
   client's ``x-hasura-role`` if it is among ``x-hasura-allowed-roles`` (403 otherwise), else
   the token's default role. When an authorizer is also configured, only tokens shaped like a
   JWT (three dot-separated parts) take this path; opaque tokens go to the authorizer.
2. Otherwise, an ``X-API-Key`` alone authenticates as the key's role and session variables (a
   machine client). With a JWT or an authorizer decision, the key only selects the plan.
3. Otherwise, with ``EDGE_AUTHORIZER_URL``, the authorizer webhook decides (401 denies).
4. Otherwise, with no credentials at all, ``EDGE_UNAUTHORIZED_ROLE`` when configured, else 401.

A credential that is present but invalid is always refused: it never falls back to the
unauthorized role. Tokens and keys are never read from the query string.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http.cookies import CookieError, SimpleCookie
from typing import Any, Final

from edge.auth.authorizer import Authorizer
from edge.auth.claims import select_role
from edge.auth.jwt_config import JWTConfig
from edge.auth.jwt_verifier import MAX_CACHE_CHARS, JWTVerifier, VerifiedToken
from edge.context import RequestContext
from edge.errors import BadRequest, InvalidAuthHeader, MissingCredentials
from edge.keys.model import ApiKey
from edge.keys.store import ApiKeyStore
from edge.session import Identity, Session, session_from_claims

__all__ = ["Authenticate"]

Headers = Sequence[tuple[bytes, bytes]]
_SESSION_MEMO_SIZE: Final = 10_000
# Authorization values whose token verified, as many as the session memo's users; the values' bytes are
# capped like the verifier's cache (a token may be 16 KiB): only a token's holder can add one.
_TOKEN_MEMO_SIZE: Final = _SESSION_MEMO_SIZE
_TOKEN_MEMO_BYTES: Final = MAX_CACHE_CHARS


class Authenticate:
    """Fills ``ctx.identity``; rejects 401 (missing/invalid credentials), 403 (role), 503 (stores)."""

    def __init__(
        self,
        *,
        verifier: JWTVerifier | None,
        configs: Sequence[JWTConfig],
        unauthorized_role: str | None,
        api_keys: ApiKeyStore | None = None,
        authorizer: Authorizer | None = None,
    ) -> None:
        self.verifier = verifier
        self.api_keys = api_keys
        self.authorizer = authorizer
        self.unauthorized = (
            Identity(session=Session(role=unauthorized_role), credential="anonymous") if unauthorized_role else None
        )
        locations = {(config.header.kind, (config.header.name or "").lower()) for config in configs}
        self.read_authorization = ("Authorization", "") in locations or not configs
        self.cookie_names = sorted(name for kind, name in locations if kind == "Cookie" and name)
        self.custom_headers = sorted(
            name.encode("latin-1") for kind, name in locations if kind == "CustomHeader" and name
        )
        self.only_authorization = self.read_authorization and not self.cookie_names and not self.custom_headers
        # (token, requested role) -> (the verified token it was built from, its identity): a
        # repeated token then costs two dict lookups instead of rebuilding the session.
        self._sessions: dict[tuple[str, str | None], tuple[VerifiedToken, Identity]] = {}
        # Authorization header value -> the bearer token in it, remembered once the token verified: the
        # same value then gives the same token object, so its syntax is not parsed again and the look-ups
        # keyed by the token reuse its cached hash. Only verified tokens, so strangers cannot fill it.
        self._tokens: dict[bytes, str] = {}
        self._token_bytes = 0

    async def __call__(self, ctx: RequestContext) -> None:
        ctx.identity = await self.identify(ctx.headers, request=ctx.payload, first_values=ctx.first_values)

    async def identify(
        self, headers: Headers, *, request: Any | None = None, first_values: Mapping[bytes, bytes] | None = None
    ) -> Identity:
        """The identity for these headers (HTTP request headers, or a WebSocket's init headers).

        ``first_values`` (the first value of each header name) lets the common request, where no
        header name is repeated, be read with dictionary look-ups instead of scans.
        """
        unique = first_values if first_values is not None and len(first_values) == len(headers) else None
        authorization = unique.get(b"authorization") if unique is not None and self.only_authorization else None
        token = self._tokens.get(authorization) if authorization is not None else None
        unremembered = authorization if token is None else None
        if token is None:
            token = self._find_token(headers, unique)
        # Coroutines only when there is something to wait for: most requests carry no API key,
        # and most tokens were verified by an earlier request (the hot path makes no coroutine).
        api_key = await self._api_key(headers, unique) if unique is None or b"x-api-key" in unique else None
        verifier = self.verifier
        if token is not None and verifier is not None and (self.authorizer is None or token.count(".") == 2):
            verified = verifier.cached(token)  # exp is checked on every hit
            if verified is None:
                verified = await verifier.verify(token)
            if unremembered is not None:
                self._remember(unremembered, token)
            identity = self._from_jwt(verified, token, _requested_role(headers, unique))
        elif api_key is not None:
            return Identity(
                session=session_from_claims(api_key.role or "user", api_key.session_variables),
                credential="api_key",
                api_key=api_key,
                expires_at=api_key.expires_at.timestamp() if api_key.expires_at else None,
            )
        elif self.authorizer is not None:
            decision = await self.authorizer.authorize(headers, request)
            identity = Identity(session=decision.session, credential="authorizer", expires_at=decision.expires_at)
        elif token is not None:
            raise InvalidAuthHeader("This edge accepts no bearer tokens (EDGE_JWT_SECRET is not set)")
        elif self.unauthorized is not None:
            return self.unauthorized
        else:
            raise MissingCredentials()
        if api_key is None:
            return identity
        return Identity(
            session=identity.session, credential=identity.credential, api_key=api_key, expires_at=identity.expires_at
        )

    def _from_jwt(self, verified: VerifiedToken, token: str, requested: str | None) -> Identity:
        remembered = self._sessions.get((token, requested))
        if remembered is not None and remembered[0] is verified:
            return remembered[1]
        role = select_role(verified.claims, requested)
        identity = Identity(
            session=session_from_claims(role, verified.claims.session_variables),
            credential="jwt",
            expires_at=verified.expires_at,
        )
        if len(self._sessions) >= _SESSION_MEMO_SIZE:
            self._sessions.clear()  # bounded; refilled by the next requests
        self._sessions[(token, requested)] = (verified, identity)
        return identity

    def _remember(self, authorization: bytes, token: str) -> None:
        if authorization in self._tokens:
            return  # two requests with the same new value were verified concurrently: counted once
        size = len(authorization)
        if len(self._tokens) >= _TOKEN_MEMO_SIZE or self._token_bytes + size > _TOKEN_MEMO_BYTES:
            self._tokens.clear()  # bounded; refilled by the next requests
            self._token_bytes = 0
        self._tokens[authorization] = token
        self._token_bytes += size

    async def _api_key(self, headers: Headers, unique: Mapping[bytes, bytes] | None) -> ApiKey | None:
        if unique is not None:
            value = unique.get(b"x-api-key")
            values = [] if value is None else [value]
        else:
            values = [value for name, value in headers if name == b"x-api-key"]
        if not values:
            return None
        if len(values) > 1:
            raise InvalidAuthHeader("X-API-Key is given more than once")
        if self.api_keys is None:
            raise InvalidAuthHeader("This edge accepts no API keys (EDGE_DATABASE_URL is not set)")
        try:
            presented = values[0].decode("ascii")
        except UnicodeDecodeError:
            raise InvalidAuthHeader("X-API-Key is not ASCII") from None
        return await self.api_keys.resolve(presented)

    def _find_token(self, headers: Headers, unique: Mapping[bytes, bytes] | None) -> str | None:
        if unique is not None and self.only_authorization:
            authorization = unique.get(b"authorization")
            if authorization is None:
                return None
            return _bearer_token(authorization)  # raises for a malformed header
        found: list[str] = []
        if self.read_authorization:
            values = [value for name, value in headers if name == b"authorization"]
            if len(values) > 1:
                raise InvalidAuthHeader("More than one Authorization header")
            if values:
                found.append(_bearer_token(values[0]))
        for header in self.custom_headers:
            values = [value for name, value in headers if name == header]
            if len(values) > 1:
                raise InvalidAuthHeader("The token header is given more than once")
            if values:
                found.append(_decode_token(values[0]))
        if self.cookie_names:
            cookies = [value for name, value in headers if name == b"cookie"]
            found.extend(_cookie_tokens(cookies, self.cookie_names))
        if len(found) > 1:
            raise InvalidAuthHeader("Could not verify JWT: Multiple JWTs found")
        return found[0] if found else None


def _bearer_token(value: bytes) -> str:
    scheme, _, token = value.strip().partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or not token or token.find(b" ") >= 0:  # find: `in` costs a TypeError
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


def _requested_role(headers: Headers, unique: Mapping[bytes, bytes] | None) -> str | None:
    if unique is not None:
        value = unique.get(b"x-hasura-role")
        if value is None:
            return None
        values = {value.strip()}
    else:
        values = {value.strip() for key, value in headers if key == b"x-hasura-role"}
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest("x-hasura-role is given more than once with different values")
    try:
        return values.pop().decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest("x-hasura-role is not ASCII") from None
